"""The tracking engine: one frame at a time, all objects of the frame in one batched forward pass.

SAM 2 runs each object as its own session (batch 1) that shares the frame's image features. We
compute the same thing with the objects stacked along the batch axis: the image features are
expanded (not copied), memory attention runs once per group of objects whose memories have the
same layout (number of spatial memories and pointers; on a CPU one object at a time, see
`attention_batch`), and the decoder and memory encoder run once for all of them. The per-object
numbers are those of the reference up to float rounding.

The engine is stateless apart from its settings: everything per video lives in `TrackingState`.
"""
from __future__ import annotations

from collections import defaultdict

import torch
import torch.nn.functional as F

from ..memory import MemorySelection, max_pointers, select_memory, window_behind
from ..model import ImageFeatures, SAM2Model
from ..postprocess import apply_non_overlap, fill_holes
from .state import FrameOutput, ObjectState, TrackingState

HOLE_FILL_VALUE = 0.1  # a filled hole becomes barely foreground, as SAM 2's video post-processing does


def _expand(feats: ImageFeatures, b: int) -> ImageFeatures:
    """Batch-1 features viewed as b objects (no copy)."""
    return ImageFeatures(feats.embed.expand(b, -1, -1, -1), feats.pos.expand(b, -1, -1, -1),
                         [h.expand(b, -1, -1, -1) for h in feats.high_res])


def memory_tokens(model: SAM2Model, sel: MemorySelection, maskmem_pos: torch.Tensor, num_frames: int | None):
    """Assemble the memory-attention input of a selection -> (memory (B, M, Cm), memory_pos (B, M, Cm),
    number of pointer tokens). B is the batch of the selected outputs (their maskmem (B, Cm, E, E) and
    obj_ptr (B, C)): 1 in the tracker, all objects of a clip in training (samstream.train.video_step).
    maskmem_pos (1, Cm, E, E): the memory encoder's position encoding."""
    dtype = model.dtype
    base_pos = maskmem_pos.flatten(2)[0].t()  # (E*E, Cm)
    mem, pos = [], []
    for _, out, slot in sel.spatial:
        mem.append(out.maskmem.flatten(2).transpose(1, 2).to(dtype))  # (B, E*E, Cm), upcast from the storage dtype
        pos.append(base_pos + model.maskmem_tpos_enc[slot].view(1, -1))
    n_ptr_tokens = 0
    if sel.pointers:
        ptrs = torch.stack([out.obj_ptr for _, out, _ in sel.pointers], dim=1)  # (B, P, C)
        rel = torch.tensor([p for _, _, p in sel.pointers], device=ptrs.device)
        ptr_pos = model.obj_ptr_pos_enc(rel, max_pointers(model.cfg, num_frames))  # (P, Cm)
        split = ptrs.shape[-1] // model.cfg.mem_dim
        # each C-wide pointer becomes C/Cm tokens of width Cm, all with the pointer's temporal encoding
        mem.append(ptrs.reshape(ptrs.shape[0], -1, model.cfg.mem_dim))  # (B, P*split, Cm)
        pos.append(ptr_pos.repeat_interleave(split, dim=0))
        n_ptr_tokens = ptrs.shape[1] * split
    memory = torch.cat(mem, dim=1)
    return memory, torch.cat(pos).unsqueeze(0).expand(memory.shape[0], -1, -1), n_ptr_tokens


class Tracker:
    """SAM 2's per-frame step (`track_step`) for a batch of objects.

    memory_dtype: dtype the spatial memories are stored in. bfloat16 (default) is what SAM 2's video
    predictor stores, so outputs match it; float32 keeps them exact at twice the memory.
    fill_hole_area / binarize_prompted_memory: what SAM 2 calls post-processing, by default from the model
    config (the official builders turn both on). Both change what is stored and fed back to the model, so
    they are tracking settings, not output steps (those are `postprocess.MaskPostprocess`'s).
    """

    def __init__(self, model: SAM2Model, memory_dtype: torch.dtype = torch.bfloat16,
                 fill_hole_area: int | None = None, binarize_prompted_memory: bool | None = None,
                 attention_batch: int | None = None):
        if memory_dtype not in (torch.bfloat16, torch.float16, torch.float32):
            raise ValueError(f"memory_dtype must be torch.bfloat16, torch.float16 or torch.float32, got {memory_dtype}")
        self.model = model
        self.cfg = model.cfg
        self.memory_dtype = memory_dtype
        self.fill_hole_area = self.cfg.fill_hole_area if fill_hole_area is None else fill_hole_area
        self.binarize_prompted = (self.cfg.binarize_mask_from_pts_for_mem_enc if binarize_prompted_memory is None
                                  else binarize_prompted_memory)
        # Objects per memory-attention call. A CPU is compute-bound, so batching there only multiplies the
        # transient memory (keys/values of every object at once); a GPU gains from the batch.
        self.attention_batch = attention_batch

    # ------------------------------------------------------------------------------ memory
    def _memory_tokens(self, state: TrackingState, obj: ObjectState, frame_idx: int, reverse: bool):
        """-> (memory (M, Cm), memory_pos (M, Cm), number of pointer tokens) of one object on one frame."""
        sel = select_memory(frame_idx, reverse, obj.cond, obj.non_cond, self.cfg, state.num_frames)
        if not sel.spatial:
            raise RuntimeError(f"object {obj.obj_id!r} has no memory on frame {frame_idx}: it needs a prompt first")
        mem, pos, n_ptr_tokens = memory_tokens(self.model, sel, state.maskmem_pos, state.num_frames)
        return mem[0], pos[0], n_ptr_tokens

    def conditioned_features(self, feats: ImageFeatures, state: TrackingState, objs: list[ObjectState],
                             frame_idx: int, reverse: bool) -> torch.Tensor:
        """Frame features attended to each object's memory -> (B, C, E, E), B = len(objs)."""
        m = self.model
        tokens = [self._memory_tokens(state, o, frame_idx, reverse) for o in objs]
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, (mem, _, n_ptr) in enumerate(tokens):
            groups[(mem.shape[0], n_ptr)].append(i)
        out = [None] * len(objs)
        step = self.attention_batch or (len(objs) if feats.embed.device.type != "cpu" else 1)
        for (_, n_ptr), members in groups.items():
            for c in range(0, len(members), step):
                idx = members[c: c + step]
                mem = torch.stack([tokens[i][0] for i in idx])  # (b, M, Cm)
                pos = torch.stack([tokens[i][1] for i in idx])
                b = len(idx)
                x = m.attend_memory(feats.embed.expand(b, -1, -1, -1), feats.pos.expand(b, -1, -1, -1), mem, pos,
                                    n_ptr)
                for j, i in enumerate(idx):
                    out[i] = x[j: j + 1]
        return torch.cat(out)

    def encode_memory(self, state: TrackingState, feats: ImageFeatures, high_res_masks: torch.Tensor,
                      scores: torch.Tensor, binarize: bool) -> torch.Tensor:
        """Masks (B, 1, S, S) of B objects on one frame + the frame's raw features -> memory (B, Cm, E, E) in the
        storage dtype."""
        b = high_res_masks.shape[0]
        if self.cfg.non_overlap_masks_for_mem_enc and b > 1:
            high_res_masks = apply_non_overlap(high_res_masks)
        mem, pos = self.model.encode_memory(feats.embed.expand(b, -1, -1, -1), high_res_masks, scores, binarize)
        if state.maskmem_pos is None:
            state.maskmem_pos = pos[:1].clone()  # the same for every frame and object
        return mem.to(self.memory_dtype)

    # ------------------------------------------------------------------------------ steps
    def _postprocess(self, low_res: torch.Tensor) -> torch.Tensor:
        low_res = low_res.float()
        if self.fill_hole_area > 0:
            low_res = fill_holes(low_res, self.fill_hole_area, 0.0, fill_value=HOLE_FILL_VALUE)
        return low_res

    def _use_multimask(self, init_cond: bool, num_points: int) -> bool:
        # released configs: multimask also when tracking; only for 0 or 1 points (a box counts as 2)
        return self.cfg.multimask_min_pt_num <= num_points <= self.cfg.multimask_max_pt_num

    @torch.inference_mode()
    def predict_prompt(self, feats: ImageFeatures, state: TrackingState, obj: ObjectState, frame_idx: int, *,
                       points: tuple[torch.Tensor, torch.Tensor] | None = None, mask: torch.Tensor | None = None,
                       prev_logits: torch.Tensor | None = None, init_cond: bool = True,
                       reverse: bool = False) -> FrameOutput:
        """The output of a prompted frame for one object (its memory is encoded later, by `commit`).

        points: coords (1, N, 2) in model-input pixels, labels (1, N). mask: (1, 1, S, S) binary, used
        as the output itself. prev_logits: (1, 1, L, L) earlier logits of this frame, refined by the
        points. init_cond: the object has not been tracked on this frame, so no memory is used.
        """
        m = self.model
        dev, dtype = m.device, m.dtype
        if mask is not None:
            head = m.mask_as_output(feats.embed, feats.high_res, mask.to(dev, dtype))
        else:
            if init_cond:
                pix = m.no_memory_embed(feats.embed)
            else:
                pix = self.conditioned_features(feats, state, [obj], frame_idx, reverse)
            pts = (points[0].to(dev, dtype), points[1].to(dev)) if points is not None else None
            n = 0 if points is None else points[1].shape[1]
            mask_in = None if prev_logits is None else prev_logits.to(dev, dtype).clamp(-32.0, 32.0)
            head = m.forward_sam_heads(pix, feats.high_res, pts, mask_in, self._use_multimask(init_cond, n))
        return FrameOutput(pred_masks=self._postprocess(head.low_res_masks), obj_ptr=head.obj_ptr,
                           score=head.object_score_logits.float())

    @torch.inference_mode()
    def commit(self, state: TrackingState, features, objs: list[ObjectState] | None = None) -> None:
        """Encode the memory of pending prompt outputs and file them as conditioning / tracked frames.

        features: frame index -> ImageFeatures. Memories are encoded from the stored (post-processed)
        low-res logits upsampled to the model size, binarised when the post-processing asks for it.
        """
        objs = list(state.objects.values()) if objs is None else objs
        by_frame: dict[int, list[ObjectState]] = defaultdict(list)
        for o in objs:
            for t, (out, _) in o.pending.items():
                if out.maskmem is None:
                    by_frame[t].append(o)
        s = self.cfg.image_size
        for t, group in sorted(by_frame.items()):
            feats = features(t)
            outs = [o.pending[t][0] for o in group]
            low = torch.cat([out.pred_masks for out in outs]).to(self.model.device)
            high = F.interpolate(low, size=(s, s), mode="bilinear", align_corners=False)
            scores = torch.cat([out.score for out in outs])
            mem = self.encode_memory(state, feats, high.to(self.model.dtype), scores, self.binarize_prompted)
            for i, out in enumerate(outs):
                out.maskmem = mem[i: i + 1].clone()
        for o in objs:
            for t, (out, as_cond) in sorted(o.pending.items()):
                if as_cond:
                    o.cond[t] = out
                    o.non_cond.pop(t, None)
                else:
                    o.non_cond[t] = out
            o.pending.clear()

    @torch.inference_mode()
    def track(self, feats: ImageFeatures, state: TrackingState, objs: list[ObjectState], frame_idx: int,
              reverse: bool) -> list[FrameOutput]:
        """Track objects onto a frame that is not one of their conditioning frames; stores the outputs
        (as tracked frames, with their memory), evicts what is no longer needed, returns the outputs."""
        if not objs:
            return []
        m = self.model
        b = len(objs)
        pix = self.conditioned_features(feats, state, objs, frame_idx, reverse)
        ex = _expand(feats, b)
        head = m.forward_sam_heads(pix, ex.high_res, None, None, self._use_multimask(False, 0))
        # tracked frames feed the memory the raw (not hole-filled) prediction, as a soft mask
        mem = self.encode_memory(state, feats, head.high_res_masks.to(m.dtype), head.object_score_logits, False)
        low = self._postprocess(head.low_res_masks)
        window = window_behind(self.cfg, state.num_frames)
        outs = []
        for i, o in enumerate(objs):
            # clones: a slice would keep the whole batch alive after this object's entry is evicted
            out = FrameOutput(pred_masks=low[i: i + 1].clone(), obj_ptr=head.obj_ptr[i: i + 1].clone(),
                              score=head.object_score_logits[i: i + 1].float().clone(), maskmem=mem[i: i + 1].clone())
            o.non_cond[frame_idx] = out
            o.tracked.add(frame_idx, reverse)
            state.evict(o, frame_idx, window)
            outs.append(out)
        return outs
