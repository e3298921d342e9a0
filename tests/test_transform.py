"""The clip's chain of ops (mmae_jax/data/transform.py): built once from the data config, the
config checked there, only the frames a strategy shows decoded."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mmae_jax.config.defaults import default_data_config
from mmae_jax.data.transform import Decoder, clip_fn, sources_fn

STORED, FRAMES, SIZE = 8, 4, 6


def _cfg(**fields):
    cfg = default_data_config()
    cfg.update({"num_frames": FRAMES, "image_size": SIZE, **fields})
    return cfg


def _example():
    rng = np.random.default_rng(0)
    return {"faces": tf.constant(rng.integers(0, 256, (STORED, SIZE, SIZE, 3)), tf.uint8),
            "spectrogram": tf.constant(rng.normal(size=(STORED, 5, 7)), tf.float32),
            "seed": tf.constant([1, 2], tf.int64)}


def _recording_decoder(asked: list) -> Decoder:
    def faces(example, indices):
        asked.append(np.asarray(indices).tolist())
        return tf.gather(example["faces"], indices)
    return Decoder(faces, lambda example: example["spectrogram"])


def _unused_decoder() -> Decoder:
    def fail(*_):
        raise AssertionError("the decoder was called while the chain was built")
    return Decoder(fail, fail)


@pytest.mark.parametrize("field,value,strategy", [
    ("strategy", "sideways", "fslf"), ("sfas_mode", "sum", "sfas"), ("cfas_resize", "lanczos", "cfas"),
    ("spectrogram_render", "magma", "fslf"), ("frame_sampling", "first", "fslf"),
    ("rfas_order", "per_epoch", "rfas"), ("num_frames", 3, "ofos"),
])
def test_the_config_is_checked_when_the_chain_is_built(field, value, strategy):
    cfg = _cfg(strategy=strategy)
    cfg[field] = value
    for build in (lambda: clip_fn(cfg, _unused_decoder(), train=True),
                  lambda: sources_fn(cfg, _unused_decoder(), train=False)):
        with pytest.raises(ValueError, match=field if field != "num_frames" else "even data.num_frames"):
            build()


def test_the_chain_keeps_the_config_it_was_built_with():
    cfg = _cfg(strategy="fslf", spectrogram_render="gray")
    chain = clip_fn(cfg, _recording_decoder([]), train=False)
    expected = chain(_example())["video"].numpy()
    cfg.update(strategy="cfas", spectrogram_render="viridis", image_size=2 * SIZE)
    np.testing.assert_array_equal(chain(_example())["video"].numpy(), expected)
    assert expected.shape == (FRAMES, SIZE, SIZE, 3)


@pytest.mark.parametrize("strategy,decoded", [
    ("fslf", [[1, 5]]),          # T = 4 of 8 stored: frames 1, 3, 5, 7; fslf shows faces 0 and 2
    ("face_only", [[1, 3, 5, 7]]),
    ("cfas", [[1, 3, 5, 7]]),
    ("audio_only", []),          # no face is decoded at all
])
def test_only_the_face_frames_the_strategy_shows_are_decoded(strategy, decoded):
    asked = []
    video = clip_fn(_cfg(strategy=strategy), _recording_decoder(asked), train=True)(_example())["video"]
    assert asked == decoded
    assert video.dtype == tf.uint8 and video.shape == (FRAMES, SIZE, SIZE, 3)


def test_a_build_with_fewer_frames_than_the_config_reads_is_refused_at_the_first_example():
    chain = clip_fn(_cfg(num_frames=2 * STORED), _recording_decoder([]), train=False)
    with pytest.raises(ValueError, match=f"clips hold {STORED} frames but num_frames={2 * STORED}"):
        chain(_example())
