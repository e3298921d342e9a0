"""The metric writer: event files without loading torch (tensorboardX would, in the test
environment with the [torch] extra), which stays importable afterwards."""

import subprocess
import sys
import textwrap

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
