"""Fusion strategies, spectrogram rendering and normalisation, on frames that encode their index."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf

from mmae_jax.config.choices import FRAME_STRATEGIES, STRATEGIES
from mmae_jax.data.fusion import (frame_order, fuse, fuse_read_frames,
                                   source_frames, to_uint8)
from mmae_jax.data.normalize import denormalize, normalize, to_model_input
from mmae_jax.data.render import colormap_table, render_spectrograms

SIZE = 4
FACE, SPEC = 0, 100   # pixel value of face frame t: FACE + t; spectrogram t: SPEC + t


def encoded_inputs(num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Faces and spectrogram images whose pixel values are source + t."""
    t = np.arange(num_frames, dtype=np.float32)[:, None, None, None]
    shape = (num_frames, SIZE, SIZE, 3)
    return (np.broadcast_to(FACE + t, shape).copy(),
            np.broadcast_to(SPEC + t, shape).copy())


def decode_frames(video) -> list[tuple[str, int]]:
    """(modality, time index) of every frame of a fused video of constant frames."""
    values = np.rint(np.asarray(video)).astype(int)
    assert (values == values[:, :1, :1, :1]).all(), "a frame mixes sources"
    return [("spec", v - SPEC) if v >= SPEC else ("face", v - FACE) for v in values[:, 0, 0, 0]]


def expected_frames(strategy: str, num_frames: int) -> list[tuple[str, int]]:
    even = range(0, num_frames, 2)
    return {
        "fslf": [("spec", t) for t in even] + [("face", t) for t in even],
        "ffls": [("face", t) for t in even] + [("spec", t) for t in even],
        "ofos": [frame for t in even for frame in (("face", t), ("spec", t))],
        "face_only": [("face", t) for t in range(num_frames)],
        "audio_only": [("spec", t) for t in range(num_frames)],
    }[strategy]


def run_backend(backend: str, faces, spectrograms, strategy, rng_seed=0, **kwargs):
    """fuse() under NumPy, a tf.function graph, or jax.jit."""
    if backend == "numpy":
        return fuse(faces, spectrograms, strategy, rng=np.random.default_rng(rng_seed), **kwargs)
    if backend == "tf":
        graph = tf.function(lambda f, s: fuse(f, s, strategy, rng=tf.constant([rng_seed, 7]),
                                              backend="tf", **kwargs))
        return graph(tf.constant(faces), tf.constant(spectrograms)).numpy()
    jitted = jax.jit(lambda f, s: fuse(f, s, strategy, rng=jax.random.key(rng_seed), backend="jax", **kwargs))
    return np.asarray(jitted(jnp.asarray(faces), jnp.asarray(spectrograms)))


BACKENDS = ("numpy", "tf", "jax")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("num_frames", [4, 16])
@pytest.mark.parametrize("strategy", ["fslf", "ffls", "ofos", "face_only", "audio_only"])
def test_every_position_holds_the_expected_source_frame(backend, num_frames, strategy):
    video = run_backend(backend, *encoded_inputs(num_frames), strategy)
    assert video.shape == (num_frames, SIZE, SIZE, 3)
    assert decode_frames(video) == expected_frames(strategy, num_frames)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rfas_is_a_permutation_of_ofos_that_varies_between_examples(backend):
    faces, spectrograms = encoded_inputs(16)
    ofos = sorted(expected_frames("ofos", 16))
    orders = set()
    for seed in range(6):
        frames = decode_frames(run_backend(backend, faces, spectrograms, "rfas", rng_seed=seed))
        assert sorted(frames) == ofos
        orders.add(tuple(frames))
    assert len(orders) >= 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_cfas_stacks_face_above_spectrogram_of_the_same_time(backend):
    faces, spectrograms = encoded_inputs(6)
    video = np.rint(run_backend(backend, faces, spectrograms, "cfas")).astype(int)
    assert video.shape == (6, SIZE, SIZE, 3)
    for t in range(6):
        assert (video[t, : SIZE // 2] == FACE + t).all()
        assert (video[t, SIZE // 2:] == SPEC + t).all()


@pytest.mark.parametrize("size", [6, 5])   # odd: one row pair straddles face and spectrogram
@pytest.mark.parametrize("backend", BACKENDS)
def test_cfas_halves_height_by_averaging_row_pairs(size, backend):
    rng = np.random.default_rng(0)
    faces, spectrograms = 255 * rng.random((2, 2, size, size, 3), dtype=np.float32)
    video = run_backend(backend, faces, spectrograms, "cfas")
    resized = tf.image.resize(np.concatenate([faces, spectrograms], axis=1), [size, size],
                              method="area").numpy()
    np.testing.assert_allclose(video, resized, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode,expected", [
    ("mean", lambda f, s: (f + s) / 2),
    ("clip", lambda f, s: min(f + s, 255)),
    ("wrap", lambda f, s: (f + s) % 256),
])
def test_sfas_adds_face_and_spectrogram_of_the_same_time(backend, mode, expected):
    t = np.arange(4, dtype=np.float32)[:, None, None, None]
    faces = np.broadcast_to(200 + t, (4, SIZE, SIZE, 3)).astype(np.float32)
    spectrograms = np.broadcast_to(10 + 20 * t, (4, SIZE, SIZE, 3)).astype(np.float32)
    video = run_backend(backend, faces, spectrograms, "sfas", sfas_mode=mode)
    for k in range(4):
        np.testing.assert_allclose(video[k], expected(200 + k, 10 + 20 * k), atol=1e-4)


def test_source_frames_lists_what_each_strategy_reads():
    assert [list(x) for x in source_frames("fslf", 8)] == [[0, 2, 4, 6], [0, 2, 4, 6]]
    assert [list(x) for x in source_frames("face_only", 4)] == [[0, 1, 2, 3], []]
    assert [list(x) for x in source_frames("sfas", 3)] == [[0, 1, 2], [0, 1, 2]]


@pytest.mark.parametrize("call,message", [
    (lambda f, s: fuse(f, s, "fsfl"), "data.strategy='fsfl' is not known"),
    (lambda f, s: fuse(f[:3], s[:3], "ofos"), "even number of frames"),
    (lambda f, s: fuse(f, s, "rfas"), "needs `rng`"),
    (lambda f, s: fuse(f, s[:, :2], "sfas"), "must both be"),
    (lambda f, s: fuse(f, s, "sfas", sfas_mode="sum"), "sfas_mode=.sum. is not known"),
    (lambda f, s: frame_order("cfas", 4), "no frame order"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call(*encoded_inputs(4))


def test_a_tensor_without_its_backend_is_refused():
    """backend='numpy' (the default) takes NumPy arrays only: a tf.Tensor or jax.Array passed
    without naming its backend is an error, not a silent conversion."""
    faces, spectrograms = encoded_inputs(4)
    for wrap in (tf.constant, jnp.asarray):
        with pytest.raises(TypeError, match="backend='tf' or backend='jax'"):
            fuse(wrap(faces), wrap(spectrograms), "fslf")
        with pytest.raises(TypeError, match="backend='numpy' takes NumPy arrays"):
            to_uint8(wrap(faces.astype(np.float32)))
    with pytest.raises(ValueError, match="unknown backend"):
        fuse(faces, spectrograms, "fslf", backend="torch")


def test_strategies_cover_the_paper_and_both_single_modalities():
    assert set(STRATEGIES) == {"fslf", "ffls", "ofos", "rfas", "cfas", "sfas", "face_only",
                               "audio_only"}


def test_render_puts_low_frequencies_at_the_bottom_in_viridis():
    windows = np.broadcast_to(np.arange(8, dtype=np.float32)[:, None], (2, 8, 5)) * 3.0 + 7.0
    images = render_spectrograms(tf.constant(windows), 16, "viridis", tf.float32).numpy() / 255
    table = colormap_table("viridis")
    assert images.shape == (2, 16, 16, 3)
    np.testing.assert_allclose(images[:, -1, :], np.broadcast_to(table[0], (2, 16, 3)), atol=1e-6)
    np.testing.assert_allclose(images[:, 0, :], np.broadcast_to(table[255], (2, 16, 3)), atol=1e-6)
    pixels = render_spectrograms(tf.constant(windows), 16, "viridis").numpy()
    assert pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, np.rint(images * 255))


def test_render_normalises_each_window_and_gray_replicates_channels():
    rng = np.random.default_rng(1)
    windows = rng.normal(size=(3, 6, 6)).astype(np.float32) * np.array([1, 100, 1e-3])[:, None, None]
    windows[2] = 4.0   # a constant window renders black
    images = render_spectrograms(tf.constant(windows), 6, "gray", tf.float32).numpy() / 255
    assert (images[..., 0] == images[..., 2]).all()
    pixels = render_spectrograms(tf.constant(windows), 6, "gray").numpy()
    assert pixels.dtype == np.uint8 and np.abs(pixels - images * 255).max() <= 0.5 + 1e-4
    for t in (0, 1):
        assert images[t].min() == pytest.approx(0.0, abs=1e-6)
        assert images[t].max() == pytest.approx(1.0, abs=1e-6)
    assert (images[2] == 0).all()


def test_viridis_table_is_matplotlibs():
    from matplotlib import colormaps
    table = colormap_table("viridis")
    assert table.shape == (256, 3)
    np.testing.assert_allclose(table[128], colormaps["viridis"](128)[:3], atol=1e-6)


@pytest.mark.parametrize("name,mean,std", [("imagenet_mean_std0225", (0.485, 0.456, 0.406), (0.225,) * 3),
                                           ("videomae", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
def test_normalisations(name, mean, std):
    images = np.random.default_rng(2).random((2, 3, 3, 3)).astype(np.float32)
    out = normalize(images, name)
    np.testing.assert_allclose(out, (images - np.array(mean)) / np.array(std), atol=1e-5)
    np.testing.assert_allclose(denormalize(out, name), images, atol=1e-6)
    with pytest.raises(ValueError, match="unknown normalization"):
        normalize(images, "imagenet21k")


@pytest.mark.parametrize("name", ["imagenet_mean_std0225", "videomae"])
def test_model_input_of_uint8_pixels_is_the_normalised_image(name):
    pixels = np.random.default_rng(3).integers(0, 256, (2, 3, 3, 3), dtype=np.uint8)
    expected = normalize(pixels.astype(np.float64) / 255, name)
    host = to_model_input(pixels, name)
    device = np.asarray(jax.jit(lambda p: to_model_input(p, name))(jnp.asarray(pixels)))
    assert host.dtype == device.dtype == np.float32
    np.testing.assert_allclose(host, expected, atol=2e-6)
    np.testing.assert_allclose(device, host, atol=1e-6)      # XLA may fuse the multiply-add


@pytest.mark.parametrize("backend", BACKENDS)
def test_to_uint8_rounds_half_to_even_and_clips(backend):
    values = np.array([-3.0, 0.4, 0.5, 1.5, 2.5, 254.5, 254.6, 300.0], np.float32)
    wrap = {"numpy": np.asarray, "tf": tf.constant, "jax": jnp.asarray}[backend]
    got = np.asarray(to_uint8(wrap(values), backend))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, [0, 0, 0, 2, 2, 254, 255, 255])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strategy", FRAME_STRATEGIES)
def test_arranging_only_the_frames_read_equals_fuse(backend, strategy):
    faces, spectrograms = encoded_inputs(16)
    face_indices, spectrogram_indices = source_frames(strategy, 16)
    read = faces[face_indices], spectrograms[spectrogram_indices]
    for seed in range(3):
        if backend == "numpy":
            got = fuse_read_frames(*read, strategy, rng=np.random.default_rng(seed))
        elif backend == "tf":
            got = fuse_read_frames(*map(tf.constant, read), strategy, rng=tf.constant([seed, 7]), backend="tf").numpy()
        else:
            got = np.asarray(jax.jit(lambda f, s: fuse_read_frames(
                f, s, strategy, rng=jax.random.key(seed), backend="jax"))(*map(jnp.asarray, read)))
        np.testing.assert_array_equal(got, run_backend(backend, faces, spectrograms, strategy, seed))
