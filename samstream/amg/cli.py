"""`samstream segment-all IMAGE_OR_FOLDER -o OUT`: every object of an image (or of each image in a folder).
`samstream track-all VIDEO -o OUT`: every object of a video, found on key frames and tracked between them.

segment-all writes OUT/annotations.json (COCO: one image entry per picture, one annotation per mask with a
compressed RLE, area, bbox, score = predicted IoU, and the generator's predicted_iou, stability_score,
point_coords and crop_box) and OUT/<name>_overlay.png per picture.

track-all writes what `samstream track` writes (OUT/00000.png ... indexed, pixel value = object id; with
--format json,mp4 also masks.json and overlay.mp4), frame by frame; see samstream.amg.video for the rules.
"""
from __future__ import annotations

import time
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def add_parser(sub) -> None:
    _add_segment_all(sub)
    _add_track_all(sub)


def _add_generator_args(g, points_per_side: int, points_help: str) -> None:
    """The MaskGenerator options both commands take (official defaults but points_per_side; the thresholds
    default to None: the model's own, see MaskGenerator.for_model)."""
    from ..cli import fraction, positive_int

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


def _generator_options(args) -> dict:
    """MaskGenerator keyword arguments from the options `_add_generator_args` defines."""
    names = ("points_per_side", "points_per_batch", "pred_iou_thresh", "stability_score_thresh",
             "stability_score_offset", "box_nms_thresh", "crop_n_layers", "min_mask_region_area", "use_m2m")
    return {**{k: getattr(args, k) for k in names}, "multimask_output": not args.single_mask}


def _add_segment_all(sub) -> None:
    p = sub.add_parser("segment-all", help="segment every object in an image or a folder of images (automatic "
                                           "mask generation)",
                       description="Segment everything: prompt the model with a grid of clicks, keep the "
                                   "confident, stable, distinct masks (Meta's automatic mask generator).")
    p.add_argument("input", metavar="IMAGE_OR_FOLDER", help="an image file, or a folder of images")
    p.add_argument("-o", "--output", required=True, help="output folder (annotations.json, *_overlay.png)")
    p.add_argument("--model", default=None, help="official name (sam2.1-hiera-large) or checkpoint path; "
                                                 "default: the embedded model")
    p.add_argument("--device", default="cpu")
    g = p.add_argument_group("generator (official defaults, except the thresholds of models trained here: "
                             "samstream.amg.generator.MODEL_THRESHOLDS)")
    _add_generator_args(g, 32, "clicks per image side (default 32)")
    g.add_argument("--mask-threshold", type=float, default=0.0)
    g.add_argument("--crop-nms-thresh", type=float, default=0.7)
    g.add_argument("--crop-overlap-ratio", type=float, default=512 / 1500)
    g.add_argument("--crop-n-points-downscale-factor", type=int, default=1)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _inputs(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return files
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path}")
    return [path]


def run(args) -> int:
    import numpy as np

    from ..checkpoint import load_model
    from ..io.coco import write_coco_json
    from ..io.png import write_image_png
    from ..io.rle import counts_to_string, decode_counts, rle_bbox
    from ..overlay import overlay
    from ..transforms import to_rgb_array
    from .generator import MaskGenerator

    files = _inputs(Path(args.input))
    out = Path(args.output)
    generator = MaskGenerator.for_model(
        load_model(args.model, device=args.device), **_generator_options(args), mask_threshold=args.mask_threshold,
        crop_nms_thresh=args.crop_nms_thresh, crop_overlap_ratio=args.crop_overlap_ratio,
        crop_n_points_downscale_factor=args.crop_n_points_downscale_factor, output_mode="uncompressed_rle",
        progress=not args.quiet)
    images, annotations = [], []
    stems = [f.stem for f in files]
    for image_id, f in enumerate(files, start=1):
        image = to_rgb_array(f)
        h, w = image.shape[:2]
        t = time.perf_counter()
        records = generator.generate(image)
        dt = time.perf_counter() - t
        images.append({"id": image_id, "file_name": f.name, "height": h, "width": w})
        for r in records:
            rle = {"size": [h, w], "counts": counts_to_string(r["segmentation"]["counts"])}
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "segmentation": rle,
                "area": r["area"], "bbox": rle_bbox(rle), "iscrowd": 0, "score": r["predicted_iou"],
                "predicted_iou": r["predicted_iou"], "stability_score": r["stability_score"],
                "point_coords": r["point_coords"], "crop_box": r["crop_box"]})
        # the largest masks first, so that smaller ones stay visible on top
        order = sorted(range(len(records)), key=lambda i: -records[i]["area"])
        masks = np.stack([decode_counts(records[i]["segmentation"]["counts"], h, w) for i in order]) \
            if records else np.zeros((0, h, w), dtype=bool)
        name = f.stem if stems.count(f.stem) == 1 else f.name.replace(".", "_")
        pic = write_image_png(out / f"{name}_overlay.png", overlay(image, masks, ids=order))
        print(f"{f.name}: {len(records)} masks in {dt:.1f} s; overlay {pic}")
    path = write_coco_json(out / "annotations.json", annotations, images=images,
                           categories=[{"id": 1, "name": "object"}])
    print(f"{len(annotations)} masks in {len(images)} image(s): {path}")
    return 0


# ------------------------------------------------------------------------------------------ track-all
def _add_track_all(sub) -> None:
    from ..cli import fraction as _fraction
    from ..cli import positive_int as _positive_int
    from ..video.cli import _formats

    p = sub.add_parser(
        "track-all", help="find every object of a video on key frames and track them all",
        description="Track everything: segment everything on frame 0 and on every K-th frame after it (key "
                    "frames), track all objects between key frames, and start a new object for every mask "
                    "of a key frame that the tracked objects do not already cover. Each pixel belongs to at "
                    "most one object (the highest mask logit wins). Output as `samstream track`.")
    p.add_argument("video", help="video file (any format FFmpeg reads) or folder of frame images")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--model", default=None, help="official name (sam2.1-hiera-large) or checkpoint path; "
                                                 "default: the embedded model")
    p.add_argument("--format", type=_formats, default=["png"],
                   help="comma list of png,json,mp4 (png always written)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--max-frames", type=int, default=None, help="frames to process after frame 0 (default: all)")
    p.add_argument("--key-every", type=_positive_int, default=10,
                   help="generate masks every this many frames (default 10; 1 = every frame, slowest)")
    p.add_argument("--new-object-overlap", type=_fraction, default=0.3,
                   help="a key-frame mask starts a new object if at most this fraction of it is covered by "
                        "tracked objects (default 0.3)")
    p.add_argument("--min-new-area", type=_positive_int, default=100,
                   help="a new object needs at least this many uncovered pixels (default 100)")
    p.add_argument("--max-objects", type=int, default=255, help="stop starting objects after this many ids "
                                                                "(1..255: PNG pixel values; default 255)")
    p.add_argument("--drop-after", type=_positive_int, default=None, metavar="N",
                   help="stop tracking an object after N frames without a pixel, checked on key frames "
                        "(default: track every object to the end, in case it comes back)")
    g = p.add_argument_group(
        "generator on key frames (official defaults, except a sparser grid for speed, and the thresholds of "
        "models trained here: samstream.amg.generator.MODEL_THRESHOLDS)")
    _add_generator_args(g, 16, "clicks per frame side on key frames (default 16; the official 32 is 4x slower)")
    p.add_argument("--no-postprocessing", action="store_true",
                   help="turn off the official builders' post-processing (as in Meta's evaluation scripts)")
    p.add_argument("--mirror", action="store_true",
                   help="track with mirror test-time augmentation (VideoPredictor(mirror=True); about 2x the time)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_track_all)


def run_track_all(args) -> int:
    import sys

    import torch

    from ..checkpoint import load_model
    from ..video.writers import JsonWriter, OverlayVideoWriter, PngWriter
    from .generator import MaskGenerator
    from .video import TrackAll, video_generator_options

    if args.max_frames is not None and args.max_frames < 0:
        raise ValueError(f"--max-frames must be >= 0, got {args.max_frames}")
    if not 1 <= args.max_objects <= 255:
        raise ValueError(f"--max-objects must be in 1..255 (object ids are PNG pixel values), got {args.max_objects}")
    video = Path(args.video)
    if not video.exists():
        raise FileNotFoundError(f"video not found: {video} (expected a video file or a folder of images)")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_model(args.model, device=device, postprocessing=not args.no_postprocessing)
    generator = MaskGenerator(model, **video_generator_options(model, **_generator_options(args)))
    out = Path(args.output)
    ta = TrackAll(model, str(video), key_every=args.key_every, generator=generator,
                  new_object_overlap=args.new_object_overlap, min_new_area=args.min_new_area,
                  max_objects=args.max_objects, drop_after=args.drop_after, progress=not args.quiet,
                  predictor_options={"mirror": True} if args.mirror else None)
    vp = ta.video
    writers = []
    done = 0
    try:
        hw = vp.video_size  # reads frame 0: a corrupt video fails here, before any file is written
        writers.append(PngWriter(out))
        if "json" in args.format:
            name = video.stem if video.suffix else video.name
            writers.append(JsonWriter(out / "masks.json", name, hw, vp.num_frames))
        if "mp4" in args.format:
            fps = getattr(vp.store.source, "fps", 30.0)
            writers.append(OverlayVideoWriter(out / "overlay.mp4", vp.store.frame, fps=fps, labels_dir=out))
        for result in ta.run(args.max_frames):
            for w in writers:
                w.write(result)
            done += 1
    finally:
        for w in writers:  # also on errors and Ctrl-C: what finished is kept
            w.close()
        ta.close()
    if not args.quiet:
        extra = f" ({ta.dropped} more not started: --max-objects reached)" if ta.dropped else ""
        print(f"track-all: {ta.next_id - 1} object(s) over {done} frame(s){extra} -> {out}", file=sys.stderr)
    return 0
