"""Reading PyTorch checkpoints safely: .pth / .pt / .bin, .safetensors, Hugging Face folders,
and Hugging Face model ids (``MCG-NJU/videomae-large-finetuned-kinetics[@revision]``), fetched
with ``huggingface_hub.snapshot_download`` into (or, with ``HF_HUB_OFFLINE=1``, read from) the
local hub cache.

A ``.pth`` file is a pickle and can run code when loaded, so it is read with
``torch.load(weights_only=True)`` plus an allow-list of harmless types that training
checkpoints carry (``argparse.Namespace`` of the training arguments, numpy scalars and
dtypes). A file that needs anything else is refused with the list of what it needs,
unless the caller passes ``trust_pickle=True`` (``--trust-pickle``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np

from mmae_jax.errors import InputError, UserError

HF_CONFIG = "config.json"
HF_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json",
                   "pytorch_model.bin", "pytorch_model.bin.index.json")
# The files of a hub repository that conversion reads (weights in either format, sharded or not).
HUB_PATTERNS = [HF_CONFIG, "*.safetensors", "*.safetensors.index.json", "*.bin", "*.bin.index.json"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*(@[A-Za-z0-9_./-]+)?$")
# Entries under which training scripts nest the state dict, in the order they are tried.
STATE_DICT_ENTRIES = ("model", "module", "state_dict", "model_state")


class CheckpointError(InputError):
    """A checkpoint that cannot be read or does not fit; the message names the file and every problem."""


def _first_line(error: BaseException) -> str:
    """The first line of ``error``'s message, or its type when the message is empty."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


@dataclasses.dataclass(frozen=True)
class LoadedCheckpoint:
    """The tensors of a checkpoint as float32/int numpy arrays, by their original names."""

    path: Path
    tensors: dict[str, np.ndarray]
    hf_config: dict[str, Any] | None      # config.json of a Hugging Face folder
    entry: str | None                     # the wrapper entry ("model", "module" ...) if any
    hub_id: str | None = None             # the Hugging Face model id it was resolved from

    @property
    def class_names(self) -> list[str] | None:
        """The head's class names (a Hugging Face config's ``id2label``, in label order), if any."""
        id2label = (self.hf_config or {}).get("id2label") or {}
        if not id2label:
            return None
        return [id2label.get(str(i), id2label.get(i)) for i in range(len(id2label))]


def require_torch(purpose: str = "reading PyTorch checkpoints", alternative: str = ""):
    """torch, or a one-line UserError: ``purpose`` needs torch, the extra that installs it and
    ``alternative`` (another way that needs no torch), if any."""
    try:
        import torch
    except ImportError as error:
        raise UserError(f"{purpose} needs torch, which is not installed",
                        "pip install 'mmae_jax[torch]' (the CPU build is enough)"
                        + (f", or {alternative}" if alternative else "")) from error
    return torch


def safe_globals() -> list:
    """The non-tensor types a weights-only load accepts besides torch's own."""
    return [argparse.Namespace, np.dtype, np.dtypes.Float64DType, np.dtypes.Float32DType,
            np.dtypes.Int64DType, np.dtypes.Int32DType, np._core.multiarray.scalar]


def is_hub_id(source: str | Path) -> bool:
    """True for ``ORG/NAME[@REVISION]`` that is not an existing local path."""
    return not Path(source).exists() and bool(_HUB_ID.match(str(source)))


def resolve_hub_id(model_id: str) -> Path:
    """The local snapshot folder of a Hugging Face model id, downloaded if needed.

    ``ORG/NAME@REVISION`` picks a branch, tag or commit. ``HF_HUB_OFFLINE=1`` reads only the
    local cache (``HF_HUB_CACHE``, ``HF_HOME``: huggingface_hub's own settings).
    """
    try:
        from huggingface_hub import constants, snapshot_download
    except ImportError as error:
        raise CheckpointError(f"{model_id}: resolving a Hugging Face model id needs huggingface_hub "
                              f"(pip install 'mmae_jax[torch]')") from error
    repo_id, _, revision = model_id.partition("@")
    offline = constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    try:
        return Path(snapshot_download(repo_id, revision=revision or None, allow_patterns=HUB_PATTERNS,
                                      local_files_only=offline))
    except Exception as error:  # the hub's errors: not cached, not found, gated, no network
        where = "in the local hub cache (HF_HUB_OFFLINE is set)" if offline else "on the Hugging Face hub"
        raise CheckpointError(f"{model_id}: not found {where}: {type(error).__name__}: "
                              f"{_first_line(error)}") from error


def load_checkpoint(source: str | Path, *, trust_pickle: bool = False) -> LoadedCheckpoint:
    """Read a checkpoint file, a Hugging Face folder or a Hugging Face model id into numpy arrays.

    ``source`` may be a ``.pth``/``.pt``/``.bin`` file (state dict at the top level or under
    ``model``/``module``/``state_dict``), a ``.safetensors`` file, a Hugging Face
    folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``, possibly sharded),
    or a model id on the hub (``ORG/NAME[@REVISION]``, see ``resolve_hub_id``).
    A weights file lying in a Hugging Face folder is read together with its ``config.json``.
    """
    if is_hub_id(source):
        return dataclasses.replace(_load_hf_folder(resolve_hub_id(str(source)), trust_pickle), hub_id=str(source))
    path = Path(source)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or directory (nor a Hugging Face model id ORG/NAME)")
    if path.is_dir():
        return _load_hf_folder(path, trust_pickle)
    hf_config = _hf_config_next_to(path)
    raw = _read_weights_file(path, trust_pickle)
    entry, state_dict = _unwrap(path, raw)
    return LoadedCheckpoint(path, _to_numpy(state_dict), hf_config, entry)


def _load_hf_folder(folder: Path, trust_pickle: bool) -> LoadedCheckpoint:
    config = _hf_config_next_to(folder / HF_CONFIG)
    if config is None:
        raise CheckpointError(f"{folder}: a folder must be a Hugging Face VideoMAE checkpoint "
                              f"(config.json with model_type 'videomae'); none found")
    present = [name for name in HF_WEIGHT_FILES if (folder / name).is_file()]
    if not present:
        raise CheckpointError(f"{folder}: no weights found; expected one of {list(HF_WEIGHT_FILES)}")
    weights = folder / present[0]
    if weights.name.endswith(".index.json"):
        shards = sorted(set(json.loads(weights.read_text())["weight_map"].values()))
        tensors = {}
        for shard in shards:
            tensors.update(_unwrap(folder / shard, _read_weights_file(folder / shard, trust_pickle))[1])
    else:
        tensors = _unwrap(weights, _read_weights_file(weights, trust_pickle))[1]
    return LoadedCheckpoint(weights, _to_numpy(tensors), config, None)


def _hf_config_next_to(path: Path) -> dict[str, Any] | None:
    """The Hugging Face VideoMAE ``config.json`` in ``path``'s folder, if there is one."""
    config_path = path.parent / HF_CONFIG
    if not config_path.is_file():
        return None
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{config_path}: not valid JSON ({error})") from error
    if config.get("model_type") != "videomae":
        raise CheckpointError(f"{config_path}: model_type is {config.get('model_type')!r}, not 'videomae'")
    return config


def _read_weights_file(path: Path, trust_pickle: bool) -> Any:
    torch = require_torch()
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{path}: cannot be read as safetensors (truncated or corrupt?): {error}") from error
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty", "download or copy it again")
    try:
        if trust_pickle:
            return torch.load(path, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals(safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        needed = _unsafe_globals(torch, path)
        if needed is None:
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (no torch.save structure: truncated, "
                                  f"corrupt or another format)", "download or copy it again") from error
        raise CheckpointError(
            f"{path}: refused to unpickle. A .pth file can run code when loaded, so only tensors and "
            f"allow-listed types are read, and this file also needs: {needed or 'unknown types'}",
            "if you trust where it came from, pass --trust-pickle (trust_pickle=True)") from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot be read as a PyTorch checkpoint (truncated or corrupt?): "
                              f"{_first_line(error)}", "download or copy it again") from error


def _unsafe_globals(torch, path: Path) -> list[str] | None:
    """The types the file needs beyond the allow-list; None when it is not a torch.save file."""
    try:
        allowed = {f"{g.__module__}.{g.__qualname__}" for g in safe_globals()}
        return [name for name in torch.serialization.get_unsafe_globals_in_checkpoint(path)
                if name not in allowed]
    except (RuntimeError, ValueError, pickle.UnpicklingError, EOFError):
        return None


def _unwrap(path: Path, raw: Any) -> tuple[str | None, dict[str, Any]]:
    """Find the state dict: the top level, or under ``model``/``module``/...; strip ``module.``."""
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: holds a {type(raw).__name__}, not a state dict")
    entry, state_dict = None, raw
    if not _is_state_dict(raw):
        found = [name for name in STATE_DICT_ENTRIES if isinstance(raw.get(name), dict) and _is_state_dict(raw[name])]
        if not found:
            raise CheckpointError(f"{path}: no state dict found at the top level or under "
                                  f"{list(STATE_DICT_ENTRIES)}; top-level keys: {sorted(map(str, raw))[:20]}")
        entry, state_dict = found[0], raw[found[0]]
    if state_dict and all(key.startswith("module.") for key in state_dict):
        state_dict = {key[len("module."):]: value for key, value in state_dict.items()}
    return entry, state_dict


def _is_state_dict(candidate: dict) -> bool:
    torch = require_torch()
    return bool(candidate) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in candidate.items())


def _to_numpy(state_dict: dict[str, Any]) -> dict[str, np.ndarray]:
    """Floating tensors become float32 numpy arrays (bf16/fp16 checkpoints included)."""
    torch = require_torch()
    arrays = {}
    for name, tensor in state_dict.items():
        tensor = tensor.detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.to(torch.float32)
        arrays[name] = tensor.numpy()
    return arrays
