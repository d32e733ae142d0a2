"""`samstream export MODEL -o DIR [--precision fp32|fp16] [--opset N]`: the model as ONNX graphs + manifest.json,
to run with `samstream.runtime` (ONNX Runtime, no torch) or any ONNX runtime (see docs/export.md)."""
from __future__ import annotations

from .args import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a model to ONNX graphs for ONNX Runtime (image and video tracking)")
    p.add_argument("model", help="official name (sam2.1-hiera-tiny), checkpoint path, or 'default' for the "
                                 "embedded model")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="new or empty folder for the export")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format (only onnx)")
    p.add_argument("--precision", choices=["fp32", "fp16"], default="fp32",
                   help="fp16: half-precision weights and arithmetic (graph inputs and outputs stay float32)")
    p.add_argument("--opset", type=positive_int, default=None, metavar="N", help="ONNX opset (default 17, at least 17)")
    p.add_argument("--random-weights", action="store_true",
                   help="the official architecture MODEL names with random weights, nothing downloaded (to test a "
                        "runtime or an integration)")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ValueError("the export needs the onnx package: pip install 'samstream[export]'") from None
    from ..export import DEFAULT_OPSET, export_model
    from ..export.onnx_export import check_options

    opset = DEFAULT_OPSET if args.opset is None else args.opset
    check_options(args.output, args.precision, opset)  # before a model is loaded (or downloaded)
    source = args.model
    if args.random_weights:
        from ..model import SAM2Model, official_config

        model = SAM2Model(official_config(args.model)).eval()
        source = f"{args.model} (random weights)"
    else:
        from ..load import load_model

        model = load_model(None if args.model == "default" else args.model)
    path = export_model(model, args.output, precision=args.precision,
                        opset=opset, source=source)
    print(f"wrote {path.parent} ({model.cfg.name}, {args.precision})")
    return 0
