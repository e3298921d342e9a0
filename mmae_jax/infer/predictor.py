"""Prediction on raw videos with a trained model directory.

One file goes through the preprocessing of the checkpoint's training data config: the media
code of its dataset's builder config (``media``), then the evaluation-mode input transform
(frame subsampling, face images and rendered spectrograms, ``transform.prepare_sources``),
then, in JAX so that the attribution can differentiate through them, the fusion strategy, the
rounding to whole pixel values and ``normalize.to_model_input``, the functions the training
pipeline and steps use. For every strategy but rfas the model input equals the training
pipeline's evaluation input; rfas draws its random frame order from the predictor's seed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Sequence

import jax
import ml_collections
import numpy as np
import tqdm
from flax import nnx

from mmae_jax.data_prep.media.clip import ClipArrays
from mmae_jax.data_prep.media.errors import BadInputError
from mmae_jax.config.defaults import default_data_config
from mmae_jax.config.names import canonical_data
from mmae_jax.data.transform import prepare_sources
from mmae_jax.infer.attribution import Attribution, FusionSpec, attribution_from_pass, relevance_pass
from mmae_jax.infer.media import ClipReader, clip_spec_for
from mmae_jax.model import io as model_io
from mmae_jax.model.location import ModelChoice, resolve_checkpoint



@dataclasses.dataclass(frozen=True)
class Prediction:
    """One file's result. ``probabilities``: class -> p, most likely first (sums to 1).

    ``frames``: the fused clip ``[T, S, S, 3]`` the model read, as uint8 pixels (for pictures);
    ``attribution``: None when it was not asked for; ``face_found``: False when no frame had a
    face, so the face images are centre crops of the frames (the console warns).
    """

    file: str
    probabilities: dict[str, float]
    prediction: str
    frames: np.ndarray
    attribution: Attribution | None
    face_found: bool = True

    def to_json(self) -> dict:
        record = dict(file=self.file, probabilities=self.probabilities, prediction=self.prediction,
                      face_found=self.face_found)
        return record | ({"attribution": self.attribution.shares()} if self.attribution else {})


@dataclasses.dataclass(frozen=True)
class FileError:
    """A file that gave no prediction: ``kind`` is data_prep's tag (corrupt, no_audio, too_short, ...)."""

    file: str
    kind: str
    message: str


def modality_images(faces: np.ndarray, spectrogram: np.ndarray, data_cfg: ml_collections.ConfigDict,
                    spectrogram_half: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Face images and rendered spectrograms ``[T, S, S, 3]`` (float pixel values 0..255) of one
    stored clip (``faces`` uint8 [T0, S0, S0, 3], ``spectrogram`` [T0, F, W], and a 'spanning' layout
    build's ``spectrogram_half`` [T0 / 2, F, W]): the evaluation-mode input transform of
    training (frame subsampling, resizing, rendering), before fusion and rounding."""
    return prepare_sources(faces, spectrogram, data_cfg, spectrogram_half)


class Predictor:
    """A trained classifier with the preprocessing of its training data.

    Args:
      checkpoint: a model folder written by training, or a training run folder
        (mmae_jax/model/location.py), or the ``ModelChoice`` of one.
      model: with a run folder, ``best``, ``final`` or a saved step (default: best when the run
        has one, else final).
      builder_config: "dataset/config" or "config" to read the media with another builder
        config than the one the checkpoint's data config names.
      seed: the rfas frame order.
    """

    def __init__(self, checkpoint: str | Path | ModelChoice, *, model: str | None = None, builder_config: str = "",
                 seed: int = 0):
        choice = checkpoint if isinstance(checkpoint, ModelChoice) else resolve_checkpoint(checkpoint, model)
        self.directory = choice.directory
        _, kind, metadata = choice.read_config()
        if kind != "classifier" or "class_names" not in metadata or "data" not in metadata:
            raise ValueError(f"{choice.label} is not a trained classifier (kind {kind!r}, metadata without "
                             f"class_names / data): predict needs a model exported by training")
        # The backbone is made differentiable so that a linear probe's attribution is not zero.
        model, cfg, _ = choice.load(overrides=dict(dtype="float32", freeze_backbone=False))
        model_io.check_training_metadata(self.directory, cfg, metadata)
        model.eval()
        self.class_names: list[str] = list(metadata["class_names"])
        # A field the model directory predates keeps its default; old spellings are read with a notice.
        self.data_cfg = default_data_config()
        self.data_cfg.update(canonical_data(ml_collections.ConfigDict(metadata["data"])).to_dict())
        self.fusion = FusionSpec(self.data_cfg.strategy, self.data_cfg.sfas_mode, self.data_cfg.normalization,
                                 self.data_cfg.cfas_resize)
        self.reader = ClipReader(clip_spec_for(self.data_cfg, builder_config))
        if self.reader.spec.num_frames < self.data_cfg.num_frames:
            raise ValueError(f"builder config gives {self.reader.spec.num_frames} frames per clip, the model "
                             f"reads {self.data_cfg.num_frames}")
        self.key = jax.random.key(seed) if self.fusion.strategy == "rfas" else None
        graphdef, self._state = nnx.split(model)

        def logit_fn(state, video):
            return nnx.merge(graphdef, state)(video[None])[0]

        fusion = self.fusion
        self._forward = jax.jit(lambda state, f, s, key: dict(
            logits=logit_fn(state, fusion.model_input(f, s, key)), frames=fusion.fused_video(f, s, key)))
        self._explain = jax.jit(lambda state, f, s, key: relevance_pass(
            lambda video: logit_fn(state, video), fusion, f, s, key))

    def predict_clip(self, clip: ClipArrays, name: str, *, attribution: bool = True) -> Prediction:
        """Prediction (and attribution) of one clip already read into stored-clip arrays."""
        faces, spectrograms = modality_images(clip.faces, clip.spectrogram, self.data_cfg, clip.spectrogram_half)
        run = self._explain if attribution else self._forward
        outputs = run(self._state, faces, spectrograms, self.key)
        probabilities = np.asarray(jax.nn.softmax(outputs["logits"]), np.float64)
        ranked = np.argsort(-probabilities, kind="stable")
        return Prediction(
            file=name,
            probabilities={self.class_names[i]: float(probabilities[i]) for i in ranked},
            prediction=self.class_names[ranked[0]],
            frames=np.asarray(outputs["frames"]).astype(np.uint8),
            attribution=attribution_from_pass(outputs, self.fusion, self.key) if attribution else None,
            face_found=bool(clip.face_found))

    def predict_file(self, video: str | Path, audio: str | Path | None = None, *,
                     attribution: bool = True) -> Prediction | FileError:
        """One file (its own audio track, or ``audio``); bad input gives a FileError, not an exception."""
        try:
            clip = self.reader(video, audio)
        except BadInputError as error:
            return FileError(str(video), error.kind, error.reason)
        except OSError as error:
            return FileError(str(video), "unreadable", str(error))
        return self.predict_clip(clip, str(video), attribution=attribution)

    def predict_files(self, videos: Sequence[str | Path], audio: str | Path | None = None, *,
                      attribution: bool = True, progress: bool | None = None
                      ) -> Iterable[Prediction | FileError]:
        """Yields one result per file in order; a progress bar shows for more than one file
        (``progress`` forces it on or off)."""
        if audio is not None and len(videos) != 1:
            raise ValueError(f"a separate audio file goes with exactly one video, got {len(videos)} videos")
        show = len(videos) > 1 if progress is None else progress
        for video in tqdm.tqdm(videos, desc="predict", unit="file", disable=not show, dynamic_ncols=True):
            yield self.predict_file(video, audio, attribution=attribution)
