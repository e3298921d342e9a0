"""The MAE pre-training task: tube-masked reconstruction of fused sequences (labels unused).

Data: ``config.corpus`` (see mmae_jax/data/corpus.py: unlabeled corpora and labelled sets'
train clips, never a test clip of ``config.data``), or ``config.data``'s train split.

At evaluation epochs: the reconstruction loss on the validation clips (fixed masks, so the
numbers are comparable across epochs) and a picture of original / masked / reconstructed
frames. At the end: ``final_model/`` (kind ``pretrainer``), which ``init=`` of a
fine-tuning config loads (encoder tensors by path; the decoder is left unused).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mmae_jax.data import corpus, pipeline
from mmae_jax.data.normalize import denormalize, to_model_input
from mmae_jax.model.masking import boolean_mask
from mmae_jax.model.patches import patchify, unpatchify
from mmae_jax.model.pretrain import token_grid
from mmae_jax.train.logs import MetricWriter
from mmae_jax.train.mesh import to_host, traced_on
from mmae_jax.train.steps import merge_model
from mmae_jax.train.tasks import Params, RunContext, TaskState

EVAL_MASK_SEED = 1234


def reconstruct(cfg, video: jax.Array, predictions: jax.Array, masked_idx: jax.Array) -> jax.Array:
    """Clips ``[B, T, H, W, C]`` with the masked tubes replaced by their predictions.

    With ``norm_pix_loss`` the predictions are standardised tubes; they are mapped back with
    each original tube's own per-channel mean and std, as VideoMAE's visualisation does.
    """
    tubes = patchify(video, cfg.tubelet_size, cfg.patch_size)                  # [B, N, P, C]
    chosen = jnp.take_along_axis(tubes, masked_idx[:, :, None, None], axis=1)
    predicted = predictions.reshape(chosen.shape)
    if cfg.norm_pix_loss:
        mean = chosen.mean(axis=-2, keepdims=True)
        std = jnp.sqrt(chosen.var(axis=-2, keepdims=True, ddof=1)) + 1e-6
        predicted = predicted * std + mean
    batch = jnp.arange(tubes.shape[0])[:, None]
    filled = tubes.at[batch, masked_idx].set(predicted.astype(tubes.dtype))
    return unpatchify(filled.reshape(*filled.shape[:2], -1), token_grid(cfg, video.shape), cfg.tubelet_size,
                      cfg.patch_size)


def make_eval_fn(graphdef, rest, cfg, normalization: str):
    """``fn(state, video) -> (per-clip loss [B], reconstruction, hidden)`` with fixed masks;
    ``video`` is uint8 pixels; reconstruction (normalised, like the model input) and hidden
    (1 on masked tubes) are ``[B, T, H, W, C]``."""

    def eval_fn(state, video):
        video = to_model_input(video, normalization)
        model = merge_model(graphdef, state, rest)
        _, aux = model.loss(video, jax.random.key(EVAL_MASK_SEED))
        per_clip, predictions, visible, masked = (aux[k] for k in ("per_clip", "predictions", "visible_idx",
                                                                    "masked_idx"))
        grid = token_grid(cfg, video.shape)
        hidden = boolean_mask(masked, predictions.shape[1] + visible.shape[1]).astype(video.dtype)
        hidden = unpatchify(jnp.broadcast_to(hidden[..., None], (*hidden.shape, cfg.patch_dim)), grid,
                            cfg.tubelet_size, cfg.patch_size)                    # 1 where hidden
        return per_clip, reconstruct(cfg, video, predictions, masked), hidden

    return eval_fn


def save_reconstruction_picture(original: np.ndarray, hidden: np.ndarray, reconstructed: np.ndarray,
                                normalization: str, path: str | Path, title: str) -> None:
    """Three rows (original, masked input, reconstruction) of ``[T, H, W, 3]`` frames: the
    original as uint8 pixels, the reconstruction normalised; ``hidden`` is 1 on the masked
    tubes, drawn grey in the middle row."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    original = to_model_input(np.asarray(original), normalization)
    rows = [("original", original), ("masked input", original), ("reconstruction", reconstructed)]
    frames = original.shape[0]
    fig, axes = plt.subplots(3, frames, figsize=(1.1 * frames, 3.6), squeeze=False)
    for row, (name, clip) in enumerate(rows):
        images = np.clip(np.asarray(denormalize(np.asarray(clip, np.float32), normalization)), 0.0, 1.0)
        if name == "masked input":
            images = np.where(np.asarray(hidden) > 0, 0.5, images)
        for t in range(frames):
            axes[row, t].imshow(images[t])
            axes[row, t].set_axis_off()
        axes[row, 0].set_title(name, fontsize=7, loc="left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


@dataclasses.dataclass
class PretrainingState(TaskState):
    """The reconstruction losses of the evaluation epochs so far."""

    history: list[dict] = dataclasses.field(default_factory=list)   # {step, split, loss}


class PretrainingTask:
    state_class = PretrainingState

    def __init__(self):
        self._eval_fn = None
        self.corpus: corpus.Corpus | None = None

    def open_data(self, config) -> corpus.Corpus:
        """The pre-training corpus ``config.corpus`` (empty: ``config.data``'s train split),
        refused when it would read a test clip of ``config.data``."""
        self.corpus = corpus.open_corpus(config.data, corpus.entries(config.get("corpus", "")))
        return self.corpus

    def train_batches(self, context: RunContext, start_step: int):
        config = context.config
        if not config.get("corpus"):
            return pipeline.make_train_iterator(config.data, global_batch_size=config.batch_size,
                                                sharding=context.data_sharding, start_step=start_step)
        return corpus.make_train_iterator(self.corpus, global_batch_size=config.batch_size,
                                          sharding=context.data_sharding, start_step=start_step)

    def evaluate(self, context: RunContext, params: Params, step: int) -> dict:
        """Mean reconstruction loss over the validation clips (train clips if there are none),
        and the picture ``reconstruction_step<step>.png`` of the first clip."""
        config = context.config
        if self._eval_fn is None:
            self._eval_fn = jax.jit(traced_on(context.mesh, make_eval_fn(
                context.eval_graphdef, context.rest, context.model_cfg, config.data.normalization)))
        split = "validation" if context.dataset.num_examples("validation") else "train"
        losses, picture = [], None
        for batch in pipeline.make_eval_iterator(config.data, split, global_batch_size=config.eval.batch_size,
                                                 sharding=context.data_sharding):
            per_clip, reconstructed, hidden = self._eval_fn(params, batch["video"])
            keep = to_host(batch["mask"]).astype(bool)
            losses.append(to_host(per_clip)[keep])
            if picture is None:
                picture = (to_host(batch["video"])[0], to_host(hidden)[0], to_host(reconstructed)[0])
        loss = float(np.concatenate(losses).mean())
        if context.is_main and picture is not None:
            save_reconstruction_picture(*picture, config.data.normalization,
                                        context.workdir / f"reconstruction_step{step}.png",
                                        f"step {step}: {split} reconstruction loss {loss:.4f}")
        return {"split": split, "loss": loss}

    def at_evaluation(self, context: RunContext, step: int, params: Params, state: PretrainingState,
                      writer: MetricWriter) -> PretrainingState:
        report = self.evaluate(context, params, step)
        writer.write(step, dict(loss=report["loss"]), "validation")
        return PretrainingState(history=[*state.history, dict(step=step, **report)])

    def finish(self, context: RunContext, params: Params, state: PretrainingState) -> dict:
        context.export("final_model", params)
        return dict(context.run_summary(), corpus=corpus.entries(context.config.get("corpus", "")),
                    reconstruction_history=state.history,
                    final_model=str(context.workdir / "final_model"))
