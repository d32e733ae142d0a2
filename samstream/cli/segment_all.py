"""`samstream segment-all IMAGE_OR_FOLDER -o OUT`: every object of an image (or of each image in a folder).

It writes OUT/annotations.json (COCO: one image entry per picture, one annotation per mask with a
compressed RLE, area, bbox, score = predicted IoU, and the generator's predicted_iou, stability_score,
point_coords and crop_box) and OUT/<name>_overlay.png per picture.

In a folder, an image that cannot be read is skipped with a warning and listed under "failures" (file_name,
error) in annotations.json; the others are kept and the exit code is 1. A stopped run (an error, Ctrl-C,
SIGTERM) still writes annotations.json for the images it finished.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from .args import (
    add_generator_arguments,
    add_output_argument,
    add_precision_argument,
    device,
    generator_options,
    output_folder,
)
from .signals import deferred

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
OUTPUTS = ("annotations.json", "*_overlay.png")


def add_parser(sub) -> None:
    p = sub.add_parser("segment-all", help="segment every object in an image or a folder of images (automatic "
                                           "mask generation)",
                       description="Segment everything: prompt the model with a grid of clicks, keep the "
                                   "confident, stable, distinct masks (Meta's automatic mask generator).")
    p.add_argument("input", metavar="IMAGE_OR_FOLDER", help="an image file, or a folder of images")
    add_output_argument(p, OUTPUTS, "annotations.json, *_overlay.png")
    p.add_argument("--model", default=None, help="official name (sam2.1-hiera-large) or checkpoint path; "
                                                 "default: the embedded model")
    p.add_argument("--device", type=device, default="cpu")
    add_precision_argument(p)
    g = p.add_argument_group("generator (official defaults, except the thresholds of models trained here: "
                             "samstream.amg.generator.MODEL_THRESHOLDS)")
    add_generator_arguments(g, 32, "clicks per image side (default 32)")
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

    from ..amg.generator import MaskGenerator
    from ..io.coco import write_coco_json
    from ..io.png import write_image_png
    from ..io.rle import counts_to_string, decode_counts, rle_bbox
    from ..load import load_model
    from ..overlay import overlay
    from ..transforms import to_rgb_array
    from ..video.writers import remove_stale_temps

    files = _inputs(Path(args.input))
    folder = output_folder(args, OUTPUTS, inputs=(args.input,))
    generator = MaskGenerator.for_model(
        load_model(args.model, device=args.device), **generator_options(args), mask_threshold=args.mask_threshold,
        crop_nms_thresh=args.crop_nms_thresh, crop_overlap_ratio=args.crop_overlap_ratio,
        crop_n_points_downscale_factor=args.crop_n_points_downscale_factor, output_mode="uncompressed_rle",
        progress=not args.quiet, precision=args.precision)
    images, annotations, failures = [], [], []
    stems = [f.stem for f in files]
    one = not Path(args.input).is_dir()  # a single image's error is the command's error
    out = folder.prepare()
    remove_stale_temps(out, lambda name: name == "annotations.json" or name.endswith("_overlay.png"))
    try:
        for f in files:
            try:
                image = to_rgb_array(f)
                h, w = image.shape[:2]
                t = time.perf_counter()
                records = generator.generate(image)
                dt = time.perf_counter() - t
            except (ValueError, OSError) as e:  # a bad image: the others still get their masks
                if one:
                    raise
                failures.append({"file_name": f.name, "error": str(e)})
                print(f"warning: {f.name} skipped: {e}", file=sys.stderr)
                continue
            # the largest masks first, so that smaller ones stay visible on top
            order = sorted(range(len(records)), key=lambda i: -records[i]["area"])
            masks = np.stack([decode_counts(records[i]["segmentation"]["counts"], h, w) for i in order]) \
                if records else np.zeros((0, h, w), dtype=bool)
            name = f.stem if stems.count(f.stem) == 1 else f.name.replace(".", "_")
            with deferred():  # an image in annotations.json has its overlay, and the other way round
                pic = write_image_png(out / f"{name}_overlay.png", overlay(image, masks, ids=order))
                image_id = len(images) + 1
                images.append({"id": image_id, "file_name": f.name, "height": h, "width": w})
                for r in records:
                    rle = {"size": [h, w], "counts": counts_to_string(r["segmentation"]["counts"])}
                    annotations.append({
                        "id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "segmentation": rle,
                        "area": r["area"], "bbox": rle_bbox(rle), "iscrowd": 0, "score": r["predicted_iou"],
                        "predicted_iou": r["predicted_iou"], "stability_score": r["stability_score"],
                        "point_coords": r["point_coords"], "crop_box": r["crop_box"]})
            print(f"{f.name}: {len(records)} masks in {dt:.1f} s; overlay {pic}")
    finally:  # also when stopped (an error, Ctrl-C, SIGTERM): the finished images are kept
        if images or failures:
            with deferred():
                path = write_coco_json(out / "annotations.json", annotations, images=images,
                                       categories=[{"id": 1, "name": "object"}],
                                       **({"failures": failures} if failures else {}))
    print(f"{len(annotations)} masks in {len(images)} image(s): {path}")
    if failures:
        print(f"error: {len(failures)} of {len(files)} image(s) failed (listed under \"failures\" in {path})",
              file=sys.stderr)
        return 1
    return 0
