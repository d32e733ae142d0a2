"""Sequences longer than 255 frames: nothing may be counted or indexed in uint8 (the DAVIS toolkit's
decay bins wrap there)."""
from __future__ import annotations

import numpy as np
import pytest

from samstream.eval import evaluate_vos
from tests.eval_reference import ref_davis_protocol, ref_sav_protocol, ref_stats
from tests.helpers import save_indexed

N = 300
H, W = 48, 64


@pytest.fixture(scope="module")
def long_case(tmp_path_factory):
    """300 frames, 3 moving objects; object 3 leaves the GT for frames 100-179 and the prediction for
    90-169; a void band on every 5th frame."""
    root = tmp_path_factory.mktemp("long")
    yy, xx = np.mgrid[:H, :W]
    names, gts, preds = [], [], []
    for t in range(N):
        g = np.zeros((H, W), np.uint8)
        p = np.zeros_like(g)
        cx = 10 + t % 40
        g[(yy - 20) ** 2 + (xx - cx) ** 2 < 64] = 1
        p[(yy - 21) ** 2 + (xx - cx - 1 - t % 3) ** 2 < 64] = 1
        g[5:15, 40 + t % 10: 55] = 2
        p[5:14, 40 + t % 10: 55 + t % 2] = 2
        if not 100 <= t < 180:
            g[30:45, 2:12 + t % 7] = 3
        if not 90 <= t < 170:
            p[31:45, 2:12] = 3
        if t % 5 == 0:
            g[40:42, :] = 255
        name = f"{t:05d}"
        save_indexed(root / "gt" / "long" / f"{name}.png", g)
        save_indexed(root / "pred" / "long" / f"{name}.png", p)
        names.append(name)
        gts.append(g)
        preds.append(p)
    return root, names, gts, preds


@pytest.mark.parametrize("protocol", ["davis", "sav"])
def test_long_sequence_matches_reference(long_case, protocol):
    root, names, gts, preds = long_case
    res = evaluate_vos(root / "gt", root / "pred", protocol=protocol, progress=False)
    ref = ref_davis_protocol(gts, preds, names) if protocol == "davis" else ref_sav_protocol(gts, preds, names)
    assert sorted(o.object_id for o in res.objects) == sorted(ref)
    for o in res.objects:
        rnames, js, fs = ref[o.object_id]
        assert o.frames == rnames
        assert len(o.frames) == N - 2  # all three objects are present from the first evaluated frame
        np.testing.assert_allclose(o.j, js, atol=1e-6, rtol=0)
        np.testing.assert_allclose(o.f, fs, atol=1e-6, rtol=0)
        for mine, r in zip((o.j_mean, o.j_recall, o.j_decay, o.f_mean, o.f_recall, o.f_decay),
                           ref_stats(js) + ref_stats(fs), strict=False):
            assert mine == pytest.approx(r, abs=1e-6)
    # object 3 vanishes (frames 100-179 in the GT): its recall counts those frames, its decay is finite
    o3 = next(o for o in res.objects if o.object_id == "3")
    assert np.isfinite(o3.j_decay) and np.isfinite(o3.f_decay)
    assert o3.j_recall < 1


def test_long_sequence_in_sav_layout(tmp_path):
    # One object folder with 300 annotated frames: the per-object frame list is longer than 255 too.
    from PIL import Image

    names, gts, preds = [], [], []
    for t in range(N):
        g = np.zeros((20, 30), np.uint8)
        g[5:12, 3 + t % 15: 10 + t % 15] = 1
        p = np.roll(g, t % 3, axis=1)
        for part, m in (("gt", g), ("pred", p)):
            path = tmp_path / part / "v" / "000" / f"{t:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(m * 255).save(path)
        names.append(f"{t:05d}")
        gts.append(g)
        preds.append(p)
    res = evaluate_vos(tmp_path / "gt", tmp_path / "pred", progress=False)
    _, js, fs = ref_sav_protocol(gts, preds, names)["1"]
    (o,) = res.objects
    np.testing.assert_allclose(o.j, js, atol=1e-6)
    np.testing.assert_allclose(o.f, fs, atol=1e-6)
    assert o.j_decay == pytest.approx(ref_stats(js)[2], abs=1e-6)
