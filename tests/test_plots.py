"""The run's plots, read from the figure objects: which series each panel draws (training and
validation loss, the learning rate, WAR / UAR), a visible point for a single logged step,
whole-number step ticks, and the confusion matrices of the models the results table reports."""

import types

import numpy as np
import pytest

from mmae_jax.train import plots

TRAIN = [{"step": s, "split": "train", "loss": 2.0 / s, "lr": 1e-3 * s / 5, "grad_norm": 1.0, "clips_per_s": 9.0}
         for s in range(1, 6)]
VALIDATION = [{"step": s, "split": "validation", "war": 40.0 + s, "uar": 30.0 + s, "loss": 1.5 - s / 10, "epoch": s // 2}
              for s in (2, 4)]


def _panels(fig) -> dict:
    return {ax.get_title(): ax for ax in fig.axes}


def _data(line) -> list[tuple[float, float]]:
    return list(zip(*(np.asarray(values, float).tolist() for values in line.get_data())))


def test_training_curves_show_both_losses_the_learning_rate_and_validation_scores():
    fig = plots.training_curves_figure(TRAIN + VALIDATION, "synthetic / fslf")
    panels = _panels(fig)
    assert set(panels) == {"training and validation loss", "learning rate", "validation WAR / UAR"}

    loss = {line.get_label(): line for line in panels["training and validation loss"].get_lines()}
    assert set(loss) == {"training", "validation"}
    assert _data(loss["training"]) == [(r["step"], r["loss"]) for r in TRAIN]
    assert _data(loss["validation"]) == [(r["step"], r["loss"]) for r in VALIDATION]
    assert loss["validation"].get_marker() == "o"

    (lr,) = panels["learning rate"].get_lines()
    assert _data(lr) == [(r["step"], r["lr"]) for r in TRAIN]

    scores = {line.get_label(): line for line in panels["validation WAR / UAR"].get_lines()}
    assert _data(scores["WAR"]) == [(r["step"], r["war"]) for r in VALIDATION]
    assert _data(scores["UAR"]) == [(r["step"], r["uar"]) for r in VALIDATION]
    plots.plt.close(fig)


@pytest.mark.parametrize("records", [TRAIN, TRAIN[:1], TRAIN[:2] + VALIDATION[:1]])
def test_step_ticks_are_whole_numbers(records):
    fig = plots.training_curves_figure(records)
    fig.canvas.draw()
    for ax in fig.axes:
        low, high = ax.get_xlim()
        shown = [tick for tick in ax.get_xticks() if low <= tick <= high]
        assert shown and all(float(tick).is_integer() for tick in shown), (ax.get_title(), shown)
    plots.plt.close(fig)


def test_a_single_logged_step_is_drawn_as_a_point():
    fig = plots.training_curves_figure(TRAIN[:1] + VALIDATION[:1])
    for ax in fig.axes:
        for line in ax.get_lines():
            assert len(line.get_xdata()) == 1 and line.get_marker() not in ("None", "", None, " "), \
                (ax.get_title(), line.get_label())
    drawn = [ax.get_title() for ax in fig.axes if ax.get_lines()]
    assert drawn == ["training and validation loss", "learning rate", "validation WAR / UAR"]
    plots.plt.close(fig)


def test_a_run_without_validation_says_so_instead_of_empty_axes():
    fig = plots.training_curves_figure(TRAIN)
    scores = _panels(fig)["validation WAR / UAR"]
    assert scores.get_lines() == [] and [text.get_text() for text in scores.texts] == ["no validation split"]
    assert [line.get_label() for line in _panels(fig)["training and validation loss"].get_lines()] == ["training"]
    plots.plt.close(fig)


LAST = {"war": 50.0, "uar": 45.0, "confusion_matrix": [[1, 1], [1, 1]]}
BEST = {"step": 4, "epoch": 1, "test": {"war": 75.0, "uar": 70.0}, "test_confusion_matrix": [[2, 0], [1, 1]]}


def test_reported_confusions_are_the_last_and_the_best_validation_model_when_they_differ():
    both = plots.reported_confusions({"steps": 12, "test": LAST, "test_at_best_validation": BEST})
    assert [(key, which) for key, which, _ in both] == [
        ("test", "test, last epoch (step 12)"),
        ("test_at_best_validation", "test, best validation (epoch 1, step 4)")]
    assert both[0][2] is LAST
    assert both[1][2] == {"war": 75.0, "uar": 70.0, "confusion_matrix": [[2, 0], [1, 1]]}

    same = plots.reported_confusions({"steps": 4, "test": LAST, "test_at_best_validation": BEST})
    assert same == [("test", "test, last epoch (step 4) = best validation (epoch 1)", LAST)]
    assert plots.reported_confusions({"steps": 12, "test": LAST, "test_at_best_validation": None}) == [
        ("test", "test, last epoch (step 12)", LAST)]


def test_the_results_table_names_the_confusion_plot_of_each_reported_model(capsys):
    from mmae_jax.cli.train import print_results

    run = dict(dataset="ravdess", strategy="fslf", protocol="paper", fold=1, steps=12, test=LAST)
    print_results(dict(run, test_at_best_validation=BEST), "RUN")
    out = capsys.readouterr().out
    assert "RUN/confusion_test.png, RUN/confusion_test_at_best_validation.png, RUN/training_curves.png" in out
    print_results(dict(run, steps=4, test_at_best_validation=BEST), "RUN")
    assert "confusion_test_at_best_validation" not in capsys.readouterr().out


def test_confusion_figure_shows_the_matrix_and_its_title():
    fig = plots.confusion_figure(BEST["test_confusion_matrix"], ["calm", "sad"], "run: test, best validation",
                                 war=75.0, uar=70.0)
    ax = fig.axes[0]
    assert ax.get_title() == "run: test, best validation\nWAR 75.0%, UAR 70.0%"
    assert np.array_equal(ax.images[0].get_array(), [[1.0, 0.0], [0.5, 0.5]])          # row-normalised
    assert [text.get_text() for text in ax.texts] == ["2", "0", "1", "1"]
    plots.plt.close(fig)


def test_a_finished_run_plots_the_confusion_of_each_reported_model(tmp_path, monkeypatch):
    """``ClassificationTask.finish`` with the best validation at step 4 of 12: two confusion
    plots, each of its own model's matrix and titled with which model it is."""
    from mmae_jax.train import classification

    drawn = []

    def recording(matrix, class_names, path, title, **scores):
        drawn.append((path.name, matrix, title))
        return plots.plot_confusion(matrix, class_names, path, title, **scores)

    monkeypatch.setattr(classification, "plot_confusion", recording)
    task = classification.ClassificationTask()
    monkeypatch.setattr(task, "evaluate", lambda context, params, split: dict(
        LAST, per_class_recall={"a": 50.0, "b": 50.0}, num_examples=4, loss=0.7))
    data = types.SimpleNamespace(dataset="synthetic", strategy="fslf", protocol="kfold", fold=0)
    context = types.SimpleNamespace(                   # the RunContext fields finish reads
        is_main=True, workdir=tmp_path, class_names=["a", "b"], total_steps=12,
        config=types.SimpleNamespace(data=data), export=lambda name, params: tmp_path / name,
        run_summary=lambda: {"steps": 12, "config": {"seed": 0}})
    state = classification.ClassificationState(history=[], best=BEST)
    task.finish(context, params=None, state=state)
    assert drawn == [
        ("confusion_test.png", LAST["confusion_matrix"], "synthetic / fslf / kfold fold 0: test, last epoch (step 12)"),
        ("confusion_test_at_best_validation.png", BEST["test_confusion_matrix"],
         "synthetic / fslf / kfold fold 0: test, best validation (epoch 1, step 4)")]
    assert (tmp_path / "confusion_test_at_best_validation.pdf").is_file()


def test_validation_loss_is_the_cross_entropy_of_the_predicted_probabilities():
    from mmae_jax.train.metrics import cross_entropy

    probabilities = np.array([[0.5, 0.5], [0.25, 0.75], [1.0, 0.0]])
    assert cross_entropy(probabilities, np.array([0, 1, 0])) == pytest.approx(-(np.log(0.5) + np.log(0.75)) / 3)
    # a probability that underflowed to 0 gives a large finite loss, not inf
    assert cross_entropy(probabilities[2:], np.array([1])) == pytest.approx(-np.log(np.finfo(np.float32).tiny))
