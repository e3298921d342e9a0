"""Where a result comes from: package versions, code commit, devices, hosts, time and data build.

``provenance(builder_dir, wall_time_s)`` is stored in every ``results.json`` (training and
``evaluate``), so a number in a paper can be traced to the code, the machine and the exact data.
"""

from __future__ import annotations

import hashlib
import subprocess
from importlib import metadata
from pathlib import Path

import jax

PACKAGES = ("mmae_jax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow", "tensorflow-cpu",
            "tensorflow-datasets", "numpy", "ml_collections", "opencv-python-headless", "librosa", "av")


def package_versions() -> dict[str, str]:
    """Installed version of each package in ``PACKAGES`` (those not installed are left out)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def git_commit(path: str | Path | None = None) -> dict | None:
    """``{"commit": sha, "dirty": bool}`` of the checkout holding ``path`` (this package), else None."""
    folder = Path(path or __file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha, "dirty": bool(status.strip())}


def data_build(builder_dir: str | Path) -> dict:
    """The stored dataset's folder, TFDS version and a SHA-256 over every file in it (names and bytes)."""
    builder_dir = Path(builder_dir)
    digest = hashlib.sha256()
    for file in sorted(p for p in builder_dir.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(builder_dir)).encode() + b"\0")
        with open(file, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return {"dir": str(builder_dir.absolute()), "version": builder_dir.name, "content_sha256": digest.hexdigest()}


def provenance(builder_dir: str | Path, wall_time_s: float) -> dict:
    """Everything above, with the devices and host count of this run."""
    devices = jax.devices()
    return {
        "packages": package_versions(),
        "git": git_commit(),
        "devices": {"platform": devices[0].platform, "kind": devices[0].device_kind, "count": len(devices)},
        "host_count": jax.process_count(),
        "wall_time_s": round(wall_time_s, 3),
        "data_build": data_build(builder_dir),
    }
