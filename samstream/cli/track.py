"""`samstream track`: follow prompted objects through a video and write their masks.

    samstream track clip.mp4 --prompt 0:1:210,350 --box 40:2:10,20,200,220 -o out/ --format png,json,mp4

OUT gets one indexed PNG per frame (00000.png, ...; pixel value = object id), plus masks.json (SA-V
style, COCO RLE) and overlay.mp4 when asked. Files are written as frames finish, so an interrupted or
failed run keeps what it finished. OUT must be new or empty: --overwrite first deletes an earlier run's
files there (so none of its frames stays beside the new ones) and keeps any other file.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict

from .args import (
    VIDEO_OUTPUTS,
    add_output_argument,
    add_postprocess_arguments,
    add_precision_argument,
    allow_negative_values,
    device,
    non_negative_int,
    open_video_writers,
    output_folder,
    postprocess_from_args,
    video_formats,
    video_name,
    write_results,
)


def _spec(text: str, what: str, nums: tuple[int, ...]) -> tuple[int, int, list[float]]:
    """'FRAME:OBJ:v1,v2,...' -> (frame, obj, values), with len(values) in nums."""
    parts = text.split(":", 2)
    try:
        if len(parts) != 3:
            raise ValueError
        frame, obj = int(parts[0]), int(parts[1])
        values = [float(v) for v in parts[2].split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad {what} {text!r}: expected FRAME:OBJ:" +
                                         {"--prompt": "x,y[,label]", "--box": "x0,y0,x1,y1"}[what]) from None
    if len(values) not in nums:
        raise argparse.ArgumentTypeError(f"bad {what} {text!r}: expected {' or '.join(map(str, nums))} numbers "
                                         f"after FRAME:OBJ:")
    if not 1 <= obj <= 255:
        raise argparse.ArgumentTypeError(f"bad {what} {text!r}: object ids are 1..255 (they are PNG pixel values)")
    return frame, obj, values


def _mask_spec(text: str) -> tuple[int, int, str]:
    parts = text.split(":", 2)
    try:
        frame, obj = int(parts[0]), int(parts[1])
        path = parts[2]
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"bad --mask {text!r}: expected FRAME:OBJ:mask.png") from None
    if not 1 <= obj <= 255:
        raise argparse.ArgumentTypeError(f"bad --mask {text!r}: object ids are 1..255")
    return frame, obj, path


def _read_mask(path: str, frame: int, obj: int):
    """A --mask file -> (H, W) bool: its non-zero pixels. An empty one is refused: it would track nothing."""
    from ..io.png import read_label_png

    mask = read_label_png(path)[0] > 0
    if not mask.any():
        raise ValueError(f"--mask {frame}:{obj}:{path}: the mask is empty (no non-zero pixel), nothing to track")
    return mask


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("track", help="track prompted objects through a video",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    allow_negative_values(p)  # "--prompt -1:1:10,10" reaches the frame check
    p.add_argument("video", help="video file (any format FFmpeg reads) or folder of frame images")
    p.add_argument("--prompt", action="append", default=[], metavar="FRAME:OBJ:x,y[,label]",
                   type=lambda s: _spec(s, "--prompt", (2, 3)),
                   help="a click in video pixels; label 1 = object (default), 0 = background; repeatable")
    p.add_argument("--box", action="append", default=[], metavar="FRAME:OBJ:x0,y0,x1,y1",
                   type=lambda s: _spec(s, "--box", (4,)), help="a box in video pixels; repeatable")
    p.add_argument("--mask", action="append", default=[], metavar="FRAME:OBJ:mask.png", type=_mask_spec,
                   help="a mask image (non-zero pixels = object) at video resolution; repeatable")
    p.add_argument("--direction", choices=("forward", "backward", "both"), default="forward",
                   help="forward from the first prompted frame, backward from the last, or both from the first")
    add_output_argument(p, VIDEO_OUTPUTS)
    p.add_argument("--model", default=None, help="official model name, checkpoint path, or a `samstream export` folder "
                                                 "(run on ONNX Runtime); default: the built-in model")
    p.add_argument("--format", type=video_formats, default=["png"],
                   help="comma list of png,json,mp4 (png always written)")
    p.add_argument("--device", type=device, default=None, help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--max-frames", type=non_negative_int, default=None,
                   help="frames to track after the start, per direction")
    p.add_argument("--no-postprocessing", action="store_true",
                   help="turn off the official builders' post-processing (as in Meta's evaluation scripts)")
    p.add_argument("--mirror", action="store_true",
                   help="test-time augmentation: also track on the video flipped left-right and average the two "
                        "(about 2x the time)")
    add_precision_argument(p)
    add_postprocess_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from .track_onnx import OnnxTracking, check_options, is_export_folder

    if not (args.prompt or args.box or args.mask):
        raise ValueError("give at least one --prompt, --box or --mask")
    folder = output_folder(args, VIDEO_OUTPUTS, inputs=(args.video,))
    if is_export_folder(args.model):  # ONNX Runtime
        check_options(args)
        vp = OnnxTracking(args.model, args.video, progress=not args.quiet)
    else:
        import torch

        from ..load import load_model
        from ..video.predictor import VideoPredictor

        dev = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = load_model(args.model, device=dev, postprocessing=not args.no_postprocessing)
        vp = VideoPredictor(model, args.video, progress=not args.quiet, mirror=args.mirror,
                            postprocess=postprocess_from_args(args, model), precision=args.precision)
    try:
        _add_prompts(vp, args)
        out = folder.prepare()  # after the prompts are checked: a failed rerun leaves the earlier outputs
        writers = open_video_writers(out, args.format, vp, video_name(args.video))
        finish = (lambda: writers[0].fill_missing(vp.num_frames, vp.video_size)) if vp.num_frames is not None else None
        done = write_results(writers, vp.propagate(direction=args.direction, max_frames=args.max_frames), finish)
    finally:
        vp.close()
    if not args.quiet:
        print(f"tracked {len(vp.obj_ids)} object(s) over {done} frame(s) -> {out}", file=sys.stderr)
    return 0


def _add_prompts(vp, args) -> None:
    """The --prompt, --box and --mask prompts to `vp`, grouped per (frame, object): a box and clicks on one frame
    form one prompt."""
    clicks: dict[tuple[int, int], list] = defaultdict(list)
    boxes: dict[tuple[int, int], list[float]] = {}
    for frame, obj, v in args.prompt:
        clicks[(frame, obj)].append((v[0], v[1], v[2] if len(v) == 3 else 1))  # the predictor checks labels
    for frame, obj, v in args.box:
        if (frame, obj) in boxes:
            raise ValueError(f"two boxes for object {obj} on frame {frame}")
        boxes[(frame, obj)] = v
    for frame, obj, path in args.mask:
        vp.add_mask(frame, obj, _read_mask(path, frame, obj))
    for key in sorted(set(clicks) | set(boxes)):
        frame, obj = key
        pts = clicks.get(key)
        vp.add_points(frame, obj, None if not pts else [p[:2] for p in pts],
                      None if not pts else [p[2] for p in pts], box=boxes.get(key))
