"""Fresh virtual environments for install tests, made fast.

The environment gets nothing of this checkout. Its dependencies come from the test
environment through a ``.pth`` line pointing at a folder of links to the test environment's
installed packages, leaving out mmae_jax itself and every ``.pth`` file (the editable install
of this checkout): so pip sees the dependencies as installed and downloads nothing, and
``import mmae_jax`` works only after the package under test is installed. Distributions named in
``installed`` are pip-installed into the environment itself instead (at this interpreter's
versions), as a runtime's own packages are (Colab's jax and jaxlib).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

LEFT_OUT = ("mmae_jax", "__editable__", "data_prep", "configs")


def site_packages(python: Path) -> Path:
    """The purelib folder of the environment of ``python``."""
    return Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())


def _dependency_links(folder: Path, left_out: set[str]) -> Path:
    """``folder`` holding a link to each installed package of this interpreter but ours and ``left_out``."""
    folder.mkdir(parents=True, exist_ok=True)
    source = Path(sysconfig.get_paths()["purelib"])
    for entry in source.iterdir():
        if entry.name.startswith(LEFT_OUT) or entry.suffix == ".pth" or entry.name in left_out:
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


def fresh_venv(path: Path, *, with_pip: bool = False, fake_tensorflow: bool = False,
               installed: tuple[str, ...] = ()) -> Path:
    """A new venv at ``path``; returns its python. ``fake_tensorflow``: a ``tensorflow`` distribution
    record of the TensorFlow this interpreter has, as on Colab (whose TensorFlow is ``tensorflow``).
    ``installed``: distributions pip installs into the venv (no dependencies, this interpreter's
    versions, from pip's configured index or cache) instead of linking them."""
    subprocess.run([sys.executable, "-m", "venv", *([] if with_pip else ["--without-pip"]), str(path)], check=True)
    python = path / "bin" / "python"
    site = site_packages(python)
    own = {Path(file).parts[0] for name in installed for file in metadata.distribution(name).files or ()}
    links = _dependency_links(path / "dependencies", own)
    (site / "test_dependencies.pth").write_text(f"{links}\n")
    if installed:
        subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                        *(f"{name}=={metadata.version(name)}" for name in installed)], check=True)
    if fake_tensorflow:
        version = next(metadata.version(name) for name in ("tensorflow", "tensorflow-cpu")
                       if _installed(name))
        record = site / f"tensorflow-{version}.dist-info"
        record.mkdir()
        (record / "METADATA").write_text(f"Metadata-Version: 2.1\nName: tensorflow\nVersion: {version}\n")
        (record / "INSTALLER").write_text("test\n")
        (record / "RECORD").write_text("")
    return python


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def environment() -> dict:
    """This process's environment without the variables that would put the checkout on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["JAX_PLATFORMS"] = "cpu"
    return env


fresh_venv.environment = environment
