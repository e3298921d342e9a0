"""Transformer blocks run as one ``jax.lax.scan`` over the layers (``model.scan_blocks``).

The model keeps one module per block (``blocks/0/...``, ``blocks/1/...``: checkpoints, the
converters and the layer-wise learning-rate decay see the same parameters either way). The
forward pass stacks the blocks' states on a leading layer axis, runs one block's graph over
them with ``jax.lax.scan`` (so the compiled program holds the block body once, whatever the
depth) and writes the state each call replaces (the counts of the dropout streams that drew a
mask) back into every block, so the blocks are left as after calling them one by one (and a
call that draws nothing writes nothing, as an unrolled one).

What differs between blocks goes in as data: their parameters and random streams (each layer
its own keys, so independent dropout masks), and ``layer_args`` (the drop-path keep
probability of each layer, see ``layers.drop_with_keep_prob``).

Memory: the stack is a copy of the blocks' parameters. Their matrices (every parameter of 2 or
more dimensions: the Linear kernels, which ``nnx.Linear`` casts to its compute dtype before the
product anyway) are stacked already cast to ``matrix_dtype``: the same numbers, and in bfloat16
half the bytes of a float32 stack.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx


def _stack(states: Sequence, matrix_dtype=None):
    """One state whose leaves are the ``states``' leaves stacked on a new axis 0; leaves of 2 or
    more dimensions cast to ``matrix_dtype`` first (unless None)."""
    def cast(leaf):
        return leaf.astype(matrix_dtype) if matrix_dtype is not None and leaf.ndim >= 2 else leaf
    return jax.tree.map(lambda *leaves: jnp.stack([cast(leaf) for leaf in leaves]), *states)


def scan_blocks(blocks: Sequence[nnx.Module], x: jax.Array, remat: Callable | None = None, *,
                layer_args=None, matrix_dtype=None,
                after_block: Callable[[jax.Array], jax.Array] = lambda h: h) -> jax.Array:
    """``x [B, N, D]`` through ``blocks`` (modules of one structure) in order, as one scan.

    ``remat``: wraps the scan body (a ``jax.checkpoint`` with the remat policy), None for none.
    ``layer_args``: a pytree of arrays with a leading axis of ``len(blocks)``; layer ``i`` is
    called as ``block(h, layer_args[i])`` (as ``block(h)`` when None). Static attributes
    (Python numbers, flags) are block 0's for every layer: what differs must come as data.
    ``matrix_dtype``: the dtype the parameters of 2 or more dimensions are stacked in (None:
    their own); give it only where the block casts them to it before use.
    ``after_block``: applied to each block's output (the batch sharding constraint).
    """
    graphdef, *_ = nnx.split(blocks[0], nnx.Param, ...)
    parts = [nnx.split(block, nnx.Param, ...)[1:] for block in blocks]
    params = _stack([p for p, _ in parts], matrix_dtype)
    rest = _stack([r for _, r in parts])

    changed_paths: list[tuple] = []    # the state leaves the block call replaces, found while tracing

    def body(h, layer):
        layer_params, layer_rest, args = layer
        before = {path: variable.get_value() for path, variable in nnx.to_flat_state(layer_rest)}
        block = nnx.merge(graphdef, layer_params, layer_rest)
        h = after_block(block(h) if args is None else block(h, args))
        after = nnx.to_flat_state(nnx.state(block, nnx.Not(nnx.Param)))
        changed = [(path, variable.get_value()) for path, variable in after if variable.get_value() is not before[path]]
        changed_paths[:] = [path for path, _ in changed]
        return h, [value for _, value in changed]

    x, new_values = jax.lax.scan(remat(body) if remat else body, x, (params, rest, layer_args))
    if changed_paths:
        for index, block in enumerate(blocks):
            nnx.update(block, nnx.from_flat_state([(path, values[index])
                                                   for path, values in zip(changed_paths, new_values)]))
    return x
