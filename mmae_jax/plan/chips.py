"""Published figures of the accelerator chips ``plan`` knows, and of the hosts that carry them.

Peak compute is dense bf16 (no structured sparsity); bandwidth and capacity are the HBM's.
Sources (vendor pages): Cloud TPU v4 / v5e / v5p system architecture pages
(cloud.google.com/tpu/docs/v4, /v5e, /v5p); NVIDIA H100 Tensor Core GPU datasheet (SXM5:
989.4 TFLOP/s bf16 dense, 80 GB HBM3, 3.35 TB/s); NVIDIA A100 datasheet (SXM4 80 GB: 312
TFLOP/s bf16 dense, 2,039 GB/s). Host vCPUs: the Cloud TPU VM types (v4: 240; v5p: 208;
v5e ct5lp-hightpu-4t / -8t: 112 / 224) and the Compute Engine GPU machine types
(a3-highgpu-8g: 208 vCPUs for 8 H100; a2-ultragpu-8g: 96 vCPUs for 8 A100 80GB).
"""

from __future__ import annotations

import dataclasses

GB = 10 ** 9
GIB = 2 ** 30


@dataclasses.dataclass(frozen=True)
class Chip:
    """One accelerator chip: ``peak_flops`` (bf16 FLOP/s), ``hbm_bytes``, ``hbm_bandwidth`` (bytes/s)."""

    name: str
    platform: str           # "tpu" or "cuda"
    peak_flops: float
    hbm_bytes: int
    hbm_bandwidth: float
    host_vcpus: int         # vCPUs of the host that carries ``chips_per_host`` chips
    chips_per_host: int
    host_machine: str       # the machine type those figures are of


CHIPS: dict[str, Chip] = {
    "v4": Chip("TPU v4", "tpu", 275e12, 32 * GIB, 1200 * GB, 240, 4, "TPU v4 VM"),
    "v5e": Chip("TPU v5e", "tpu", 197e12, 16 * GIB, 819 * GB, 112, 4, "ct5lp-hightpu-4t"),
    "v5p": Chip("TPU v5p", "tpu", 459e12, 95 * GIB, 2765 * GB, 208, 4, "TPU v5p VM"),
    "h100": Chip("NVIDIA H100 SXM5 80GB", "cuda", 989.4e12, 80 * GB, 3.35e12, 208, 8, "a3-highgpu-8g"),
    "a100": Chip("NVIDIA A100 SXM4 80GB", "cuda", 312e12, 80 * GB, 2.039e12, 96, 8, "a2-ultragpu-8g"),
}
# A v5e slice of 8 chips on one host runs on ct5lp-hightpu-8t.
V5E_8_HOST = dict(host_vcpus=224, chips_per_host=8, host_machine="ct5lp-hightpu-8t")
