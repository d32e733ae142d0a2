"""`samstream segment-all IMAGE_OR_FOLDER -o OUT`: every object of an image (or of each image in a folder).

It writes OUT/annotations.json (COCO: one image entry per picture, one annotation per mask with a
compressed RLE, area, bbox, score = predicted IoU, and the generator's predicted_iou, stability_score,
point_coords and crop_box) and OUT/<name>_overlay.png per picture.
"""
from __future__ import annotations

import time
from pathlib import Path

from .args import add_generator_arguments, generator_options

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def add_parser(sub) -> None:
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
    from ..checkpoint import load_model
    from ..io.coco import write_coco_json
    from ..io.png import write_image_png
    from ..io.rle import counts_to_string, decode_counts, rle_bbox
    from ..overlay import overlay
    from ..transforms import to_rgb_array

    files = _inputs(Path(args.input))
    out = Path(args.output)
    generator = MaskGenerator.for_model(
        load_model(args.model, device=args.device), **generator_options(args), mask_threshold=args.mask_threshold,
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
