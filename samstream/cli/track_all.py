"""`samstream track-all VIDEO -o OUT`: every object of a video, found on key frames and tracked between them.

It writes what `samstream track` writes (OUT/00000.png ... indexed, pixel value = object id; with
--format json,mp4 also masks.json and overlay.mp4), frame by frame; see samstream.amg.video for the rules.
"""
from __future__ import annotations

from pathlib import Path

from .args import (
    VIDEO_OUTPUTS,
    add_generator_arguments,
    add_output_argument,
    add_precision_argument,
    device,
    fraction,
    generator_options,
    open_video_writers,
    output_folder,
    positive_int,
    video_formats,
    video_name,
    write_results,
)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "track-all", help="find every object of a video on key frames and track them all",
        description="Track everything: segment everything on frame 0 and on every K-th frame after it (key "
                    "frames), track all objects between key frames, and start a new object for every mask "
                    "of a key frame that the tracked objects do not already cover. Each pixel belongs to at "
                    "most one object (the highest mask logit wins). Output as `samstream track`.")
    p.add_argument("video", help="video file (any format FFmpeg reads) or folder of frame images")
    add_output_argument(p, VIDEO_OUTPUTS)
    p.add_argument("--model", default=None, help="official name (sam2.1-hiera-large) or checkpoint path; "
                                                 "default: the embedded model")
    p.add_argument("--format", type=video_formats, default=["png"],
                   help="comma list of png,json,mp4 (png always written)")
    p.add_argument("--device", type=device, default=None, help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--max-frames", type=int, default=None, help="frames to process after frame 0 (default: all)")
    p.add_argument("--key-every", type=positive_int, default=10,
                   help="generate masks every this many frames (default 10; 1 = every frame, slowest)")
    p.add_argument("--new-object-overlap", type=fraction, default=0.3,
                   help="a key-frame mask starts a new object if at most this fraction of it is covered by "
                        "tracked objects (default 0.3)")
    p.add_argument("--min-new-area", type=positive_int, default=100,
                   help="a new object needs at least this many uncovered pixels (default 100)")
    p.add_argument("--max-objects", type=int, default=255, help="stop starting objects after this many ids "
                                                                "(1..255: PNG pixel values; default 255)")
    p.add_argument("--drop-after", type=positive_int, default=None, metavar="N",
                   help="stop tracking an object after N frames without a pixel, checked on key frames "
                        "(default: track every object to the end, in case it comes back)")
    g = p.add_argument_group(
        "generator on key frames (official defaults, except a sparser grid for speed, and the thresholds of "
        "models trained here: samstream.amg.generator.MODEL_THRESHOLDS)")
    add_generator_arguments(g, 16, "clicks per frame side on key frames (default 16; the official 32 is 4x slower)")
    p.add_argument("--no-postprocessing", action="store_true",
                   help="turn off the official builders' post-processing (as in Meta's evaluation scripts)")
    p.add_argument("--mirror", action="store_true",
                   help="track with mirror test-time augmentation (VideoPredictor(mirror=True); about 2x the time)")
    add_precision_argument(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_track_all)


def run_track_all(args) -> int:
    import sys

    import torch

    from ..amg.generator import MaskGenerator
    from ..amg.video import TrackAll, video_generator_options
    from ..load import load_model

    if args.max_frames is not None and args.max_frames < 0:
        raise ValueError(f"--max-frames must be >= 0, got {args.max_frames}")
    if not 1 <= args.max_objects <= 255:
        raise ValueError(f"--max-objects must be in 1..255 (object ids are PNG pixel values), got {args.max_objects}")
    video = Path(args.video)
    if not video.exists():
        raise FileNotFoundError(f"video not found: {video} (expected a video file or a folder of images)")
    folder = output_folder(args, VIDEO_OUTPUTS, inputs=(video,))
    dev = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_model(args.model, device=dev, postprocessing=not args.no_postprocessing)
    generator = MaskGenerator(model, precision=args.precision,
                              **video_generator_options(model, **generator_options(args)))
    out = folder.path
    ta = TrackAll(model, str(video), key_every=args.key_every, generator=generator,
                  new_object_overlap=args.new_object_overlap, min_new_area=args.min_new_area,
                  max_objects=args.max_objects, drop_after=args.drop_after, progress=not args.quiet,
                  predictor_options={"mirror": True} if args.mirror else None, precision=args.precision)
    vp = ta.video
    try:
        _ = vp.video_size  # reads frame 0: a corrupt video fails here, before any file is written
        folder.prepare()  # after frame 0 was read: a failed rerun leaves the earlier outputs
        done = write_results(open_video_writers(out, args.format, vp, video_name(video)), ta.run(args.max_frames))
    finally:
        ta.close()
    if not args.quiet:
        extra = f" ({ta.dropped} more not started: --max-objects reached)" if ta.dropped else ""
        print(f"track-all: {ta.next_id - 1} object(s) over {done} frame(s){extra} -> {out}", file=sys.stderr)
    return 0
