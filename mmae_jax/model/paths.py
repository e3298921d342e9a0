"""Parameter names: a parameter's path in the model as one dotted string.

The name of ``model.encoder.blocks[3].attn.qkv.kernel`` is ``"encoder.blocks.3.attn.qkv.kernel"``,
whether the path comes from ``nnx.to_flat_state`` (plain keys) or from ``jax.tree_util``'s
``*_with_path`` functions over a pure parameter dict (``DictKey`` / ``SequenceKey`` /
``GetAttrKey``). Checkpoints, the optimiser's decay masks, the converter and the exporters
all name parameters this way.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
from flax import nnx


def param_name(key_path: Sequence[Any]) -> str:
    """``("encoder", "blocks", 3, ...)`` or a ``jax.tree_util`` key path -> ``"encoder.blocks.3...."``."""
    return ".".join(str(_key(key)) for key in key_path)


def _key(key: Any) -> Any:
    if isinstance(key, jax.tree_util.DictKey):
        return key.key
    if isinstance(key, jax.tree_util.SequenceKey):
        return key.idx
    if isinstance(key, jax.tree_util.GetAttrKey):
        return key.name
    return key


def flat_params(params: nnx.Module | Mapping) -> dict[str, Any]:
    """Name -> leaf (array or ShapeDtypeStruct) for every ``nnx.Param`` of a model, or for
    every leaf of a pure parameter dict (``nnx.State.to_pure_dict``)."""
    tree = nnx.state(params, nnx.Param).to_pure_dict() if isinstance(params, nnx.Module) else params
    return {param_name(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def map_named(fn, tree):
    """``jax.tree.map`` whose ``fn(name, leaf)`` also gets each leaf's parameter name."""
    return jax.tree_util.tree_map_with_path(lambda path, leaf: fn(param_name(path), leaf), tree)
