"""``--explain``: the fused frames a prediction read, with the relevance of every pixel.

Top row: the fused clip as the model saw it (before normalisation), each frame titled with
what it shows. Bottom row: |gradient x input| of the predicted class on that frame, on one
colour scale for the whole clip, titled with the frame's share of the clip's relevance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmae_jax.infer.predictor import Prediction

_SHORT = {"face": "F", "spectrogram": "S"}


def short_source(source: str) -> str:
    """"face 3" -> "F3", "spectrogram 2" -> "S2", "face 1 / spectrogram 1" -> "F1/S1"."""
    for word, letter in _SHORT.items():
        source = source.replace(f"{word} ", letter)
    return source.replace(" ", "")


def plot_explanation(prediction: Prediction, path: str | Path, *, frame_inches: float = 1.1) -> Path:
    """Write the picture of ``prediction`` (which must carry an attribution) to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    attribution = prediction.attribution
    if attribution is None:
        raise ValueError(f"{prediction.file}: the prediction was made without attribution")
    relevance = attribution.frame_relevance                       # [T, S, S]
    num_frames = len(relevance)
    frame_totals = relevance.reshape(num_frames, -1).sum(axis=1)
    frame_shares = frame_totals / max(frame_totals.sum(), np.finfo(np.float32).tiny)
    scale = float(relevance.max()) or 1.0

    figure, axes = plt.subplots(2, num_frames, squeeze=False,
                                figsize=(num_frames * frame_inches, 2 * frame_inches + 0.8))
    for t in range(num_frames):
        axes[0, t].imshow(prediction.frames[t])                   # uint8 pixels
        axes[0, t].set_title(short_source(attribution.frame_sources[t]), fontsize=8)
        axes[1, t].imshow(relevance[t], cmap="inferno", vmin=0.0, vmax=scale)
        axes[1, t].set_title(f"{100 * frame_shares[t]:.0f}%", fontsize=8)
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    axes[0, 0].set_ylabel("input", fontsize=8)
    axes[1, 0].set_ylabel("relevance", fontsize=8)
    probability = prediction.probabilities[prediction.prediction]
    if attribution.face is None:
        split = "modality split: not separable"
    else:
        split = f"face {100 * attribution.face:.0f}% / spectrogram {100 * attribution.spectrogram:.0f}%"
    figure.suptitle(f"{Path(prediction.file).name}: {prediction.prediction} ({100 * probability:.0f}%), "
                    f"{split}", fontsize=9)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
