"""The Flax VideoMAE: sizes, shapes, position table, masking, training and dtype paths."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from mmae_jax.cli import main as cli_main
from mmae_jax.model import VideoMAEClassifier, VideoMAEConfig, VideoMAEPretrainer, tube_mask
from mmae_jax.model.attention import einsum_attention, resolve_attention_impl
from mmae_jax.model.info import abstract_classifier, analytic_forward_flops, count_parameters, forward_flops
from mmae_jax.model.masking import boolean_mask
from mmae_jax.model.patches import patchify, pixel_targets, unpatchify
from mmae_jax.model.position import sinusoid_position_table

TINY = dict(num_frames=4, img_size=32, num_classes=5)


def official_parameter_count(dim: int, depth: int, classes: int, mlp_ratio: int = 4) -> int:
    """Parameters of the official PyTorch VideoMAE classifier, summed tensor by tensor."""
    patch_embed = 3 * 2 * 16 * 16 * dim + dim
    block = (2 * dim                                  # norm1
             + 3 * dim * dim + 2 * dim                # qkv.weight, q_bias, v_bias
             + dim * dim + dim                        # proj
             + 2 * dim                                # norm2
             + dim * mlp_ratio * dim + mlp_ratio * dim  # fc1
             + mlp_ratio * dim * dim + dim)           # fc2
    return patch_embed + depth * block + 2 * dim + dim * classes + classes


@pytest.mark.parametrize("variant, expected", [
    ("small", 21_882_631), ("base", 86_232_583), ("large", 303_867_911)])
def test_parameter_counts_equal_official(variant, expected):
    cfg = VideoMAEConfig.from_variant(variant, num_classes=7)
    assert count_parameters(abstract_classifier(cfg)) == expected


# slow: XLA lowers the 32-block model for its FLOPs (10-20 s); the model-info command stays in the
# fast loop through the paper-head test, the counts through test_parameter_counts_equal_official.
@pytest.mark.slow
def test_huge_count_from_cli_matches_formula(capsys):
    assert cli_main(["model-info", "--variant", "huge", "--num-classes", "7"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("parameters"))
    assert int(line.split()[-1].replace(",", "")) == official_parameter_count(1280, 32, 7)
    assert "tokens per clip          1,568" in out


def test_linear_probe_trains_only_the_head():
    cfg = VideoMAEConfig.from_variant("large", num_classes=7, freeze_backbone=True)
    from mmae_jax.model import trainable_filter
    assert count_parameters(abstract_classifier(cfg), trainable_filter(cfg)) == 7_175


def test_paper_head_trains_a_fresh_norm_and_the_dense_9223_parameters(capsys):
    assert cli_main(["model-info", "--variant", "large", "--num-classes", "7", "--linear-probe",
                     "--paper-head"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("trainable"))
    assert line.split()[-1] == "9,223"                      # the notebook's model.summary()


def test_fresh_head_norm_is_not_filled_from_a_checkpoint_and_gets_gradients():
    from mmae_jax.model import trainable_filter
    cfg = VideoMAEConfig.from_variant("tiny", freeze_backbone=True, head_norm="fresh", **TINY)
    model = VideoMAEClassifier(cfg, rngs=nnx.Rngs(0))
    assert model.fc_norm is None
    paths = {".".join(map(str, path)) for path, _ in nnx.to_flat_state(nnx.state(model, trainable_filter(cfg)))}
    assert paths == {"head.kernel", "head.bias", "head_norm.scale", "head_norm.bias"}
    x = jax.random.normal(jax.random.key(1), (2, 4, 32, 32, 3))
    trainable, rest = nnx.state(model, trainable_filter(cfg), ...)
    graphdef = nnx.graphdef(model)

    def loss(params):
        return nnx.merge(graphdef, params, rest)(x).sum()

    grads = jax.grad(loss)(trainable)
    assert float(jnp.abs(grads["head_norm"]["scale"][...]).sum()) > 0


def test_glorot_head_is_keras_dense_initialisation():
    cfg = VideoMAEConfig.from_variant("tiny", head_init="glorot_uniform", **TINY)
    head = VideoMAEClassifier(cfg, rngs=nnx.Rngs(0)).head
    limit = np.sqrt(6.0 / (cfg.embed_dim + cfg.num_classes))
    kernel = np.asarray(head.kernel[...])
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.8 * limit
    assert not np.asarray(head.bias[...]).any()


def test_forward_flops_agree_with_matmul_formula():
    cfg = VideoMAEConfig.from_variant("small", num_classes=7)
    measured, formula = forward_flops(cfg), analytic_forward_flops(cfg)
    assert abs(measured - formula) / formula < 0.05


def original_sinusoid_table(n_position: int, d_hid: int) -> np.ndarray:
    """VideoMAE's get_sinusoid_encoding_table, written as the original does it."""
    def angle_vec(position):
        return [position / np.power(10000, 2 * (hid_j // 2) / d_hid) for hid_j in range(d_hid)]
    table = np.array([angle_vec(pos) for pos in range(n_position)])
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return table


@pytest.mark.parametrize("positions, dim", [(1568, 384), (392, 64), (7, 10)])
def test_position_table_matches_original_formula(positions, dim):
    np.testing.assert_allclose(sinusoid_position_table(positions, dim),
                               original_sinusoid_table(positions, dim), atol=1e-6)


@pytest.mark.parametrize("frames, size", [(16, 32), (8, 48), (2, 16)])
def test_classifier_output_shape_any_grid(frames, size):
    cfg = VideoMAEConfig.from_variant("tiny", num_frames=frames, img_size=size, num_classes=3)
    model = VideoMAEClassifier(cfg, rngs=nnx.Rngs(0))
    x = jnp.ones((2, frames, size, size, 3))
    assert model(x).shape == (2, 3)
    assert model.features(x).shape == (2, cfg.embed_dim)


def test_no_mean_pooling_path_uses_final_norm_and_first_token():
    cfg = VideoMAEConfig.from_variant("tiny", use_mean_pooling=False, **TINY)
    model = VideoMAEClassifier(cfg, rngs=nnx.Rngs(0))
    assert model.fc_norm is None and model.encoder.norm is not None
    x = jax.random.normal(jax.random.key(1), (2, 4, 32, 32, 3))
    tokens = model.encoder(x)
    np.testing.assert_allclose(model.features(x), tokens[:, 0], atol=1e-6)


def test_head_is_initialised_scaled_down():
    cfg = VideoMAEConfig.from_variant("tiny", **TINY)
    scaled = VideoMAEClassifier(cfg, rngs=nnx.Rngs(0)).head.kernel[...]
    unscaled = VideoMAEClassifier(cfg.replace(head_init_scale=1.0), rngs=nnx.Rngs(0)).head.kernel[...]
    np.testing.assert_allclose(scaled, unscaled * 0.001, rtol=1e-6)


def test_tube_mask_keeps_exact_count_and_same_positions_each_frame():
    grid = (8, 14, 14)
    visible, masked = tube_mask(jax.random.key(0), 3, grid, 0.9)
    assert visible.shape == (3, 8 * round(196 * 0.1)) and masked.shape == (3, 8 * 176)
    for b in range(3):
        vis = np.asarray(visible[b]).reshape(8, -1)
        spatial = vis - (np.arange(8) * 196)[:, None]
        assert (spatial == spatial[0]).all()                  # same positions at every time step
        everything = np.concatenate([np.asarray(visible[b]), np.asarray(masked[b])])
        assert sorted(everything.tolist()) == list(range(8 * 196))
    assert not np.array_equal(visible[0], visible[1])         # each clip draws its own mask
    assert boolean_mask(masked, 8 * 196).sum(axis=1).tolist() == [8 * 176] * 3


def test_patchify_round_trip_and_target_normalisation():
    x = jax.random.uniform(jax.random.key(0), (2, 4, 32, 32, 3))
    tubes = patchify(x, 2, 16)
    assert tubes.shape == (2, 8, 2 * 16 * 16, 3)
    np.testing.assert_array_equal(unpatchify(tubes.reshape(2, 8, -1), (2, 2, 2), 2, 16), x)
    # Tube 0 is frames 0-1, rows 0-15, columns 0-15, pixels ordered (t, y, x).
    np.testing.assert_array_equal(tubes[0, 0], np.asarray(x[0, :2, :16, :16]).reshape(-1, 3))
    targets = np.asarray(pixel_targets(x, 2, 16, normalize=True)).reshape(2, 8, 512, 3)
    ref = np.asarray(tubes)
    ref = (ref - ref.mean(-2, keepdims=True)) / (ref.std(-2, ddof=1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(targets, ref, atol=1e-5)


def test_pretrainer_shapes_and_loss_on_masked_tubes_only():
    cfg = VideoMAEConfig.from_variant("tiny", num_frames=4, img_size=64, mask_ratio=0.75)
    model = VideoMAEPretrainer(cfg, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(2), (2, 4, 64, 64, 3))
    visible, masked = tube_mask(jax.random.key(3), 2, cfg.grid, cfg.mask_ratio)
    assert model.encoder(x, visible).shape == (2, 2 * 4, cfg.embed_dim)   # visible tokens only
    assert model(x, visible, masked).shape == (2, 2 * 12, 2 * 16 * 16 * 3)
    loss, aux = model.loss(x, jax.random.key(3))
    targets = np.asarray(pixel_targets(x, 2, 16, True))
    chosen = np.take_along_axis(targets, np.asarray(aux["masked_idx"])[..., None], axis=1)
    np.testing.assert_allclose(loss, np.mean((np.asarray(aux["predictions"]) - chosen) ** 2), rtol=1e-5)


def _train_step_fn(graphdef, tx, trace_counter):
    def loss_fn(params, rest, x, y):
        model = nnx.merge(graphdef, params, rest)
        return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()

    @jax.jit
    def step(params, rest, opt_state, x, y):
        trace_counter.append(1)
        loss, grads = jax.value_and_grad(loss_fn)(params, rest, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def test_tiny_model_overfits_and_step_traces_once():
    cfg = VideoMAEConfig.from_variant("tiny", head_init_scale=1.0, **TINY)
    graphdef, params, rest = nnx.split(VideoMAEClassifier(cfg, rngs=nnx.Rngs(0)), nnx.Param, ...)
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)
    traces = []
    step = _train_step_fn(graphdef, tx, traces)
    x = jax.random.normal(jax.random.key(0), (6, 4, 32, 32, 3))
    y = jnp.arange(6) % 5
    losses = []
    for _ in range(60):
        params, opt_state, loss = step(params, rest, opt_state, x, y)
        losses.append(float(loss))
    assert losses[-1] < losses[0] / 10
    assert len(traces) == 1


def test_remat_gives_same_gradients():
    cfg = VideoMAEConfig.from_variant("tiny", **TINY)
    x = jax.random.normal(jax.random.key(0), (2, 4, 32, 32, 3))

    def grads(policy):
        model = VideoMAEClassifier(cfg.replace(remat_policy=policy, head_init_scale=1.0), rngs=nnx.Rngs(0))
        return nnx.grad(lambda m: m(x).sum())(model)

    plain, remat = grads("none"), grads("full")
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(remat)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_bfloat16_path_is_finite_and_close():
    cfg = VideoMAEConfig.from_variant("tiny", head_init_scale=1.0, **TINY)
    x = jax.random.normal(jax.random.key(0), (2, 4, 32, 32, 3))
    full = VideoMAEClassifier(cfg, rngs=nnx.Rngs(0))(x)
    half_model = VideoMAEClassifier(cfg.replace(dtype="bfloat16"), rngs=nnx.Rngs(0))
    half = half_model(x)
    assert half.dtype == jnp.float32 and bool(jnp.isfinite(half).all())
    assert half_model.encoder.blocks[0].attn.qkv.kernel[...].dtype == jnp.float32   # params stay fp32
    np.testing.assert_allclose(half, full, atol=0.1 * float(jnp.abs(full).max()))


def test_stochastic_depth_and_dropout_only_in_training():
    cfg = VideoMAEConfig.from_variant("tiny", drop_path_rate=0.5, drop_rate=0.2, **TINY)
    model = VideoMAEClassifier(cfg, rngs=nnx.Rngs(0, dropout=1))
    x = jax.random.normal(jax.random.key(0), (2, 4, 32, 32, 3))
    model.train()
    assert not np.allclose(model.features(x), model.features(x))
    model.eval()
    np.testing.assert_array_equal(model.features(x), model.features(x))


def test_layer_scale_parameters():
    cfg = VideoMAEConfig.from_variant("tiny", init_values=0.1, **TINY)
    block = VideoMAEClassifier(cfg, rngs=nnx.Rngs(0)).encoder.blocks[0]
    np.testing.assert_allclose(block.gamma_1[...], np.full(cfg.embed_dim, 0.1))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="remat_policy"):
        VideoMAEConfig.from_variant("tiny", remat_policy="sometimes")
    with pytest.raises(ValueError, match="unknown variant"):
        VideoMAEConfig.from_variant("gigantic")
    with pytest.raises(ValueError, match="unknown model config keys"):
        VideoMAEConfig.from_dict({"variant": "tiny", "embeddim": 3})


def test_einsum_attention_equals_dot_product_attention():
    cfg = VideoMAEConfig.from_variant("tiny", head_init_scale=1.0, **TINY)
    x = jax.random.normal(jax.random.key(0), (2, 4, 32, 32, 3))
    reference = VideoMAEClassifier(cfg.replace(attention_impl="xla"), rngs=nnx.Rngs(0))
    einsum = VideoMAEClassifier(cfg.replace(attention_impl="einsum"), rngs=nnx.Rngs(0))
    np.testing.assert_allclose(einsum(x), reference(x), rtol=1e-5, atol=1e-5)
    grads = [jax.tree.leaves(nnx.grad(lambda m: m(x).sum())(m)) for m in (einsum, reference)]
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_einsum_attention_stays_finite_and_exact_for_large_scores():
    """The row maximum is subtracted before exp: scores of several hundred must not overflow."""
    q, k, v = (jax.random.normal(key, (2, 50, 3, 8)) for key in jax.random.split(jax.random.key(1), 3))
    expected = jax.nn.dot_product_attention(q * 300.0, k, v, implementation="xla")
    got = einsum_attention(q * 300.0, k, v)
    assert np.isfinite(np.asarray(got)).all()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # bfloat16 in, bfloat16 out, softmax sums in float32: close to the float32 result.
    bf16 = einsum_attention(*(t.astype(jnp.bfloat16) for t in (q, k, v)))
    assert bf16.dtype == jnp.bfloat16
    expected = jax.nn.dot_product_attention(q, k, v, implementation="xla")
    np.testing.assert_allclose(bf16.astype(jnp.float32), expected, atol=0.05)


def test_auto_attention_resolves_by_the_target_platform_not_the_host():
    assert VideoMAEConfig().attention_impl == "auto"
    assert resolve_attention_impl("auto", "tpu") == "splash"
    assert resolve_attention_impl("auto", "gpu") == resolve_attention_impl("auto", "cuda") == "triton"
    assert resolve_attention_impl("auto", "cpu") == "einsum"
    assert resolve_attention_impl("auto") == resolve_attention_impl("auto", jax.default_backend())
    assert resolve_attention_impl("cudnn", "tpu") == "cudnn"
    with pytest.raises(ValueError, match="attention_impl must be one of"):
        VideoMAEConfig(attention_impl="flash")
