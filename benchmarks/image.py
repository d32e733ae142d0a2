"""Image encoder and predict latency, ours against Meta's reference, same weights, same run.

    .venv/bin/python -m benchmarks.image [--configs sam2.1_hiera_tiny sam2.1_hiera_base_plus] [--repeat 3]
    .venv/bin/python -m benchmarks.image --precision bf16   # ours at bf16, the reference under the same autocast

Prints a table with the ratio reference / ours (> 1 means we are faster) and peak resident memory of a
fresh process doing set_image + 3 predicts with each implementation.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks._common import ROOT, compare, peak_memory_of
from samstream.precision import PRECISIONS, autocast


def _models(name):
    from samstream import SAM2Model, official_config
    from samstream.checkpoint import load_into
    from tests.oracle import build_reference, reference_state_dict

    sd = reference_state_dict(name)
    ours = SAM2Model(official_config(name))
    load_into(ours, sd)
    return build_reference(name, sd), ours.eval()


def _image():
    from PIL import Image

    path = ROOT.parent / "shared" / "data" / "sam2-assets" / "images" / "cars.jpg"
    return np.asarray(Image.open(path).convert("RGB"))


def _run(impl: str, name: str, precision: str = "fp32") -> None:
    ref, ours = _models(name)
    img = _image()
    if impl == "ref":
        from sam2.sam2_image_predictor import SAM2ImagePredictor
        p = SAM2ImagePredictor(ref)
        with autocast(precision, "cpu"):
            p.set_image(img)
            for _ in range(3):
                p.predict(point_coords=[[900, 700]], point_labels=[1])
    else:
        from samstream import ImagePredictor
        del ref
        p = ImagePredictor(ours, precision=precision)
        p.set_image(img)
        for _ in range(3):
            p.predict([[900, 700]], [1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", nargs="+", default=["sam2.1_hiera_tiny", "sam2.1_hiera_base_plus"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--precision", choices=PRECISIONS, default="fp32",
                    help="ours: ImagePredictor(precision=...); the reference: under the same torch.autocast")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    from samstream import ImagePredictor
    img = _image()
    print(f"image {img.shape[1]}x{img.shape[0]}, {args.threads} threads, {args.precision}, CPU, "
          f"median of {args.repeat}")
    print(f"{'config':24} {'what':10} {'reference s':>12} {'ours s':>10} {'ratio':>7}")
    for name in args.configs:
        ref, ours = _models(name)
        rp, op = SAM2ImagePredictor(ref), ImagePredictor(ours, precision=args.precision)
        # (ours enters autocast itself; the reference's calls are wrapped in the same one)
        with torch.inference_mode(), autocast(args.precision, "cpu"):
            # (the predictors bound as defaults: they are deleted at the end of each iteration)
            r_enc, o_enc = compare(lambda p=rp: p.set_image(img), lambda p=op: p.set_image(img), args.repeat)
            r_pred, o_pred = compare(lambda p=rp: p.predict(point_coords=[[900, 700]], point_labels=[1]),
                                     lambda p=op: p.predict([[900, 700]], [1]), args.repeat * 5)
        print(f"{name:24} {'encoder':10} {r_enc:12.3f} {o_enc:10.3f} {r_enc / o_enc:7.2f}")
        print(f"{name:24} {'predict':10} {r_pred:12.4f} {o_pred:10.4f} {r_pred / o_pred:7.2f}")
        del ref, ours, rp, op
        r_mem, o_mem = (peak_memory_of(_run, "ref", name, args.precision),
                        peak_memory_of(_run, "ours", name, args.precision))
        print(f"{name:24} {'peak MB':10} {r_mem:12.0f} {o_mem:10.0f} {r_mem / o_mem:7.2f}")


if __name__ == "__main__":
    main()
