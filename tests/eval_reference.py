"""A slow reference implementation of the DAVIS 2017 toolkit and SA-V evaluator rules, written independently
of samstream.eval (explicit loops, nearest-neighbour search instead of dilation, its own decay-bin formula)."""
from __future__ import annotations

import math

import numpy as np


def ref_boundary_loops(mask) -> np.ndarray:
    """DAVIS seg2bmap by explicit per-pixel loops (small masks only)."""
    m = np.asarray(mask, dtype=bool)
    h, w = m.shape

    def at(y, x):
        return bool(m[y, x]) if y < h and x < w else False

    b = np.zeros((h, w), dtype=bool)
    for y in range(h):
        for x in range(w):
            if y == h - 1 and x == w - 1:
                b[y, x] = False
            elif y == h - 1:
                b[y, x] = m[y, x] != at(y, x + 1)
            elif x == w - 1:
                b[y, x] = m[y, x] != at(y + 1, x)
            else:
                b[y, x] = m[y, x] != at(y, x + 1) or m[y, x] != at(y + 1, x) or m[y, x] != at(y + 1, x + 1)
    return b


def ref_boundary(mask) -> np.ndarray:
    """DAVIS seg2bmap via a zero-padded copy (validated against ref_boundary_loops in the tests)."""
    m = np.asarray(mask, dtype=bool)
    p = np.pad(m, ((0, 1), (0, 1)))  # (H+1, W+1), outside = 0
    east, south, diag = p[:-1, 1:], p[1:, :-1], p[1:, 1:]
    b = (m != east) | (m != south) | (m != diag)
    b[-1, :] = m[-1, :] != east[-1, :]
    b[:, -1] = m[:, -1] != south[:, -1]
    b[-1, -1] = False
    return b


def ref_radius(h: int, w: int, bound_th: float = 0.008) -> int:
    return int(bound_th) if bound_th >= 1 else math.ceil(bound_th * math.sqrt(h * h + w * w))


def _matched(src_pts: np.ndarray, dst_pts: np.ndarray, r: int) -> int:
    """How many src points have a dst point within Euclidean distance r (nearest neighbour)."""
    from scipy.spatial import cKDTree

    d, _ = cKDTree(dst_pts).query(src_pts, k=1)
    return int(np.sum(d * d <= r * r + 1e-9))


def ref_f(gt, pred, void=None, bound_th: float = 0.008) -> float:
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if void is not None:
        gt, pred = gt & ~void, pred & ~void
    r = ref_radius(*gt.shape, bound_th)
    bp, bg = np.argwhere(ref_boundary(pred)), np.argwhere(ref_boundary(gt))
    if len(bp) == 0 and len(bg) == 0:
        p = rc = 1.0
    elif len(bp) == 0:
        p, rc = 1.0, 0.0
    elif len(bg) == 0:
        p, rc = 0.0, 1.0
    else:
        p = _matched(bp, bg, r) / len(bp)
        rc = _matched(bg, bp, r) / len(bg)
    return 0.0 if p + rc == 0 else 2 * p * rc / (p + rc)


def ref_j(gt, pred, void=None) -> float:
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    keep = np.ones_like(gt) if void is None else ~void
    union = int(np.sum((gt | pred) & keep))
    return 1.0 if union == 0 else int(np.sum(gt & pred & keep)) / union


def ref_stats(values) -> tuple[float, float, float]:
    """(mean, recall, decay) with plain Python: quarter bounds floor(1 + (n-1) i / 4 + 0.5 + 1e-10) - 1."""
    v = [float(x) for x in values]
    n = len(v)
    ok = [x for x in v if not math.isnan(x)]
    mean = sum(ok) / len(ok)
    recall = sum(1 for x in v if x > 0.5) / n
    b = [math.floor(1 + (n - 1) * i / 4 + 1e-10 + 0.5) - 1 for i in range(5)]
    first, last = v[b[0]: b[1] + 1], v[b[3]: b[4] + 1]
    return mean, recall, sum(first) / len(first) - sum(last) / len(last)


def ref_davis_protocol(gts, preds, names, *, skip=True, void_mode="background", bound_th=0.008):
    """DAVIS 2017 semi-supervised rules on in-memory label frames -> {obj id: (names, J list, F list)}."""
    first = np.where(gts[0] == 255, 0, gts[0])
    n_obj = int(first.max())
    idx = list(range(1, len(gts) - 1)) if skip else list(range(len(gts)))
    out = {}
    for k in range(1, n_obj + 1):
        js, fs = [], []
        for t in idx:
            void = gts[t] == 255
            g = (gts[t] == k) & ~void
            v = void if void_mode == "ignore" else None
            js.append(ref_j(g, preds[t] == k, v))
            fs.append(ref_f(g, preds[t] == k, v, bound_th))
        out[str(k)] = ([names[t] for t in idx], js, fs)
    return out


def ref_sav_protocol(gts, preds, names, *, skip=True, bound_th=0.008):
    """SA-V evaluator rules: an id is scored from the first evaluated frame where it is in the GT or
    the prediction; reported when it is in the GT on some evaluated frame. GT 255 is void (background)."""
    idx = list(range(1, len(gts) - 1)) if skip else list(range(len(gts)))
    gts = [np.where(g == 255, 0, g) for g in gts]
    ids_gt = sorted({int(v) for t in idx for v in np.unique(gts[t]) if v != 0})
    out = {}
    for k in ids_gt:
        entry = next(i for i, t in enumerate(idx) if (gts[t] == k).any() or (preds[t] == k).any())
        used = idx[entry:]
        out[str(k)] = ([names[t] for t in used], [ref_j(gts[t] == k, preds[t] == k) for t in used],
                       [ref_f(gts[t] == k, preds[t] == k, None, bound_th) for t in used])
    return out
