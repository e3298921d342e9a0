"""The assembled train step as a serialised ``jax.export`` artifact, for several platforms.

``export_train_step(asm, platforms)`` exports ``asm.train_step`` for its abstract state and
batch; ``Exported.serialize()`` then gives bytes that ``jax.export.deserialize`` turns back into
a callable step on any of ``platforms``. The train state is string-keyed (``steps.string_keys``);
the optimiser's state classes (optax named tuples) are registered for serialisation here.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import jax
from jax import export

_REGISTERED: set[type] = set()


def _node_types(treedef) -> Iterator[type]:
    data = treedef.node_data()
    if data is not None:
        yield data[0]
    for child in treedef.children():
        yield from _node_types(child)


def register_state_types(tree) -> None:
    """Register every named-tuple node type of ``tree`` with ``jax.export``'s serialisation."""
    for node_type in set(_node_types(jax.tree_util.tree_structure(tree))):
        if node_type in _REGISTERED or not hasattr(node_type, "_fields"):
            continue
        export.register_namedtuple_serialization(
            node_type, serialized_name=f"{node_type.__module__}.{node_type.__qualname__}")
        _REGISTERED.add(node_type)


def export_train_step(asm, platforms: Sequence[str] = ("cpu", "cuda", "tpu")) -> export.Exported:
    """``asm.train_step`` (an ``assembly.Assembly``) exported for ``platforms``."""
    register_state_types(asm.abstract_state)
    return export.export(asm.train_step, platforms=tuple(platforms))(asm.abstract_state, asm.abstract_batch)
