"""Whole-dataset VOS scoring (DAVIS and SA-V layouts, both protocols) against the slow reference
in tests/eval_reference.py, on DAVIS 2016 masks with perturbed predictions, plus the edge cases of the field's
conventions (objects that vanish and return, late entries, void, missing files)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from samstream.eval import EvaluationError, evaluate_vos
from samstream.io import FormatError
from tests.eval_reference import ref_davis_protocol, ref_sav_protocol, ref_stats
from tests.helpers import DAVIS16, load_davis16, perturb, save_indexed, shift

# Frame subsets keep the suite fast; bmx-bumps 55-79 holds its vanishing (60, 62-74) and return.
FRAMES = {"blackswan": range(0, 50, 4), "bmx-bumps": range(55, 80), "surf": range(44, 55)}
TOL = 1e-6


def _build_davis_layout(root, rng):
    """Ground truth / prediction label frames in memory and on disk: {seq: (names, gts, preds)}."""
    seqs = {}
    for seq, frames in FRAMES.items():
        names, gts, preds = [], [], []
        for t, i in enumerate(frames):
            g = load_davis16(seq, i)
            if seq == "bmx-bumps":
                # dilated prediction (empty while the rider is gone) except a false positive at 63
                p = perturb(g, 1, rng)
                if i == 63:
                    p[100:130, 100:160] = True
            else:
                p = perturb(g, t, rng)
            gl = g.astype(np.uint8)
            if seq == "blackswan" and t % 2:
                gl[200:230, :] = 255  # void band over part of the object
            names.append(f"{i:05d}")
            gts.append(gl)
            preds.append(p.astype(np.uint8))
        seqs[seq] = (names, gts, preds)
    # Multi-object sequence: 1 throughout; 2 in the GT from frame 6 but predicted from 4;
    # 3 in the GT at frame 0 and again from 12 (absent in between in both); 4 only predicted.
    names, gts, preds = [], [], []
    for t in range(20):
        a, b, c = load_davis16("blackswan", t), load_davis16("bmx-bumps", t), load_davis16("surf", t)
        g = np.zeros(a.shape, np.uint8)
        p = np.zeros_like(g)
        g[a] = 1
        p[perturb(a, t, rng)] = 1
        if t >= 6:
            g[b] = 2
        if t >= 4:
            p[shift(b, 2, -4)] = 2
        if t == 0 or t >= 12:
            g[c & ~a] = 3
        if t >= 14:
            p[perturb(c, t, rng) & ~a] = 3
        if t in (8, 9):
            p[0:20, 0:30] = 4
        names.append(f"{t:05d}")
        gts.append(g)
        preds.append(p)
    seqs["multi"] = (names, gts, preds)
    for seq, (names, gts, preds) in seqs.items():
        for n, g, p in zip(names, gts, preds, strict=False):
            save_indexed(root / "gt" / seq / f"{n}.png", g)
            save_indexed(root / "pred" / seq / f"{n}.png", p)
    return seqs


@pytest.fixture(scope="module")
def davis_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("davis_layout")
    seqs = _build_davis_layout(root, np.random.default_rng(0))
    return root, seqs


def _check_against(results, expected_by_seq):
    got = {(o.sequence, o.object_id): o for o in results.objects}
    expected = {(s, k): v for s, objs in expected_by_seq.items() for k, v in objs.items()}
    assert set(got) == set(expected)
    for key, (names, js, fs) in expected.items():
        o = got[key]
        assert o.frames == names, key
        np.testing.assert_allclose(o.j, js, atol=TOL, rtol=0)
        np.testing.assert_allclose(o.f, fs, atol=TOL, rtol=0)
        for mine, ref in zip((o.j_mean, o.j_recall, o.j_decay), ref_stats(js), strict=False):
            assert mine == pytest.approx(ref, abs=TOL), key
        for mine, ref in zip((o.f_mean, o.f_recall, o.f_decay), ref_stats(fs), strict=False):
            assert mine == pytest.approx(ref, abs=TOL), key
    # global figures: means over all objects of all sequences
    j_means = [ref_stats(js)[0] for _, js, _ in expected.values()]
    f_means = [ref_stats(fs)[0] for _, _, fs in expected.values()]
    assert results.J == pytest.approx(np.mean(j_means), abs=TOL)
    assert results.F == pytest.approx(np.mean(f_means), abs=TOL)
    assert results.JF == pytest.approx((np.mean(j_means) + np.mean(f_means)) / 2, abs=TOL)


def test_davis_protocol_matches_reference(davis_case):
    root, seqs = davis_case
    expected = {s: ref_davis_protocol(g, p, n) for s, (n, g, p) in seqs.items() if s != "multi"}
    # the DAVIS toolkit rejects predicted ids above the first frame's object count (id 4 in "multi")
    with pytest.raises(EvaluationError, match="holds id 4"):
        evaluate_vos(root / "gt", root / "pred", protocol="davis", sequences=["multi"], progress=False)
    res = evaluate_vos(root / "gt", root / "pred", protocol="davis", progress=False,
                       sequences=["blackswan", "bmx-bumps", "surf"])
    _check_against(res, expected)
    # every frame but the first and last is scored, for every object of the first frame
    assert [len(o.frames) for o in res.objects] == [len(FRAMES[s]) - 2 for s in res.sequences]


def test_davis_protocol_multi_object_without_extra_ids(davis_case, tmp_path):
    _root, seqs = davis_case
    names, gts, preds = seqs["multi"]
    preds = [np.where(p == 4, 0, p) for p in preds]
    for n, g, p in zip(names, gts, preds, strict=False):
        save_indexed(tmp_path / "gt" / "multi" / f"{n}.png", g)
        save_indexed(tmp_path / "pred" / "multi" / f"{n}.png", p)
    res = evaluate_vos(tmp_path / "gt", tmp_path / "pred", protocol="davis", progress=False)
    _check_against(res, {"multi": ref_davis_protocol(gts, preds, names)})
    # object 3 is absent from frames 1-11 in both, which count as J = 1 under the DAVIS rules
    o3 = next(o for o in res.objects if o.object_id == "3")
    assert o3.j[:5] == [1.0] * 5


def test_sav_protocol_matches_reference(davis_case):
    root, seqs = davis_case
    res = evaluate_vos(root / "gt", root / "pred", protocol="sav", progress=False)
    expected = {s: ref_sav_protocol(g, p, n) for s, (n, g, p) in seqs.items()}
    _check_against(res, expected)
    by = {(o.sequence, o.object_id): o for o in res.objects}
    # accumulation rule: object 2 enters at frame 4 (first predicted), object 3 at frame 12
    assert by["multi", "2"].frames[0] == "00004"
    assert by["multi", "3"].frames[0] == "00012"
    assert ("multi", "4") not in by  # only predicted: scored by the tool but never reported
    # the void band (255) is not an object
    assert {k for s, k in by if s == "blackswan"} == {"1"}


def test_bmx_bumps_vanishing_object(davis_case):
    root, _ = davis_case
    res = evaluate_vos(root / "gt", root / "pred", protocol="davis", sequences=["bmx-bumps"], progress=False)
    o = res.objects[0]
    j = dict(zip(o.frames, o.j, strict=False))
    f = dict(zip(o.frames, o.f, strict=False))
    # gone from the GT and the (dilated) prediction: J = F = 1; false positive while gone: J = F = 0
    assert j["00065"] == 1.0 and f["00065"] == 1.0
    assert j["00063"] == 0.0 and f["00063"] == 0.0
    assert 0 < j["00056"] < 1


def test_surf_last_frame_only_counts_without_skipping(davis_case):
    root, seqs = davis_case
    names, gts, preds = seqs["surf"]
    res = evaluate_vos(root / "gt", root / "pred", protocol="davis", sequences=["surf"],
                       skip_first_last=False, progress=False)
    _check_against(res, {"surf": ref_davis_protocol(gts, preds, names, skip=False)})
    assert res.objects[0].frames[-1] == "00054"  # the frame where the surfer is gone


def test_void_ignore_matches_reference(davis_case):
    root, seqs = davis_case
    names, gts, preds = seqs["blackswan"]
    res = evaluate_vos(root / "gt", root / "pred", protocol="davis", void="ignore", sequences=["blackswan"],
                       progress=False)
    _check_against(res, {"blackswan": ref_davis_protocol(gts, preds, names, void_mode="ignore")})
    default = evaluate_vos(root / "gt", root / "pred", protocol="davis", sequences=["blackswan"], progress=False)
    assert res.J != default.J  # the band changes J when excluded


def test_parallel_equals_serial(davis_case):
    root, _ = davis_case
    kw = dict(protocol="sav", progress=False)
    a = evaluate_vos(root / "gt", root / "pred", n_procs=1, **kw)
    b = evaluate_vos(root / "gt", root / "pred", n_procs=2, **kw)
    assert [(o.sequence, o.object_id, o.j, o.f) for o in a.objects] == \
           [(o.sequence, o.object_id, o.j, o.f) for o in b.objects]


def test_davis2016_binary_ground_truth_and_dataset_root(tmp_path):
    # GT straight from the DAVIS 2016 root (grayscale 0/255 files, Annotations/480p); predictions
    # for two sequences only: the others are left out with a warning (non-strict), or fail (strict).
    rng = np.random.default_rng(5)
    expected = {}
    for seq in ("car-shadow", "libby"):
        n = len(list((DAVIS16 / "Annotations" / "480p" / seq).glob("*.png")))
        gts, preds, names = [], [], []
        for t in range(n):
            g = load_davis16(seq, t)
            p = perturb(g, t, rng)
            save_indexed(tmp_path / seq / f"{t:05d}.png", p.astype(np.uint8))
            gts.append(g.astype(np.uint8))
            preds.append(p.astype(np.uint8))
            names.append(f"{t:05d}")
        expected[seq] = ref_davis_protocol(gts, preds, names)
    res = evaluate_vos(DAVIS16, tmp_path, progress=False)
    assert res.sequences == ["car-shadow", "libby"]
    assert any("no prediction folder" in w for w in res.warnings)
    _check_against(res, expected)
    with pytest.raises(EvaluationError, match="no prediction folder"):
        evaluate_vos(DAVIS16, tmp_path, strict=True, progress=False)


# ----------------------------------------------------------------------------- SA-V layout

@pytest.fixture(scope="module")
def sav_case(tmp_path_factory):
    """Two videos in the SA-V layout (binary PNG per object per annotated frame, every 4th frame);
    objects have different frame sets; one object's GT is empty on all evaluated frames; the
    predictions also hold un-annotated frames."""
    from PIL import Image

    root = tmp_path_factory.mktemp("sav_layout")
    rng = np.random.default_rng(1)
    spec = {"vidA": {"000": ("blackswan", range(0, 48, 4)), "001": ("bmx-bumps", range(52, 84, 4))},
            "vidB": {"000": ("surf", range(32, 56, 4)), "003": ("surf", range(50, 55, 2))}}
    data = {}
    for vid, objs in spec.items():
        for obj, (seq, frames) in objs.items():
            names, gts, preds = [], [], []
            for k, i in enumerate(frames):
                g = load_davis16(seq, i)
                if obj == "003":
                    g = np.zeros_like(g) if k < 2 else g & False  # never visible: not scored
                p = perturb(g, k + int(obj), rng)
                if obj == "003" and k == 1:
                    p[5:9, 5:9] = True
                for part, m in (("gt", g), ("pred", p)):
                    path = root / part / vid / obj / f"{i:05d}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(m.astype(np.uint8) * 255).save(path)  # 0/255 grayscale
                # a prediction for an un-annotated (24 fps) frame in between: must be ignored
                Image.fromarray(np.full(g.shape, 255, np.uint8)).save(root / "pred" / vid / obj / f"{i + 1:05d}.png")
                names.append(f"{i:05d}")
                gts.append(g.astype(np.uint8))
                preds.append(p.astype(np.uint8))
            data[vid, obj] = (names, gts, preds)
    return root, data


def test_sav_layout_matches_reference(sav_case):
    root, data = sav_case
    res = evaluate_vos(root / "gt", root / "pred", progress=False)  # auto: SA-V layout and protocol
    expected = {}
    for (vid, obj), (names, gts, preds) in data.items():
        ref = ref_sav_protocol(gts, preds, names)
        if ref:
            expected.setdefault(vid, {})[obj] = ref["1"]
    _check_against(res, expected)
    assert ("vidB", "003") not in {(o.sequence, o.object_id) for o in res.objects}
    assert any("vidB/003" in w and "empty ground truth" in w for w in res.warnings)
    # per-sequence figures are means over that video's objects
    per = res.per_sequence()
    a = [o for o in res.objects if o.sequence == "vidA"]
    assert per["vidA"]["J"] == pytest.approx(np.mean([o.j_mean for o in a]))
    assert per["vidA"]["num_objects"] == 2


def test_sav_layout_davis_protocol(sav_case):
    root, data = sav_case
    res = evaluate_vos(root / "gt", root / "pred", protocol="davis", progress=False, sequences=["vidA"])
    for o in res.objects:
        names, gts, preds = data["vidA", o.object_id]
        _, js, fs = ref_davis_protocol([np.full_like(gts[0], 1)] + gts[1:], preds, names)["1"]
        np.testing.assert_allclose(o.j, js, atol=TOL)
        np.testing.assert_allclose(o.f, fs, atol=TOL)


def test_sav_layout_rejects_multi_object_png(sav_case, tmp_path):
    _root, _ = sav_case
    bad = tmp_path / "gt" / "v" / "000"
    bad.mkdir(parents=True)
    for i in range(3):
        lab = np.zeros((20, 30), np.uint8)
        lab[2:5, 2:5] = 1
        lab[8:12, 8:12] = 2 if i == 1 else 1
        save_indexed(bad / f"{i:05d}.png", lab)
    (tmp_path / "pred" / "v").mkdir(parents=True)
    import shutil

    shutil.copytree(bad, tmp_path / "pred" / "v" / "000")
    with pytest.raises(FormatError, match=r"00001\.png.*non-zero values"):
        evaluate_vos(tmp_path / "gt", tmp_path / "pred", progress=False)


# ----------------------------------------------------------------------------- errors

def _tiny(root, seq="s", n=4, pred=True):
    for t in range(n):
        g = np.zeros((16, 24), np.uint8)
        g[4:10, 3 + t:12 + t] = 1
        save_indexed(root / "gt" / seq / f"{t:05d}.png", g)
        if pred:
            save_indexed(root / "pred" / seq / f"{t:05d}.png", g)


def test_missing_prediction_frame(tmp_path):
    _tiny(tmp_path)
    (tmp_path / "pred" / "s" / "00002.png").unlink()
    with pytest.raises(EvaluationError, match=r"missing prediction .*00002\.png"):
        evaluate_vos(tmp_path / "gt", tmp_path / "pred", progress=False)
    res = evaluate_vos(tmp_path / "gt", tmp_path / "pred", allow_missing=True, progress=False)
    assert res.objects[0].j == [1.0, 0.0]  # frame 1 perfect, frame 2 scored as empty


def test_shape_mismatch_and_corrupt_png(tmp_path):
    _tiny(tmp_path)
    save_indexed(tmp_path / "pred" / "s" / "00001.png", np.zeros((16, 25), np.uint8))
    with pytest.raises(EvaluationError, match="shape mismatch"):
        evaluate_vos(tmp_path / "gt", tmp_path / "pred", progress=False)
    (tmp_path / "pred" / "s" / "00001.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(FormatError, match=r"00001\.png"):
        evaluate_vos(tmp_path / "gt", tmp_path / "pred", progress=False)


def test_nothing_to_evaluate(tmp_path):
    _tiny(tmp_path, pred=False)
    (tmp_path / "pred").mkdir()
    with pytest.raises(EvaluationError, match="nothing to evaluate"):
        evaluate_vos(tmp_path / "gt", tmp_path / "pred", progress=False)


def test_too_short_sequence_gives_nan_and_warning(tmp_path):
    _tiny(tmp_path, seq="short", n=2)
    _tiny(tmp_path, seq="ok", n=4)
    res = evaluate_vos(tmp_path / "gt", tmp_path / "pred", progress=False)
    short = next(o for o in res.objects if o.sequence == "short")
    assert short.frames == [] and math.isnan(short.j_mean)
    assert res.J == 1.0  # the empty object is left out of the means, not NaN
    assert any("none left to evaluate" in w for w in res.warnings)


def test_errors_survive_worker_processes(tmp_path):
    import pickle

    e = FormatError("bad", path="/x/00001.png", field="image data")
    again = pickle.loads(pickle.dumps(e))
    assert (again.path, again.field, str(again)) == (e.path, e.field, str(e))
    _tiny(tmp_path, seq="a")
    _tiny(tmp_path, seq="b")
    (tmp_path / "pred" / "b" / "00002.png").write_bytes(b"garbage")
    with pytest.raises(FormatError, match=r"b/00002\.png"):
        evaluate_vos(tmp_path / "gt", tmp_path / "pred", n_procs=2, progress=False)


def test_forced_layout_that_does_not_fit(tmp_path):
    _tiny(tmp_path)
    with pytest.raises(EvaluationError, match="no object folders"):
        evaluate_vos(tmp_path / "gt", tmp_path / "pred", layout="sav", progress=False)
