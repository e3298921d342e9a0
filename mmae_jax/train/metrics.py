"""Classification metrics of the paper: WAR, UAR, per-class recall, confusion matrix."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``[K, K]`` counts; row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
    return matrix


def classification_report(labels: np.ndarray, predictions: np.ndarray,
                          class_names: Sequence[str]) -> dict:
    """WAR (accuracy), UAR (mean recall over classes present), recalls and confusion, in percent.

    Classes with no example in ``labels`` have no recall (``None``) and are left out of UAR.
    """
    matrix = confusion_matrix(labels, predictions, len(class_names))
    support = matrix.sum(axis=1)
    present = support > 0
    recall = np.where(present, np.diag(matrix) / np.maximum(support, 1), np.nan) * 100.0
    total = int(support.sum())
    return {
        "war": float(np.trace(matrix) / total * 100.0) if total else float("nan"),
        "uar": float(np.nanmean(recall)) if present.any() else float("nan"),
        "per_class_recall": {name: (None if np.isnan(r) else float(r)) for name, r in zip(class_names, recall)},
        "confusion_matrix": matrix.tolist(),
        "num_examples": total,
    }
