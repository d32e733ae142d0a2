"""Meta's video API (`SAM2VideoPredictor`, `build_sam2_video_predictor`) over our tracking engine.

Same method names, argument names, return values and mask shapes as `sam2.sam2_video_predictor`, so
official scripts run unchanged:

    predictor = build_sam2_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny.pt")
    state = predictor.init_state(video_path="frames/")        # also any video file, unlike the original
    _, obj_ids, masks = predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1,
                                                        points=[[210, 350]], labels=[1])
    for frame_idx, obj_ids, masks in predictor.propagate_in_video(state):
        ...                                                    # masks: (num_objects, 1, H, W) logits

Differences, all on the side of working where the original fails: frames are read lazily from any
source `samstream.video` reads (the original wants a JPEG folder with integer names or an mp4);
objects are tracked as a batch; `offload_*` / `async_loading_frames` are accepted and unnecessary
(nothing is decoded ahead). Memory is kept as the original keeps it (every frame), unless
`init_state(..., history="window")` asks for the bounded policy.
"""
from __future__ import annotations

import torch
from tqdm import tqdm

from ..model import SAM2Model
from .predictor import VideoPredictor


class InferenceState(dict):
    """The `inference_state` dict of the original (the keys scripts read), holding our session."""

    @property
    def session(self) -> VideoPredictor:
        return self["_session"]

    def _sync(self) -> None:
        self["obj_ids"] = self.session.obj_ids


class SAM2VideoPredictor:
    """Official video predictor interface. Wraps a SAM2Model; one predictor serves many inference states."""

    def __init__(self, model: SAM2Model, fill_hole_area: int | None = None, non_overlap_masks: bool = False,
                 clear_non_cond_mem_around_input: bool = False, add_all_frames_to_correct_as_cond: bool = False,
                 memory_dtype: torch.dtype = torch.bfloat16, compile: bool = False, **kwargs):
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}; SAM2VideoPredictor takes fill_hole_area, "
                            f"non_overlap_masks, add_all_frames_to_correct_as_cond, memory_dtype, compile")
        if clear_non_cond_mem_around_input:
            raise ValueError("clear_non_cond_mem_around_input is not supported (it also fails in the original)")
        self.model = model.eval()
        self.fill_hole_area = model.cfg.fill_hole_area if fill_hole_area is None else fill_hole_area
        self.non_overlap_masks = non_overlap_masks
        self.add_all_frames_to_correct_as_cond = add_all_frames_to_correct_as_cond
        self.memory_dtype = memory_dtype
        self.compile = compile  # torch.compile on fixed shapes (VideoPredictor's compile=)

    # -- model-like attributes scripts use
    @property
    def image_size(self) -> int:
        return self.model.cfg.image_size

    @property
    def device(self) -> torch.device:
        return self.model.device

    def to(self, *args, **kwargs) -> SAM2VideoPredictor:
        self.model.to(*args, **kwargs)
        return self

    def eval(self) -> SAM2VideoPredictor:
        self.model.eval()
        return self

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs) -> SAM2VideoPredictor:
        """Official Hugging Face ids ("facebook/sam2.1-hiera-tiny"), downloaded from Meta's servers."""
        from ..load import load_model

        keys = ("fill_hole_area", "non_overlap_masks", "add_all_frames_to_correct_as_cond", "memory_dtype")
        opts = {k: kwargs.pop(k) for k in keys if k in kwargs}
        model = load_model(model_id, device=kwargs.pop("device", "cuda" if torch.cuda.is_available() else "cpu"),
                           postprocessing=kwargs.pop("apply_postprocessing", True))
        return cls(model, **opts)

    # -- sessions
    @torch.inference_mode()
    def init_state(self, video_path, offload_video_to_cpu: bool = False, offload_state_to_cpu: bool = False,
                   async_loading_frames: bool = False, history: str = "all") -> InferenceState:
        """Open a video (folder of frames, video file, list/array of frames). Computes frame 0's features."""
        # fill_hole_area is a tracking setting, non_overlap_masks one of the outputs' (MaskPostprocess)
        session = VideoPredictor(self.model, video_path, memory_dtype=self.memory_dtype, history=history,
                                 corrections_as_cond=self.add_all_frames_to_correct_as_cond,
                                 fill_hole_area=self.fill_hole_area, progress=False, compile=self.compile,
                                 postprocess=self.model.inference_defaults.override(
                                     non_overlap_masks=self.non_overlap_masks))
        h, w = session.video_size
        state = InferenceState(num_frames=session.num_frames, video_height=h, video_width=w,
                               device=self.model.device, offload_video_to_cpu=offload_video_to_cpu,
                               offload_state_to_cpu=offload_state_to_cpu, obj_ids=[], _session=session)
        session.store.features(0)
        return state

    @staticmethod
    def _session(inference_state) -> VideoPredictor:
        if not isinstance(inference_state, InferenceState):
            raise TypeError("inference_state must be the object returned by init_state()")
        return inference_state.session

    def _consolidated(self, inference_state, frame_idx: int, is_cond: bool) -> torch.Tensor:
        """(num_objects, 1, H, W) logits of every object on a frame, as the original consolidates them."""
        s = self._session(inference_state)
        outs = [s._frame_output(o, frame_idx, pending_cond=is_cond) for o in s.state.objects.values()]
        return s.video_logits(outs, frame_idx)[0]

    @torch.inference_mode()
    def add_new_points_or_box(self, inference_state, frame_idx, obj_id, points=None, labels=None,
                              clear_old_points=True, normalize_coords=True, box=None):
        """-> (frame_idx, obj_ids, video_res_masks (num_objects, 1, H, W) float32 logits)."""
        s = self._session(inference_state)
        if (points is not None) != (labels is not None):
            raise ValueError("points and labels must be provided together")
        if points is None and box is None:
            raise ValueError("at least one of points or box must be provided as input")
        points = self._numpy(points)
        labels = self._numpy(labels)
        box = self._numpy(box)
        if points is not None and points.ndim == 3:
            points = points[0]
        if labels is not None and labels.ndim == 2:
            labels = labels[0]
        s._add_prompt(frame_idx, obj_id, points=points, labels=labels, box=box, clear=clear_old_points,
                      normalize_coords=normalize_coords)
        inference_state._sync()
        obj = s.state.get(obj_id)
        is_cond = obj.pending[frame_idx][1]
        return frame_idx, s.obj_ids, self._consolidated(inference_state, frame_idx, is_cond)

    def add_new_points(self, *args, **kwargs):
        """Deprecated alias of add_new_points_or_box, as in the original."""
        return self.add_new_points_or_box(*args, **kwargs)

    @torch.inference_mode()
    def add_new_mask(self, inference_state, frame_idx, obj_id, mask):
        """mask: (H, W) bool / 0-1 -> (frame_idx, obj_ids, video_res_masks)."""
        s = self._session(inference_state)
        mask = self._numpy(mask)
        if mask is None or mask.ndim != 2:
            raise ValueError(f"mask must be 2-D (H, W), got shape {None if mask is None else mask.shape}")
        s._add_prompt(frame_idx, obj_id, mask=mask)
        inference_state._sync()
        is_cond = s.state.get(obj_id).pending[frame_idx][1]
        return frame_idx, s.obj_ids, self._consolidated(inference_state, frame_idx, is_cond)

    @staticmethod
    def _numpy(x):
        if x is None:
            return None
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu()
            return (x.float() if x.is_floating_point() else x).numpy()
        import numpy as np

        return np.asarray(x)

    @torch.inference_mode()
    def propagate_in_video_preflight(self, inference_state) -> None:
        """Encode the memory of every prompted frame (also run by propagate_in_video)."""
        self._session(inference_state)._commit()

    @torch.inference_mode()
    def propagate_in_video(self, inference_state, start_frame_idx=None, max_frame_num_to_track=None, reverse=False):
        """Generator of (frame_idx, obj_ids, video_res_masks (num_objects, 1, H, W) float32 logits)."""
        s = self._session(inference_state)
        s._commit()
        if start_frame_idx is None:  # the original starts at the earliest conditioning frame, either way
            start_frame_idx = min(t for o in s.state.objects.values() for t in o.cond)
        else:
            start_frame_idx = s._check_frame(start_frame_idx)
        s._edited.clear()
        frames = s._pass_frames(start_frame_idx, reverse, max_frame_num_to_track)  # lazy: streams have no end yet
        total = s._pass_length(start_frame_idx, reverse, max_frame_num_to_track)
        return self._propagate(s, frames, total, reverse)

    @torch.inference_mode()  # torch applies it around each step of the generator, not across yields
    def _propagate(self, s: VideoPredictor, frames, total, reverse):
        for t in tqdm(frames, total=total, desc="propagate in video"):
            objs = list(s.state.objects.values())
            s._track_frame(t, reverse)
            yield t, [o.obj_id for o in objs], s.video_logits([s._frame_output(o, t) for o in objs], t)[0]

    @torch.inference_mode()
    def clear_all_prompts_in_frame(self, inference_state, frame_idx, obj_id, need_output=True):
        s = self._session(inference_state)
        s.clear_prompts(frame_idx, obj_id)
        if not need_output:
            return None
        is_cond = any(o.pending.get(frame_idx, (None, False))[1] for o in s.state.objects.values())
        return frame_idx, s.obj_ids, self._consolidated(inference_state, frame_idx, is_cond)

    @torch.inference_mode()
    def reset_state(self, inference_state) -> None:
        self._session(inference_state).reset()
        inference_state._sync()

    @torch.inference_mode()
    def remove_object(self, inference_state, obj_id, strict=False, need_output=True):
        """-> (remaining obj_ids, [(frame_idx, video_res_masks)] for the frames the object had prompts on)."""
        s = self._session(inference_state)
        if obj_id not in s.state.objects:
            if strict:
                raise RuntimeError(f"Cannot remove object id {obj_id} as it doesn't exist. "
                                   f"All existing object ids: {s.obj_ids}.")
            return s.obj_ids, []
        if len(s.state.objects) == 1:
            self.reset_state(inference_state)
            return s.obj_ids, []
        frames = sorted(s.state.get(obj_id).prompted_frames())
        s.remove_object(obj_id)
        inference_state._sync()
        updated = []
        if need_output:
            for t in frames:
                is_cond = any(o.pending.get(t, (None, False))[1] for o in s.state.objects.values())
                updated.append((t, self._consolidated(inference_state, t, is_cond)))
        return s.obj_ids, updated


_OVERRIDABLE = {"non_overlap_masks": bool, "fill_hole_area": int, "add_all_frames_to_correct_as_cond": bool,
                "binarize_mask_from_pts_for_mem_enc": bool, "memory_temporal_stride_for_eval": int,
                "max_cond_frames_in_attn": int}


def _parse_overrides(overrides) -> dict:
    """The few `++model.<key>=<value>` overrides official scripts pass."""
    out = {}
    for o in overrides or []:
        key, _, value = o.lstrip("+").partition("=")
        name = key.removeprefix("model.")
        if name not in _OVERRIDABLE or not value:
            raise ValueError(f"unsupported override {o!r}; supported: "
                             f"{', '.join('++model.' + k for k in _OVERRIDABLE)}")
        typ = _OVERRIDABLE[name]
        out[name] = value.strip().lower() in ("true", "1", "yes") if typ is bool else typ(value)
    return out


def build_sam2_video_predictor(config_file: str, ckpt_path: str | None = None, device="cuda", mode: str = "eval",
                               hydra_overrides_extra=[], apply_postprocessing: bool = True,  # noqa: B006 (official signature)
                               vos_optimized: bool = False, **kwargs) -> SAM2VideoPredictor:
    """Official builder: config names as "configs/sam2.1/sam2.1_hiera_t.yaml"; ckpt_path an official .pt file."""
    import dataclasses

    from ..checkpoint import detect_config, load_into, read_state_dict
    from ..model import official_config

    over = _parse_overrides(hydra_overrides_extra)
    cfg = official_config(config_file).with_postprocessing(apply_postprocessing)
    for k in ("binarize_mask_from_pts_for_mem_enc", "memory_temporal_stride_for_eval", "max_cond_frames_in_attn",
              "fill_hole_area"):
        if k in over:
            cfg = dataclasses.replace(cfg, **{k: over.pop(k)})
    model = SAM2Model(cfg)
    if ckpt_path is not None:
        sd, _ = read_state_dict(ckpt_path)
        found = detect_config(sd, str(ckpt_path))
        if found.name != cfg.name:
            raise ValueError(f"{ckpt_path} holds a {found.name} model, but the config asks for {cfg.name}")
        load_into(model, sd, str(ckpt_path))
    model = model.to(device)
    model = model.eval() if mode == "eval" else model.train()
    # vos_optimized: Meta's torch.compile of the image encoder, memory attention and decoder; here compile=True
    # (fixed-shape graphs that do not recompile between frames, clicks or videos)
    compile_ = bool(vos_optimized) or bool(kwargs.pop("compile", False))
    return SAM2VideoPredictor(model, **over, **kwargs, compile=compile_)
