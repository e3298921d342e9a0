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
