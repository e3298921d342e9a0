"""``mmae-jax plan``'s parts that need no TPU or GPU compiler: topology names, the HLO reading,
the compiler's out-of-memory message, the batch search, the roofline and the FLOP formulas.
The compiles themselves: tests/test_plan_compile.py."""

import importlib.util

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from mmae_jax.errors import ConfigError
from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.model.info import analytic_pretrain_forward_flops
from mmae_jax.model.pretrain import VideoMAEPretrainer
from mmae_jax.plan import topology
from mmae_jax.plan.batch_search import largest_fitting
from mmae_jax.plan.chips import CHIPS
from mmae_jax.plan.hlo_text import collectives, custom_calls, shape_bytes
from mmae_jax.plan.input_rate import input_rate
from mmae_jax.plan.memory import out_of_memory
from mmae_jax.plan.roofline import SCANNED, cost_figures, roofline


@pytest.mark.parametrize("name, family, chips, slices, shape, accelerator", [
    ("v5e-4", "v5e", 4, 1, (2, 2), "v5litepod-4"),
    ("v5litepod-256", "v5e", 256, 1, (16, 16), "v5litepod-256"),
    ("2xv5e-256", "v5e", 512, 2, (16, 16), "v5litepod-256"),
    ("v4-8", "v4", 4, 1, (2, 2, 1), "v4-8"),
    ("v4-16", "v4", 8, 1, (2, 2, 2), "v4-16"),
    ("v4-64", "v4", 32, 1, (2, 4, 4), "v4-64"),
    ("v5p-128", "v5p", 64, 1, (4, 4, 4), "v5p-128"),
    ("v5p-256", "v5p", 128, 1, (4, 4, 8), "v5p-256"),
    ("v5e:16x16", "v5e", 256, 1, (16, 16), "v5litepod-256"),
    ("2xv4:2x2x1", "v4", 8, 2, (2, 2, 1), "v4-8"),
])
def test_tpu_names(name, family, chips, slices, shape, accelerator):
    target = topology.parse_topology(name)
    assert (target.family, target.chips, target.slices, target.slice_shape) == (family, chips, slices, shape)
    assert target.accelerator_type == accelerator
    kwargs = target.topology_kwargs()
    assert kwargs["num_slices"] == slices
    assert ("chip_config_name" in kwargs) == (family != "v5e")     # v4 / v5p: one device per chip


def test_full_cubes_are_tori_and_v5e_pods_wrap_where_they_close():
    assert topology.parse_topology("v5p-128").topology_kwargs()["wrap"] == (True, True, True)
    assert topology.parse_topology("v4-32").topology_kwargs()["wrap"] == (False, False, False)
    assert topology.parse_topology("v5e-256").topology_kwargs()["wrap"] == (True, True, False)
    assert topology.parse_topology("v5e-8").topology_kwargs()["chips_per_host_bounds"] == (2, 4, 1)


def test_gpu_names_and_hosts():
    assert topology.parse_topology("h100x8").gpu_topology == "1x1x8"
    assert topology.parse_topology("A100x16").gpu_topology == "2x1x8"
    assert topology.parse_topology("h100x2").chips == 2
    assert topology.parse_topology("h100x8").chip.name == CHIPS["h100"].name


@pytest.mark.parametrize("name", ["v5e-3", "v4-12", "v5p-7", "h100x12", "tpu-8", "v5e:2x2x2", "v6e-256"])
def test_unknown_topologies_are_one_line_errors(name):
    with pytest.raises(ConfigError, match=f"unknown topology '{name}'"):
        topology.parse_topology(name)


def test_missing_plugins_say_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(topology.MissingPlugin, match=rf'pip install "jax\[tpu\]=={jax.__version__}"'):
        topology.target_devices(topology.parse_topology("v5e-4"))
    with pytest.raises(topology.MissingPlugin, match=r'jax\[cuda12-local\]'):
        topology.target_devices(topology.parse_topology("h100x8"))


def test_gpu_target_descriptions_carry_the_chip_table_figures():
    for family in topology.GPU_SPEC_FILES:
        text = topology.gpu_target_config(family)
        chip = CHIPS[family]
        assert f"memory_bandwidth: {int(chip.hbm_bandwidth)}" in text
        assert f"device_memory_size: {chip.hbm_bytes}" in text


# A cut-down optimised HLO text of the shapes XLA writes: a synchronous all-reduce of a tuple,
# an async all-gather (start / done), a collective-permute inside a while body run 12 times,
# and a Mosaic custom call.
HLO = """\
HloModule jit_step, entry_computation_layout={(f32[64,32]{1,0})->f32[64,32]{1,0}}

%body.1 (param: (s32[], bf16[8,1568,96])) -> (s32[], bf16[8,1568,96]) {
  %param = (s32[], bf16[8,1568,96]{2,1,0}) parameter(0)
  %gte = bf16[8,1568,96]{2,1,0} get-tuple-element(%param), index=1
  %collective-permute-start.2 = (bf16[8,1568,96]{2,1,0}, bf16[8,1568,96]{2,1,0}, u32[], u32[]) collective-permute-start(%gte), channel_id=3, source_target_pairs={{0,1},{1,0}}
  %collective-permute-done.2 = bf16[8,1568,96]{2,1,0} collective-permute-done(%collective-permute-start.2)
  %custom-call.7 = bf16[8,1568,96]{2,1,0} custom-call(%collective-permute-done.2), custom_call_target="tpu_custom_call", backend_config="..."
  ROOT %tuple.3 = (s32[], bf16[8,1568,96]{2,1,0}) tuple(%i, %custom-call.7)
}

ENTRY %main.9 (Arg_0.1: f32[64,32]) -> f32[64,32] {
  %Arg_0.1 = f32[64,32]{1,0:T(8,128)} parameter(0)
  %all-reduce.4 = (f32[64,32]{1,0}, f32[10]{0}) all-reduce(%Arg_0.1, %c), channel_id=1, replica_groups={{0,1,2,3}}, to_apply=%add
  %all-gather-start.5 = (f32[16,32]{1,0}, f32[64,32]{1,0}) all-gather-start(%x), channel_id=2, dimensions={0}
  %all-gather-done.5 = f32[64,32]{1,0} all-gather-done(%all-gather-start.5)
  %while.6 = (s32[], bf16[8,1568,96]{2,1,0}) while(%t), condition=%cond.1, body=%body.1, backend_config={"known_trip_count":{"n":"12"}}
  ROOT %add.8 = f32[64,32]{1,0} add(%all-gather-done.5, %Arg_0.1)
}
"""


def test_collectives_by_kind_with_bytes_per_chip():
    found = collectives(HLO)
    assert found["all-reduce"] == {"count": 1, "bytes": 64 * 32 * 4 + 10 * 4}
    assert found["all-gather"] == {"count": 1, "bytes": 64 * 32 * 4}      # the -done's result, once
    assert found["collective-permute"] == {"count": 12, "bytes": 12 * 8 * 1568 * 96 * 2}   # 12 iterations
    assert set(found) == {"all-reduce", "all-gather", "collective-permute"}
    assert custom_calls(HLO) == {"tpu_custom_call": 1}


def test_shape_bytes():
    assert shape_bytes("bf16[8,1568,768]{2,1,0:T(8,128)(2,1)}") == 8 * 1568 * 768 * 2
    assert shape_bytes("(f32[4]{0}, s32[], pred[3])") == 16 + 4 + 3


def test_out_of_memory_messages_of_both_forms():
    short = out_of_memory("RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory required for HLO "
                          "temporaries (19.94G) exceeds available HBM (15.75G).")
    assert (short.needed, short.available, short.largest) == ("19.94G", "15.75G", None)
    long = out_of_memory(
        "RESOURCE_EXHAUSTED: XLA:TPU compile permanent error. Ran out of memory in memory space hbm. Used 15.89G "
        "of 15.75G hbm. Exceeded hbm capacity by 144.00M.\n\nTotal hbm usage >= 16.14G:\n\n  Largest program "
        "allocations in hbm:\n\n  1. Size: 1008.00M\n     Operator: op_name=\"jit(step)/jvp()/rev\" "
        "source_file=\"/x/mmae_jax/train/mixup.py\" source_line=42\n     Shape: u8[64,16,224,224,3]{4,3,2,1,0}\n"
        "     ==========================\n\n  2. Size: 500.00M\n")
    assert (long.needed, long.available) == ("15.89G", "15.75G")
    assert long.largest == "1008.00M u8[64,16,224,224,3] from jit(step)/jvp()/rev (mixup.py:42)"
    assert "needs 15.89G per chip, 15.75G available; largest allocation: 1008.00M" in str(long)
    assert out_of_memory("INVALID_ARGUMENT: something else") is None


@pytest.mark.parametrize("capacity", [0, 1, 6, 8, 13, 64, 300])
@pytest.mark.parametrize("start", [1, 8, 32])
def test_batch_search_finds_the_largest_that_fits(capacity, start):
    best, first_failing, tried = largest_fitting(lambda batch: batch, lambda batch: batch <= capacity,
                                                 start=start, limit=256)
    assert best == (min(capacity, 256) or None)
    assert first_failing == (capacity + 1 if capacity < 256 else None)
    assert len(tried) <= 2 * 9 + 1 and len(set(tried)) == len(tried)     # doubling + bisection, no repeats


@pytest.mark.parametrize("capacity, expected", [(0, None), (1, 1), (6, 4), (8, 8), (13, 8), (300, 256)])
def test_batch_search_in_powers_of_two(capacity, expected):
    best, _, tried = largest_fitting(lambda batch: batch, lambda batch: batch <= capacity, limit=256, exact=False)
    assert best == expected
    assert all(batch & (batch - 1) == 0 for batch in tried)


def test_roofline_takes_the_larger_bound():
    chip = CHIPS["v5e"]
    compute = roofline(chip, compiled_flops=chip.peak_flops, bytes_accessed=chip.hbm_bandwidth / 10,
                       model_flops=chip.peak_flops / 2)
    assert (compute.bound, compute.step_seconds, compute.mfu) == ("compute", 1.0, 0.5)
    memory = roofline(chip, compiled_flops=chip.peak_flops, bytes_accessed=chip.hbm_bandwidth * 4,
                      model_flops=chip.peak_flops)
    assert (memory.bound, memory.step_seconds, memory.mfu) == ("HBM", 4.0, 0.25)
    hidden = roofline(chip, compiled_flops=chip.peak_flops / 4, bytes_accessed=0.0, model_flops=chip.peak_flops)
    assert hidden.step_seconds == 1.0          # a kernel XLA does not count: the model's FLOPs bound the time
    gpu = roofline(CHIPS["h100"], None, None, model_flops=CHIPS["h100"].peak_flops * 2)
    assert (gpu.bound, gpu.step_seconds, gpu.mfu) == ("peak", 2.0, None)


def test_cost_figures_are_withheld_for_scanned_blocks():
    """XLA counts a loop's body once: a scan over 4 products reports a quarter of the FLOPs of
    the same products unrolled, so a step with scanned blocks gets no compiled figures."""
    weights, x = jnp.ones((4, 64, 64)), jnp.ones((8, 64))

    def unrolled(x):
        for weight in weights:
            x = x @ weight
        return x

    def scanned(x):
        return jax.lax.scan(lambda h, weight: (h @ weight, None), x, weights)[0]

    flops, bytes_accessed, why = cost_figures(jax.jit(unrolled).lower(x).compile())
    assert flops >= 4 * 2 * 8 * 64 * 64 and bytes_accessed and why == ""
    loop = jax.jit(scanned).lower(x).compile()
    assert cost_figures(loop)[0] < flops / 2
    assert cost_figures(loop, scanned_blocks=True) == (None, None, SCANNED)
    line = roofline(CHIPS["v5e"], None, None, model_flops=1.0, no_cost=SCANNED)
    assert (line.bound, line.mfu, line.no_cost) == ("peak", None, SCANNED)


def test_input_rate_of_a_host():
    rate = input_rate("fslf", clips_per_chip_step=8, chips_per_host=4, host_vcpus=112, step_seconds=0.1)
    assert rate.needed_per_host == pytest.approx(320.0)
    assert rate.keeps_up is (rate.available_per_host >= 320.0)
    slow = input_rate("cfas", clips_per_chip_step=64, chips_per_host=4, host_vcpus=10, step_seconds=0.1)
    assert slow.keeps_up is False


def test_pretraining_flops_agree_with_xla():
    cfg = VideoMAEConfig.from_variant("small", num_frames=16, img_size=224)
    graphdef, state = nnx.split(nnx.eval_shape(lambda: VideoMAEPretrainer(cfg, rngs=nnx.Rngs(0))))
    clips = jax.ShapeDtypeStruct((1, 16, 224, 224, 3), jnp.float32)

    def forward(state, x):
        model = nnx.merge(graphdef, state)
        return model.loss(x, jax.random.key(0))[0]

    measured = jax.jit(forward).lower(state, clips).cost_analysis()["flops"]
    assert abs(measured - analytic_pretrain_forward_flops(cfg)) / measured < 0.05
