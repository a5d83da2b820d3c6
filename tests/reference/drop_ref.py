"""float64 one-clip reference of gpuaug.functional.drop_segments."""
import numpy as np


def kept_pieces(L: int, intervals) -> list[tuple[int, int]]:
    """Kept ``[start, end)`` runs of ``range(L)`` after removing the union of ``intervals``."""
    spans = sorted((min(max(s, 0), L), min(max(e, 0), L)) for s, e in intervals)
    merged: list[list[int]] = []
    for s, e in spans:
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    pieces, cur = [], 0
    for s, e in merged:
        if s > cur:
            pieces.append((cur, s))
        cur = e
    if cur < L:
        pieces.append((cur, L))
    return pieces


def drop_ref(x, intervals, crossfade=0):
    """``x`` (C, L) with the intervals removed; joins overlap-added with linear crossfades."""
    x = np.asarray(x, dtype=np.float64)
    C, L = x.shape
    pieces = [x[:, s:e] for s, e in kept_pieces(L, intervals)]
    if not pieces:
        return np.zeros((C, 0))
    out = pieces[0].copy()
    for prev, nxt in zip(pieces[:-1], pieces[1:]):
        xo = min(crossfade, prev.shape[1] // 2, nxt.shape[1] // 2)
        w = np.arange(1, xo + 1) / (xo + 1)  # fade-in weights of the next piece
        if xo:
            out[:, -xo:] = out[:, -xo:] * (1 - w) + nxt[:, :xo] * w
        out = np.concatenate([out, nxt[:, xo:]], axis=1)
    return out
