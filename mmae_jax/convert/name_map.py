"""Explicit name maps from each checkpoint family to mmae_jax parameter paths, with transposes.

A ``Mapping`` says which source tensor(s) make one target parameter and how:

- ``copy``: unchanged (LayerNorm weight -> ``scale``, biases, ``q_bias``, ``gamma_1``, ``mask_token``);
- ``linear``: ``nn.Linear.weight [out, in]`` -> kernel ``[in, out]`` (``.T``);
- ``conv3d``: ``nn.Conv3d.weight [D, C, t, p, p]`` -> kernel ``[t, p, p, C, D]``;
- ``qkv``: Hugging Face's separate query/key/value weights -> the fused kernel ``[D, 3D]``;
- ``zeros``: no source (Hugging Face models built with ``qv_bias=False``); a zero bias.

Targets are dotted ``nnx`` paths of ``VideoMAEPretrainer`` / ``VideoMAEClassifier``; the
converter drops the ones the chosen model does not have (for example the decoder).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np

from mmae_jax.convert.families import SourceModel


@dataclasses.dataclass(frozen=True)
class Mapping:
    target: str
    sources: tuple[str, ...]
    transform: str


TRANSFORMS: dict[str, Callable[[list[np.ndarray]], np.ndarray]] = {
    "copy": lambda arrays: arrays[0],
    "linear": lambda arrays: arrays[0].T,
    "conv3d": lambda arrays: arrays[0].transpose(2, 3, 4, 1, 0),
    "qkv": lambda arrays: np.concatenate([array.T for array in arrays], axis=1),
}


def source_shapes(mapping: Mapping, target_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The shape each source tensor must have for ``target_shape`` (in PyTorch's layout)."""
    if mapping.transform == "copy":
        return [target_shape]
    if mapping.transform == "linear":
        return [target_shape[::-1]]
    if mapping.transform == "conv3d":
        t, h, w, c, d = target_shape
        return [(d, c, t, h, w)]
    if mapping.transform == "qkv":
        dim, fused = target_shape
        return [(fused // 3, dim)] * 3
    return []


def apply(mapping: Mapping, tensors: dict[str, np.ndarray], target_shape: tuple[int, ...]) -> np.ndarray:
    """The target parameter made from its (shape-checked) sources, float32."""
    if mapping.transform == "zeros":
        return np.zeros(target_shape, np.float32)
    return np.ascontiguousarray(TRANSFORMS[mapping.transform]([tensors[name] for name in mapping.sources]),
                                dtype=np.float32)


# --- Hugging Face names --------------------------------------------------------------------
HF_V4_RENAMES = (("attention.attention.q_bias", "attention.attention.query.bias"),
                 ("attention.attention.v_bias", "attention.attention.value.bias"))


def normalise_hf_names(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """transformers v4 names -> v5 names; a bare ``VideoMAEModel``'s names get ``videomae.``.

    v4 stored the query/value biases as ``attention.attention.q_bias``/``v_bias``; v5 stores
    them as ``query.bias``/``value.bias`` (transformers' own ``conversion_mapping`` does the same).
    """
    bare = any(key.startswith("embeddings.patch_embeddings.") for key in tensors)
    renamed = {}
    for key, value in tensors.items():
        for old, new in HF_V4_RENAMES:
            key = key.replace(old, new)
        renamed[f"videomae.{key}" if bare else key] = value
    return renamed


# --- the maps -------------------------------------------------------------------------------
def name_map(source: SourceModel) -> list[Mapping]:
    """Every mapping the checkpoint's model supports, for both our pretrainer and classifier."""
    if source.family == "huggingface":
        return list(_huggingface_map(source))
    return list(_official_map(source))


def _pairs(target: str, source: str, transform: str = "copy", *, norm: bool = False) -> Iterator[Mapping]:
    """weight + bias of one layer (LayerNorm ``weight`` -> ``scale``; Linear/Conv -> ``kernel``)."""
    yield Mapping(f"{target}.{'scale' if norm else 'kernel'}", (f"{source}.weight",), transform)
    yield Mapping(f"{target}.bias", (f"{source}.bias",), "copy")


def _heads_and_decoder(source: SourceModel, head: str, decoder_block) -> Iterator[Mapping]:
    """``fc_norm``, the head (named ``head`` in the source), and the pre-training decoder whose
    block ``i`` is mapped by ``decoder_block(target_prefix, i)``; common to both families."""
    if source.has_fc_norm:
        yield from _pairs("fc_norm", "fc_norm", norm=True)
    if source.num_classes is not None:
        yield from _pairs("head", head, "linear")
    if source.decoder is not None:
        for i in range(source.decoder[1]):
            yield from decoder_block(f"decoder.blocks.{i}", i)
        yield from _decoder_ends()


def _decoder_ends() -> Iterator[Mapping]:
    """The pre-training model's tensors around the decoder blocks (same names in both families)."""
    yield Mapping("encoder_to_decoder.kernel", ("encoder_to_decoder.weight",), "linear")
    yield Mapping("mask_token", ("mask_token",), "copy")
    yield from _pairs("decoder.norm", "decoder.norm", norm=True)
    yield from _pairs("decoder.head", "decoder.head", "linear")


def _official_block(target: str, source: str, layer_scale: bool) -> Iterator[Mapping]:
    yield from _pairs(f"{target}.norm1", f"{source}.norm1", norm=True)
    yield Mapping(f"{target}.attn.qkv.kernel", (f"{source}.attn.qkv.weight",), "linear")
    yield Mapping(f"{target}.attn.q_bias", (f"{source}.attn.q_bias",), "copy")
    yield Mapping(f"{target}.attn.v_bias", (f"{source}.attn.v_bias",), "copy")
    yield from _pairs(f"{target}.attn.proj", f"{source}.attn.proj", "linear")
    yield from _pairs(f"{target}.norm2", f"{source}.norm2", norm=True)
    yield from _pairs(f"{target}.mlp.fc1", f"{source}.mlp.fc1", "linear")
    yield from _pairs(f"{target}.mlp.fc2", f"{source}.mlp.fc2", "linear")
    if layer_scale:
        yield Mapping(f"{target}.gamma_1", (f"{source}.gamma_1",), "copy")
        yield Mapping(f"{target}.gamma_2", (f"{source}.gamma_2",), "copy")


def _official_map(source: SourceModel) -> Iterator[Mapping]:
    prefix = "encoder." if source.family == "official-pretrain" else ""
    yield from _pairs("encoder.patch_embed.proj", f"{prefix}patch_embed.proj", "conv3d")
    for i in range(source.depth):
        yield from _official_block(f"encoder.blocks.{i}", f"{prefix}blocks.{i}", source.layer_scale)
    if not source.has_fc_norm or source.family == "official-pretrain":
        yield from _pairs("encoder.norm", f"{prefix}norm", norm=True)
    yield from _heads_and_decoder(source, "head", lambda target, i: _official_block(
        target, f"decoder.blocks.{i}", source.layer_scale))


def _huggingface_layer(target: str, source: str, qv_bias: bool) -> Iterator[Mapping]:
    attention = f"{source}.attention.attention"
    yield from _pairs(f"{target}.norm1", f"{source}.layernorm_before", norm=True)
    yield Mapping(f"{target}.attn.qkv.kernel",
                  tuple(f"{attention}.{name}.weight" for name in ("query", "key", "value")), "qkv")
    yield Mapping(f"{target}.attn.q_bias", (f"{attention}.query.bias",) if qv_bias else (),
                  "copy" if qv_bias else "zeros")
    yield Mapping(f"{target}.attn.v_bias", (f"{attention}.value.bias",) if qv_bias else (),
                  "copy" if qv_bias else "zeros")
    yield from _pairs(f"{target}.attn.proj", f"{source}.attention.output.dense", "linear")
    yield from _pairs(f"{target}.norm2", f"{source}.layernorm_after", norm=True)
    yield from _pairs(f"{target}.mlp.fc1", f"{source}.intermediate.dense", "linear")
    yield from _pairs(f"{target}.mlp.fc2", f"{source}.output.dense", "linear")


def _huggingface_map(source: SourceModel) -> Iterator[Mapping]:
    hf = source.hf_config or {}
    qv_bias = bool(hf.get("qv_bias", hf.get("qkv_bias", True)))
    yield from _pairs("encoder.patch_embed.proj", "videomae.embeddings.patch_embeddings.projection", "conv3d")
    for i in range(source.depth):
        yield from _huggingface_layer(f"encoder.blocks.{i}", f"videomae.encoder.layer.{i}", qv_bias)
    if not hf.get("use_mean_pooling", source.use_mean_pooling):
        yield from _pairs("encoder.norm", "videomae.layernorm", norm=True)
    yield from _heads_and_decoder(source, "classifier", lambda target, i: _huggingface_layer(
        target, f"decoder.decoder_layers.{i}", qv_bias))
