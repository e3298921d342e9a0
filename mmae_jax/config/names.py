"""The old spellings of renamed values, accepted for one release with a one-line notice.

Each setting has one name that says what it is. A config, a ``--config.KEY=VALUE`` override,
a config file's ``:ARGS``, a saved workdir's ``config.json``, a model directory's data config
and the commands' flags may still use an old spelling; ``canonical`` rewrites it to the new
one and prints ``notice: FIELD='old' is now 'new'`` once per spelling.
"""

from __future__ import annotations

import sys

# field -> {old spelling: new name}
RENAMED: dict[str, dict[str, str]] = {
    "data.builder_config": {"paper": "notebook_mfcc", "paper_10ms": "notebook_mfcc_10ms",
                            "paper_mono": "notebook_mfcc_mono"},
    "data.frame_sampling": {"paper_timing": "notebook_timing"},
    "data.spectrogram_render": {"paper": "matshow"},
    "data.normalization": {"paper": "imagenet_mean_std0225"},
    "data.protocol": {"paper": "random_split"},
    "recipe": {"paper": "multimae_der"},
}
# a config file's ARG -> its field
ARG_FIELDS = {"protocol": "data.protocol", "recipe": "recipe"}
_told: set[str] = set()


def notice(line: str) -> None:
    """Print ``notice: <line>`` on stderr, once per process."""
    if line not in _told:
        _told.add(line)
        print(f"notice: {line}", file=sys.stderr)


def renamed(field: str, value):
    """``value`` of ``field`` under its new name (the notice printed once), else unchanged."""
    new = RENAMED.get(field, {}).get(value) if isinstance(value, str) else None
    if new is None:
        return value
    notice(f"{field}={value!r} is now {new!r}")
    return new


def old_names(field: str, new: str) -> list[str]:
    """The old spellings of ``new`` (e.g. the folder name of a build made before the rename)."""
    return [old for old, name in RENAMED.get(field, {}).items() if name == new]


def canonical_data(data_cfg):
    """``canonical`` of a data config alone (a model directory's ``metadata["data"]``)."""
    canonical({"data": data_cfg})
    return data_cfg


def canonical(config):
    """``config`` (a ConfigDict or a dict, e.g. a saved config.json) with every old spelling of
    ``RENAMED`` rewritten to its new name, in place; returns it."""
    for field in RENAMED:
        *path, key = field.split(".")
        node = config
        for part in path:
            node = node.get(part) if hasattr(node, "get") else None
        if node is not None and hasattr(node, "get") and key in node:
            node[key] = renamed(field, node[key])
    return config
