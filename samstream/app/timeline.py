"""Per-object presence and score along a video, and the frames worth a second look ("flagged").

A frame of an object is flagged when the model is unsure there or its mask jumps:
- unsure: |score| < UNSURE_SCORE (the object score logit is near the visible / absent boundary), or the score and
  the mask disagree (visible, score > 0, with an empty mask; absent, score <= 0, with a non-empty one);
- a jump, against the previous frame where the object has a non-empty mask: the area changes by more than a
  factor AREA_RATIO (ratio > AREA_RATIO or < 1 / AREA_RATIO), or the centroid moves more than
  CENTROID_DIAMETER_FRACTION of the mask's equivalent diameter (that of a disc of its area) plus
  CENTROID_DIAGONAL_FRACTION of the frame diagonal.
Hand-edited frames (source "hand", locked) are never flagged: a person has looked at them. Masks without a score
(hand, import) skip the score checks.
"""
from __future__ import annotations

import math

UNSURE_SCORE = 1.0
AREA_RATIO = 2.0
CENTROID_DIAMETER_FRACTION = 0.25
CENTROID_DIAGONAL_FRACTION = 0.05


def timeline(store, video_id: int) -> dict:
    """{"num_frames": T, "objects": {obj_id: {"frames", "area", "score", "source", "flags", "locked"}}}.

    Sparse: "frames" lists the frames with a mask row (sorted), "area" / "score" / "source" are parallel to it,
    "flags" and "locked" are frame lists. Every live object is present, with empty lists if it has no mask.
    """
    video = store.video(video_id)
    diagonal = math.hypot(video["width"], video["height"])
    objects = {o["obj_id"]: {"frames": [], "area": [], "score": [], "source": [], "flags": [], "locked": []}
               for o in store.objects(video_id)}
    last = {}  # obj_id -> (area, cx, cy) of its latest non-empty mask
    for obj_id, frame, area, score, source, cx, cy in store.mask_summary(video_id):
        tl = objects.get(obj_id)
        if tl is None:  # deleted
            continue
        tl["frames"].append(frame)
        tl["area"].append(area)
        tl["score"].append(score)
        tl["source"].append(source)
        prev = last.get(obj_id)
        if source in ("hand", "import"):  # locked
            tl["locked"].append(frame)
        elif _unsure(area, score) or (area > 0 and prev is not None and _jump(prev, (area, cx, cy), diagonal)):
            tl["flags"].append(frame)
        if area > 0:
            last[obj_id] = (area, cx, cy)
    return {"num_frames": video["num_frames"], "objects": objects}


def _unsure(area: int, score: float | None) -> bool:
    if score is None:
        return False
    return abs(score) < UNSURE_SCORE or (score > 0 and area == 0) or (score <= 0 and area > 0)


def _jump(prev: tuple, cur: tuple, diagonal: float) -> bool:
    (a0, x0, y0), (a1, x1, y1) = prev, cur
    ratio = a1 / a0
    if ratio > AREA_RATIO or ratio < 1 / AREA_RATIO:
        return True
    if None in (x0, y0, x1, y1):
        return False
    diameter = 2 * math.sqrt(a1 / math.pi)
    return math.hypot(x1 - x0, y1 - y0) > CENTROID_DIAMETER_FRACTION * diameter + CENTROID_DIAGONAL_FRACTION * diagonal


def next_flagged(tl: dict, obj_id: int, frame: int) -> int | None:
    """The first flagged frame of obj_id after `frame` in a `timeline(...)` result, None if there is none."""
    objects = tl["objects"]
    obj = objects.get(obj_id, objects.get(str(obj_id)))  # str keys: a timeline that went through JSON
    if obj is None:
        return None
    return next((f for f in sorted(obj["flags"]) if f > frame), None)
