"""The fused attention kernels (Pallas TPU splash, Pallas GPU Triton) against the einsum
reference, run in Pallas interpret mode on the CPU: outputs and gradients, token counts that
are not a multiple of the kernels' block (the padding must be masked out)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmae_jax.model.attention import attend, einsum_attention


def _qkv(tokens: int, heads: int = 2, head_dim: int = 16, batch: int = 2):
    keys = jax.random.split(jax.random.key(0), 3)
    return tuple(jax.random.normal(key, (batch, tokens, heads, head_dim), jnp.float32) for key in keys)


@pytest.mark.parametrize("kernel", ["splash", "triton"])
@pytest.mark.parametrize("tokens", [16, 200])
def test_fused_kernel_matches_the_einsum_reference(kernel, tokens):
    q, k, v = _qkv(tokens)
    expected = einsum_attention(q, k, v)
    got = attend(q, k, v, kernel, interpret=True)
    np.testing.assert_allclose(got, expected, atol=2e-5)

    def loss(fn):
        return lambda q, k, v: (fn(q, k, v) ** 2).sum()

    grads = jax.grad(loss(lambda *a: attend(*a, kernel, interpret=True)), argnums=(0, 1, 2))(q, k, v)
    expected_grads = jax.grad(loss(einsum_attention), argnums=(0, 1, 2))(q, k, v)
    for got_grad, want in zip(grads, expected_grads):
        np.testing.assert_allclose(got_grad, want, atol=2e-4)


@pytest.mark.parametrize("tokens", [16, 200])
def test_attention_layer_through_splash_matches_the_einsum_layer(tokens):
    """The layer's splash path makes q, k, v in the kernel's layout (tokens padded before the qkv
    product): same outputs and the same gradients for the input and every weight as the einsum
    path through the same weights."""
    from flax import nnx

    from mmae_jax.model.layers import Attention

    def layer(kernel):
        attention = Attention(32, 2, 0.0, jnp.float32, kernel, nnx.Rngs(0))
        attention.q_bias[...] = jax.random.normal(jax.random.key(1), (32,))   # non-zero biases
        attention.v_bias[...] = jax.random.normal(jax.random.key(2), (32,))
        attention.proj.bias[...] = jax.random.normal(jax.random.key(3), (32,))
        return attention

    x = jax.random.normal(jax.random.key(4), (2, tokens, 32), jnp.float32)

    def loss(attention, x, interpret):
        return (attention(x, interpret=interpret) ** 2).sum()

    splash, einsum = layer("splash"), layer("einsum")
    np.testing.assert_allclose(splash(x, interpret=True), einsum(x), atol=2e-5)
    got = nnx.grad(loss, argnums=(0, 1))(splash, x, True)
    want = nnx.grad(loss, argnums=(0, 1))(einsum, x, False)
    np.testing.assert_allclose(got[1], want[1], atol=2e-4)
    got_params, want_params = nnx.to_flat_state(got[0]), nnx.to_flat_state(want[0])
    assert [path for path, _ in got_params] == [path for path, _ in want_params]
    for (path, got_param), (_, want_param) in zip(got_params, want_params):
        np.testing.assert_allclose(got_param[...], want_param[...], atol=2e-4, rtol=1e-5, err_msg=str(path))
