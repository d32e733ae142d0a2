"""`samstream segment IMAGE --point X,Y[,LABEL] --box X0,Y0,X1,Y1 -o OUT`: one mask from clicks and/or a box."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .args import (
    add_output_argument,
    add_postprocess_arguments,
    add_precision_argument,
    allow_negative_values,
    device,
    output_folder,
    postprocess_from_args,
)

OUTPUTS = ("mask.png", "overlay.png")


def _floats(text: str, n: tuple[int, ...], what: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} {text!r}: expected comma-separated numbers") from None
    if len(vals) not in n:
        raise argparse.ArgumentTypeError(f"{what} {text!r}: expected {' or '.join(map(str, n))} numbers")
    return vals


def add_parser(sub) -> None:
    p = sub.add_parser("segment", help="segment one object in an image from points and/or a box")
    allow_negative_values(p)  # "--point -5,10" reaches the predictor's range check
    p.add_argument("image", help="image file")
    p.add_argument("--point", action="append", default=[], type=lambda s: _floats(s, (2, 3), "--point"),
                   metavar="X,Y[,LABEL]", help="a click in image pixels; LABEL 1 foreground (default), 0 background")
    p.add_argument("--box", type=lambda s: _floats(s, (4,), "--box"), metavar="X0,Y0,X1,Y1")
    p.add_argument("--model", default=None, help="official name (sam2.1-hiera-large), checkpoint path, or a "
                                                 "`samstream export` folder (run on ONNX Runtime); default: the "
                                                 "embedded model")
    p.add_argument("--device", type=device, default="cpu")
    p.add_argument("--multimask", action="store_true", help="keep the best of 3 candidate masks")
    p.add_argument("--mirror", action="store_true",
                   help="test-time augmentation: also predict on the mirrored image and average the two")
    add_precision_argument(p)
    add_postprocess_arguments(p, "image", video=False)
    add_output_argument(p, OUTPUTS, "mask.png, overlay.png")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..io import write_image_png
    from ..load import load_model
    from ..overlay import overlay
    from ..predictor import ImagePredictor
    from ..transforms import to_rgb_array

    if not args.point and args.box is None:
        raise ValueError("give at least one --point or a --box")
    folder = output_folder(args, OUTPUTS, inputs=(args.image,))
    image = to_rgb_array(args.image)
    if args.model is not None and (Path(args.model) / "manifest.json").is_file():  # an export folder: ONNX Runtime
        from ..runtime import ImagePredictor as OnnxImagePredictor

        if args.mirror or args.edge_refine or args.precision != "fp32":
            raise ValueError("--mirror, --edge-refine and --precision are not available with an ONNX export folder "
                             "as --model")
        predictor = OnnxImagePredictor(args.model)
    else:
        model = load_model(args.model, device=args.device)
        predictor = ImagePredictor(model, postprocess_from_args(args, model), mirror=args.mirror,
                                   precision=args.precision)
    predictor.set_image(image)
    points = [p[:2] for p in args.point] or None
    labels = [p[2] if len(p) == 3 else 1 for p in args.point] or None  # the predictor checks them
    masks, scores, _ = predictor.predict(points, labels, args.box, multimask_output=args.multimask)
    best = int(np.argmax(scores))
    mask = masks[best]
    out = folder.prepare()
    write_image_png(out / "mask.png", mask.astype(np.uint8) * 255)
    write_image_png(out / "overlay.png", overlay(image, mask[None]))
    print(f"mask: {out / 'mask.png'} ({int(mask.sum())} px, predicted IoU {scores[best]:.3f}); "
          f"overlay: {out / 'overlay.png'}")
    return 0
