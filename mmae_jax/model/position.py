"""VideoMAE's fixed sine-cosine position table (not learned, not stored in checkpoints)."""

from __future__ import annotations

import numpy as np


def sinusoid_position_table(num_positions: int, dim: int) -> np.ndarray:
    """The table of VideoMAE's ``get_sinusoid_encoding_table``: ``[num_positions, dim]`` float32.

    Entry (p, j) is p / 10000^(2*(j//2)/dim), through sin for even j and cos for odd j.
    Positions run over the flattened (t, h, w) token grid, so any T/H/W works. Computed
    in float64 and cast, as the original does.
    """
    positions = np.arange(num_positions, dtype=np.float64)[:, None]
    exponents = 2 * (np.arange(dim) // 2) / dim
    angles = positions / np.power(10000.0, exponents)[None, :]
    table = np.empty_like(angles)
    table[:, 0::2] = np.sin(angles[:, 0::2])
    table[:, 1::2] = np.cos(angles[:, 1::2])
    return table.astype(np.float32)
