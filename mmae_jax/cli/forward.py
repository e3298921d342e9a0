"""``mmae-jax forward``: run a trained or converted model on an .npy input and save logits or features.

Input: a float .npy of clips, already normalised, in one of three layouts (--layout): ncthw
[B, C, T, H, W] (the official PyTorch VideoMAE's, the default), ntchw [B, T, C, H, W]
(transformers' pixel_values, what AutoImageProcessor gives) or nthwc [B, T, H, W, C] (mmae_jax's
own). Output: logits [B, K], or with --features the pooled features [B, D] of a classifier / the
encoder tokens [B, N, D] of a pretrainer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmae_jax.cli.arguments import add_checkpoint, add_command, checkpoint_of

# Each layout's axes -> [B, T, H, W, C] (the model's).
LAYOUTS = {"ncthw": (0, 2, 3, 4, 1), "ntchw": (0, 1, 3, 4, 2), "nthwc": (0, 1, 2, 3, 4)}


def register(subparsers) -> None:
    parser = add_command(subparsers, "forward", run, __doc__)
    add_checkpoint(parser)
    parser.add_argument("--input", required=True, help=".npy input clips")
    parser.add_argument("--output", required=True, help=".npy file to write")
    parser.add_argument("--layout", choices=tuple(LAYOUTS), default="ncthw",
                        help="axes of --input: ncthw (official VideoMAE), ntchw (transformers), nthwc")
    parser.add_argument("--features", action="store_true", help="save features instead of logits")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from mmae_jax.errors import InputError

    output = Path(args.output)
    if not output.parent.is_dir():
        raise InputError(f"--output {output}: the folder {output.parent} does not exist", "create it first")
    try:
        clips = _read_clips(args.input, args.layout)
        outputs = forward(checkpoint_of(args), clips, features=args.features)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    np.save(output, outputs)
    print(f"wrote {args.output}: {list(outputs.shape)} float32")
    return 0


def forward(checkpoint, clips, *, features: bool):
    """``clips [B, T, H, W, C]`` -> logits ``[B, K]`` or features, as a float32 numpy array.

    ``checkpoint``: a ``ModelChoice``, or a path that ``resolve_checkpoint`` reads (its default
    model; mmae_jax/model/location.py)."""
    import numpy as np
    from flax import nnx

    from mmae_jax.model.location import ModelChoice, resolve_checkpoint

    if not isinstance(checkpoint, ModelChoice):
        checkpoint = resolve_checkpoint(checkpoint)
    model, cfg, kind = checkpoint.load(overrides=dict(dtype="float32"))
    expected = (cfg.num_frames, cfg.img_size, cfg.img_size, cfg.in_chans)
    if tuple(clips.shape[1:]) != expected:
        raise ValueError(f"input clips are {list(clips.shape)} as [B, T, H, W, C]; the model expects "
                         f"[B, {', '.join(map(str, expected))}] (check --layout)")
    if kind == "pretrainer" and not features:
        raise ValueError(f"{checkpoint.label} holds a pre-training model, which has no logits; pass --features "
                         f"for its encoder tokens")
    model.eval()

    @nnx.jit
    def run(model, x):
        if kind == "pretrainer":
            return model.encoder(x)
        return model.features(x) if features else model(x)

    return np.asarray(run(model, clips), dtype=np.float32)


def _read_clips(path: str, layout: str):
    import numpy as np

    clips = np.load(path, allow_pickle=False)
    if clips.ndim != 5 or not np.issubdtype(clips.dtype, np.floating):
        raise ValueError(f"{path}: expected a 5-D float array, got {clips.dtype} {list(clips.shape)}")
    if clips.shape[0] == 0:
        raise ValueError(f"{path}: the batch is empty (shape {list(clips.shape)}); save at least one clip")
    if not np.isfinite(clips).all():
        raise ValueError(f"{path}: {int(np.size(clips) - np.isfinite(clips).sum())} values are NaN or "
                         f"infinite; the input must be finite, normalised clips")
    clips = clips.astype(np.float32)
    return clips.transpose(LAYOUTS[layout])
