"""The assembled train step survives ``jax.export`` serialisation for CPU, CUDA and TPU at once,
and the deserialised step computes what the jitted one does."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

from configs import demo
from mmae_jax.train.assembly import assemble, export_train_step
from mmae_jax.train.steps import create_train_state, init_model_parts


@pytest.mark.slow
def test_serialised_train_step_runs_like_the_jitted_one():
    config = demo.get_config()
    config.data.update(image_size=32, num_frames=4)
    config.batch_size = 4
    config.optim.update(mixup_alpha=0.8, cutmix_alpha=1.0)
    asm = assemble(config, num_classes=8, steps_per_epoch=10)
    restored = export.deserialize(export_train_step(asm, ("cpu", "cuda", "tpu")).serialize())
    assert set(restored.platforms) == {"cpu", "cuda", "tpu"}

    def fresh_state():
        parts = init_model_parts(asm.spec.model_class, asm.built_cfg, asm.trainable_filter, config.seed,
                                 dict(asm.param_shardings, rest=jax.tree.map(lambda _: None, asm.abstract.rest)))
        return create_train_state(parts, asm.state_shardings, asm.tx)

    rng = np.random.default_rng(0)
    batch = {"video": jnp.asarray(rng.integers(0, 256, (4, 4, 32, 32, 3), dtype=np.uint8)),
             "label": jnp.asarray(rng.integers(0, 8, 4, dtype=np.int32))}
    want_state, want = asm.train_step(fresh_state(), batch)
    got_state, got = restored.call(fresh_state(), batch)
    np.testing.assert_allclose(float(got["loss"]), float(want["loss"]), rtol=1e-6)
    for got_leaf, want_leaf in zip(jax.tree.leaves(got_state["trainable"]), jax.tree.leaves(want_state["trainable"])):
        np.testing.assert_allclose(got_leaf, want_leaf, rtol=1e-5, atol=1e-7)
    assert all(isinstance(key, str) for key in got_state["trainable"]["encoder"]["blocks"])
