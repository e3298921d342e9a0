"""Compile the training step of the demo config for a target and print what its HLO holds, as JSON.

Run as a script in a fresh process (the target decides JAX's flags and devices):
``python compiled_step_probe.py TARGET [KEY=VALUE ...]`` with TARGET ``cpu:N`` (N simulated CPU
devices) or a TPU topology (``v5e:2x2``; needs libtpu). KEY=VALUE set config fields (dotted).
Prints ``{"attention", "host_backend", "collectives": [[opcode, shape], ...], "score_buffers": [...],
"batch": B, "clip": [T, S, S, 3], "heads": H, "tokens": N, "clip_branches": [...],
"bytes_accessed": X, "temp_bytes": Y}``: ``clip_branches`` lists the conditionals whose results hold a
batch of clips.
"""

import json
import os
import re
import sys

target, *overrides = sys.argv[1:]
if target.startswith("cpu:"):
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={target[4:]}"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import importlib.util  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402

from mmae_jax.train.assembly import assemble  # noqa: E402

spec = importlib.util.spec_from_file_location("demo", Path(__file__).parents[1] / "configs" / "demo.py")
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)
config = demo.get_config()
for item in overrides:
    key, value = item.split("=", 1)
    *parents, leaf = key.split(".")
    node = config
    for parent in parents:
        node = node[parent]
    node[leaf] = type(node[leaf])(float(value)) if isinstance(node[leaf], (int, float)) else value

if target.startswith("cpu:"):
    devices = jax.devices()
else:
    from jax.experimental import topologies
    devices = topologies.get_topology_desc(topology_name=target, platform="tpu").devices

asm = assemble(config, devices, num_classes=8, steps_per_epoch=10)
compiled = asm.train_step.lower(asm.abstract_state, asm.abstract_batch).compile()
hlo = compiled.as_text()
cost = compiled.cost_analysis()
cost = cost[0] if isinstance(cost, (list, tuple)) else cost
collective = re.compile(r"= (\S+\[[^\]]*\])(?:\{[^}]*\})? (collective-permute|all-to-all)(?:-start)?\(")
cfg = asm.built_cfg
tokens = cfg.num_patches
clip_shape = f"{config.data.num_frames},{config.data.image_size},{config.data.image_size},3]"
branches = [line.split(" = ")[0].strip() for line in hlo.splitlines() if " conditional(" in line
            and clip_shape in line.split(" conditional(")[0]]
scores = re.compile(rf"\w+\[\d+,{cfg.num_heads},{tokens},{tokens}\]")
print(json.dumps(dict(
    attention=asm.attention, host_backend=jax.default_backend(),
    collectives=[[m.group(2), m.group(1)] for m in collective.finditer(hlo)],
    score_buffers=sorted(set(scores.findall(hlo))),
    batch=config.batch_size, clip=[config.data.num_frames, config.data.image_size, config.data.image_size, 3],
    heads=cfg.num_heads, tokens=tokens, clip_branches=branches,
    bytes_accessed=float((cost or {}).get("bytes accessed", 0.0)),
    temp_bytes=compiled.memory_analysis().temp_size_in_bytes)))
