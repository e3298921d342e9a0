"""Softmax attention kernels, and the one that the target's devices get.

Every kernel takes ``q, k, v [B, N, heads, head_dim]`` and returns ``[B, N, heads, head_dim]``
(no mask: the encoder's tokens all see each other).

| name | where | what |
|---|---|---|
| ``einsum`` | CPU (the reference) | written-out softmax attention, ``[B, heads, N, N]`` scores |
| ``xla`` | any | ``jax.nn.dot_product_attention``'s XLA path (materialises the scores) |
| ``cudnn`` | NVIDIA GPU with cuDNN | cuDNN's fused attention (needs the cuDNN library when compiled) |
| ``splash`` | TPU | the Pallas TPU splash-attention kernel: blocks of scores in VMEM, never ``[N, N]`` in HBM |
| ``triton`` | NVIDIA GPU | the Pallas GPU (Triton) flash-attention kernel: the same, compiled by XLA without cuDNN |

``resolve_attention_impl("auto", platform)`` picks by the platform of the devices the step is
compiled for (``tpu`` -> splash, ``gpu``/``cuda``/``rocm`` -> triton, ``cpu`` -> einsum): a step
compiled on a CPU host for a TPU target gets the TPU's kernel.

The Pallas kernels need the token count padded to their block size (128): the padded keys are
masked out, the padded queries dropped. The splash kernel reads ``[B, heads, N, head_dim]``;
the attention layer calls :func:`splash_self_attention`, whose qkv and output products write and
read that layout, so no transposed copy of q, k, v or the output is made for the kernel. They are custom calls that XLA cannot split, so under a
device mesh (``jax.set_mesh``) each device runs them on its own clips (``jax.shard_map`` over the
batch axis). ``interpret=True`` runs them on the CPU (the tests compare them with ``einsum``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

FUSED_KERNELS = ("splash", "triton")
BLOCK = 128   # the Pallas kernels' block of queries and keys

_AUTO = {"cpu": "einsum", "tpu": "splash", "gpu": "triton", "cuda": "triton", "rocm": "xla"}


def resolve_attention_impl(attention_impl: str, platform: str | None = None) -> str:
    """The kernel for ``attention_impl`` on devices of ``platform`` (default: JAX's default
    backend, for a model run where it is loaded). Only ``"auto"`` depends on the platform."""
    if attention_impl != "auto":
        return attention_impl
    platform = platform or jax.default_backend()
    return _AUTO.get(platform, "xla")


def einsum_attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
    """Softmax attention written out; softmax in float32.

    The same math as ``jax.nn.dot_product_attention``, arranged for XLA:CPU: the query is
    scaled before the score product (not the ``[N, N]`` scores), the row maximum is a
    constant to autodiff (softmax does not depend on it), and the normalisation is applied
    after the value product, to ``[N, head_dim]`` instead of ``[N, N]``.
    """
    scores = jnp.einsum("bqhd,bkhd->bhqk", q * jnp.asarray(q.shape[-1] ** -0.5, q.dtype), k)
    scores = scores.astype(jnp.float32)
    exp = jnp.exp(scores - jax.lax.stop_gradient(scores.max(axis=-1, keepdims=True)))
    total = jnp.einsum("bhqk->bqh", exp)[..., None]                       # [B, N, heads, 1]
    out = jnp.einsum("bhqk,bkhd->bqhd", exp.astype(v.dtype), v, preferred_element_type=jnp.float32)
    return (out / total).astype(v.dtype)


def batch_axes() -> tuple[str, ...]:
    """The axes of the current mesh (``jax.set_mesh``) that split the batch: all of them; ``()``
    outside a mesh."""
    mesh = jax.sharding.get_abstract_mesh()
    return () if mesh.empty else tuple(mesh.axis_names)


def batch_shards() -> int:
    """How many pieces the current mesh cuts a batch into (1 outside a mesh)."""
    mesh = jax.sharding.get_abstract_mesh()
    return 1 if mesh.empty else int(np.prod(list(mesh.shape.values())))


def constrain_to_batch(x: jax.Array) -> jax.Array:
    """``x [B, ...]`` pinned to the batch split of the current mesh (unchanged outside one), so
    XLA gathers the parameters (FSDP) instead of splitting activations along features."""
    axes = batch_axes()
    if not axes or x.shape[0] % batch_shards():
        return x
    return jax.lax.with_sharding_constraint(x, P(axes))


def _per_device(kernel, q, k, v):
    """``kernel`` on each device's clips under the current mesh, or on all of them outside one."""
    axes = batch_axes()
    if not axes:
        return kernel(q, k, v)
    spec = P(axes)
    return jax.shard_map(kernel, in_specs=(spec, spec, spec), out_specs=spec, check_vma=False)(q, k, v)


def _padded(x: jax.Array, tokens: int) -> jax.Array:
    return jnp.pad(x, ((0, 0), (0, tokens - x.shape[1]), (0, 0), (0, 0)))


@functools.lru_cache(maxsize=16)
def _splash_kernel(tokens: int, padded: int, heads: int, interpret: bool):
    from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as splash
    from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as masks

    real_keys = np.zeros((padded, padded), bool)
    real_keys[:, :tokens] = True
    mask = masks.MultiHeadMask([masks.NumpyMask(real_keys) for _ in range(heads)])
    return splash.make_splash_mha(mask, head_shards=1, q_seq_shards=1, interpret=interpret)


def _splash_heads(q: jax.Array, k: jax.Array, v: jax.Array, tokens: int, interpret: bool) -> jax.Array:
    """The splash kernel on ``q`` (already scaled), ``k``, ``v [B, heads, padded, head_dim]`` ->
    ``[B, heads, padded, head_dim]``: keys from ``tokens`` on are masked; each device runs its clips."""
    heads, padded = q.shape[1:3]
    return _per_device(jax.vmap(_splash_kernel(tokens, padded, heads, interpret)), q, k, v)


def splash_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, interpret: bool = False) -> jax.Array:
    """The Pallas TPU splash-attention kernel on ``[B, N, heads, head_dim]`` (it takes
    ``[heads, N, head_dim]`` per clip: the inputs are padded and transposed for it)."""
    tokens, _, head_dim = q.shape[1:]
    padded = -(-tokens // BLOCK) * BLOCK
    q = q * jnp.asarray(head_dim ** -0.5, q.dtype)
    q, k, v = (_padded(x, padded).transpose(0, 2, 1, 3) for x in (q, k, v))
    return _splash_heads(q, k, v, tokens, interpret).transpose(0, 2, 1, 3)[:, :tokens]


def splash_self_attention(x: jax.Array, qkv_kernel: jax.Array, qkv_bias: jax.Array, proj_kernel: jax.Array,
                          proj_bias: jax.Array, num_heads: int, *, interpret: bool = False) -> jax.Array:
    """Multi-head self-attention of ``x [B, N, D]`` through the splash kernel -> ``[B, N, D]``.

    The same numbers as ``x @ qkv_kernel + qkv_bias`` -> :func:`splash_attention` -> ``@ proj_kernel
    + proj_bias`` (``qkv_kernel [D, 3D]`` ordered q, k, v then heads; ``proj_kernel [D, D]``), laid
    out for the kernel: the qkv product writes ``[3, B, heads, N, head_dim]`` directly, padded to
    the kernel's block in the same pass, and the output projection reads the kernel's ``[B, heads,
    padded, head_dim]``. No transpose copies of q, k, v or the output are made: on TPU those cost
    more memory traffic than the attention itself (``mmae-jax plan``, docs/scaling.md).
    """
    batch, tokens, dim = x.shape
    head_dim = dim // num_heads
    padded = -(-tokens // BLOCK) * BLOCK
    # The query scale goes into the q columns of the kernel and bias (a [D, 3D] product instead
    # of a pass over [B, heads, padded, head_dim]; exact when head_dim is a power of two).
    scale = jnp.asarray([head_dim ** -0.5, 1.0, 1.0], x.dtype).reshape(3, 1, 1)
    kernel = qkv_kernel.reshape(dim, 3, num_heads, head_dim) * scale
    bias = (qkv_bias.reshape(3, num_heads, head_dim) * scale)[:, None, :, None, :]
    qkv = jnp.einsum("bnd,dkhe->kbhne", x, kernel) + bias                   # [3, B, heads, N, head_dim]
    qkv = jnp.pad(qkv, ((0, 0), (0, 0), (0, 0), (0, padded - tokens), (0, 0)))
    out = _splash_heads(qkv[0], qkv[1], qkv[2], tokens, interpret)[:, :, :tokens]
    return jnp.einsum("bhne,hed->bnd", out, proj_kernel.reshape(num_heads, head_dim, dim)) + proj_bias


def triton_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, interpret: bool = False) -> jax.Array:
    """The Pallas GPU (Triton) flash-attention kernel; padded keys masked by segment ids."""
    from jax.experimental.pallas.ops.gpu import attention as gpu_attention

    tokens, _, head_dim = q.shape[1:]
    padded = -(-tokens // BLOCK) * BLOCK

    def run(q, k, v):
        segments = jnp.broadcast_to((jnp.arange(padded) < tokens).astype(jnp.int32), (q.shape[0], padded))
        q, k, v = (_padded(x, padded) for x in (q, k, v))
        out = gpu_attention.mha(q, k, v, segments, sm_scale=head_dim ** -0.5, interpret=interpret)
        return out[:, :tokens]

    return _per_device(run, q, k, v)


def attend(q: jax.Array, k: jax.Array, v: jax.Array, implementation: str, *, interpret: bool = False) -> jax.Array:
    """``q, k, v [B, N, heads, head_dim] -> [B, N, heads, head_dim]`` with the named kernel."""
    if implementation == "einsum":
        return einsum_attention(q, k, v)
    if implementation == "splash":
        return splash_attention(q, k, v, interpret=interpret)
    if implementation == "triton":
        return triton_attention(q, k, v, interpret=interpret)
    return jax.nn.dot_product_attention(q, k, v, implementation=implementation)
