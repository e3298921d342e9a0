"""Building blocks of the VideoMAE ViT: tubelet embedding, attention, MLP, block.

Attribute names follow the PyTorch checkpoints (``patch_embed.proj``, ``norm1``,
``attn.qkv``, ``attn.q_bias``, ``attn.v_bias``, ``attn.proj``, ``norm2``, ``mlp.fc1``,
``mlp.fc2``, ``gamma_1``, ``gamma_2``) so the converter is a readable name map.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mmae_jax.model.attention import attend, constrain_to_batch, resolve_attention_impl, splash_self_attention
from mmae_jax.model.block_scan import scan_blocks
from mmae_jax.model.patches import patchify


def layer_norm(dim: int, epsilon: float, dtype, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """LayerNorm (VideoMAE's epsilon is 1e-6); parameters float32, output in ``dtype``."""
    return nnx.LayerNorm(dim, epsilon=epsilon, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)


def dense(in_dim: int, out_dim: int, dtype, rngs: nnx.Rngs, *, use_bias: bool = True,
          std: float = 0.02) -> nnx.Linear:
    """Linear layer initialised like VideoMAE (truncated normal, std 0.02; zero bias)."""
    return nnx.Linear(in_dim, out_dim, use_bias=use_bias, dtype=dtype, param_dtype=jnp.float32,
                      kernel_init=nnx.initializers.truncated_normal(std), rngs=rngs)


class PatchEmbed(nnx.Module):
    """Tubelet embedding, the Conv3d with kernel = stride = (tubelet, patch, patch).

    ``[B, T, H, W, C] -> [B, T/t * H/p * W/p, D]``, tokens ordered (t, h, w) as VideoMAE's
    ``flatten(2)``. The kernel is stored as ``[t, p, p, C, D]`` (nnx.Conv's layout). As the
    tubes do not overlap, the convolution is computed as one matrix product of the cut-out
    tubes ``[B, N, t*p*p*C]`` with the flattened kernel: the same numbers, and on XLA:CPU its
    weight gradient is a plain matrix product instead of a dilated convolution (3x faster).
    """

    def __init__(self, embed_dim: int, tubelet: int, patch: int, in_chans: int, dtype, rngs: nnx.Rngs):
        self.tubelet, self.patch, self.dtype = tubelet, patch, dtype
        self.proj = nnx.Conv(in_chans, embed_dim, kernel_size=(tubelet, patch, patch),
                             strides=(tubelet, patch, patch), padding="VALID", dtype=dtype,
                             param_dtype=jnp.float32, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        tubes = patchify(x.astype(self.dtype), self.tubelet, self.patch)      # [B, N, t*p*p, C]
        tubes = tubes.reshape(*tubes.shape[:2], -1)
        kernel = self.proj.kernel[...].astype(self.dtype)                       # [t, p, p, C, D]
        out = tubes @ kernel.reshape(-1, kernel.shape[-1])
        return out + self.proj.bias[...].astype(self.dtype)


class Attention(nnx.Module):
    """Multi-head self-attention with a fused qkv kernel, query and value bias, no key bias."""

    def __init__(self, dim: int, num_heads: int, drop_rate: float, dtype, attention_impl: str,
                 rngs: nnx.Rngs):
        self.num_heads = num_heads
        self.dtype = dtype
        self.attention_impl = attention_impl
        self.qkv = dense(dim, 3 * dim, dtype, rngs, use_bias=False)
        self.q_bias = nnx.Param(jnp.zeros((dim,), jnp.float32))
        self.v_bias = nnx.Param(jnp.zeros((dim,), jnp.float32))
        self.proj = dense(dim, dim, dtype, rngs)
        self.proj_drop = nnx.Dropout(drop_rate, rngs=rngs)

    def __call__(self, x: jax.Array, *, interpret: bool = False) -> jax.Array:
        """``[B, N, D] -> [B, N, D]``. ``interpret`` runs a Pallas kernel on the CPU (tests)."""
        batch, tokens, dim = x.shape
        bias = jnp.concatenate([self.q_bias[...], jnp.zeros_like(self.q_bias[...]), self.v_bias[...]])
        implementation = resolve_attention_impl(self.attention_impl)
        if implementation == "splash":
            weights = (self.qkv.kernel, bias, self.proj.kernel, self.proj.bias)
            out = splash_self_attention(x.astype(self.dtype), *(jnp.asarray(w[...], self.dtype) for w in weights),
                                        self.num_heads, interpret=interpret)
            return self.proj_drop(out)
        qkv = self.qkv(x) + bias.astype(self.dtype)
        qkv = qkv.reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]   # [B, N, heads, head_dim]
        out = attend(q, k, v, implementation, interpret=interpret)
        return self.proj_drop(self.proj(out.reshape(batch, tokens, dim)))


class Mlp(nnx.Module):
    """fc1 -> exact (erf) GELU -> dropout -> fc2 -> dropout."""

    def __init__(self, dim: int, hidden: int, drop_rate: float, dtype, rngs: nnx.Rngs):
        self.fc1 = dense(dim, hidden, dtype, rngs)
        self.fc2 = dense(hidden, dim, dtype, rngs)
        self.drop = nnx.Dropout(drop_rate, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.drop(jax.nn.gelu(self.fc1(x), approximate=False))
        return self.drop(self.fc2(x))


class Block(nnx.Module):
    """Pre-norm transformer block with optional layer scale and stochastic depth."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, *, drop_rate: float,
                 drop_path_rate: float, init_values: float, norm_eps: float, dtype,
                 attention_impl: str, rngs: nnx.Rngs):
        self.norm1 = layer_norm(dim, norm_eps, dtype, rngs)
        self.attn = Attention(dim, num_heads, drop_rate, dtype, attention_impl, rngs)
        self.norm2 = layer_norm(dim, norm_eps, dtype, rngs)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop_rate, dtype, rngs)
        # Drop path = dropout of the whole residual branch per sample.
        self.drop_path = nnx.Dropout(drop_path_rate, broadcast_dims=(1, 2), rngs=rngs)
        if init_values > 0:
            self.gamma_1 = nnx.Param(jnp.full((dim,), init_values, jnp.float32))
            self.gamma_2 = nnx.Param(jnp.full((dim,), init_values, jnp.float32))
        else:
            self.gamma_1 = self.gamma_2 = None

    def __call__(self, x: jax.Array, keep_prob: jax.Array | None = None) -> jax.Array:
        """``[B, N, D] -> [B, N, D]``. ``keep_prob``: the drop path's keep probability as data (a
        float32 scalar, for blocks run by one scan), instead of its module's own rate."""
        x = x + self._drop_path(self._scale(self.attn(self.norm1(x)), self.gamma_1), keep_prob)
        return x + self._drop_path(self._scale(self.mlp(self.norm2(x)), self.gamma_2), keep_prob)

    def _drop_path(self, x: jax.Array, keep_prob: jax.Array | None) -> jax.Array:
        return self.drop_path(x) if keep_prob is None else drop_with_keep_prob(x, self.drop_path, keep_prob)

    @staticmethod
    def _scale(x: jax.Array, gamma) -> jax.Array:
        return x if gamma is None else x * gamma[...].astype(x.dtype)


_REMAT_POLICIES = {
    "full": None,  # save nothing: recompute the whole block in the backward pass
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def drop_with_keep_prob(x: jax.Array, dropout: nnx.Dropout, keep_prob: jax.Array) -> jax.Array:
    """``dropout`` applied to ``x`` with its keep probability given as data (a float32 scalar)
    instead of its Python ``rate``: the mask ``nnx.Dropout`` of rate ``1 - keep_prob`` draws (the
    same key of its stream, shared over its ``broadcast_dims``), and the same use of the stream
    (its count advances only when ``keep_prob < 1``, as ``nnx.Dropout`` draws nothing at rate 0)."""
    if dropout.deterministic:
        return x
    stream = dropout.rngs
    count = stream.count[...]
    shape = [1 if dim in dropout.broadcast_dims else size for dim, size in enumerate(x.shape)]
    mask = jax.random.bernoulli(stream(), keep_prob, shape, out_sharding=jax.typeof(x).sharding)
    stream.count[...] = jnp.where(keep_prob < 1, stream.count[...], count)
    return jnp.where(mask, x / keep_prob.astype(x.dtype), jnp.zeros_like(x))


def apply_blocks(blocks, x: jax.Array, remat_policy: str, *, scan: bool = False) -> jax.Array:
    """Run ``blocks`` in order, each rematerialised under ``remat_policy`` ('none' = plain); each
    block's output ``[B, N, D]`` stays split by batch over the current mesh (``constrain_to_batch``).

    ``scan``: run them as one ``jax.lax.scan`` over their stacked states (``block_scan.scan_blocks``),
    so the compiled program holds the block once; the same numbers and the same state afterwards.
    """
    if scan:
        remat = None if remat_policy == "none" else functools.partial(
            jax.checkpoint, policy=_REMAT_POLICIES[remat_policy], prevent_cse=False)
        return scan_blocks(blocks, x, remat, layer_args=_keep_probs(blocks), matrix_dtype=blocks[0].attn.dtype,
                           after_block=constrain_to_batch)
    call = (lambda block, h: block(h)) if remat_policy == "none" else nnx.remat(
        lambda block, h: block(h), policy=_REMAT_POLICIES[remat_policy])
    for block in blocks:
        x = constrain_to_batch(call(block, x))
    return x


def _keep_probs(blocks) -> jax.Array | None:
    """The blocks' drop-path keep probabilities ``[depth]`` float32, or None when all blocks
    have the same rate (their own module applies it)."""
    rates = [block.drop_path.rate for block in blocks]
    if len(set(rates)) == 1:
        return None
    return jnp.asarray(np.array([1.0 - rate for rate in rates], np.float32))


def make_blocks(cfg_dim: int, depth: int, num_heads: int, mlp_ratio: float, *, drop_rate: float,
                drop_path_rate: float, init_values: float, norm_eps: float, dtype,
                attention_impl: str, rngs: nnx.Rngs) -> nnx.List:
    """``depth`` blocks with stochastic-depth rates rising linearly from 0 to ``drop_path_rate``."""
    rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
    make = functools.partial(Block, cfg_dim, num_heads, mlp_ratio, drop_rate=drop_rate,
                             init_values=init_values, norm_eps=norm_eps, dtype=dtype,
                             attention_impl=attention_impl, rngs=rngs)
    return nnx.List([make(drop_path_rate=rate) for rate in rates])
