"""Automatic mask generation ("segment everything"): every object of an image from a grid of clicks.

Same algorithm, parameters and output as Meta's SAM2AutomaticMaskGenerator (sam2-facts §4.3), organised
so that the expensive parts run as rarely as possible:

* the image encoder runs once per crop, and the mask decoder shares its prompt-independent work between
  all clicks of a crop (`PromptDecoder`);
* candidates are filtered by predicted IoU before any mask is built; masks are upscaled to the crop's
  resolution only for the candidates left, to measure their stability and box, and are never pasted
  into full-image canvases: the survivors keep their 256x256 logits, and a final mask is rebuilt from
  them only for the masks left after non-maximum suppression (NMS);
* run-length encoding scans only the columns of a mask's box.

Every kept value is computed with the same operations as the official code, so the output is the same
(see tests/test_amg_parity.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..model import SAM2Model
from ..model.sam2 import ImageFeatures
from ..precision import autocast, check_precision
from ..transforms import preprocess_image, to_rgb_array
from .crops import crop_boxes, layer_point_grids, near_crop_edge
from .decoder import PromptDecoder
from .masks import clean_small_regions, mask_boxes, rle_counts, stability_scores
from .nms import box_area, nms

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")
_PIXELS_PER_PASS = 1 << 24  # upscaled logits held at once while measuring stability (64 MB of float32)
# Thresholds for models whose IoU head and mask edges are calibrated unlike Meta's, keyed by SAM2Config.name:
# at the official 0.8 / 0.95 they keep next to nothing. Measured by tools/calibrate_generator.py;
# re-run it whenever such a model's weights change.
MODEL_THRESHOLDS = {"samstream-default": {"pred_iou_thresh": 0.6, "stability_score_thresh": 0.0}}


def model_defaults(model: SAM2Model) -> dict:
    """The MaskGenerator options `model` needs beyond the official defaults ({} for Meta's models)."""
    return dict(MODEL_THRESHOLDS.get(getattr(model.cfg, "name", None), {}))


@dataclass
class GeneratedMasks:
    """The generator's result as tensors, N masks in output order (what `MaskGenerator.records` serialises).

    boxes: (N, 4) int64 XYXY in image pixels, x1/y1 the last pixel inside (as the official records);
    ious, stability: (N,) float32; points: (N, 2) float32 click (x, y) in image pixels; crop_boxes:
    (N, 4) int64 XYXY (x1/y1 exclusive). Masks are kept as the 256x256 logits they come from and
    rebuilt on demand with `mask(i)` / `masks()`.
    """

    image_size: tuple[int, int]
    boxes: torch.Tensor
    ious: torch.Tensor
    stability: torch.Tensor
    points: torch.Tensor
    crop_boxes: torch.Tensor
    low_res: torch.Tensor  # (N, L, L) cleaned logits
    mask_threshold: float = 0.0
    _cache: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return self.boxes.shape[0]

    def crop_mask(self, i: int) -> torch.Tensor:
        """Mask i at the resolution of its crop: (crop h, crop w) bool."""
        x0, y0, x1, y1 = (int(v) for v in self.crop_boxes[i])
        up = F.interpolate(self.low_res[i][None, None], size=(y1 - y0, x1 - x0), mode="bilinear",
                           align_corners=False)
        return up[0, 0] > self.mask_threshold

    def mask(self, i: int) -> torch.Tensor:
        """Mask i over the whole image: (H, W) bool."""
        h, w = self.image_size
        x0, y0, x1, y1 = (int(v) for v in self.crop_boxes[i])
        out = torch.zeros(h, w, dtype=torch.bool, device=self.low_res.device)
        out[y0:y1, x0:x1] = self.crop_mask(i)
        return out

    def masks(self) -> torch.Tensor:
        """All masks over the whole image: (N, H, W) bool."""
        h, w = self.image_size
        if len(self) == 0:
            return torch.zeros(0, h, w, dtype=torch.bool, device=self.low_res.device)
        return torch.stack([self.mask(i) for i in range(len(self))])

    def areas(self) -> torch.Tensor:
        return torch.tensor([int(self.crop_mask(i).sum()) for i in range(len(self))], dtype=torch.long)


class MaskGenerator:
    """Segment everything in an image with a SAM 2 model: official SAM2AutomaticMaskGenerator semantics.

    Clicks on a points_per_side x points_per_side grid (or the given point_grids, one per crop layer,
    coordinates in [0, 1]) are decoded points_per_batch at a time; candidates with predicted IoU <=
    pred_iou_thresh or stability < stability_score_thresh (IoU of the masks cut at mask_threshold +-
    stability_score_offset) are dropped, then near-duplicates by box NMS (box_nms_thresh), within each
    crop and, with crop_n_layers > 0, across crops (crop_nms_thresh, smaller crops preferred).
    min_mask_region_area > 0 fills holes and removes islands of at most that many pixels of the
    256x256 logit grid. use_m2m re-decodes every candidate once with its own mask as a prompt.
    Records: see `generate`. Extra (not official): progress shows a progress bar; decoder_chunk sets
    how many clicks go through the decoder's transformer together (speed only; None: 4 on CPU, where
    small chunks keep the image tokens in cache, the whole batch on GPU); precision "fp32" (default, exact),
    "bf16" or "fp16" runs the encoder and decoder under autocast (see `samstream.precision`).
    """

    def __init__(self, model: SAM2Model, points_per_side: int | None = 32, points_per_batch: int = 64,
                 pred_iou_thresh: float = 0.8, stability_score_thresh: float = 0.95,
                 stability_score_offset: float = 1.0, mask_threshold: float = 0.0, box_nms_thresh: float = 0.7,
                 crop_n_layers: int = 0, crop_nms_thresh: float = 0.7, crop_overlap_ratio: float = 512 / 1500,
                 crop_n_points_downscale_factor: int = 1, point_grids: list[np.ndarray] | None = None,
                 min_mask_region_area: int = 0, output_mode: str = "binary_mask", use_m2m: bool = False,
                 multimask_output: bool = True, *, progress: bool = False, decoder_chunk: int | None = None,
                 precision: str = "fp32"):
        if not isinstance(model, SAM2Model):
            raise TypeError(f"model must be a samstream SAM2Model (see samstream.load_model), "
                            f"got {type(model).__name__}")
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("give exactly one of points_per_side and point_grids "
                             f"(got points_per_side={points_per_side!r} and "
                             f"{'no point_grids' if point_grids is None else 'point_grids'})")
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"unknown output_mode {output_mode!r}; expected one of {', '.join(OUTPUT_MODES)}")
        _check_int("points_per_batch", points_per_batch, 1)
        _check_int("crop_n_layers", crop_n_layers, 0)
        _check_int("crop_n_points_downscale_factor", crop_n_points_downscale_factor, 1)
        _check_int("min_mask_region_area", min_mask_region_area, 0, allow_float=True)
        if decoder_chunk is not None:
            _check_int("decoder_chunk", decoder_chunk, 1)
        if not 0.0 <= crop_overlap_ratio < 1.0:
            raise ValueError(f"crop_overlap_ratio must be in [0, 1), got {crop_overlap_ratio}")
        for name, v in (("box_nms_thresh", box_nms_thresh), ("crop_nms_thresh", crop_nms_thresh)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if points_per_side is not None:
            _check_int("points_per_side", points_per_side, 1)
            grids = layer_point_grids(points_per_side, crop_n_layers, crop_n_points_downscale_factor)
        else:
            grids = _check_grids(point_grids, crop_n_layers)
        self.precision = check_precision(precision)
        self.model = model.eval()
        self.point_grids = grids
        self.points_per_side = points_per_side
        self.points_per_batch = int(points_per_batch)
        self.pred_iou_thresh = float(pred_iou_thresh)
        self.stability_score_thresh = float(stability_score_thresh)
        self.stability_score_offset = float(stability_score_offset)
        self.mask_threshold = float(mask_threshold)
        self.box_nms_thresh = float(box_nms_thresh)
        self.crop_n_layers = int(crop_n_layers)
        self.crop_nms_thresh = float(crop_nms_thresh)
        self.crop_overlap_ratio = float(crop_overlap_ratio)
        self.crop_n_points_downscale_factor = int(crop_n_points_downscale_factor)
        self.min_mask_region_area = int(min_mask_region_area)
        self.output_mode = output_mode
        self.use_m2m = bool(use_m2m)
        self.multimask_output = bool(multimask_output)
        self.progress = progress
        self.decoder_chunk = decoder_chunk

    @classmethod
    def for_model(cls, model: SAM2Model, **options) -> MaskGenerator:
        """A generator with `model_defaults(model)` in place of the official thresholds; `options` (None =
        the default) override them. The plain constructor keeps Meta's defaults, as their class does."""
        return cls(model, **{**model_defaults(model), **{k: v for k, v in options.items() if v is not None}})

    # ------------------------------------------------------------------------------------------ public
    def generate(self, image, features: ImageFeatures | None = None) -> list[dict]:
        """image: HxWx3 uint8 RGB array, PIL image or path -> one record per mask, official keys:

        segmentation ((H, W) bool array, or an RLE dict {"size": [H, W], "counts": list of ints
        (uncompressed_rle) or str (coco_rle)}), area (int pixels), bbox ([x, y, w, h] with w = x1 - x0
        between first and last pixel, as the official records), predicted_iou, point_coords ([[x, y]]),
        stability_score, crop_box ([x, y, w, h]).

        features: the image encoder's output (`SAM2Model.encode_image`, without no_mem_embed) for the whole
        image, if the caller already has it (e.g. a video tracker on a key frame); used for the first
        crop instead of encoding the image again. Features of a video frame come from a differently
        resized image (bicubic, sam2-facts §9 quirk 6), so masks differ slightly from generate(image).
        """
        return self.records(self.generate_masks(image, features))

    @torch.inference_mode()
    def generate_masks(self, image, features: ImageFeatures | None = None) -> GeneratedMasks:
        """Like `generate`, but returns tensors (`GeneratedMasks`): for callers that go on computing."""
        image = to_rgb_array(image)
        h, w = image.shape[:2]
        boxes, layers = crop_boxes(h, w, self.crop_n_layers, self.crop_overlap_ratio)
        total = sum(-(-len(self.point_grids[layer]) // self.points_per_batch) for layer in layers)
        from tqdm import tqdm

        with tqdm(total=total, desc="segment-all", unit="batch", disable=not self.progress, leave=False) as bar, \
                autocast(self.precision, self.model.device):
            parts = [self._process_crop(image, box, layer, features if i == 0 else None, bar)
                     for i, (box, layer) in enumerate(zip(boxes, layers))]
        dev = self.model.device
        found = _Candidates.cat(parts, dev)
        if len(boxes) > 1 and len(found):
            # duplicates between crops: prefer the mask from the smaller crop
            keep = nms(found.boxes.float(), 1 / box_area(found.crop_boxes), self.crop_nms_thresh)
            found = found.take(keep)
        return GeneratedMasks((h, w), found.boxes, found.ious, found.stability, found.points, found.crop_boxes,
                              found.low_res, self.mask_threshold)

    def records(self, result: GeneratedMasks) -> list[dict]:
        """Official records (see `generate`) of a `GeneratedMasks`, in this generator's output_mode."""
        h, w = result.image_size
        if self.output_mode == "coco_rle":
            from ..io.rle import counts_to_string
        out = []
        boxes = result.boxes.cpu()
        crops = result.crop_boxes.cpu()
        ious = result.ious.float().cpu()
        stab = result.stability.float().cpu()
        points = result.points.float().cpu()
        for i in range(len(result)):
            x0, y0, x1, y1 = (int(v) for v in crops[i])
            cm = result.crop_mask(i).cpu().numpy()
            bx = boxes[i] - torch.tensor([x0, y0, x0, y0])  # box in crop coordinates
            if self.output_mode == "binary_mask":
                seg = np.zeros((h, w), dtype=bool)
                seg[y0:y1, x0:x1] = cm
                area = int(cm.sum())
            else:  # (an empty mask is possible only with stability_score_thresh <= 0)
                counts = rle_counts(cm, tuple(bx.tolist()), (x0, y0), h, w) if cm.any() else [h * w]
                area = int(sum(counts[1::2]))
                seg = {"size": [h, w], "counts": counts_to_string(counts) if self.output_mode == "coco_rle" else counts}
            box = boxes[i].float()
            crop = crops[i].float()
            out.append({
                "segmentation": seg,
                "area": area,
                "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])],
                "predicted_iou": float(ious[i]),
                "point_coords": [[float(points[i, 0]), float(points[i, 1])]],
                "stability_score": float(stab[i]),
                "crop_box": [float(crop[0]), float(crop[1]), float(crop[2] - crop[0]), float(crop[3] - crop[1])],
            })
        return out

    # ------------------------------------------------------------------------------------------ one crop
    def _encode(self, image: np.ndarray, features: ImageFeatures | None):
        m = self.model
        if features is None:
            features = m.encode_image(preprocess_image(image, m.cfg.image_size, m.device, m.dtype))
        if features.embed.shape[0] != 1:
            raise ValueError(f"features must be those of one image, got a batch of {features.embed.shape[0]}")
        return m.no_memory_embed(features.embed), features.high_res

    def _chunk(self) -> int:
        if self.decoder_chunk is not None:
            return self.decoder_chunk
        return 4 if self.model.device.type == "cpu" else self.points_per_batch

    def _process_crop(self, image: np.ndarray, box: list[int], layer: int, features, bar) -> _Candidates:
        x0, y0, x1, y1 = box
        crop = image[y0:y1, x0:x1]
        ch, cw = crop.shape[:2]
        embed, high_res = self._encode(crop, features)
        dec = PromptDecoder(self.model, embed, high_res, chunk=self._chunk())
        dev = self.model.device
        # clicks in crop pixels (float32, as the official generator hands them to the model)
        points = torch.as_tensor(self.point_grids[layer] * np.array([[cw, ch]]), dtype=torch.float32)
        scale = torch.tensor([cw, ch], dtype=torch.float32)
        image_box = [0, 0, image.shape[1], image.shape[0]]
        parts = []
        for s in range(0, points.shape[0], self.points_per_batch):
            pts = points[s: s + self.points_per_batch]
            parts.append(self._process_batch(dec, pts, scale, (ch, cw), box, image_box))
            bar.update(1)
        found = _Candidates.cat(parts, dev)
        keep = nms(found.boxes.float(), found.ious, self.box_nms_thresh)  # duplicates within the crop
        found = found.take(keep)
        offset = torch.tensor([x0, y0, x0, y0], device=dev)
        found.boxes = found.boxes + offset
        found.points = found.points + offset[:2].to(found.points.device)
        found.crop_boxes = torch.tensor([box], dtype=torch.long, device=dev).expand(len(found), 4)
        return found

    def _process_batch(self, dec: PromptDecoder, pts: torch.Tensor, scale: torch.Tensor, hw: tuple[int, int],
                       box: list[int], image_box: list[int]) -> _Candidates:
        size = self.model.cfg.image_size
        coords = pts / scale * size  # model-input pixels
        n = coords.shape[0]
        nmask = 3 if self.multimask_output else 1
        min_iou = self.pred_iou_thresh if self.pred_iou_thresh > 0 else None
        ones = torch.ones(n, 1, dtype=torch.int32)
        if not self.use_m2m:
            out = dec.decode(coords[:, None], ones, None, self.multimask_output, min_iou)
            index, ious, low = out.index.cpu(), out.ious.flatten()[out.index], out.low_res
        else:
            # every candidate is decoded again with its own (clamped) logits as mask prompt, one mask out
            first = dec.decode(coords[:, None], ones, None, self.multimask_output, None)
            prompts = first.low_res.clamp(-32.0, 32.0)[:, None]
            rep = (pts.repeat_interleave(nmask, dim=0) / scale * size)[:, None]
            idx, iou_parts, low_parts = [], [], []
            for s in range(0, rep.shape[0], self.points_per_batch):
                sl = slice(s, s + self.points_per_batch)
                o = dec.decode(rep[sl], torch.ones(rep[sl].shape[0], 1, dtype=torch.int32), prompts[sl], False,
                               min_iou)
                idx.append(o.index.cpu() + s)
                iou_parts.append(o.ious.flatten()[o.index])
                low_parts.append(o.low_res)
            index, ious, low = torch.cat(idx), torch.cat(iou_parts), torch.cat(low_parts)
        points = pts.repeat_interleave(nmask, dim=0)[index]
        if index.numel() == 0:
            return _Candidates.empty(dec.embed.device, low.shape[-1])
        # the official image predictor cleans with its own threshold (0), not the generator's
        low = clean_small_regions(low, self.min_mask_region_area, 0.0)
        stab, boxes = self._stability_and_boxes(low, hw)
        keep = torch.ones_like(stab, dtype=torch.bool)
        if self.stability_score_thresh > 0:
            keep = stab >= self.stability_score_thresh
        x0, y0 = box[0], box[1]
        keep &= ~near_crop_edge(boxes + torch.tensor([x0, y0, x0, y0], device=boxes.device), box, image_box)
        keep = keep.nonzero().flatten()
        return _Candidates(boxes[keep], ious[keep].float(), stab[keep], points[keep.cpu()], low[keep])

    def _stability_and_boxes(self, low: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stability score and box of each candidate, from its logits upscaled to the crop (in slices)."""
        h, w = hw
        per = max(1, _PIXELS_PER_PASS // max(1, h * w))
        stab, boxes = [], []
        for s in range(0, low.shape[0], per):
            up = F.interpolate(low[s: s + per, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
            stab.append(stability_scores(up, self.mask_threshold, self.stability_score_offset))
            boxes.append(mask_boxes(up > self.mask_threshold))
        return torch.cat(stab), torch.cat(boxes)


@dataclass
class _Candidates:
    """Masks still in the running (K of them), boxes in crop or image pixels depending on the stage."""

    boxes: torch.Tensor  # (K, 4) int64
    ious: torch.Tensor  # (K,)
    stability: torch.Tensor  # (K,)
    points: torch.Tensor  # (K, 2) float32
    low_res: torch.Tensor  # (K, L, L)
    crop_boxes: torch.Tensor | None = None  # (K, 4) int64

    def __len__(self) -> int:
        return self.boxes.shape[0]

    @staticmethod
    def empty(device, size: int = 256) -> _Candidates:
        return _Candidates(torch.zeros(0, 4, dtype=torch.long, device=device), torch.zeros(0, device=device),
                           torch.zeros(0, device=device), torch.zeros(0, 2), torch.zeros(0, size, size, device=device),
                           torch.zeros(0, 4, dtype=torch.long, device=device))

    @staticmethod
    def cat(parts: list[_Candidates], device) -> _Candidates:
        parts = [p for p in parts if len(p)]
        if not parts:
            return _Candidates.empty(device)
        crops = None if parts[0].crop_boxes is None else torch.cat([p.crop_boxes for p in parts])
        return _Candidates(torch.cat([p.boxes for p in parts]), torch.cat([p.ious for p in parts]),
                           torch.cat([p.stability for p in parts]), torch.cat([p.points for p in parts]),
                           torch.cat([p.low_res for p in parts]), crops)

    def take(self, idx: torch.Tensor) -> _Candidates:
        return _Candidates(self.boxes[idx], self.ious[idx], self.stability[idx], self.points[idx.cpu()],
                           self.low_res[idx], None if self.crop_boxes is None else self.crop_boxes[idx])


def _check_int(name: str, value, minimum: int, allow_float: bool = False) -> None:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if allow_float and isinstance(value, float) and value.is_integer():
        ok = True
    if not ok or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_grids(point_grids, crop_n_layers: int) -> list[np.ndarray]:
    if not isinstance(point_grids, (list, tuple)):
        raise TypeError("point_grids must be a list of (N, 2) arrays of [0, 1] coordinates, one per crop layer")
    if len(point_grids) < crop_n_layers + 1:
        raise ValueError(f"point_grids has {len(point_grids)} grid(s) but crop_n_layers={crop_n_layers} needs "
                         f"{crop_n_layers + 1} (one per crop layer)")
    grids = []
    for i, g in enumerate(point_grids):
        a = np.asarray(g, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] == 0:
            raise ValueError(f"point_grids[{i}] must have shape (N, 2) with N >= 1, got {a.shape}")
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise ValueError(f"point_grids[{i}] coordinates must be normalised to [0, 1] (x / width, y / height)")
        grids.append(a)
    return grids
