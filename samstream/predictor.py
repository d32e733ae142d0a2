"""ImagePredictor: segment an image from clicks, boxes and masks, with the embedding computed once."""
from __future__ import annotations

import reprlib

import numpy as np
import torch

from .model import SAM2Model
from .model.compiled import compiled_view
from .postprocess import MaskPostprocess
from .precision import autocast, check_precision
from .transforms import mirror_points, preprocess_image, to_rgb_array

LABELS = (0, 1)  # point labels users give: 0 background, 1 foreground (boxes become corners labelled 2 and 3 here)


def _numbers(x, what: str, shape: str) -> np.ndarray:
    """x as a float64 array; strings, ragged lists and other non-numbers are refused by name."""
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers of shape {shape}, got {reprlib.repr(x)}") from None


def _check_finite(rows: np.ndarray, name) -> None:
    """rows (R, D) of coordinates: refuse NaN and infinity (they pass every range check and give empty masks),
    naming the first bad row as name(r)."""
    bad = ~np.isfinite(rows).all(-1)
    if bad.any():
        r = int(np.argmax(bad))
        vals = ", ".join(f"{v:g}" for v in rows[r])
        raise ValueError(f"{name(r)} is ({vals}): coordinates must be finite numbers, not NaN or infinity")


def _point_name(r: int, n: int, batched: bool) -> str:
    """The r-th of the points flattened from (B, n)."""
    return f"point {r % n} of prompt {r // n}" if batched else f"point {r}"


class ImagePredictor:
    """Prompted segmentation of one image (or a batch of images) with a SAM 2 model.

    Coordinates are (x, y) pixels of the original image (or [0, 1] with normalize_coords=False).
    Point labels: 1 foreground, 0 background (1.0 counts as 1; 0.5 or 2 are refused, never rounded). Boxes:
    (x0, y0, x1, y1). NaN or infinite coordinates are refused, naming the point or box.
    postprocess: how the decoder's low-res logits become the output masks (hole filling, edge refinement, ...;
    see `MaskPostprocess`, which also says in which order); None: the model's `inference_defaults` (the embedded
    default model's refine the edges, Meta's checkpoints change nothing). Keyword arguments named after its
    fields override single settings: ImagePredictor(model, max_hole_area=40) (None leaves one as it is). A
    batch of prompts counts as that many objects for its non_overlap_masks. The low-res logits returned are
    the decoder's, not post-processed.
    mirror=True: test-time augmentation, as VideoPredictor's: each image is also encoded flipped left-right,
    prompted with the mirrored prompts, and each of the M masks' logits and scores is the mean of the two views.
    precision: "fp32" (default, exact), "bf16" or "fp16": the image encoder and decoder run under autocast in
    that dtype, with what SAM 2 needs kept in float32 (see `samstream.precision`); outputs stay float32.
    compile: torch.compile the image encoder and the mask decoder (`samstream.model.compiled`): the first image and the
    first prompt of each kind (batch size, multimask on or off) compile a graph; prompts are padded to fixed
    lengths, so another click count does not recompile. The results are the uncompiled ones up to float rounding.
    """

    def __init__(self, model: SAM2Model, postprocess: MaskPostprocess | None = None, *, mirror: bool = False,
                 precision: str = "fp32", compile: bool = False, **settings):
        self.precision = check_precision(precision)
        if not isinstance(compile, bool):
            raise ValueError(f"compile must be True or False, got {compile!r}")
        self.model = model.eval()
        self._net = compiled_view(model) if compile else model  # what runs the encoder and decoder
        self.postprocess = MaskPostprocess.resolve(model, postprocess, **settings)
        self.mirror = mirror
        self.reset()

    def reset(self) -> None:
        # with mirror, images N .. 2N-1 are the mirror images of 0 .. N-1
        self._embeds: torch.Tensor | None = None  # (N, C, E, E), no_mem_embed added
        self._high_res: list[torch.Tensor] = []  # [(N, C/8, 4E, 4E), (N, C/4, 2E, 2E)]
        self._orig_hw: list[tuple[int, int]] = []
        self._images: list[np.ndarray] = []  # for the edge refinement
        self.is_batch = False

    @property
    def is_image_set(self) -> bool:
        return self._embeds is not None

    # ------------------------------------------------------------------------------ images
    @torch.inference_mode()
    def set_image(self, image) -> None:
        """image: HxWx3 uint8 RGB numpy array, PIL image, or path. Any size and aspect ratio."""
        self.set_image_batch([image])
        self.is_batch = False

    @torch.inference_mode()
    def set_image_batch(self, images: list) -> None:
        if isinstance(images, np.ndarray) and images.ndim == 3:
            raise ValueError("set_image_batch takes a list of images; use set_image for a single one")
        arrays = [to_rgb_array(im, name="image" if len(images) == 1 else f"image {i}") for i, im in enumerate(images)]
        if not arrays:
            raise ValueError("set_image_batch needs at least one image")
        m = self.model
        x = torch.cat([preprocess_image(a, m.cfg.image_size, m.device, m.dtype) for a in arrays])
        if self.mirror:
            x = torch.cat([x, x.flip(-1)])
        with autocast(self.precision, m.device):
            feats = self._net.encode_image(x)
            self._embeds = m.no_memory_embed(feats.embed)
        self._high_res = feats.high_res
        self._orig_hw = [a.shape[:2] for a in arrays]
        self._images = arrays
        self.is_batch = True

    def get_image_embedding(self) -> torch.Tensor:
        self._require_image()
        return self._embeds[: len(self._orig_hw)]  # (without the mirror images)

    @property
    def orig_hw(self) -> list[tuple[int, int]]:
        return list(self._orig_hw)

    def _require_image(self) -> None:
        if self._embeds is None:
            raise RuntimeError("no image set: call set_image(...) or set_image_batch(...) first")

    # ------------------------------------------------------------------------------ prompts
    def _scale(self, xy: torch.Tensor, hw: tuple[int, int], normalize_coords: bool, what: str) -> torch.Tensor:
        # xy (..., 2) -> model-input pixels, refusing points outside the image
        h, w = hw
        lim = torch.tensor([w, h] if normalize_coords else [1.0, 1.0], dtype=torch.float32)
        bad = ((xy < 0) | (xy > lim)).any(-1)
        if bad.any():
            p = xy[bad][0].tolist()
            frame = f"{w}x{h} image" if normalize_coords else "[0, 1] range (normalize_coords=False)"
            raise ValueError(f"{what} ({p[0]:g}, {p[1]:g}) lies outside the {frame}")
        return xy / lim * self.model.cfg.image_size

    def prepare_prompts(self, hw, points=None, labels=None, box=None, mask_input=None, normalize_coords=True):
        """Validate user prompts -> ((coords (B, N, 2), labels (B, N)) or None, mask (B, 1, L, L) or None)."""
        pts = None
        if points is not None:
            xy = _numbers(points, "points", "(N, 2) or (B, N, 2)")
            if xy.ndim == 2:
                xy = xy[None]
            if xy.ndim != 3 or xy.shape[-1] != 2 or xy.shape[1] == 0:
                raise ValueError(f"points must have shape (N, 2) or (B, N, 2), got {tuple(np.shape(points))}")
            batched, n_pts = xy.shape[0] > 1, xy.shape[1]
            _check_finite(xy.reshape(-1, 2), lambda r: _point_name(r, n_pts, batched))
            coords = torch.as_tensor(xy.astype(np.float32))
            if labels is None:
                lab = torch.ones(coords.shape[:2], dtype=torch.int32)
            else:
                lab_f = _numbers(labels, "point labels", "(N,) or (B, N)")
                if lab_f.ndim == 1:
                    lab_f = lab_f[None]
                if lab_f.shape != xy.shape[:2]:
                    raise ValueError(f"labels shape {tuple(np.shape(labels))} does not match points shape "
                                     f"{tuple(np.shape(points))}")
                bad = ~np.isin(lab_f, LABELS)  # 1.0 is 1; 0.5, 2 and NaN are refused, never truncated
                if bad.any():
                    r = int(np.argmax(bad.reshape(-1)))
                    raise ValueError(f"point labels must be 1 (foreground) or 0 (background), got "
                                     f"{lab_f.reshape(-1)[r]:g} for {_point_name(r, n_pts, batched)}")
                lab = torch.as_tensor(lab_f.astype(np.int32))
            pts = (self._scale(coords, hw, normalize_coords, "point"), lab)
        elif labels is not None:
            raise ValueError("labels given without points")
        if box is not None:
            bx = _numbers(box, "box", "(4,) or (B, 4) as x0, y0, x1, y1")
            if bx.ndim == 1:
                bx = bx[None]
            if bx.ndim != 2 or bx.shape[-1] != 4:
                raise ValueError(f"box must have shape (4,) or (B, 4) as x0, y0, x1, y1, got {tuple(np.shape(box))}")
            _check_finite(bx, lambda r: f"box {r}" if len(bx) > 1 else "box")
            b = torch.as_tensor(bx.astype(np.float32))
            if (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
                bb = b[(b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])][0].tolist()
                raise ValueError(f"box {bb} has x1 < x0 or y1 < y0; boxes are (x0, y0, x1, y1)")
            corners = self._scale(b.reshape(-1, 2, 2), hw, normalize_coords, "box corner")
            corner_labels = torch.tensor([[2, 3]], dtype=torch.int32).expand(corners.shape[0], 2)
            if pts is None:
                pts = (corners, corner_labels)
            else:  # the box goes first, as the model was trained
                n = max(corners.shape[0], pts[0].shape[0])
                if corners.shape[0] not in (1, n) or pts[0].shape[0] not in (1, n):
                    raise ValueError(f"{corners.shape[0]} boxes and {pts[0].shape[0]} point sets cannot be paired")
                pts = (torch.cat([corners.expand(n, -1, -1), pts[0].expand(n, -1, -1)], dim=1),
                       torch.cat([corner_labels.expand(n, -1), pts[1].expand(n, -1)], dim=1))
        mask = None
        if mask_input is not None:
            size = self.model.sam_prompt_encoder.mask_input_size
            shape = f"(1, {size}, {size}) or (B, 1, {size}, {size})"
            mask = torch.as_tensor(_numbers(mask_input, "mask_input", shape).astype(np.float32))
            if mask.ndim == 3:
                mask = mask[None]
            if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[-2:] != (size, size):
                raise ValueError(f"mask_input must be low-res logits of shape {shape} "
                                 f"(as returned by predict), got {tuple(mask.shape)}")
            if not torch.isfinite(mask).all():
                raise ValueError("mask_input holds NaN or infinite values: it must be low-res logits as returned by "
                                 "predict")
            if pts is not None and mask.shape[0] not in (1, pts[0].shape[0]):
                raise ValueError(f"{mask.shape[0]} mask inputs for {pts[0].shape[0]} prompts")
        return pts, mask

    # ------------------------------------------------------------------------------ prediction
    @torch.inference_mode()
    def predict(self, points=None, labels=None, box=None, mask_input=None, multimask_output: bool = True,
                return_logits: bool = False, normalize_coords: bool = True, image_index: int = 0):
        """-> (masks, scores, low_res_logits) as numpy arrays.

        One prompt: masks (M, H, W) bool (float logits with return_logits), scores (M,), low-res logits
        (M, L, L) clamped to [-32, 32]; M = 3 with multimask_output else 1. A batch of B prompts (points
        (B, N, 2) and/or boxes (B, 4)): the same with a leading B axis.
        """
        return self._predict(points, labels, box, mask_input, multimask_output, return_logits, normalize_coords,
                             image_index)

    def _predict(self, points, labels, box, mask_input, multimask_output, return_logits, normalize_coords,
                 image_index):
        self._require_image()
        if not 0 <= image_index < len(self._orig_hw):
            raise IndexError(f"image_index {image_index} out of range: {len(self._orig_hw)} image(s) set")
        hw = self._orig_hw[image_index]
        pts, mask = self.prepare_prompts(hw, points, labels, box, mask_input, normalize_coords)
        masks, scores, low = self.predict_torch(pts, mask, multimask_output, return_logits, image_index)
        out = (masks.cpu().numpy(), scores.float().cpu().numpy(), low.float().cpu().numpy())
        batched = (pts is not None and pts[0].shape[0] > 1) or (mask is not None and mask.shape[0] > 1)
        return out if batched else tuple(a[0] for a in out)

    def predict_torch(self, points, mask_input, multimask_output=True, return_logits=False, image_index=0):
        """Prepared prompts (model-input pixels) -> masks (B, M, H, W), scores (B, M), low-res (B, M, L, L)."""
        m = self.model
        dev = m.device
        if points is not None:
            points = (points[0].to(dev, m.dtype), points[1].to(dev))
        if mask_input is not None:
            mask_input = mask_input.to(dev, m.dtype)
        low, scores = self._decode(points, mask_input, multimask_output, image_index)
        if self.mirror:
            s = m.cfg.image_size
            low_m, scores_m = self._decode(None if points is None else mirror_points(points, s),
                                           None if mask_input is None else mask_input.flip(-1), multimask_output,
                                           image_index + len(self._orig_hw))
            low, scores = (low + low_m.flip(-1)) / 2, (scores + scores_m) / 2
        masks = self.postprocess(low, self._orig_hw[image_index], self._images[image_index])
        if not return_logits:
            masks = masks > self.postprocess.mask_threshold
        return masks, scores, low.clamp(-32.0, 32.0)

    def _decode(self, points, mask_input, multimask_output, index):
        """-> low-res logits (B, M, L, L) float32 and scores (B, M) of the encoded image `index`."""
        m = self.model
        with autocast(self.precision, m.device):
            sparse, dense = m.sam_prompt_encoder(points, None, mask_input)
            low, scores, _, _ = self._net.sam_mask_decoder(
                self._embeds[index: index + 1], m.sam_prompt_encoder.dense_pe().to(m.dtype), sparse, dense,
                multimask_output, repeat_image=sparse.shape[0] > 1,
                high_res_features=[h[index: index + 1] for h in self._high_res])
        return low.float(), scores.float()

    @torch.inference_mode()
    def predict_batch(self, points_batch=None, labels_batch=None, box_batch=None, mask_input_batch=None,
                      multimask_output: bool = True, return_logits: bool = False, normalize_coords: bool = True):
        """One prompt set per image set by set_image_batch -> lists of (masks, scores, low-res logits)."""
        self._require_image()
        n = len(self._orig_hw)

        def per_image(x, what):
            if x is None:
                return [None] * n
            if len(x) != n:
                raise ValueError(f"{what} has {len(x)} entries for {n} images")
            return x

        results = ([], [], [])
        for i, (p, lab, b, mk) in enumerate(zip(per_image(points_batch, "points_batch"),
                                                 per_image(labels_batch, "labels_batch"),
                                                 per_image(box_batch, "box_batch"),
                                                 per_image(mask_input_batch, "mask_input_batch"))):
            out = self._predict(p, lab, b, mk, multimask_output, return_logits, normalize_coords, i)
            for acc, a in zip(results, out):
                acc.append(a)
        return results
