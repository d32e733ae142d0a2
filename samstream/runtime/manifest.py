"""The export folder's manifest.json: what a runtime (this one, or one in another language) needs to run it.

Layout (format "samstream-onnx", version 1):

    {"format": "samstream-onnx", "version": 1, "precision": "fp32" | "fp16", "opset": 17,
     "config": {... SAM2Config fields ...}, "inference_defaults": {... MaskPostprocess fields ...},
     "preprocessing": {"image_size": S, "mean": [...], "std": [...], "video_resize": "bicubic (PIL)",
                       "image_resize": "bilinear, antialiased", "layout": "NCHW RGB in [0, 1], then (x - mean) / std"},
     "graphs": {name: {"file": "name.onnx", "sha256": ..., "bytes": ...,
                       "inputs": [{"name", "dtype", "shape": [int | axis name]}], "outputs": [...]}}}

Nothing here imports torch.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

FORMAT = "samstream-onnx"
VERSION = 1
MANIFEST = "manifest.json"
GRAPH_NAMES = ("image_encoder", "decoder", "mask_prompt", "memory_encoder", "memory_attention")


class ExportFolderError(ValueError):
    """An export folder that cannot be run: missing, malformed, or its graphs do not match its manifest."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(folder: str | os.PathLike) -> dict:
    """The checked manifest of an export folder (every graph file present, of the recorded size and hash)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise ExportFolderError(f"{folder} is not an export folder (not a folder); make one with "
                                f"`samstream export MODEL -o {folder}`")
    if not path.is_file():
        raise ExportFolderError(f"{folder} has no {MANIFEST}: not an export folder (make one with "
                                f"`samstream export MODEL -o {folder}`)")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ExportFolderError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ExportFolderError(f"{path} is not a samstream ONNX manifest (format {FORMAT!r} expected)")
    if m.get("version") != VERSION:
        raise ExportFolderError(f"{path} has manifest version {m.get('version')!r}; this samstream reads "
                                f"version {VERSION}: export the model again")
    for key in ("config", "preprocessing", "graphs", "precision"):
        if key not in m:
            raise ExportFolderError(f"{path} lacks the {key!r} entry")
    missing = [g for g in GRAPH_NAMES if g not in m["graphs"]]
    if missing:
        raise ExportFolderError(f"{path} lists no graph {missing[0]!r}; expected {', '.join(GRAPH_NAMES)}")
    for name in GRAPH_NAMES:
        g = m["graphs"][name]
        f = folder / g["file"]
        if not f.is_file():
            raise ExportFolderError(f"graph {name!r}: {f} is missing")
        size = f.stat().st_size
        if size != g["bytes"]:
            what = "truncated" if size < g["bytes"] else "larger than recorded"
            raise ExportFolderError(f"graph {name!r}: {f} is {what} ({size} bytes, the manifest says {g['bytes']}); "
                                    f"export the model again")
        if sha256_of(f) != g["sha256"]:
            raise ExportFolderError(f"graph {name!r}: {f} does not match the manifest (sha256 differs): the file "
                                    f"was changed or belongs to another export")
    return m


def manifest_text(manifest: dict) -> str:
    return json.dumps(manifest, indent=1, sort_keys=False) + "\n"
