"""``mmae-jax predict``: raw files made here, a tiny model trained here, per-file errors, and a
modality attribution that follows what the model actually reads."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from media_factory import drawn_face_frames, tone, write_video, write_wav
from stored_dataset import make_examples, tiny_config

pytestmark = pytest.mark.xdist_group("predict")

# The tiny model's dataset ('synthetic' of tests/stored_dataset.py) is not built by a data_prep
# builder, so the raw files are read with a RAVDESS config (whole frames: no face detector).
MEDIA_CONFIG = "ravdess/whole_frame"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A workdir holding ``final_model/`` as training exports it: a linear probe (the paper's
    setting: the backbone's gradient is stopped in training) of the tiny test config. Its
    weights are random (a trained model goes through predict in the notebook test)."""
    from mmae_jax.model.io import build_model, save_model
    from mmae_jax.train.steps import model_config

    config = tiny_config("unused", mode="linear_probe")
    cfg = model_config(config, num_classes=4).replace(head_init_scale=1.0)
    workdir = tmp_path_factory.mktemp("run")
    metadata = dict(class_names=[f"class{i}" for i in range(4)], data=config.data.to_dict(), step=0,
                    source="training")
    save_model(workdir / "final_model", build_model(cfg, "classifier"), cfg, kind="classifier", metadata=metadata)
    return workdir


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A folder of clips: two good ones, one without audio, one too short, one corrupt; and a wav."""
    folder = tmp_path_factory.mktemp("media")
    write_video(folder / "happy.mp4", drawn_face_frames(40, seed=1), audio=tone(300, 1.4))
    write_video(folder / "sub" / "sad.avi", drawn_face_frames(40, seed=2), audio=tone(180, 1.4))
    write_video(folder / "silent.mp4", drawn_face_frames(40, seed=3))
    write_video(folder / "short.mp4", drawn_face_frames(4), audio=tone(220, 0.15))
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    write_wav(tmp_path_factory.mktemp("wav") / "voice.wav", tone(250, 1.4, sample_rate=16000))
    return folder


def _shares_sum_to_one(attribution):
    assert 0.0 <= attribution["face"] <= 1.0 and 0.0 <= attribution["spectrogram"] <= 1.0
    assert attribution["face"] + attribution["spectrogram"] == pytest.approx(1.0, abs=1e-6)


def test_predict_folder_reports_bad_files_and_predicts_the_rest(workdir, media, tmp_path, capsys):
    from mmae_jax.cli import main

    explain = tmp_path / "explain.png"
    code = main(["predict", "--checkpoint", str(workdir), "--builder-config", MEDIA_CONFIG, "--json",
                 "--explain", str(explain), str(media)])
    captured = capsys.readouterr()
    assert code == 1                                   # some files failed
    records = json.loads(captured.out)
    assert sorted(r["file"] for r in records) == sorted([str(media / "happy.mp4"), str(media / "sub" / "sad.avi")])
    for record in records:
        assert set(record) == {"file", "probabilities", "prediction", "attribution", "face_found"}
        assert record["face_found"] is True                 # whole frames: the frame is the face image
        assert set(record["probabilities"]) == {f"class{i}" for i in range(4)}
        assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert record["prediction"] == max(record["probabilities"], key=record["probabilities"].get)
        _shares_sum_to_one(record["attribution"])
    for name, kind in [("silent.mp4", "no_audio"), ("short.mp4", "too_short"), ("broken.mp4", "corrupt")]:
        assert f"error: {media / name}: {kind}:" in captured.err
    assert "predicted 2 of 5 files; 3 failed (corrupt 1, no_audio 1, too_short 1)" in captured.err
    for stem in ("happy", "sad"):
        assert (tmp_path / f"explain-{stem}.png").stat().st_size > 10_000


def test_separate_audio_file_makes_a_silent_video_usable(workdir, media, capsys):
    from mmae_jax.cli import main

    wav = next(media.parent.glob("wav*/voice.wav"))
    code = main(["predict", "--checkpoint", str(workdir / "final_model"), "--builder-config", MEDIA_CONFIG,
                 "--audio", str(wav), str(media / "silent.mp4")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    first_line, *class_lines = captured.out.strip().splitlines()
    assert first_line.startswith(f"{media / 'silent.mp4'}: class") and "[relevance: face " in first_line
    probabilities = [float(line.split()[-1].rstrip("%")) / 100 for line in class_lines]
    assert len(probabilities) == 4 and sum(probabilities) == pytest.approx(1.0, abs=2e-3)
    assert probabilities == sorted(probabilities, reverse=True)


def test_a_clip_without_a_face_is_reported(workdir, tmp_path, capsys):
    from mmae_jax.cli import main

    grey = np.full((30, 64, 64, 3), 128, np.uint8)
    write_video(tmp_path / "grey.mp4", grey, audio=tone(220, 1.4))
    code = main(["predict", "--checkpoint", str(workdir), "--builder-config", "ravdess/logmel", "--json",
                 str(tmp_path / "grey.mp4")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)[0]["face_found"] is False
    assert f"warning: {tmp_path / 'grey.mp4'}: no face found in any frame" in captured.err


def test_predictor_input_is_the_training_pipelines_evaluation_input(workdir):
    """For every strategy without a random order, predict feeds the model exactly what the
    tf.data evaluation pipeline would feed it for the same stored clip."""
    import ml_collections

    from mmae_jax.data.normalize import to_model_input
    from mmae_jax.data.transform import prepare_clip
    from mmae_jax.infer.attribution import FusionSpec
    from mmae_jax.infer.predictor import modality_images
    from mmae_jax.model.io import read_config

    data_cfg = ml_collections.ConfigDict(read_config(workdir / "final_model")[2]["data"])
    example = make_examples(1, 1, 4, frames=8, size=40, bins=8, width=6)[0]
    faces, spectrograms = modality_images(example["faces"], example["spectrogram"], data_cfg)
    for strategy, sfas_mode in [("fslf", "mean"), ("ofos", "mean"), ("cfas", "mean"), ("sfas", "mean"),
                                ("sfas", "wrap"), ("face_only", "mean")]:
        data_cfg.update(strategy=strategy, sfas_mode=sfas_mode)
        expected = to_model_input(prepare_clip(example["faces"], example["spectrogram"], data_cfg),
                                  data_cfg.normalization)
        got = FusionSpec(strategy, sfas_mode, data_cfg.normalization).model_input(
            jnp.asarray(faces), jnp.asarray(spectrograms), None)
        np.testing.assert_allclose(np.asarray(got), expected, atol=2e-5, err_msg=f"{strategy}/{sfas_mode}")


def test_checkpoint_errors_are_clear(tmp_path):
    from mmae_jax.errors import ConfigError
    from mmae_jax.infer.predictor import Predictor

    with pytest.raises(ConfigError, match="--checkpoint .* is neither a model folder .* nor a training run folder"):
        Predictor(tmp_path)
    (tmp_path / "config.json").write_text('{"data": {}}')    # a run that has saved nothing yet
    with pytest.raises(ConfigError, match="is a training run folder without a saved model yet"):
        Predictor(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        Predictor(tmp_path / "missing")


def test_a_run_folder_gives_its_best_model_unless_told(workdir, tmp_path):
    """predict reads what forward and export read: a run's best_model by default, --model picks."""
    import shutil

    from mmae_jax.infer.predictor import Predictor

    run = tmp_path / "run"
    shutil.copytree(workdir / "final_model", run / "final_model")
    assert Predictor(run).directory == run / "final_model"           # no best_model: the final one
    shutil.copytree(workdir / "final_model", run / "best_model")
    assert Predictor(run).directory == run / "best_model"
    assert Predictor(run, model="final").directory == run / "final_model"


def test_builder_config_lookup_follows_the_data_config():
    from mmae_jax.infer.media import clip_spec_for

    paper = clip_spec_for({"dataset": "ravdess", "builder_config": "notebook_mfcc"})
    assert (paper.framing, paper.features, paper.peak_normalize) == ("whole_frame", "mfcc", True)
    default = clip_spec_for({"dataset": "ravdess", "builder_config": ""})
    assert (default.framing, default.features) == ("face", "logmel")
    assert clip_spec_for({"dataset": "nowhere", "builder_config": ""}, "ravdess/mfcc_paper").features == "mfcc"
    with pytest.raises(ValueError, match="no builder config 'nope'"):
        clip_spec_for({"dataset": "ravdess", "builder_config": "nope"})
    with pytest.raises(ValueError, match="no data_prep builder for dataset 'nowhere'"):
        clip_spec_for({"dataset": "nowhere", "builder_config": ""})


# ----------------------------------------------------------------------------- attribution probes
# Linear probes that read a known part of the fused clip: the attribution must put all the
# relevance on the modality that part comes from, whatever the strategy's layout.

T, S = 4, 8


def _images(seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(25, 255, (T, S, S, 3)).astype(np.float32)      # pixel values


def _probe(region):
    """logit 0 = weighted sum of the fused pixels in ``region`` (a numpy index), logit 1 below it."""
    weights = np.zeros((T, S, S, 3), np.float32)
    weights[region] = np.random.default_rng(7).normal(size=weights[region].shape)

    def logit_fn(video):
        score = jnp.sum(video * weights)
        return jnp.stack([score, score - 1.0])

    return logit_fn


def _attribution(strategy, region, faces=None, sfas_mode="mean", key=None):
    from mmae_jax.infer.attribution import FusionSpec, attribution_from_pass, relevance_pass

    faces = _images(0) if faces is None else faces
    fusion = FusionSpec(strategy, sfas_mode)
    maps = relevance_pass(_probe(region), fusion, jnp.asarray(faces, jnp.float32),
                          jnp.asarray(_images(1), jnp.float32), key)
    return attribution_from_pass(maps, fusion, key)


@pytest.mark.parametrize("strategy, first_half_is", [("fslf", "spectrogram"), ("ffls", "face")])
def test_attribution_follows_the_frames_a_probe_reads(strategy, first_half_is):
    first = _attribution(strategy, np.s_[: T // 2])
    second = _attribution(strategy, np.s_[T // 2:])
    other = {"face": "spectrogram", "spectrogram": "face"}[first_half_is]
    assert getattr(first, first_half_is) == pytest.approx(1.0) and getattr(first, other) == pytest.approx(0.0)
    assert getattr(second, other) == pytest.approx(1.0)
    assert first.frame_sources[0].startswith(first_half_is)
    assert np.all(first.frame_relevance[T // 2:] == 0) and np.all(first.frame_relevance[: T // 2].sum((1, 2)) > 0)


def test_rfas_attribution_agrees_with_the_drawn_order():
    import jax

    for seed in range(3):
        key = jax.random.key(seed)
        attribution = _attribution("rfas", np.s_[:1], key=key)
        modality = attribution.frame_sources[0].split()[0]
        assert getattr(attribution, modality) == pytest.approx(1.0)
    orders = {_attribution("rfas", np.s_[:1], key=jax.random.key(seed)).frame_sources for seed in range(6)}
    assert len(orders) > 1                                           # the order really is drawn


def test_cfas_splits_by_image_region():
    top = _attribution("cfas", np.s_[:, : S // 2])
    bottom = _attribution("cfas", np.s_[:, S // 2:])
    assert top.face == pytest.approx(1.0) and bottom.spectrogram == pytest.approx(1.0)
    mixed = _attribution("cfas", np.s_[:])
    assert 0.2 < mixed.face < 0.8 and mixed.face + mixed.spectrogram == pytest.approx(1.0)


def test_sfas_splits_by_summand_and_wrap_is_not_separable():
    black = np.zeros((T, S, S, 3), np.float32)
    assert _attribution("sfas", np.s_[:], faces=black).spectrogram == pytest.approx(1.0)
    same = _attribution("sfas", np.s_[:], faces=_images(1))
    assert same.face == pytest.approx(0.5) and same.spectrogram == pytest.approx(0.5)
    wrap = _attribution("sfas", np.s_[:], sfas_mode="wrap")
    assert wrap.face is None and wrap.spectrogram is None
    assert wrap.shares() == dict(method="gradient_x_input", face=None, spectrogram=None, note=wrap.note)
    assert "no split is reported" in wrap.note
