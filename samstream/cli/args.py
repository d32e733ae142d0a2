"""Argument types and option groups that several commands share."""
from __future__ import annotations

import argparse

VIDEO_FORMATS = ("png", "json", "mp4")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {v}")
    return v


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v >= 0.0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {v}")
    return v


def video_formats(text: str) -> list[str]:
    """argparse type: a comma list of output formats out of VIDEO_FORMATS."""
    fmts = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in fmts if f not in VIDEO_FORMATS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown format(s) {bad}; choose from {', '.join(VIDEO_FORMATS)}")
    return fmts


# the output pipeline's options (dest in args -> MaskPostprocess field); unset (None): the model's default
_POSTPROCESS_OPTIONS = {"edge_refine": "edge_refine_radius", "min_region_area": "min_region_area",
                        "non_overlap": "non_overlap_masks"}


def add_postprocess_arguments(p: argparse.ArgumentParser, what: str = "frame", video: bool = True) -> None:
    """The output pipeline's options (`samstream.postprocess.MaskPostprocess`): --edge-refine, and for video
    commands --min-region-area and --non-overlap. `postprocess_from_args` builds the pipeline from them."""
    p.add_argument("--edge-refine", type=non_negative_float, default=None, metavar="RADIUS",
                   help=f"snap mask edges to the {what}'s edges with a guided filter of this radius, in pixels of the "
                        "low-res mask grid; 0 turns it off (default: the model's setting, on for the built-in model)")
    if video:
        p.add_argument("--min-region-area", type=int, default=None, metavar="PIXELS",
                       help="drop each object's mask regions of fewer pixels than this (video resolution; default: "
                            "the model's setting, 0)")
        p.add_argument("--non-overlap", action="store_true", default=None,
                       help="each pixel keeps only the object with the highest mask logit (before --min-region-area)")


def postprocess_from_args(args: argparse.Namespace, model):
    """The MaskPostprocess of a command: the model's inference defaults with the options of
    `add_postprocess_arguments` that were given."""
    return model.inference_defaults.override(**{field: getattr(args, dest, None)
                                                for dest, field in _POSTPROCESS_OPTIONS.items()})


def add_generator_arguments(g, points_per_side: int, points_help: str) -> None:
    """The MaskGenerator options both commands take (official defaults but points_per_side; the thresholds
    default to None: the model's own, see MaskGenerator.for_model)."""
    g.add_argument("--points-per-side", type=positive_int, default=points_per_side, help=points_help)
    g.add_argument("--points-per-batch", type=positive_int, default=64)
    g.add_argument("--pred-iou-thresh", type=float, default=None,
                   help="default 0.8 (Meta's models) or the model's calibrated value")
    g.add_argument("--stability-score-thresh", type=float, default=None,
                   help="default 0.95 (Meta's models) or the model's calibrated value")
    g.add_argument("--stability-score-offset", type=float, default=1.0)
    g.add_argument("--box-nms-thresh", type=fraction, default=0.7)
    g.add_argument("--crop-n-layers", type=int, default=0)
    g.add_argument("--min-mask-region-area", type=int, default=0,
                   help="fill holes / drop islands up to this many pixels of the 256x256 logit grid")
    g.add_argument("--use-m2m", action="store_true", help="refine every candidate once with its own mask")
    g.add_argument("--single-mask", action="store_true", help="one mask per click instead of three")


def generator_options(args) -> dict:
    """MaskGenerator keyword arguments from the options `add_generator_arguments` defines."""
    names = ("points_per_side", "points_per_batch", "pred_iou_thresh", "stability_score_thresh",
             "stability_score_offset", "box_nms_thresh", "crop_n_layers", "min_mask_region_area", "use_m2m")
    return {**{k: getattr(args, k) for k in names}, "multimask_output": not args.single_mask}


def open_video_writers(out, formats: list[str], vp, name: str) -> list:
    """The writers of `track` and `track-all`: indexed PNGs always, masks.json and overlay.mp4 when asked."""
    from ..video.writers import JsonWriter, OverlayVideoWriter, PngWriter

    writers = [PngWriter(out)]
    if "json" in formats:
        writers.append(JsonWriter(out / "masks.json", name, vp.video_size, vp.num_frames))
    if "mp4" in formats:
        writers.append(OverlayVideoWriter(out / "overlay.mp4", vp.frame, fps=vp.fps, labels_dir=out))
    return writers


def video_name(path) -> str:
    """A video's name in masks.json: a file's stem, a folder's name."""
    from pathlib import Path

    p = Path(path)
    return p.stem if p.suffix else p.name
