"""``model.scan_blocks``: the blocks run as one ``jax.lax.scan`` (mmae_jax/model/block_scan.py)
give the numbers, gradients, random masks and state of the unrolled blocks, hold the block once in
the program, and the run spec refuses a non-bool value."""

import copy

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from mmae_jax.config.defaults import base_config
from mmae_jax.config.validate import validate_spec
from mmae_jax.errors import ConfigError
from mmae_jax.model import VideoMAEClassifier, VideoMAEConfig, VideoMAEPretrainer
from mmae_jax.model.info import forward_flops
from mmae_jax.model.layers import apply_blocks, make_blocks
from mmae_jax.train.steps import classification_loss, make_train_step, split_model

REMAT = ("none", "full", "dots", "dots_no_batch")
# A small model: 8 tokens of width 32, 3 encoder blocks, 2 decoder blocks (4 tokens visible in pre-training).
SMALL = dict(embed_dim=32, depth=3, num_heads=2, decoder_embed_dim=16, decoder_depth=2, decoder_num_heads=2,
             num_frames=4, img_size=32, num_classes=5, head_init_scale=1.0, attention_impl="einsum", mask_ratio=0.5)
VIDEO = jax.random.normal(jax.random.key(0), (4, 4, 32, 32, 3))


def small_config(**changes) -> VideoMAEConfig:
    return VideoMAEConfig.from_variant("tiny", **{**SMALL, **changes})


def _loss_and_grads(model_class, cfg: VideoMAEConfig, train: bool):
    """``(loss, gradients, state after the call)`` of the summed output (classifier) or the MAE loss
    (pre-training model), from one jitted call; ``train``: dropout and drop path on."""
    model = model_class(cfg, rngs=nnx.Rngs(0, dropout=1))
    model.train() if train else model.eval()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    @jax.jit
    def run(params, rest):
        model = nnx.merge(graphdef, params, rest)
        loss = (lambda model: model.loss(VIDEO, jax.random.key(2))[0]) if model_class is VideoMAEPretrainer \
            else (lambda model: model(VIDEO).sum())
        value, grads = nnx.value_and_grad(loss)(model)
        return value, grads, nnx.state(model, nnx.Not(nnx.Param))

    return run(params, rest)


def _assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    leaves_a, leaves_b = jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves_with_path(b)
    assert [path for path, _ in leaves_a] == [path for path, _ in leaves_b]
    for (path, x), (_, y) in zip(leaves_a, leaves_b):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=jax.tree_util.keystr(path))


# The classifier under every remat policy and the pre-training model without remat in the fast
# loop; the pre-training model under the other policies (its decoder runs the same scan) in the
# slow tier.
SCAN_CASES = [pytest.param(model_class, remat_policy, id=f"{remat_policy}-{name}",
                           marks=() if name == "classifier" or remat_policy == "none" else pytest.mark.slow)
              for name, model_class in (("classifier", VideoMAEClassifier), ("pretrainer", VideoMAEPretrainer))
              for remat_policy in REMAT]


@pytest.mark.parametrize(("model_class", "remat_policy"), SCAN_CASES)
def test_scan_gives_the_unrolled_outputs_and_gradients(model_class, remat_policy):
    cfg = small_config(remat_policy=remat_policy)
    unrolled = _loss_and_grads(model_class, cfg, train=False)
    scanned = _loss_and_grads(model_class, cfg.replace(scan_blocks=True), train=False)
    assert float(jnp.abs(unrolled[0])) > 0
    _assert_trees_close(unrolled[:2], scanned[:2])


@pytest.mark.parametrize("model_class", [VideoMAEClassifier, pytest.param(VideoMAEPretrainer, marks=pytest.mark.slow)],
                         ids=["classifier", "pretrainer"])
def test_scan_draws_the_unrolled_dropout_and_drop_path_masks_and_leaves_the_same_state(model_class):
    """In training mode every layer uses its own streams with its own rate: the scan gives the
    same masks (so the same loss), and the dropout counts it writes back are the unrolled ones."""
    cfg = small_config(drop_path_rate=0.5, drop_rate=0.3, remat_policy="full")
    unrolled = _loss_and_grads(model_class, cfg, train=True)
    scanned = _loss_and_grads(model_class, cfg.replace(scan_blocks=True), train=True)
    evaluated = _loss_and_grads(model_class, cfg, train=False)
    trained, plain = unrolled[1]["encoder"]["blocks"], evaluated[1]["encoder"]["blocks"]
    change = optax.global_norm(jax.tree.map(jnp.subtract, trained, plain))
    assert change > 0.01 * optax.global_norm(plain)                   # the masks change the blocks' gradients
    _assert_trees_close(unrolled, scanned)
    counts = [int(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(scanned[2])
              if "count" in jax.tree_util.keystr(path) and "blocks" in jax.tree_util.keystr(path)]
    assert max(counts) > 0                                            # the counts did advance


def test_one_optimiser_step_through_the_train_step_is_the_same():
    cfg = small_config(drop_path_rate=0.4, drop_rate=0.1)
    optim = ml_collections.ConfigDict(dict(label_smoothing=0.1, mixup_alpha=0.0, cutmix_alpha=0.0))
    batch = dict(video=VIDEO, label=jnp.arange(4) % 5)

    def stepped(cfg):
        parts = split_model(VideoMAEClassifier(cfg, rngs=nnx.Rngs(params=0, dropout=1)), nnx.Param)
        tx = optax.sgd(0.1)      # an update in proportion to the gradient (Adam's sign-like step magnifies rounding)
        state = dict(step=jnp.zeros((), jnp.int32), opt_state=tx.init(parts.trainable),
                     trainable=parts.trainable, frozen=parts.frozen)
        step = jax.jit(make_train_step(parts.train_graphdef, parts.rest, tx, 0, classification_loss(optim, 5),
                                       normalization=None))
        new_state, metrics = step(state, batch)
        return new_state["trainable"], metrics["loss"]

    (unrolled, loss_unrolled), (scanned, loss_scanned) = stepped(cfg), stepped(cfg.replace(scan_blocks=True))
    np.testing.assert_allclose(loss_scanned, loss_unrolled, rtol=1e-6)
    _assert_trees_close(unrolled, scanned)


def _probe_blocks(depth: int, drop_path_rate: float):
    """Blocks of width ``2 * depth`` whose residual branches write a constant 1 into their own
    feature: block i's attention branch into feature i, its MLP branch into feature depth + i (zero
    output matrices, one-hot biases). From a zero input, feature j of the output is branch j's
    drop-path mask over its keep probability."""
    dim = 2 * depth
    blocks = make_blocks(dim, depth, 2, 2.0, drop_rate=0.0, drop_path_rate=drop_path_rate, init_values=0.0,
                         norm_eps=1e-6, dtype=jnp.float32, attention_impl="einsum", rngs=nnx.Rngs(0, dropout=3))
    for i, block in enumerate(blocks):
        for layer, feature in ((block.attn.proj, i), (block.mlp.fc2, depth + i)):
            layer.kernel[...] = jnp.zeros_like(layer.kernel[...])
            layer.bias[...] = jax.nn.one_hot(feature, dim)
    return blocks


def test_each_layer_drops_paths_at_its_own_rate_with_independent_masks():
    depth, samples = 4, 4000
    rates = np.array([0.6 * i / (depth - 1) for i in range(depth)])           # 0, 0.2, 0.4, 0.6
    keep = np.concatenate([1 - rates, 1 - rates])                             # attention, MLP branches
    x = jnp.zeros((samples, 1, 2 * depth))
    outputs = {scan: np.asarray(apply_blocks(_probe_blocks(depth, 0.6), x, "none", scan=scan))[:, 0]
               for scan in (False, True)}
    np.testing.assert_allclose(outputs[True], outputs[False], rtol=1e-6)      # the same masks
    masks = outputs[True] * keep                                              # [samples, 2 * depth] in {0, 1}
    np.testing.assert_allclose(masks, np.round(masks), atol=1e-5)
    # Each branch keeps a sample with its layer's probability (4000 samples: std <= 0.008).
    np.testing.assert_allclose(masks.mean(0), keep, atol=0.035)
    # Branches draw independent masks: P(both kept) = product of the two (none is a copy of another).
    both = masks.T @ masks / samples
    expected = np.outer(keep, keep) + np.diag(keep - keep ** 2)
    np.testing.assert_allclose(both, expected, atol=0.035)


def _lowered_text(cfg: VideoMAEConfig) -> str:
    model = VideoMAEClassifier(cfg, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    return jax.jit(lambda state, x: nnx.merge(graphdef, state)(x)).lower(state, VIDEO).as_text()


def test_the_scanned_program_holds_the_block_once():
    """Unrolled, each block adds its matrix products to the program; scanned, the program is the
    same size at any depth, with the block in one while loop."""
    def products(depth: int, scan: bool) -> tuple[int, int]:
        text = _lowered_text(small_config(depth=depth, scan_blocks=scan))
        return text.count("stablehlo.dot_general"), text.count("stablehlo.while")

    unrolled = {depth: products(depth, False) for depth in (2, 4)}
    scanned = {depth: products(depth, True) for depth in (2, 4)}
    per_block = (unrolled[4][0] - unrolled[2][0]) // 2
    assert per_block >= 6                       # qkv, scores, values, proj, fc1, fc2
    assert unrolled[2][1] == unrolled[4][1] == 0
    assert scanned[2] == scanned[4] and scanned[4][1] == 1
    assert scanned[4][0] == unrolled[4][0] - 3 * per_block


def test_model_info_counts_the_flops_of_every_block_when_scanned():
    """XLA's cost analysis counts a loop's body once; model-info's forward FLOPs do not change."""
    cfg = small_config(depth=4)
    assert forward_flops(cfg.replace(scan_blocks=True)) == forward_flops(cfg) > forward_flops(cfg.replace(depth=2))


def test_scanned_blocks_are_stacked_in_the_compute_dtype():
    """The matrices enter the scan already in bfloat16 (nnx.Linear casts them so anyway), the rest
    of the parameters in float32; the numbers are those of the unrolled bfloat16 model."""
    cfg = small_config(dtype="bfloat16")
    model = VideoMAEClassifier(cfg.replace(scan_blocks=True), rngs=nnx.Rngs(0))
    jaxpr = jax.make_jaxpr(lambda x: model(x))(VIDEO)
    scan = next(eqn for eqn in jaxpr.jaxpr.eqns if eqn.primitive.name == "scan")
    stacked = [var.aval for var in scan.invars if var.aval.ndim >= 1 and var.aval.shape[0] == cfg.depth]
    matrices = {aval.dtype for aval in stacked if aval.ndim == 3}
    vectors = {aval.dtype for aval in stacked if aval.ndim == 2}
    assert matrices == {jnp.dtype(jnp.bfloat16)} and jnp.dtype(jnp.float32) in vectors
    unrolled = VideoMAEClassifier(cfg, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(model(VIDEO), unrolled(VIDEO), rtol=2e-2, atol=2e-2)


def test_the_run_spec_takes_a_bool_scan_blocks_and_refuses_anything_else():
    config = base_config()
    assert config.model.scan_blocks is False
    config.model.scan_blocks = True
    assert validate_spec(config).scan_blocks is True
    for bad in ("yes", 1):
        values = copy.deepcopy(config.to_dict())
        values["model"]["scan_blocks"] = bad                         # as a config file could set it
        wrong = ml_collections.ConfigDict(values)
        with pytest.raises(ConfigError, match="model.scan_blocks"):
            validate_spec(wrong)
        with pytest.raises(ConfigError, match="scan_blocks"):
            small_config(scan_blocks=bad)
