"""The input pipeline on a tiny stored TFDS dataset whose pixels encode example and frame.

Face frame t of example i is ``50 t + i + 2 x`` (x: column), so frame order, example
identity and the augmentation's crop and flip can all be read back from the output.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from mmae_jax.config.defaults import default_data_config
from mmae_jax.data.normalize import mean_std, normalize, to_model_input
from mmae_jax.data.pipeline import eval_dataset, train_dataset
from mmae_jax.data.render import render_spectrograms
from mmae_jax.data.source import open_dataset
from mmae_jax.data.transform import prepare_clip

NUM, FRAMES, SIZE, BINS, STEPS = 13, 4, 8, 6, 5
CLASSES = ["neutral", "happy", "sad"]


def face_frames(i: int) -> np.ndarray:
    t = np.arange(FRAMES)[:, None, None, None]
    x = np.arange(SIZE)[None, None, :, None]
    return np.broadcast_to(50 * t + i + 2 * x, (FRAMES, SIZE, SIZE, 3)).astype(np.uint8)


def windows(i: int) -> np.ndarray:
    return np.random.default_rng(i).normal(size=(FRAMES, BINS, STEPS)).astype(np.float32)


def speaker_split(clip_ids, speakers):
    """train: speakers 0, 1 (7 clips); validation: 2 (3); test: 3 (3)."""
    return [{0: "train", 1: "train", 2: "validation", 3: "test"}[s] for s in speakers]


def write_tiny_dataset(data_dir) -> None:
    features = tfds.features.FeaturesDict({
        "faces": tfds.features.Video(shape=(FRAMES, SIZE, SIZE, 3)),
        "spectrogram": tfds.features.Tensor(shape=(FRAMES, BINS, STEPS), dtype=np.float32),
        "label": tfds.features.ClassLabel(names=CLASSES),
        "speaker": tfds.features.Scalar(dtype=np.int64),
        "clip_id": tfds.features.Text(),
    })
    examples = [(i, {"faces": face_frames(i), "spectrogram": windows(i), "label": i % 3,
                     "speaker": i % 4, "clip_id": f"clip{i:02d}"}) for i in range(NUM)]
    tfds.dataset_builders.store_as_tfds_dataset(
        name="tiny_emotions", version="1.0.0", features=features, split_datasets={"data": examples},
        config="default", data_dir=str(data_dir))


@pytest.fixture(scope="module")
def data_cfg(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    write_tiny_dataset(data_dir)
    cfg = default_data_config()
    cfg.update(dataset="tiny_emotions", data_dir=str(data_dir), num_frames=FRAMES,
               image_size=SIZE, shuffle_buffer=4)
    return cfg


def clip_number(clip_id: str) -> int:
    return int(clip_id.removeprefix("clip"))


def read_faces(video: np.ndarray, cfg) -> np.ndarray:
    """Pixel values (0..255) of a face_only / ffls output (the pipeline yields uint8)."""
    assert video.dtype == np.uint8
    return video.astype(int)


def test_splits_come_from_the_injected_assignment(data_cfg):
    source = open_dataset(data_cfg, split_fn=speaker_split)
    assert source.class_names == CLASSES
    assert {split: source.num_examples(split) for split in ("train", "validation", "test")} == {
        "train": 7, "validation": 3, "test": 3}
    assert sorted(clip_number(c) for c in source.clip_ids[source.indices("test")]) == [3, 7, 11]


@pytest.mark.parametrize("split", ["train", "validation", "test"])
@pytest.mark.parametrize("global_batch", [2, 4, 6])
def test_eval_reads_every_example_exactly_once_over_two_processes(data_cfg, split, global_batch):
    source = open_dataset(data_cfg, split_fn=speaker_split)
    seen, batch_counts = [], []
    for process in range(2):
        dataset, num_batches = eval_dataset(data_cfg, split, local_batch_size=global_batch // 2,
                                            process_index=process, process_count=2,
                                            split_fn=speaker_split)
        batches = list(dataset.as_numpy_iterator())
        assert len(batches) == num_batches
        batch_counts.append(num_batches)
        for batch in batches:
            assert (batch["index"][~batch["mask"]] == -1).all()
            for index, label, video in zip(batch["index"][batch["mask"]],
                                           batch["label"][batch["mask"]],
                                           batch["video"][batch["mask"]]):
                number = clip_number(source.clip_ids[index])
                assert label == number % 3
                data_cfg_faces = read_faces(video, data_cfg)[FRAMES // 2:]   # fslf: faces last
                np.testing.assert_array_equal(data_cfg_faces, face_frames(number)[::2])
                seen.append(source.clip_ids[index])
    assert batch_counts[0] == batch_counts[1]
    assert sorted(seen) == sorted(source.clip_ids[source.indices(split)])


def test_fslf_pipeline_places_rendered_spectrograms_then_faces(data_cfg):
    dataset, _ = eval_dataset(data_cfg, "test", local_batch_size=3, process_index=0,
                              process_count=1, split_fn=speaker_split)
    batch = next(dataset.as_numpy_iterator())
    source = open_dataset(data_cfg, split_fn=speaker_split)
    for index, video in zip(batch["index"], batch["video"]):
        number = clip_number(source.clip_ids[index])
        rendered = render_spectrograms(tf.constant(windows(number)), SIZE, "viridis").numpy()
        np.testing.assert_array_equal(video[: FRAMES // 2], rendered[::2])
        np.testing.assert_array_equal(read_faces(video, data_cfg)[FRAMES // 2:],
                                      face_frames(number)[::2])
        np.testing.assert_array_equal(video, prepare_clip(face_frames(number), windows(number),
                                                          data_cfg))


def first_batches(cfg, count, start_step=0, process_index=0, process_count=1):
    dataset = train_dataset(cfg, local_batch_size=2, process_index=process_index,
                            process_count=process_count, start_step=start_step,
                            split_fn=speaker_split)
    return list(dataset.take(count).as_numpy_iterator())


def test_same_seed_same_batches_other_seed_other_batches(data_cfg):
    first, again = first_batches(data_cfg, 3), first_batches(data_cfg, 3)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["video"], b["video"])
        np.testing.assert_array_equal(a["label"], b["label"])
    other = data_cfg.copy_and_resolve_references()
    other.seed = 1
    assert any(not np.array_equal(a["video"], b["video"])
               for a, b in zip(first, first_batches(other, 3)))


def test_resume_from_step_continues_the_uninterrupted_stream(data_cfg):
    # 7 train clips, batch 2: step 5 lies in the second epoch, past its first example.
    uninterrupted = first_batches(data_cfg, 9)
    resumed = first_batches(data_cfg, 4, start_step=5)
    for a, b in zip(uninterrupted[5:], resumed):
        np.testing.assert_array_equal(a["video"], b["video"])
        np.testing.assert_array_equal(a["label"], b["label"])


def test_train_epochs_cover_the_host_split_and_reshuffle(data_cfg):
    cfg = data_cfg.copy_and_resolve_references()
    cfg.strategy = "face_only"
    cfg.augment.face_crop = cfg.augment.face_flip = False
    batches = first_batches(cfg, 7)          # 14 clips = 2 epochs of 7
    numbers = [int(f[0, 0, 0, 0]) for b in batches for f in read_faces(b["video"], cfg)]
    assert sorted(numbers[:7]) == sorted(numbers[7:]) == [0, 1, 4, 5, 8, 9, 12]
    assert numbers[:7] != numbers[7:]


def test_face_augmentation_is_shared_by_the_frames_of_a_clip(data_cfg):
    cfg = data_cfg.copy_and_resolve_references()
    cfg.strategy = "face_only"
    faces = [read_faces(f, cfg) for b in first_batches(cfg, 4) for f in b["video"]]
    for clip in faces:
        offsets = clip - clip[:1]              # frame t = frame 0 + 50 t under one crop/flip
        np.testing.assert_allclose(offsets, np.broadcast_to(   # up to a rounding at a .5 tie
            50.0 * np.arange(FRAMES)[:, None, None, None], offsets.shape), atol=1)
    gradients = {np.sign(clip[0, 0, -1, 0] - clip[0, 0, 0, 0]) for clip in faces}
    assert gradients == {-1.0, 1.0}, "flips should occur for some clips, not all"


def test_spectrogram_masking_hides_bands_of_training_windows(data_cfg):
    cfg = data_cfg.copy_and_resolve_references()
    cfg.update(strategy="audio_only", spectrogram_render="gray")
    cfg.augment.update(spec_time_mask=0.5, spec_freq_mask=0.5)
    plain = data_cfg.copy_and_resolve_references()
    plain.update(strategy="audio_only", spectrogram_render="gray")
    masked, unmasked = first_batches(cfg, 2), first_batches(plain, 2)
    assert any(not np.allclose(a["video"], b["video"]) for a, b in zip(masked, unmasked))


def test_missing_dataset_is_reported_with_its_path(tmp_path):
    cfg = default_data_config()
    cfg.update(dataset="no_such_dataset", data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no_such_dataset"):
        open_dataset(cfg, split_fn=speaker_split)


GLOBAL_ARRAYS_SCRIPT = textwrap.dedent("""
    import jax, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec
    from test_pipeline import default_data_config, speaker_split
    from mmae_jax.data.pipeline import make_eval_iterator, make_train_iterator
    from mmae_jax.config.defaults import default_data_config
    assert jax.device_count() == 8
    cfg = default_data_config()
    cfg.update(dataset="tiny_emotions", data_dir={data_dir!r}, num_frames={frames},
               image_size={size}, shuffle_buffer=4)
    mesh = Mesh(np.array(jax.devices()).reshape(4, 2), ("data", "fsdp"))
    sharding = NamedSharding(mesh, PartitionSpec(("data", "fsdp")))
    batch = next(make_train_iterator(cfg, global_batch_size=8, sharding=sharding,
                                     split_fn=speaker_split))
    video = batch["video"]
    assert video.shape == (8, {frames}, {size}, {size}, 3) and video.dtype == np.uint8
    assert batch["label"].shape == (8,) and batch["label"].dtype == np.int32
    assert video.sharding.spec[0] == ("data", "fsdp")
    shards = sorted((s.index[0].start, s.data.shape[0]) for s in video.addressable_shards)
    assert shards == [(i, 1) for i in range(8)], shards
    masks = [np.asarray(b["mask"]) for b in make_eval_iterator(
        cfg, "train", global_batch_size=8, sharding=sharding, split_fn=speaker_split)]
    assert len(masks) == 1 and masks[0].sum() == 7, masks
    print("OK")
""")


@pytest.mark.slow
def test_global_batches_are_sharded_over_eight_devices(data_cfg, tmp_path):
    script = tmp_path / "global_arrays.py"
    script.write_text(GLOBAL_ARRAYS_SCRIPT.format(data_dir=data_cfg.data_dir, frames=FRAMES, size=SIZE))
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8",
           "JAX_PLATFORMS": "cpu",      # the script imports speaker_split from this file
           "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


def test_show_fusion_draws_one_row_per_strategy(data_cfg, tmp_path):
    from matplotlib import image

    from mmae_jax.cli import main
    out = tmp_path / "fusion.png"
    assert main(["show-fusion", "--data-dir", data_cfg.data_dir, "--dataset", "tiny_emotions",
                 "--clip", "clip05", "--out", str(out), "--size", "16"]) == 0
    height, width, _ = image.imread(out).shape
    assert height > 1.5 * width      # 8 strategy rows of 4 frames


def unrounded_model_input(read, windows_, cfg, seed, *, train):
    """The clip without any rounding: float source pixels, fused in float, normalised.

    The pipeline's uint8 clip must match it to half a pixel level (``transform.py``)."""
    from mmae_jax.data.fusion import fuse
    from mmae_jax.data.transform import _clip_seeds, source_images

    every = np.arange(cfg.num_frames)
    faces, spectrograms = source_images(read, windows_, cfg, seed, train=train,
                                        positions=(every, every), dtype=tf.float32)
    if cfg.strategy == "sfas":           # the sum written out here, not taken from fusion.fuse
        f, s = faces.numpy().astype(np.float64), spectrograms.numpy().astype(np.float64)
        fused = {"mean": (f + s) / 2, "clip": np.clip(f + s, 0, 255),
                 "wrap": (np.round(f) + np.round(s)) % 256}[cfg.sfas_mode]
    else:
        fused = fuse(faces, spectrograms, cfg.strategy, rng=_clip_seeds(seed)[3], backend="tf").numpy()
    return normalize(fused / 255.0, cfg.normalization)


ALL_STRATEGIES = ["fslf", "ffls", "ofos", "rfas", "face_only", "audio_only", "cfas", "sfas:mean",
                  "sfas:clip", "sfas:wrap"]


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("normalization", ["imagenet_mean_std0225", "videomae"])
@pytest.mark.parametrize("render,size", [("viridis", SIZE), ("gray", 6)])
def test_uint8_clip_is_the_unrounded_model_input_to_half_a_level(data_cfg, strategy, train,
                                                                  normalization, render, size):
    """uint8 on the host, ``to_model_input`` on the device: within 0.5 / 255 / std of the clip
    computed without rounding (a bilinear resize, crop, gray level or cfas/sfas mean rounded
    once); exact where nothing is resampled or mixed (eval faces of the stored size, sfas wrap)."""
    from mmae_jax.data.transform import clip_to_video

    cfg = data_cfg.copy_and_resolve_references()
    cfg.strategy, _, sfas_mode = strategy.partition(":")
    cfg.update(sfas_mode=sfas_mode or "mean", spectrogram_render=render, image_size=size,
               normalization=normalization)
    faces = tf.constant(face_frames(3))
    args = (lambda indices: tf.gather(faces, indices), tf.constant(windows(3)), cfg,
            tf.constant([5, 1], tf.int64))
    clip = clip_to_video(*args, train=train).numpy()
    assert clip.dtype == np.uint8 and clip.shape == (FRAMES, size, size, 3)
    model_input = np.asarray(to_model_input(clip, normalization))
    reference = unrounded_model_input(*args, train=train)
    std = mean_std(normalization)[1].min()
    difference = np.abs(model_input - reference)
    assert difference.max() <= 0.5 / 255 / std + 1e-5, difference.max()
    if cfg.strategy == "face_only" and not train and size == SIZE or sfas_mode == "wrap":
        np.testing.assert_allclose(model_input, reference, atol=1e-5)


def test_flip_folded_into_the_crop_box_equals_flipping_the_crop():
    from mmae_jax.data import augment

    faces = tf.constant(np.random.default_rng(0).integers(0, 256, (3, 40, 48, 3), np.uint8))
    crop_seed = tf.constant([1, 2], tf.int64)
    for flip_seed in ([0, 1], [0, 2], [0, 3], [0, 4]):
        flip_seed = tf.constant(flip_seed, tf.int64)
        folded = augment.random_resized_crop(faces, crop_seed, 32, (0.5, 1.0), (0.75, 1.33),
                                             flip_seed=flip_seed)
        separate = augment.random_flip(augment.random_resized_crop(
            faces, crop_seed, 32, (0.5, 1.0), (0.75, 1.33)), flip_seed)
        np.testing.assert_allclose(folded.numpy(), separate.numpy(), atol=0.03)   # pixel values
