"""The manifest of an export: config, preprocessing constants, and each graph's file, hash, inputs and outputs."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from .. import __version__
from ..io.atomic import atomic_write_text
from ..model import SAM2Model
from ..runtime.manifest import FORMAT, MANIFEST, VERSION, manifest_text
from ..transforms import IMAGENET_MEAN, IMAGENET_STD


def _value_info(v) -> dict:
    import onnx

    t = v.type.tensor_type
    dims = [d.dim_param if d.dim_param else int(d.dim_value) for d in t.shape.dim]
    return {"name": v.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name, "shape": dims}


def graph_entry(fname: str, data: bytes, proto, output_shapes: dict) -> dict:
    outputs = [_value_info(v) for v in proto.graph.output]
    for o in outputs:
        o["shape"] = output_shapes.get(o["name"], o["shape"])
    return {"file": fname, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
            "inputs": [_value_info(v) for v in proto.graph.input], "outputs": outputs}


def build_manifest(model: SAM2Model, files: dict, precision: str, opset: int, source: str = "") -> dict:
    """files: graph name -> (file name, bytes, ModelProto, {output name: shape})."""
    cfg = model.cfg
    return {
        "format": FORMAT, "version": VERSION, "samstream": __version__, "source": source,
        "precision": precision, "opset": opset,
        "config": json.loads(cfg.to_json()),
        "inference_defaults": dataclasses.asdict(model.inference_defaults),
        "preprocessing": {
            "image_size": cfg.image_size, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
            "layout": "NCHW, RGB scaled to [0, 1], then (x - mean) / std",
            "video_resize": "PIL bicubic of the uint8 frame to image_size x image_size (aspect ratio not kept)",
            "image_resize": "bilinear with antialiasing (PIL's triangle filter) of the [0, 1] image, aspect not kept",
        },
        "graphs": {name: graph_entry(*entry) for name, entry in files.items()},
    }


def write_manifest(folder: Path, manifest: dict) -> Path:
    return atomic_write_text(folder / MANIFEST, manifest_text(manifest))
