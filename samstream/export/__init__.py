"""ONNX export of a SAM2Model: the image encoder, prompt encoder + mask decoder, mask prompt, memory encoder and
memory attention as graphs, with a manifest (see `samstream.runtime.manifest`). Needs `onnx` (the `export`
extra); the folder runs with `samstream.runtime` on ONNX Runtime, without torch."""
from .onnx_export import DEFAULT_OPSET, PRECISIONS, ExportError, export_model

__all__ = ["DEFAULT_OPSET", "PRECISIONS", "ExportError", "export_model"]
