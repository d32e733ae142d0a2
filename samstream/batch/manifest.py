"""The videos of a batch: a JSONL manifest, or a DAVIS-layout folder with first-frame masks.

A manifest holds one JSON object a line (blank lines and lines starting with # are skipped):

    {"video": "clips/a.mp4", "prompts": ["0:1:210,350"], "boxes": ["0:2:10,20,200,220"], "masks": null, "id": "a"}

video: a file or a frame folder, relative to the manifest's folder unless absolute (on a cluster: a path on
a filesystem every node mounts). prompts, boxes: `samstream track`'s --prompt and --box syntax. masks: an
indexed PNG of frame 0 (DAVIS style: pixel value = object id), each non-zero value one object, as
`eval vos --prompt mask` prompts. id: the output folder's name (default: the video's name); unique.
Everything that can be checked without opening a video is checked here, so that a typo fails before any
work starts, with its line; what needs the video (a prompt beyond its end, a corrupt file) fails that
video only, at run time.
"""
from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..io.errors import FormatError

# names the batch writes into OUT beside the video folders (an id may not take them)
RESERVED_NAMES = frozenset({"failures.jsonl", "summary.json", "batch.json", "masks", "results.json", "results.csv",
                            "jf_per_sequence.png"})
_KEYS = {"video", "prompts", "boxes", "masks", "id"}
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


class ManifestError(FormatError):
    """A manifest line (or a DAVIS folder) that cannot be run: the message names the file and the line."""


@dataclass(frozen=True)
class VideoJob:
    """One video of a batch: what `samstream track` gets for it. Paths are absolute."""

    id: str
    video: str
    prompts: tuple = ()  # (frame, obj, [x, y(, label)]) as track's --prompt parses them
    boxes: tuple = ()  # (frame, obj, [x0, y0, x1, y1])
    masks: str | None = None  # indexed PNG of frame 0
    line: int = 0  # the manifest line (0: not from a manifest)
    raw: dict = field(default_factory=dict, compare=False)  # the line as written, for failures.jsonl

    def has_prompts(self) -> bool:
        return bool(self.prompts or self.boxes or self.masks)


def _spec(text, what: str, nums: tuple[int, ...], where: str):
    from ..cli.track import _spec as track_spec  # the one parser of the prompt syntax

    if not isinstance(text, str):
        raise ManifestError(f"{what} entries are strings like '0:1:210,350', got {text!r}", path=where)
    try:
        return track_spec(text, "--prompt" if what == "prompts" else "--box", nums)
    except argparse.ArgumentTypeError as e:
        raise ManifestError(str(e).replace("--prompt", "prompt").replace("--box", "box"), path=where) from None


def check_id(name, where: str) -> str:
    """An output folder name: a non-empty name without path separators, not hidden, not one of RESERVED_NAMES."""
    if not isinstance(name, str) or not name.strip():
        raise ManifestError(f"id must be a non-empty string, got {name!r}", path=where)
    if "/" in name or "\\" in name or "\0" in name or name.startswith(".") or name in RESERVED_NAMES:
        raise ManifestError(f"id {name!r} cannot be a folder name in the output folder (no '/', no leading '.', "
                            f"not one of {', '.join(sorted(RESERVED_NAMES))})", path=where)
    return name


def _video_id(video: Path) -> str:
    return video.stem if video.suffix else video.name


def parse_line(obj, base: Path, where: str, line: int = 0, need_prompts: bool = True) -> VideoJob:
    """One manifest record -> a VideoJob; `base` resolves relative paths; `where` names it in errors."""
    if not isinstance(obj, dict):
        raise ManifestError(f"expected a JSON object, got {type(obj).__name__}", path=where)
    unknown = sorted(set(obj) - _KEYS)
    if unknown:
        raise ManifestError(f"unknown key(s) {unknown}; the keys are {', '.join(sorted(_KEYS))}", path=where)
    video = obj.get("video")
    if not isinstance(video, str) or not video:
        raise ManifestError("'video' (a path) is required", path=where)
    if _URL.match(video):
        raise ManifestError(f"video {video!r}: URLs are not read; give a path on a filesystem every worker mounts",
                            path=where)
    for key in ("prompts", "boxes"):
        if not isinstance(obj.get(key, []), list):
            raise ManifestError(f"'{key}' must be a list of strings, got {obj[key]!r}", path=where)
    masks = obj.get("masks")
    if masks is not None and (not isinstance(masks, str) or not masks):
        raise ManifestError(f"'masks' must be a path to an indexed PNG or null, got {masks!r}", path=where)
    path = Path(video) if Path(video).is_absolute() else base / video
    prompts = tuple(_spec(s, "prompts", (2, 3), where) for s in obj.get("prompts", []))
    boxes = tuple(_spec(s, "boxes", (4,), where) for s in obj.get("boxes", []))
    seen = set()
    for frame, o, _ in boxes:
        if (frame, o) in seen:
            raise ManifestError(f"two boxes for object {o} on frame {frame}", path=where)
        seen.add((frame, o))
    mask_path = None if masks is None else str(Path(masks) if Path(masks).is_absolute() else base / masks)
    job = VideoJob(id=check_id(obj.get("id", _video_id(path)), where), video=str(path), prompts=prompts,
                   boxes=boxes, masks=mask_path, line=line, raw=obj)
    if need_prompts and not job.has_prompts():
        raise ManifestError("no prompts: give 'prompts', 'boxes' or 'masks' (or use batch track-all)", path=where)
    return job


def read_manifest(path: str | os.PathLike, need_prompts: bool = True) -> list[VideoJob]:
    """A JSONL manifest -> its VideoJobs, in order; a bad line raises ManifestError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    base = path.resolve().parent
    jobs, ids = [], {}
    with open(path, encoding="utf-8") as f:
        for n, text in enumerate(f, 1):
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            where = f"{path} line {n}"
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise ManifestError(f"not JSON ({e.msg} at column {e.colno})", path=where) from None
            job = parse_line(obj, base, where, n, need_prompts)
            if job.id in ids:
                raise ManifestError(f"id {job.id!r} is also line {ids[job.id]}'s: give each video its own 'id'",
                                    path=where)
            ids[job.id] = n
            jobs.append(job)
    if not jobs:
        raise ManifestError("the manifest lists no video", path=str(path))
    return jobs


def davis_jobs(root: str | os.PathLike, sequences: list[str] | None = None,
               need_prompts: bool = True) -> list[VideoJob]:
    """A DAVIS-layout folder (JPEGImages/480p, Annotations/480p) -> one VideoJob per sequence: its frame folder,
    prompted by the first frame's annotation (every object id in it)."""
    from ..eval.dataset import resolve_mask_root
    from ..eval.vos_run import images_root
    from ..io.folders import list_subdirs

    root = Path(root).resolve()
    ann, imgs = resolve_mask_root(root), images_root(root)
    seqs = sequences or list_subdirs(ann)
    unknown = sorted(set(seqs) - set(list_subdirs(ann)))
    if unknown:
        raise ManifestError(f"sequences not in {ann}: {unknown}", path=str(root))
    jobs = []
    for seq in seqs:
        frames = sorted(p for p in (imgs / seq).iterdir() if p.is_file()) if (imgs / seq).is_dir() else []
        if not frames:
            raise ManifestError(f"sequence {seq}: no frames in {imgs / seq}", path=str(root))
        first = ann / seq / f"{frames[0].stem}.png"
        if need_prompts and not first.is_file():
            raise ManifestError(f"sequence {seq}: the first frame's annotation {first} is missing", path=str(root))
        jobs.append(VideoJob(id=check_id(seq, str(root)), video=str(imgs / seq),
                             masks=str(first) if need_prompts else None, raw={"video": str(imgs / seq)}))
    return jobs


def load_jobs(source: str | os.PathLike | list, need_prompts: bool = True) -> list[VideoJob]:
    """A manifest file, a DAVIS-layout folder, or a list of VideoJobs / manifest dicts -> VideoJobs."""
    if isinstance(source, (list, tuple)):
        jobs = [j if isinstance(j, VideoJob) else parse_line(j, Path.cwd(), f"manifest entry {i}", i, need_prompts)
                for i, j in enumerate(source)]
        dup = sorted({j.id for j in jobs if sum(k.id == j.id for k in jobs) > 1})
        if dup:
            raise ManifestError(f"ids {dup} are given to several videos: give each video its own 'id'")
        if not jobs:
            raise ManifestError("the manifest lists no video")
        return jobs
    if Path(source).is_dir():
        return davis_jobs(source, need_prompts=need_prompts)
    return read_manifest(source, need_prompts)


__all__ = ["ManifestError", "VideoJob", "davis_jobs", "load_jobs", "read_manifest"]
