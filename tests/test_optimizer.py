"""Optimiser pieces: decay mask, layer-wise lr decay, schedule, mixup/cutmix, label smoothing."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from mmae_jax.model import VideoMAEClassifier, VideoMAEConfig
from mmae_jax.train.mixup import mix_batch, smooth_labels
from mmae_jax.train.optimizer import decay_mask, layer_id, layerwise_lr_decay, make_optimizer


def tiny_params():
    cfg = VideoMAEConfig.from_variant("tiny", num_frames=4, img_size=32, num_classes=3)
    return nnx.state(VideoMAEClassifier(cfg, rngs=nnx.Rngs(0)), nnx.Param).to_pure_dict(), cfg


def test_weight_decay_skips_biases_norms_and_1d():
    params, _ = tiny_params()
    mask = decay_mask(params)
    assert mask["encoder"]["blocks"][0]["attn"]["qkv"]["kernel"]
    assert mask["head"]["kernel"] and mask["encoder"]["patch_embed"]["proj"]["kernel"]
    assert not mask["encoder"]["blocks"][0]["attn"]["q_bias"]
    assert not mask["encoder"]["blocks"][0]["norm1"]["scale"]
    assert not mask["head"]["bias"] and not mask["fc_norm"]["bias"]


def test_layer_ids_follow_videomae():
    assert layer_id("encoder.patch_embed.proj.kernel", 12) == 0
    assert layer_id("encoder.blocks.0.attn.qkv.kernel", 12) == 1
    assert layer_id("blocks.11.mlp.fc1.kernel", 12) == 12
    assert layer_id("head.kernel", 12) == 13 and layer_id("fc_norm.scale", 12) == 13


def test_layerwise_decay_scales_updates_by_depth():
    params, cfg = tiny_params()
    ones = jax.tree.map(jnp.ones_like, params)
    scaled, _ = layerwise_lr_decay(params, 0.5, cfg.depth).update(ones, optax.EmptyState())
    assert float(scaled["head"]["kernel"][0, 0]) == 1.0
    assert float(scaled["encoder"]["blocks"][3]["mlp"]["fc1"]["kernel"][0, 0]) == 0.5
    assert float(scaled["encoder"]["blocks"][0]["mlp"]["fc1"]["kernel"][0, 0]) == 0.5 ** 4
    assert float(scaled["encoder"]["patch_embed"]["proj"]["bias"][0]) == 0.5 ** 5


def test_schedule_warms_up_then_decays_and_scales_with_batch():
    params, cfg = tiny_params()
    optim = ml_collections.ConfigDict(dict(lr=1e-3, min_lr=1e-6, warmup_epochs=2.0, weight_decay=0.05, decay_all=False, eps=1e-8, b1=0.9,
                                           b2=0.999, layer_decay=0.75, grad_clip_norm=1.0, grad_accum_steps=2,
                                           scale_lr_by_batch=True))
    tx, schedule = make_optimizer(optim, params, depth=cfg.depth, total_updates=100, updates_per_epoch=10,
                                  batch_size=512)
    assert float(schedule(0)) == 0.0                                   # VideoMAE's np.linspace(0, peak, 20):
    assert np.isclose(float(schedule(10)), 2e-3 * 10 / 19)             # the peak is reached at update 19
    assert np.isclose(float(schedule(19)), 2e-3)                       # peak = 1e-3 * 512 / 256
    assert np.isclose(float(schedule(20)), 2e-3)
    assert np.isclose(float(schedule(100)), 2e-6)                      # min_lr scales with the batch too
    state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, state = tx.update(grads, state, params)                   # first micro-step: accumulate only
    assert all(float(jnp.abs(u).max()) == 0.0 for u in jax.tree.leaves(updates))


def test_label_smoothing_and_mixup_keep_probability_mass():
    targets = smooth_labels(jnp.array([0, 2]), 4, 0.1)
    np.testing.assert_allclose(targets, [[0.925, 0.025, 0.025, 0.025], [0.025, 0.025, 0.925, 0.025]])
    video = jnp.stack([jnp.zeros((2, 8, 8, 3)), jnp.ones((2, 8, 8, 3))])
    onehot = jax.nn.one_hot(jnp.array([0, 1]), 2)
    for kwargs in (dict(mixup_alpha=0.8, cutmix_alpha=0.0), dict(mixup_alpha=0.0, cutmix_alpha=1.0)):
        mixed, mixed_targets = mix_batch(jax.random.key(3), video, onehot, **kwargs)
        np.testing.assert_allclose(mixed_targets.sum(-1), 1.0, rtol=1e-6)
        # Clip 0 (zeros) mixed with clip 1 (ones): its mean pixel is the weight of clip 1.
        np.testing.assert_allclose(float(mixed[0].mean()), float(mixed_targets[0, 1]), atol=1e-5)


def test_mix_batch_with_both_alphas_switches_between_mixup_and_a_cutmix_box():
    """Clip 0 is zeros, clip 1 ones: Mixup gives clip 0 one fractional value everywhere, CutMix a box of
    ones in zeros; either way clip 0's mean pixel is the target weight of clip 1."""
    video = jnp.stack([jnp.zeros((2, 16, 16, 3)), jnp.ones((2, 16, 16, 3))])
    onehot = jax.nn.one_hot(jnp.array([0, 1]), 2)
    kinds = set()
    for seed in range(16):
        mixed, targets = mix_batch(jax.random.key(seed), video, onehot, mixup_alpha=0.8, cutmix_alpha=1.0)
        values = set(np.unique(np.asarray(mixed[0])).tolist())
        if values <= {0.0, 1.0}:
            kinds.add("cutmix")
        else:
            assert len(values) == 1, values
            kinds.add("mixup")
        np.testing.assert_allclose(float(mixed[0].mean()), float(targets[0, 1]), atol=1e-5)
        np.testing.assert_allclose(np.asarray(mixed[1]), 1.0 - np.asarray(mixed[0]), atol=1e-6)
    assert kinds == {"mixup", "cutmix"}


def recipe_optim(recipe: str):
    from mmae_jax.config.defaults import base_config
    from mmae_jax.config.recipes import apply_recipe
    config = base_config()
    apply_recipe(config, recipe)
    return config.optim


def decayed_after_one_step(optim) -> dict:
    """Path -> whether one update with zero gradients moved the (all-ones) parameter (no warm-up,
    so the first update has a learning rate)."""
    optim = optim.copy_and_resolve_references()
    optim.warmup_epochs = 0.0
    params, cfg = tiny_params()
    params = jax.tree.map(jnp.ones_like, params)
    tx, _ = make_optimizer(optim, params, depth=cfg.depth, total_updates=10, updates_per_epoch=5,
                           batch_size=16)
    updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
    moved = jax.tree_util.tree_map_with_path(
        lambda path, u: (".".join(str(getattr(k, "key", k)) for k in path), bool(jnp.any(u != 0))), updates)
    return dict(jax.tree.leaves(moved, is_leaf=lambda x: isinstance(x, tuple)))


def test_paper_recipe_decays_every_weight_and_videomae_skips_biases_and_norms():
    paper = decayed_after_one_step(recipe_optim("multimae_der"))
    assert all(paper.values()) and "encoder.blocks.0.norm1.scale" in paper and "head.bias" in paper
    videomae = decayed_after_one_step(recipe_optim("videomae"))
    assert videomae["encoder.blocks.0.attn.qkv.kernel"] and videomae["head.kernel"]
    assert not videomae["encoder.blocks.0.norm1.scale"] and not videomae["head.bias"]
    assert not videomae["encoder.blocks.0.attn.q_bias"]


def test_paper_recipe_is_keras_adamw_at_a_constant_rate():
    optim = recipe_optim("multimae_der")
    assert (optim.eps, optim.lr, optim.weight_decay) == (1e-7, 1e-2, 0.05)
    params, cfg = tiny_params()
    _, schedule = make_optimizer(optim, params, depth=cfg.depth, total_updates=6700,
                                 updates_per_epoch=67, batch_size=16)
    assert {float(schedule(step)) for step in (0, 1, 3000, 6699)} == {float(np.float32(1e-2))}


def test_logged_learning_rate_is_the_one_the_last_update_used():
    from mmae_jax.train.optimizer import learning_rate_used

    schedule = optax.linear_schedule(1.0, 0.0, 10)
    for accum in (1, 2):
        tx = optax.MultiSteps(optax.sgd(schedule), every_k_schedule=accum)
        params = jnp.zeros(())
        state = tx.init(params)
        for done in range(1, 7):
            updates, state = tx.update(jnp.ones(()), state, params)
            before, params = params, optax.apply_updates(params, updates)
            if done % accum == 0:                      # an update was made at this step
                np.testing.assert_allclose(float(before - params), learning_rate_used(schedule, done, accum),
                                           rtol=1e-6)
