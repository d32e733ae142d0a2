"""Per-user annotation statistics of a project, from its event log (as SA-V's data engine measured annotators).

A masklet is one object of one video. Per user: actions by kind (every action they made, undone ones included:
they were work), and per masklet the clicks (clicks + boxes), the active time (the gaps between that user's
consecutive events on the object, each capped at `GAP_CAP` seconds, so a coffee break does not count) and the
frames edited by hand (distinct frames with a brush or eraser stroke).
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from itertools import pairwise

from .store import Store

GAP_CAP = 60.0  # seconds: a longer pause between two events counts as this much
PROMPT_KINDS = ("click", "box")


def project_stats(store: Store, project_id: int) -> dict:
    """{"project", "gap_cap_s", "users": {user: {"actions": {kind: n}, "clicks", "active_s", "hand_frames",
    "masklets": [{"video_id", "obj_id", "clicks", "active_s", "hand_frames"}]}}}."""
    store.project(project_id)  # NotFound first
    with store._lock:
        rows = store._db.execute("SELECT e.video_id, e.user, e.ts, e.kind, e.payload FROM events e JOIN videos v "
                                 "ON v.id = e.video_id WHERE v.project_id=? ORDER BY e.ts, e.id",
                                 (project_id,)).fetchall()
    actions: dict[str, Counter] = defaultdict(Counter)
    per: dict[tuple, dict] = {}  # (user, video, obj) -> {"clicks", "times", "frames"}
    for video_id, user, ts, kind, payload in rows:
        actions[user][kind] += 1
        obj = (json.loads(payload) or {}).get("obj_id") if payload else None
        if not isinstance(obj, int):
            continue  # propagation: no one object
        m = per.setdefault((user, video_id, obj), {"clicks": 0, "times": [], "frames": set()})
        m["times"].append(ts)
        m["clicks"] += kind in PROMPT_KINDS
        if kind == "brush":
            m["frames"].add(json.loads(payload).get("frame"))
    users = {u: {"actions": dict(sorted(c.items())), "clicks": 0, "active_s": 0.0, "hand_frames": 0, "masklets": []}
             for u, c in sorted(actions.items())}
    for (user, video_id, obj), m in sorted(per.items()):
        t = m["times"]
        active = sum(min(b - a, GAP_CAP) for a, b in pairwise(t))
        u = users[user]
        u["masklets"].append({"video_id": video_id, "obj_id": obj, "clicks": m["clicks"], "active_s": round(active, 3),
                              "hand_frames": len(m["frames"])})
        u["clicks"] += m["clicks"]
        u["active_s"] = round(u["active_s"] + active, 3)
        u["hand_frames"] += len(m["frames"])
    return {"project": project_id, "gap_cap_s": GAP_CAP, "users": users}
