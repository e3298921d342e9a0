"""MAE pre-training through the shared train loop, and fine-tuning from its encoder."""

import json

import jax
import numpy as np
import pytest

from configs import demo, pretrain_demo
from stored_dataset import sigterm_at, task_with_batches, tiny_config


# The tests of one pre-training run share it: one xdist worker runs them (`--dist loadgroup`).
uses_pretrained = pytest.mark.xdist_group("pretrained")


@pytest.fixture(scope="module")
def pretrained(data_dir, tmp_path_factory):
    from mmae_jax.train.loop import pretrain
    workdir = tmp_path_factory.mktemp("pretrain")
    results = pretrain(tiny_config(data_dir, pretrain_demo.get_config(), num_epochs=4), workdir)
    return workdir, results


@uses_pretrained
def test_pretraining_loss_falls_and_pictures_are_written(pretrained):
    from mmae_jax.train.logs import read_metrics
    workdir, results = pretrained
    losses = [r["loss"] for r in read_metrics(workdir) if r["split"] == "train"]
    assert len(losses) == results["steps"] == 16
    assert np.mean(losses[-4:]) < 0.9 * np.mean(losses[:4])
    history = results["reconstruction_history"]
    assert [h["step"] for h in history] == [4, 8, 12, 16] and history[-1]["loss"] < history[0]["loss"]
    assert (workdir / "reconstruction_step16.png").stat().st_size > 1000
    config = json.loads((workdir / "final_model" / "config.json").read_text())
    assert config["kind"] == "pretrainer"


@pytest.mark.slow      # a fine-tuning run on top of the pre-training one
@uses_pretrained
def test_finetuning_from_pretraining_loads_every_encoder_tensor(pretrained, data_dir, tmp_path):
    from flax import nnx

    from mmae_jax.model.io import load_model
    from mmae_jax.train.classification import ClassificationTask
    from mmae_jax.train.loop import Trainer

    workdir, _ = pretrained
    pretrainer, _, _ = load_model(workdir / "final_model")
    saved = nnx.state(pretrainer.encoder, nnx.Param).to_pure_dict()
    config = tiny_config(data_dir, demo.get_config(f"init={workdir}"), num_epochs=1)
    trainer = Trainer(config, tmp_path, ClassificationTask())
    loaded = trainer.state["trainable"]["encoder"]
    saved_leaves = jax.tree_util.tree_flatten_with_path({k: v for k, v in saved.items() if k != "norm"})[0]
    assert len(saved_leaves) == len(jax.tree.leaves(loaded)) > 10       # every encoder tensor
    for path, value in saved_leaves:
        np.testing.assert_array_equal(np.asarray(loaded_at(loaded, path)), np.asarray(value))
    results = trainer.run()
    assert results["steps"] == 4 and results["test"]["num_examples"] == 8


@pytest.mark.slow            # a second 16-step pre-training run (about 10 s)
@uses_pretrained
def test_preempted_pretraining_resumes_to_the_uninterrupted_result(pretrained, data_dir, tmp_path):
    """The task's checkpointed state comes back: the step-4 reconstruction loss, evaluated before
    the SIGTERM, is in the resumed run's history without being evaluated again."""
    from mmae_jax.train.logs import read_metrics
    from mmae_jax.train.loop import Trainer
    from mmae_jax.train.pretraining import PretrainingTask

    evaluations = []

    class RecordingTask(PretrainingTask):
        """Pre-training that notes the step of every evaluation."""

        def at_evaluation(self, context, step, *args):
            evaluations.append(step)
            return super().at_evaluation(context, step, *args)

    config = tiny_config(data_dir, pretrain_demo.get_config(), num_epochs=4)     # the `pretrained` run
    interrupted = Trainer(config, tmp_path, task_with_batches(PretrainingTask, sigterm_at(6)))
    assert interrupted.run() == {"status": "preempted", "step": 6, "signal": "SIGTERM"}
    results = Trainer(config, tmp_path, RecordingTask()).run()
    assert evaluations == [8, 12, 16] and results["provenance"]["resumed_from_step"] == 6
    reference_dir, reference = pretrained
    history, expected = results["reconstruction_history"], reference["reconstruction_history"]
    assert [h["step"] for h in history] == [h["step"] for h in expected] == [4, 8, 12, 16]
    np.testing.assert_allclose([h["loss"] for h in history], [h["loss"] for h in expected], rtol=1e-5)
    losses = {run: [(row["step"], row["loss"]) for row in read_metrics(run) if row["split"] == "train"]
              for run in (tmp_path, reference_dir)}
    assert [step for step, _ in losses[tmp_path]] == list(range(1, 17))
    np.testing.assert_allclose(losses[tmp_path], losses[reference_dir], rtol=1e-5)


def loaded_at(tree, path):
    """The leaf of the (string-keyed) train state at a ``to_pure_dict`` key path."""
    for key in path:
        tree = tree[str(getattr(key, "key", getattr(key, "idx", None)))]
    return tree


# ----------------------------------------------------------------------------- corpora

def _write_fold_labelled(data_dir, name="synthetic"):
    """Labelled clips whose label is their speaker's k-fold (6 folds, actor a in fold (a - 1) % 6)."""
    import tensorflow_datasets as tfds
    from stored_dataset import make_examples

    examples = make_examples(12, 2, 6, frames=4, size=32, bins=8, width=6)
    for example in examples:
        example["label"] = (example["speaker"] - 1) % 6
    _store(data_dir, name, examples, [f"fold{i}" for i in range(6)])


def _write_unlabeled(data_dir, count=24):
    from stored_dataset import make_examples

    examples = make_examples(count, 1, 1, frames=4, size=32, bins=8, width=6, seed=5)
    for i, example in enumerate(examples):
        example.update(label=0, speaker=-1, clip_id=f"id{i:05d}/video/00001")
    _store(data_dir, "videos", examples, ["unlabeled"])


def _store(data_dir, name, examples, names):
    import tensorflow_datasets as tfds

    first = examples[0]
    features = tfds.features.FeaturesDict({
        "faces": tfds.features.Tensor(shape=first["faces"].shape, dtype=np.uint8),
        "spectrogram": tfds.features.Tensor(shape=first["spectrogram"].shape, dtype=np.float32),
        "label": tfds.features.ClassLabel(names=names),
        "speaker": tfds.features.Scalar(dtype=np.int64),
        "clip_id": tfds.features.Text(),
    })
    tfds.dataset_builders.store_as_tfds_dataset(
        name=name, version="1.0.0", features=features, data_dir=str(data_dir), disable_shuffling=True,
        split_datasets={"data": [(example["clip_id"], example) for example in examples]})


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus")
    _write_fold_labelled(path)
    _write_unlabeled(path)
    return path


def corpus_config(data_dir, corpus_text, fold=1):
    config = tiny_config(data_dir, pretrain_demo.get_config(f"protocol=kfold,fold={fold}"), num_epochs=1)
    config.corpus = corpus_text
    return config


def test_corpus_reads_every_unlabeled_clip_and_only_train_clips_of_labelled_sets(corpus_dir):
    from mmae_jax.data import corpus

    config = corpus_config(corpus_dir, "videos, synthetic")
    opened = corpus.open_corpus(config.data, corpus.entries(config.corpus))
    read = opened.train_clip_ids()
    assert sorted(read["videos"]) == [f"id{i:05d}/video/00001" for i in range(24)]
    # fold 1 is the test fold, fold 2 validation: actors 2, 8 and 3, 9 are never read.
    assert sorted({int(c.split("-")[1]) for c in read["synthetic"]}) == [1, 4, 5, 6, 7, 10, 11, 12]
    assert opened.num_examples("train") == 24 + 16 and opened.num_examples("validation") == 4
    stream = corpus.corpus_train_dataset(opened, local_batch_size=8, process_index=0, process_count=1)
    labels = np.concatenate([batch["label"] for batch in stream.take(30).as_numpy_iterator()])
    assert not np.isin(labels, [1, 2]).any()                 # no test (fold 1) or validation (fold 2) clip
    assert set(labels.tolist()) == {0, 3, 4, 5}
    # label 0: the 24 unlabeled clips and the 4 fold-0 clips out of 40 -> 0.7 of the stream
    assert 0.6 < np.mean(labels == 0) < 0.8


def test_corpus_that_would_read_test_clips_is_refused(corpus_dir):
    from mmae_jax.data import corpus
    from mmae_jax.errors import ConfigError

    config = corpus_config(corpus_dir, "videos,synthetic:kfold:3", fold=1)   # trains on fold 1
    with pytest.raises(ConfigError, match="would pre-train on 4 test clips of synthetic"):
        corpus.open_corpus(config.data, corpus.entries(config.corpus))
    with pytest.raises(ConfigError, match="not dataset"):
        corpus.open_corpus(config.data, ["synthetic:kfold:0:extra"])
    corpus.open_corpus(config.data, corpus.entries("synthetic:kfold:1"))   # the evaluation fold itself: allowed


@pytest.mark.slow            # two runs of their own (pre-training on the corpus, the probe): 20-30 s
def test_pretraining_on_a_corpus_then_linear_probe(corpus_dir, tmp_path):
    from mmae_jax.train.loop import pretrain, train_and_evaluate

    results = pretrain(corpus_config(corpus_dir, "videos,synthetic"), tmp_path / "pt")
    assert results["corpus"] == ["videos", "synthetic"] and results["steps"] == 5      # ceil(40 / 8)
    probe = tiny_config(corpus_dir, demo.get_config(f"protocol=kfold,fold=1,mode=linear_probe,init={tmp_path / 'pt'}"),
                        num_epochs=1)
    probe_results = train_and_evaluate(probe, tmp_path / "probe")
    assert probe_results["test"]["num_examples"] == 4
