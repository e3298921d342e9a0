"""What a run writes besides checkpoints: the metric writer's event files without loading torch
(tensorboardX would, in the test environment with the [torch] extra), and the console's output
when it goes to a file (one line per logged step, no progress-bar redraws)."""

import contextlib
import io
import re
import subprocess
import sys
import textwrap

import pytest
from stored_dataset import tiny_config

SCRIPT = textwrap.dedent("""
    import sys
    from mmae_jax.train.logs import MetricWriter
    writer = MetricWriter(sys.argv[1])
    writer.write(3, {"loss": 0.5}, "train")
    writer.write_hparams({"optim": {"lr": 0.001}}, {"test/war": 50.0})
    writer.close()
    print("torch loaded by the writer:", "torch" in sys.modules)
    import torch
    print("torch after:", float(torch.ones(2).sum()))
""")


def test_writer_leaves_torch_unloaded_and_importable(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "torch loaded by the writer: False" in out.stdout and "torch after: 2.0" in out.stdout, out.stdout

    import tensorflow as tf
    tags = {value.tag for events in (tmp_path / "tensorboard").iterdir()
            for event in tf.compat.v1.train.summary_iterator(str(events)) for value in event.summary.value}
    assert "train/loss" in tags, tags


STEP_LINE = re.compile(r"^step (\d+)/3  loss [\d.]+  accuracy [\d.e+-]+  grad_norm [\d.e+-]+  lr [\d.]+e[-+]\d+  "
                       r"[\d.]+ clips/s$")


@pytest.mark.slow
def test_training_with_output_to_a_file_writes_one_line_per_logged_step(data_dir, tmp_path):
    """stdout and stderr redirected to one file (not a terminal), as ``train ... > run.log 2>&1``
    is; the validation rows carry the loss the training-curves plot draws beside the training loss."""
    from mmae_jax.train.logs import read_metrics
    from mmae_jax.train.loop import train_and_evaluate

    log = tmp_path / "run.log"
    with open(log, "w") as file, contextlib.redirect_stdout(file), contextlib.redirect_stderr(file):
        train_and_evaluate(tiny_config(data_dir, num_epochs=1, max_steps=3), tmp_path / "run")
    text = log.read_bytes().decode()                    # bytes: no newline translation hides a \r
    assert "\r" not in text, text[:1000]
    lines = text.splitlines()
    assert re.fullmatch(r"backend \w+: .* per device", lines[0]), lines           # the start-up line, alone
    steps = [line for line in lines if line.startswith("step ")]
    assert [int(STEP_LINE.match(line).group(1)) for line in steps] == [1, 2, 3], lines     # log_every_steps=1
    assert len(lines) == 1 + 3, lines

    (validation,) = [row for row in read_metrics(tmp_path / "run") if row["split"] == "validation"]
    assert validation["step"] == 3 and 0.0 < validation["loss"] < 10.0, validation


class Terminal(io.StringIO):
    def isatty(self):
        return True


LOGGED = {"loss": 1.25, "accuracy": 0.5, "lr": 1e-3, "clips_per_s": 40.0}


def _console(stdout, stderr) -> None:
    from mmae_jax.train.logs import Progress

    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        progress = Progress(4, 0, "classification fslf")
        progress.write("start-up line")
        for step in (1, 2, 3, 4):
            progress.update(1)
            if step % 2 == 0:
                progress.log(step, LOGGED)
        progress.close()


def test_progress_on_a_terminal_is_a_bar_and_in_a_file_plain_lines():
    stdout, stderr = io.StringIO(), io.StringIO()
    _console(stdout, stderr)
    assert stdout.getvalue() == ("start-up line\n"
                                 "step 2/4  loss 1.2500  accuracy 0.5  lr 1.00e-03  40.0 clips/s\n"
                                 "step 4/4  loss 1.2500  accuracy 0.5  lr 1.00e-03  40.0 clips/s\n")
    assert stderr.getvalue() == ""

    stdout, stderr = Terminal(), Terminal()        # both on the terminal: the bar alone
    _console(stdout, stderr)
    assert stdout.getvalue() == "start-up line\n"
    assert "\r" in stderr.getvalue() and "4/4" in stderr.getvalue() and "loss=1.2500" in stderr.getvalue()

    stdout, stderr = io.StringIO(), Terminal()     # `train > run.log`: the bar on the terminal, lines in the file
    _console(stdout, stderr)
    assert [line.split("  ")[0] for line in stdout.getvalue().splitlines()] == ["start-up line", "step 2/4", "step 4/4"]
    assert "\r" in stderr.getvalue() and "\r" not in stdout.getvalue()
