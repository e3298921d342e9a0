"""Device-side training metrics: window means, the first non-finite step, the start-up lines."""

import jax
import jax.numpy as jnp
import pytest

from mmae_jax.train import mesh as devices
from mmae_jax.train.metrics import MetricWindow, NonFiniteError


def step_metrics(loss, grad_norm=1.0, accuracy=50.0):
    finite = float(jnp.isfinite(loss) & jnp.isfinite(grad_norm))
    return dict(loss=jnp.float32(loss), grad_norm=jnp.float32(grad_norm), accuracy=jnp.float32(accuracy),
                finite=jnp.float32(finite))


def test_logged_numbers_are_means_over_the_window_and_the_window_restarts():
    window = MetricWindow()
    for step, (loss, accuracy) in enumerate([(1.0, 25.0), (2.0, 50.0), (4.5, 100.0)], start=1):
        window.add(step, step_metrics(loss, accuracy=accuracy))
    window.check()                                   # fetched, kept for the mean
    window.add(4, step_metrics(0.5, accuracy=75.0))
    assert window.means() == pytest.approx(dict(loss=2.0, grad_norm=1.0, accuracy=62.5))
    window.add(5, step_metrics(3.0, accuracy=0.0))
    assert window.means() == pytest.approx(dict(loss=3.0, grad_norm=1.0, accuracy=0.0))
    assert window.means() == {}


def test_the_host_waits_for_the_step_max_ahead_back_and_copies_nothing():
    waited = []

    class DeviceScalar:                               # records the waits; has no value to copy
        def __init__(self, step):
            self.step = step

        def block_until_ready(self):
            waited.append(self.step)
            return self

    window = MetricWindow(max_ahead=2)
    for step in range(1, 6):
        window.add(step, dict(loss=DeviceScalar(step)))
    assert waited == [1, 2, 3]                        # adding step s waits for step s - 2
    unbounded = MetricWindow(max_ahead=0)
    for step in range(1, 6):
        unbounded.add(step, dict(loss=DeviceScalar(step)))
    assert waited == [1, 2, 3]


@pytest.mark.parametrize("bad, first", [(dict(loss=float("nan")), "loss is nan"),
                                        (dict(loss=1.0, grad_norm=float("inf")), "grad_norm is inf")])
def test_the_first_non_finite_step_is_named_with_its_values(bad, first):
    window = MetricWindow()
    window.add(7, step_metrics(1.0))
    window.add(8, step_metrics(**bad))
    window.add(9, step_metrics(float("nan")))
    with pytest.raises(NonFiniteError, match=rf"step 8: {first} \(loss=(nan|1\.0), grad_norm=(1\.0|inf)\)"):
        window.means()


def test_runtime_summary_names_backend_devices_mesh_and_per_device_batch():
    from mmae_jax.train.mesh import create_mesh

    line = devices.runtime_summary(create_mesh(1, 1), 8)
    assert line.startswith("backend cpu: 1 x cpu, 1 process(es), mesh (") and line.endswith("8 per device")


def test_warns_when_an_accelerator_is_present_but_jax_runs_on_cpu(monkeypatch):
    monkeypatch.setattr(devices, "accelerator_present", lambda: "an NVIDIA GPU")
    assert "an NVIDIA GPU but JAX runs on the CPU" in devices.accelerator_warning()
    monkeypatch.setattr(devices, "accelerator_present", lambda: None)
    assert devices.accelerator_warning() is None


def test_accelerator_signs_are_device_files_nvidia_smi_or_tpu_variables(monkeypatch):
    class NoDeviceFiles:
        def __init__(self, path):
            pass

        def exists(self):
            return False

    monkeypatch.setattr(devices, "Path", NoDeviceFiles)
    monkeypatch.setattr(devices.shutil, "which", lambda name: None)
    for name in [n for n in devices.os.environ if n.startswith(("TPU_", "CLOUD_TPU"))]:
        monkeypatch.delenv(name)
    assert devices.accelerator_present() is None
    monkeypatch.setenv("TPU_NAME", "v5e")
    assert "TPU" in devices.accelerator_present()
    monkeypatch.delenv("TPU_NAME")
    monkeypatch.setattr(devices.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    assert "NVIDIA" in devices.accelerator_present()


def test_jax_started_on_a_cpu_machine_is_no_sign_of_a_tpu(monkeypatch):
    jax.devices()                                   # JAX sets TPU_SKIP_MDS_QUERY when it starts
    monkeypatch.setattr(devices.shutil, "which", lambda name: None)
    monkeypatch.setattr(devices, "Path", lambda path: type("Missing", (), {"exists": lambda self: False})())
    for name in devices.TPU_VM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TPU_SKIP_MDS_QUERY", "1")
    assert devices.accelerator_present() is None

