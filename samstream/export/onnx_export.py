"""`export_model`: a SAM2Model -> a folder of ONNX graphs and the manifest that says how to run them."""
from __future__ import annotations

import contextlib
import copy
import io
import os
import warnings
from pathlib import Path

import torch

from ..io.atomic import atomic_write_bytes, ensure_folder, file_in_the_way
from ..model import SAM2Model
from .graphs import DecoderGraph, ImageEncoderGraph, MaskPromptGraph, MemoryAttentionGraph, MemoryEncoderGraph
from .manifest import build_manifest, write_manifest

PRECISIONS = ("fp32", "fp16")
DEFAULT_OPSET = 17
MIN_OPSET = 17  # LayerNormalization, and scaled_dot_product_attention's export


class ExportError(ValueError):
    """The model or the options cannot be exported."""


def example_inputs(model: SAM2Model, dtype: torch.dtype = torch.float32) -> dict[str, tuple]:
    """Inputs that trace each graph: B = 2 objects, N = 3 points, Nm = 2 memories, P = 3 pointers (all dynamic)."""
    cfg = model.cfg
    s, e, c, cm = cfg.image_size, cfg.embed_size, cfg.hidden_dim, cfg.mem_dim
    lo = 4 * e
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g).to(dtype)

    b = 2
    return {
        "image_encoder": (r(1, 3, s, s),),
        "decoder": (r(b, c, e, e), r(b, c // 8, 4 * e, 4 * e), r(b, c // 4, 2 * e, 2 * e),
                    (torch.rand(b, 3, 2, generator=g) * s).to(dtype), torch.tensor([[1, 0, -1], [2, 3, 1]],
                                                                                  dtype=torch.int32),
                    r(b, 1, lo, lo), torch.tensor(True)),
        "mask_prompt": ((torch.rand(b, 1, s, s, generator=g) > 0.5).to(dtype),),
        "memory_encoder": (r(b, c, e, e), r(b, 1, lo, lo), r(b, 1), torch.tensor(False)),
        "memory_attention": (r(b, c, e, e), r(b, c, e, e), r(b, 2, cm, e, e),
                             torch.tensor([[cfg.num_maskmem - 1, 3], [cfg.num_maskmem - 1, 2]], dtype=torch.int64),
                             r(b, 3, c), torch.rand(b, 3, generator=g).to(dtype)),
    }


# graph name -> (module class, input names, output names, dynamic axes)
GRAPHS = {
    "image_encoder": (ImageEncoderGraph, ["image"],
                      ["embed", "embed_no_mem", "pos", "high_res_0", "high_res_1"], {}),
    "decoder": (DecoderGraph,
                ["pix", "high_res_0", "high_res_1", "point_coords", "point_labels", "mask_input", "has_mask_input"],
                ["masks", "iou", "obj_ptr", "object_score_logits"],
                {"pix": {0: "B_feat"}, "high_res_0": {0: "B_feat"}, "high_res_1": {0: "B_feat"},
                 "point_coords": {0: "B", 1: "N"}, "point_labels": {0: "B", 1: "N"}, "mask_input": {0: "B"},
                 "masks": {0: "B"}, "iou": {0: "B"}, "obj_ptr": {0: "B"}, "object_score_logits": {0: "B"}}),
    "mask_prompt": (MaskPromptGraph, ["mask"], ["mask_input", "no_obj_ptr"],
                    {"mask": {0: "B"}, "mask_input": {0: "B"}, "no_obj_ptr": {0: "B"}}),
    "memory_encoder": (MemoryEncoderGraph, ["embed", "low_res_masks", "object_score_logits", "binarize"],
                       ["maskmem"],
                       {"embed": {0: "B_feat"}, "low_res_masks": {0: "B"}, "object_score_logits": {0: "B"},
                        "maskmem": {0: "B"}}),
    "memory_attention": (MemoryAttentionGraph, ["embed", "pos", "memory", "memory_slot", "obj_ptr", "obj_ptr_tpos"],
                         ["pix"],
                         {"embed": {0: "B"}, "pos": {0: "B"}, "memory": {0: "B", 1: "Nm"},
                          "memory_slot": {0: "B", 1: "Nm"}, "obj_ptr": {0: "B", 1: "P"},
                          "obj_ptr_tpos": {0: "B", 1: "P"}, "pix": {0: "B"}}),
}


def check_exportable(model: SAM2Model) -> None:
    cfg = model.cfg
    if cfg.hidden_dim % cfg.mem_dim:
        raise ExportError(f"hidden_dim {cfg.hidden_dim} must be a multiple of mem_dim {cfg.mem_dim}")


def export_graph(module: torch.nn.Module, args: tuple, input_names, output_names, dynamic_axes, opset: int) -> bytes:
    """One graph through the TorchScript exporter (deterministic, and dynamic axes by name) -> the ONNX bytes."""
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # tracer warnings on shape arithmetic and the exporter's deprecation note
        torch.onnx.export(module, args, buf, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False, do_constant_folding=True)
    return buf.getvalue()


def check_options(out_dir: str | os.PathLike, precision: str, opset: int) -> Path:
    """Refuse bad options and an output folder that is not new or empty, before any work -> the folder."""
    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if not isinstance(opset, int) or opset < MIN_OPSET:
        raise ExportError(f"opset must be an integer >= {MIN_OPSET}, got {opset!r}")
    out = Path(out_dir)
    blocker = file_in_the_way(out)
    if blocker is not None:
        raise NotADirectoryError(f"cannot create folder {out}: {blocker} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise FileExistsError(f"output folder {out} is not empty: give a new or empty folder")
    return out


def half_model(model: SAM2Model) -> SAM2Model:
    """fp16 weights, in place, except the prompt encoder: its Fourier features of pixel coordinates need float32
    (and it is tiny); the graphs cast between the two."""
    model.half()
    model.sam_prompt_encoder.float()
    return model


def export_model(model: SAM2Model, out_dir: str | os.PathLike, precision: str = "fp32",
                 opset: int = DEFAULT_OPSET, source: str = "") -> Path:
    """Write the five graphs and manifest.json into out_dir (created; existing export files are replaced).

    precision fp16: weights and arithmetic in half precision (inputs and outputs stay float32, cast at the
    graph edges), for GPU execution providers. -> the manifest's path.
    """
    out = check_options(out_dir, precision, opset)
    check_exportable(model)
    import onnx

    out = ensure_folder(out)
    model = copy.deepcopy(model).float().eval().cpu()
    inputs = example_inputs(model)
    if precision == "fp16":
        half_model(model)
    files = {}
    for name, (cls, in_names, out_names, axes) in GRAPHS.items():
        module = cls(model).eval()
        data = export_graph(module, inputs[name], in_names, out_names, axes, opset)
        proto = onnx.load_from_string(data)
        onnx.checker.check_model(proto)
        with torch.no_grad():
            outs = module(*inputs[name])
        outs = outs if isinstance(outs, tuple) else (outs,)
        # the manifest's output shapes: the traced sizes, with the dynamic axes by name (the exporter's own
        # inferred names are not meant for readers)
        shapes = {n: [axes.get(n, {}).get(i, d) for i, d in enumerate(o.shape)] for n, o in zip(out_names, outs)}
        files[name] = (f"{name}.onnx", data, proto, shapes)
    for fname, data, _, _ in files.values():
        atomic_write_bytes(out / fname, data)
    manifest = build_manifest(model, files, precision, opset, source)
    return write_manifest(out, manifest)
