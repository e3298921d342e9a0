"""The original notebook's load-time choices: which stored frames and windows each strategy reads
under notebook_timing and the per-clip rfas order (mmae_jax/data/clip_layout.py), the matshow-like
render (mmae_jax/data/render.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf

from mmae_jax.data import pipeline, render
from mmae_jax.config.defaults import default_data_config
from mmae_jax.data.render import colormap_table, render_spectrograms
from mmae_jax.data.transform import prepare_clip

S = 64
WIDTH = 32
FACE_STEP = 10  # stored face k is all grey level 10 k


def _paper_cfg(**fields):
    cfg = default_data_config()
    cfg.update({**dict(frame_sampling="notebook_timing", spectrogram_render="matshow", image_size=S), **fields})
    return cfg


def _coded_clip():
    """Faces [16] coded by grey level; window k of the 16-set has its one hot column at k,
    window k of the 8-set at 16 + k (so the picture tells which window it shows)."""
    faces = np.broadcast_to((FACE_STEP * np.arange(16)).astype(np.uint8)[:, None, None, None], (16, S, S, 3)).copy()
    full = np.zeros((16, 13, WIDTH), np.float32)
    full[np.arange(16), :, np.arange(16)] = 1.0
    half = np.zeros((8, 13, WIDTH), np.float32)
    half[np.arange(8), :, 16 + np.arange(8)] = 1.0
    return faces, full, half


def _is_spectrogram(image: np.ndarray) -> bool:
    return bool((image[0, 0] == 255).all() and (image[S // 2] != 255).any())


def _window_shown(image: np.ndarray) -> int:
    """The stored column of the hot cell in a paper-rendered window."""
    top, bottom, left, right = render.plot_box(S)
    row = image[(top + bottom) // 2, left:right]
    hot = np.flatnonzero((row == np.round(colormap_table()[255] * 255)).all(axis=1))
    return int(render.nearest_indices(WIDTH, right - left)[hot].mean())


@pytest.mark.parametrize("strategy,faces_shown,windows_shown", [
    ("fslf", [0, 2, 4, 6, 8, 10, 12, 14], [16 + k for k in range(8)]),
    ("ffls", [0, 2, 4, 6, 8, 10, 12, 14], [16 + k for k in range(8)]),
    ("ofos", [0, 2, 4, 6, 8, 10, 12, 14], [16 + k for k in range(8)]),
    ("face_only", list(range(16)), []),
    ("audio_only", [], list(range(16))),
])
def test_each_strategy_reads_the_notebooks_frames_and_windows(strategy, faces_shown, windows_shown):
    faces, full, half = _coded_clip()
    video = prepare_clip(faces, full, _paper_cfg(), strategy=strategy, spectrogram_half=half)
    shown_faces = [int(frame[0, 0, 0]) // FACE_STEP for frame in video if not _is_spectrogram(frame)]
    shown_windows = [_window_shown(frame) for frame in video if _is_spectrogram(frame)]
    assert shown_faces == faces_shown
    assert shown_windows == windows_shown


def test_cfas_pairs_face_k_with_window_k_of_the_sixteen():
    faces, full, half = _coded_clip()
    video = prepare_clip(faces, full, _paper_cfg(), strategy="cfas", spectrogram_half=half)
    assert [int(frame[2, 2, 0]) // FACE_STEP for frame in video] == list(range(16))
    # the lower half is the spectrogram halved in height: its hot column still tells the window
    top, bottom, left, right = render.plot_box(S)
    for k, frame in enumerate(video):
        row = frame[S // 2 + (top + bottom) // 4, left:right]
        hot = np.flatnonzero((row == np.round(colormap_table()[255] * 255)).all(axis=1))
        assert int(render.nearest_indices(WIDTH, right - left)[hot].mean()) == k


@pytest.mark.parametrize("strategy", ["fslf", "ofos", "cfas", "audio_only"])
def test_sources_fused_later_equal_the_host_clip(strategy):
    """Prediction renders all T sources and fuses on the device: the same clip as training's."""
    from mmae_jax.data.fusion import fuse, to_uint8
    from mmae_jax.data.transform import prepare_sources

    faces, full, half = _coded_clip()
    cfg = _paper_cfg(strategy=strategy)
    face_images, spectrogram_images = prepare_sources(faces, full, cfg, spectrogram_half=half)
    fused = to_uint8(fuse(face_images, spectrogram_images, strategy))
    np.testing.assert_array_equal(fused, prepare_clip(faces, full, cfg, spectrogram_half=half))


def test_notebook_timing_without_the_half_windows_names_the_build():
    faces, full, half = _coded_clip()
    with pytest.raises(ValueError, match="--config notebook_mfcc"):
        prepare_clip(faces, full, _paper_cfg(), strategy="fslf")
    with pytest.raises(ValueError, match="--config notebook_mfcc"):
        prepare_clip(faces, full, _paper_cfg(), strategy="cfas")
    with pytest.raises(ValueError, match="frame_sampling"):
        prepare_clip(faces, full, _paper_cfg(frame_sampling="first"), strategy="cfas", spectrogram_half=half)


def test_a_paper_build_read_with_uniform_sampling_is_refused():
    faces, full, half = _coded_clip()
    with pytest.raises(ValueError, match="frame_sampling='notebook_timing'"):
        prepare_clip(faces, full, _paper_cfg(frame_sampling="uniform"), strategy="fslf", spectrogram_half=half)


# ----------------------------------------------------------------------------- render

def _matplotlib_picture(window: np.ndarray, size: int) -> np.ndarray:
    """The notebook's drawing of one MFCC window [F, W] (saved losslessly here), shrunk to size."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    figure, axes = plt.subplots(nrows=1, ncols=1, figsize=(4, 4))
    axes.matshow(window, interpolation="nearest", aspect="auto", origin="lower")
    plt.axis("off")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return np.asarray(Image.open(buffer).convert("RGB").resize((size, size)))


def test_paper_render_matches_matplotlibs_picture_and_margins():
    rng = np.random.default_rng(0)
    window = np.cumsum(rng.normal(size=(13, 310)), axis=1).astype(np.float32)  # smooth-ish in time
    ours = render_spectrograms(tf.constant(window[None]), 224, "matshow").numpy()[0].astype(int)
    theirs = _matplotlib_picture(window, 224).astype(int)
    top, bottom, left, right = render.plot_box(224)
    assert (top, bottom, left, right) == (27, 199, 28, 202)
    white = np.ones((224, 224), bool)
    white[top:bottom, left:right] = False
    assert (ours[white] == 255).all()
    inside = np.argwhere((theirs < 245).any(axis=-1))
    assert abs(inside[:, 0].min() - top) <= 1 and abs(inside[:, 0].max() + 1 - bottom) <= 1
    assert abs(inside[:, 1].min() - left) <= 1 and abs(inside[:, 1].max() + 1 - right) <= 1
    # the same picture up to the resampling blur along cell edges
    assert np.abs(ours - theirs).mean() < 4           # measured 1.5 (of 255)
    assert np.median(np.abs(ours - theirs)) <= 1


def test_paper_render_colours_the_lowest_row_at_the_bottom():
    window = np.zeros((1, 13, 5), np.float32)
    window[0, 0] = 1.0                       # coefficient 0 hot
    image = render_spectrograms(tf.constant(window), 224, "matshow").numpy()[0]
    top, bottom, left, right = render.plot_box(224)
    yellow, purple = np.round(colormap_table()[[255, 0]] * 255)
    np.testing.assert_array_equal(image[bottom - 1, left + 3], yellow)
    np.testing.assert_array_equal(image[top, left + 3], purple)


# ----------------------------------------------------------------------------- rfas order

class _Source:
    """What pipeline._to_example reads from a stored dataset, for examples held in memory."""

    def decode_faces(self, example, indices):
        return tf.gather(example["faces"], indices)

    def decode_windows(self, example):
        return example["spectrogram"]


def _rfas_order(cfg, clip_id: str, position: int) -> list[int]:
    faces, full, half = _coded_clip()
    example = {"faces": tf.constant(faces), "spectrogram": tf.constant(full), "spectrogram_half": tf.constant(half),
               "clip_id": tf.constant(clip_id), "label": tf.constant(0)}
    video = pipeline._to_example(_Source(), cfg, train=True)(tf.constant(position, tf.int64),
                                                             (tf.constant(0, tf.int64), example))["video"].numpy()
    return [100 + _window_shown(f) if _is_spectrogram(f) else int(f[0, 0, 0]) // FACE_STEP for f in video]


def test_per_clip_rfas_order_is_fixed_across_epochs_and_differs_between_clips():
    cfg = _paper_cfg(strategy="rfas", rfas_order="per_clip")
    cfg.augment.update(face_crop=False, face_flip=False)
    first = _rfas_order(cfg, "01-01-03-01-01-01-01", position=0)
    assert sorted(first) == sorted([0, 2, 4, 6, 8, 10, 12, 14] + [116 + k for k in range(8)])
    assert _rfas_order(cfg, "01-01-03-01-01-01-01", position=977) == first   # a later epoch
    others = {tuple(_rfas_order(cfg, f"clip-{k}", position=0)) for k in range(3)}
    assert len(others | {tuple(first)}) == 4
    cfg.rfas_order = "per_step"
    assert _rfas_order(cfg, "01-01-03-01-01-01-01", position=977) != _rfas_order(cfg, "01-01-03-01-01-01-01", 0)
