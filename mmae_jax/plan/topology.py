"""Topology names the way users say them -> compile-only devices of that target, on this machine.

Names: ``v5e-N`` (N chips, also ``v5litepod-N``), ``v4-N`` and ``v5p-N`` (N TensorCores, two
per chip: ``v4-16`` is 8 chips), ``KxNAME`` for K slices joined by the data-centre network
(``2xv5e-256``), the raw libtpu form ``v5e:16x16`` / ``v4:2x2x2`` / ``v5p:4x4x4`` (also after
``Kx``), and GPUs as ``h100xN`` / ``a100xN`` (N GPUs, 8 per host). TPU devices come from libtpu
(``jax[tpu]``), GPU devices from the CUDA plugin wheels and the target description shipped in
``gpu_specs/`` (the chip's published figures); neither needs the hardware.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.resources
import importlib.util
import math
import os
import re

from mmae_jax.errors import ConfigError, UserError
from mmae_jax.plan.chips import CHIPS, V5E_8_HOST, Chip

# v5e slice shapes (chips -> ICI shape) and which of their axes wrap around (a torus).
V5E_SHAPES = {1: (1, 1), 4: (2, 2), 8: (2, 4), 16: (4, 4), 32: (4, 8), 64: (8, 8), 128: (8, 16), 256: (16, 16)}
V5E_WRAP = {128: (False, True, False), 256: (True, True, False)}
GPU_SPEC_FILES = {"h100": "h100_sxm.txtpb", "a100": "a100_sxm_80gb.txtpb"}
GPUS_PER_HOST = 8
TOPOLOGY_HELP = ("v5e-4, v5e-256, v4-16, v5p-128, 2xv5e-256 (two slices), v5e:16x16 (libtpu's form), "
                 "h100x8, a100x8")


@dataclasses.dataclass(frozen=True)
class Target:
    """One target: ``slices`` x ``slice_shape`` TPU chips, or ``chips`` GPUs on ``chips / 8`` hosts."""

    name: str                      # as the user gave it
    family: str                    # key of chips.CHIPS
    chips: int                     # over all slices
    slices: int = 1
    slice_shape: tuple[int, ...] = ()  # TPU: the ICI shape of one slice
    gpu_topology: str = ""         # GPU: "hosts x 1 x GPUs per host"

    @property
    def chip(self) -> Chip:
        chip = CHIPS[self.family]
        if self.family == "v5e" and self.chips // self.slices == 8:
            return dataclasses.replace(chip, **V5E_8_HOST)
        return chip

    @property
    def platform(self) -> str:
        return self.chip.platform

    @property
    def libtpu_name(self) -> str:
        """``v5e:16x16``: the slice's topology as libtpu names it."""
        return f"{self.family}:{'x'.join(map(str, self.slice_shape))}"

    @property
    def accelerator_type(self) -> str:
        """The Cloud TPU accelerator type of one slice (``v5litepod-256``, ``v4-16``)."""
        per_slice = self.chips // self.slices
        return f"v5litepod-{per_slice}" if self.family == "v5e" else f"{self.family}-{2 * per_slice}"

    def topology_kwargs(self) -> dict:
        """Keyword arguments of ``jax.experimental.topologies.get_topology_desc`` for this TPU target."""
        shape = self.slice_shape
        per_slice = self.chips // self.slices
        if self.family == "v5e":
            wrap = V5E_WRAP.get(per_slice, (False, False, False))
            bounds = {1: (1, 1, 1), 8: (2, 4, 1)}.get(per_slice, (2, 2, 1))
            kwargs = {}
        else:   # v4 / v5p: two TensorCores per chip act as one device; full cubes are tori
            wrap = (all(d % 4 == 0 for d in shape),) * 3
            bounds = (2, 2, 1)
            kwargs = {"chip_config_name": "megacore"}
        return dict(topology_name=self.libtpu_name, platform="tpu", wrap=wrap, chips_per_host_bounds=bounds,
                    num_slices=self.slices, **kwargs)


def _bad(name: str, why: str) -> ConfigError:
    return ConfigError(f"unknown topology {name!r}: {why}", f"use a name like {TOPOLOGY_HELP}")


def _cube(chips: int) -> tuple[int, int, int]:
    """The v4 / v5p slice shape of ``chips`` (a power of two >= 4): 2x2x1, 2x2x2, 2x2x4, 2x4x4, 4x4x4 ..."""
    shape = [2, 2, 1]
    while math.prod(shape) < chips:
        smallest = min(shape)
        shape[max(i for i, d in enumerate(shape) if d == smallest)] *= 2
    return tuple(shape)


def parse_topology(name: str) -> Target:
    """``v5e-256`` / ``2xv5e-256`` / ``v4:2x2x2`` / ``h100x8`` -> a ``Target`` (ConfigError if unknown)."""
    text = name.strip().lower().replace("v5litepod", "v5e")
    if match := re.fullmatch(r"(h100|a100)x(\d+)", text):
        family, gpus = match.group(1), int(match.group(2))
        if gpus < 1 or (gpus > GPUS_PER_HOST and gpus % GPUS_PER_HOST):
            raise _bad(name, f"{gpus} GPUs: give 1 to {GPUS_PER_HOST}, or a multiple of {GPUS_PER_HOST} (whole hosts)")
        hosts = max(1, gpus // GPUS_PER_HOST)
        return Target(name, family, gpus, gpu_topology=f"{hosts}x1x{gpus // hosts}")
    slices = 1
    if match := re.fullmatch(r"(\d+)x(v.+)", text):
        slices, text = int(match.group(1)), match.group(2)
        if slices < 1:
            raise _bad(name, "the number of slices must be at least 1")
    if match := re.fullmatch(r"(v4|v5e|v5p):(\d+(?:x\d+)+)", text):
        family, shape = match.group(1), tuple(int(d) for d in match.group(2).split("x"))
        if len(shape) != (2 if family == "v5e" else 3):
            raise _bad(name, f"{family} slices have {2 if family == 'v5e' else 3} dimensions")
        return Target(name, family, slices * math.prod(shape), slices, shape)
    if match := re.fullmatch(r"(v4|v5e|v5p)-(\d+)", text):
        family, count = match.group(1), int(match.group(2))
        if family == "v5e":
            if count not in V5E_SHAPES:
                raise _bad(name, f"v5e slices have {', '.join(map(str, V5E_SHAPES))} chips")
            return Target(name, family, slices * count, slices, V5E_SHAPES[count])
        chips = count // 2
        if count % 2 or chips < 4 or chips & (chips - 1):
            raise _bad(name, f"{family}-N counts TensorCores (two per chip): N = 8, 16, 32, ...; other "
                             f"shapes by libtpu's name, e.g. {family}:4x4x12")
        return Target(name, family, slices * chips, slices, _cube(chips))
    raise _bad(name, "not a TPU or GPU name")


class MissingPlugin(UserError):
    """The package that compiles for a platform (libtpu, the CUDA plugin) is not installed."""


def _require(platform: str) -> None:
    import jax

    version = jax.__version__
    if platform == "tpu" and importlib.util.find_spec("libtpu") is None:
        raise MissingPlugin("compiling for TPU needs libtpu, which is not installed",
                            f'pip install "jax[tpu]=={version}"; in a checkout: make aot, then '
                            f".venv-aot/bin/python -m mmae_jax.cli plan ...")
    if platform == "cuda" and importlib.util.find_spec("jax_plugins.xla_cuda12") is None:
        raise MissingPlugin("compiling for NVIDIA GPUs needs the CUDA plugin, which is not installed",
                            f'pip install "jax[cuda12-local]=={version}" (no CUDA libraries or driver needed); '
                            f"in a checkout: make aot, then .venv-aot/bin/python -m mmae_jax.cli plan ...")


def quiet_tpu_environment(target: Target) -> None:
    """Tell libtpu what a TPU VM would (accelerator type, one worker, no metadata server), so it
    compiles without looking for the VM and without its warnings; variables already set are kept.
    Compiling needs no chip, so several processes may load libtpu at once (no lock file)."""
    os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    os.environ.setdefault("TPU_ACCELERATOR_TYPE", target.accelerator_type)
    os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")


def gpu_target_config(family: str) -> str:
    """The ``GpuTargetConfigProto`` text of a GPU family (shipped in ``gpu_specs/``)."""
    return (importlib.resources.files("mmae_jax.plan") / "gpu_specs" / GPU_SPEC_FILES[family]).read_text()


def target_devices(target: Target) -> list:
    """Compile-only devices of ``target`` (MissingPlugin when libtpu / the CUDA plugin is absent)."""
    from jax.experimental import topologies

    _require(target.platform)
    if target.platform == "tpu":
        quiet_tpu_environment(target)
        with _runtime_errors_as_config_errors(target):
            return list(topologies.get_topology_desc(**target.topology_kwargs()).devices)
    with _runtime_errors_as_config_errors(target):
        return list(topologies.get_topology_desc(platform="cuda", target_config=gpu_target_config(target.family),
                                                 topology=target.gpu_topology).devices)


@contextlib.contextmanager
def _runtime_errors_as_config_errors(target: Target):
    """libtpu's refusal of a shape (``INVALID_ARGUMENT: ...``) as one line naming the target."""
    import jax

    try:
        yield
    except jax.errors.JaxRuntimeError as error:
        message = str(error).splitlines()[0]
        raise ConfigError(f"topology {target.name!r}: {message}", f"use a name like {TOPOLOGY_HELP}") from error
