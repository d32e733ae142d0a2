"""The exported graphs: thin torch modules over a SAM2Model's parts, one per ONNX file.

Each computes what the PyTorch tracker and ImagePredictor compute, split where the tracking loop decides
(which mask, which memories): the decisions stay in the runtime, the arithmetic is in the graphs.
Shapes: S = image_size, E = S / 16, L = S / 4, C = hidden_dim, Cm = mem_dim; B objects (or prompts),
N points, Nm spatial memories, P object pointers (each a dynamic axis).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..model import SAM2Model
from ..model.common import sine_encoding_1d, sine_position_encoding
from ..postprocess import apply_non_overlap
from .rope import apply_rope_real, rope_tables


def _f32(*xs):
    """Outputs are float32 whatever the graph computes in (fp16 exports cast at the edges)."""
    return tuple(x.float() for x in xs)


class ImageEncoderGraph(nn.Module):
    """image (1, 3, S, S) normalised -> embed, embed_no_mem, pos (1, C, E, E), high_res_0 (1, C/8, 4E, 4E),
    high_res_1 (1, C/4, 2E, 2E)."""

    def __init__(self, model: SAM2Model):
        super().__init__()
        self.model = model

    def forward(self, image):
        f = self.model.encode_image(image.to(self.model.dtype))
        return _f32(f.embed, self.model.no_memory_embed(f.embed), f.pos, f.high_res[0], f.high_res[1])


class DecoderGraph(nn.Module):
    """Prompt encoder + mask decoder + object-pointer head, all four mask tokens at once (the runtime picks).

    pix (B or 1, C, E, E) frame features (no-memory or memory-conditioned); high_res_0/1 (B or 1, ...);
    point_coords (B, N, 2) model-input pixels, point_labels (B, N) int32 (-1 pad, 0, 1, 2/3 box corners), with
    the trailing "not a point" the model expects already appended (N may be 0: a mask prompt alone);
    mask_input (B, 1, L, L) logits, used where has_mask_input (bool scalar) is true.
    -> masks (B, 4, L, L) raw logits, iou (B, 4), obj_ptr (B, 4, C) already gated by presence,
    object_score_logits (B, 1).
    """

    def __init__(self, model: SAM2Model):
        super().__init__()
        self.model = model
        self.register_buffer("image_pe", model.sam_prompt_encoder.dense_pe().detach().clone())

    def forward(self, pix, high_res_0, high_res_1, point_coords, point_labels, mask_input, has_mask_input):
        m = self.model
        dt = m.dtype
        pe, dec = m.sam_prompt_encoder, m.sam_mask_decoder  # (the prompt encoder stays float32 in fp16 exports)
        sparse = pe.embed_points(point_coords, point_labels, pad=False)  # (B, N, C)
        no_mask = pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = torch.where(has_mask_input, pe.mask_downscaling(mask_input), no_mask)  # (B, C, E, E)
        masks, iou, tokens, obj_logits = dec.predict_masks(pix.to(dt), self.image_pe.to(dt), sparse.to(dt),
                                                           dense.to(dt), False, [high_res_0.to(dt), high_res_1.to(dt)])
        present = (obj_logits > 0).unsqueeze(-1)  # (B, 1, 1)
        # where() equals the model's lam * ptr + (1 - lam) * no_obj_ptr exactly for lam in {0, 1}
        obj_ptr = torch.where(present, m.obj_ptr_proj(tokens), m.no_obj_ptr.unsqueeze(0))
        return _f32(masks, iou, obj_ptr, obj_logits)


class MaskPromptGraph(nn.Module):
    """A mask prompt at model size (B, 1, S, S) in {0, 1} -> the decoder's mask input (B, 1, L, L), and the
    learned "no object" pointer (B, C) that an empty mask prompt stores."""

    def __init__(self, model: SAM2Model):
        super().__init__()
        self.model = model

    def forward(self, mask):
        # the pointer expanded to the batch, so that it is a graph output of its own (not a bare initializer)
        no_obj_ptr = self.model.no_obj_ptr.expand(mask.shape[0], -1)
        return _f32(self.model.mask_downsample(mask.to(self.model.dtype)), no_obj_ptr)


class MemoryEncoderGraph(nn.Module):
    """embed (B or 1, C, E, E) raw features, low_res_masks (B, 1, L, L) logits, object_score_logits (B, 1),
    binarize (bool scalar: threshold the mask instead of its sigmoid) -> maskmem (B, Cm, E, E).
    The logits are upsampled to S here, as the tracker does before encoding. The B objects must be those of one
    frame that the tracker encodes together (non_overlap_masks_for_mem_enc makes them disjoint)."""

    def __init__(self, model: SAM2Model):
        super().__init__()
        self.model = model

    def forward(self, embed, low_res_masks, object_score_logits, binarize):
        m = self.model
        s = m.cfg.image_size
        high = F.interpolate(low_res_masks.to(m.dtype), size=(s, s), mode="bilinear", align_corners=False)
        if m.cfg.non_overlap_masks_for_mem_enc:  # the B objects of one frame made disjoint (a no-op for B = 1)
            high = apply_non_overlap(high)
        mask = torch.where(binarize, (high > 0).to(high.dtype), torch.sigmoid(high))
        mask = mask * m.cfg.sigmoid_scale_for_mem_enc + m.cfg.sigmoid_bias_for_mem_enc
        feats, _ = m.memory_encoder(embed.to(m.dtype), mask)
        if m.cfg.no_obj_embed_spatial:
            absent = (object_score_logits <= 0).to(feats.dtype)[:, :, None, None]
            feats = feats + absent * m.no_obj_embed_spatial.view(1, -1, 1, 1)
        return feats.float()


class MemoryAttentionGraph(nn.Module):
    """Frame features conditioned on one object's memory, for B objects with the same layout.

    embed, pos (B, C, E, E); memory (B, Nm, Cm, E, E) spatial memories; memory_slot (B, Nm) int64 temporal
    slot of each; obj_ptr (B, P, C); obj_ptr_tpos (B, P) float: temporal distance / (P_max - 1)
    -> (B, C, E, E). The memory tokens are assembled as `tracker.memory_tokens` does, RoPE in real arithmetic.
    """

    def __init__(self, model: SAM2Model):
        super().__init__()
        self.model = model
        cfg = model.cfg
        e = cfg.embed_size
        self.e = e
        layer0 = model.memory_attention.layers[0]
        head_dim = layer0.self_attn.internal_dim // layer0.self_attn.num_heads
        cos, sin = rope_tables(e, head_dim, cfg.rope_theta)
        self.register_buffer("rope_cos", cos.to(model.dtype))  # (E*E, D/2)
        self.register_buffer("rope_sin", sin.to(model.dtype))
        base = sine_position_encoding(torch.zeros(1, cfg.mem_dim, e, e), cfg.mem_dim)  # the memory encoder's PE
        self.register_buffer("maskmem_pos", base.flatten(2)[0].t().contiguous().to(model.dtype))  # (E*E, Cm)

    def _rope(self, x):
        return apply_rope_real(x, self.rope_cos, self.rope_sin)

    def _ptr_pos(self, tpos):
        cfg, m = self.model.cfg, self.model
        b, p = tpos.shape
        if not cfg.add_tpos_enc_to_obj_ptrs:
            return torch.zeros_like(tpos, dtype=m.dtype).unsqueeze(-1).expand(b, p, cfg.mem_dim)
        dim = cfg.hidden_dim if cfg.proj_tpos_enc_in_obj_ptrs else cfg.mem_dim
        enc = sine_encoding_1d(tpos, dim).to(m.dtype)  # (B, P, dim)
        return m.obj_ptr_tpos_proj(enc) if cfg.proj_tpos_enc_in_obj_ptrs else enc

    def forward(self, embed, pos, memory, memory_slot, obj_ptr, obj_ptr_tpos):
        m = self.model
        dt = m.dtype
        embed, pos, memory, obj_ptr = embed.to(dt), pos.to(dt), memory.to(dt), obj_ptr.to(dt)
        cm, ee = m.cfg.mem_dim, self.e * self.e
        b, c = embed.shape[0], embed.shape[1]
        nm = memory.shape[1]
        mem = memory.permute(0, 1, 3, 4, 2).reshape(b, nm * ee, cm)  # (B, Nm*E*E, Cm) in the tracker's order
        tpos = m.maskmem_tpos_enc.reshape(-1, cm)[memory_slot]  # (B, Nm, Cm)
        mem_pos = (self.maskmem_pos.unsqueeze(0).unsqueeze(0) + tpos.unsqueeze(2)).reshape(b, nm * ee, cm)
        p = obj_ptr.shape[1]
        split = m.cfg.hidden_dim // cm
        # each C-wide pointer becomes C/Cm tokens of width Cm, all with the pointer's temporal encoding
        ptr_tokens = obj_ptr.reshape(b, p * split, cm)
        ptr_pos = self._ptr_pos(obj_ptr_tpos).unsqueeze(2).expand(b, p, split, cm).reshape(b, p * split, cm)
        memory_all = torch.cat([mem, ptr_tokens], dim=1)
        pos_all = torch.cat([mem_pos, ptr_pos], dim=1)

        x = embed.flatten(2).transpose(1, 2)
        x = x + 0.1 * pos.flatten(2).transpose(1, 2)
        for layer in m.memory_attention.layers:
            t = layer.norm1(x)
            x = x + self._self_attn(layer.self_attn, t)
            t = layer.norm2(x)
            x = x + self._cross_attn(layer.cross_attn_image, t, memory_all + pos_all, memory_all, nm * ee)
            x = x + layer.linear2(F.relu(layer.linear1(layer.norm3(x))))
        x = m.memory_attention.norm(x)
        return x.transpose(1, 2).reshape(b, c, self.e, self.e).float()

    def _self_attn(self, a, t):
        q, k, v = a._heads(a.q_proj(t)), a._heads(a.k_proj(t)), a._heads(a.v_proj(t))
        return a.attend(self._rope(q), self._rope(k), v)

    def _cross_attn(self, a, t, k_in, v_in, n_spatial):
        q, k, v = a._heads(a.q_proj(t)), a._heads(a.k_proj(k_in)), a._heads(a.v_proj(v_in))
        b, h, _, d = k.shape
        ee = self.e * self.e
        k_sp = self._rope(k[:, :, :n_spatial].reshape(b, h, -1, ee, d)).reshape(b, h, n_spatial, d)
        k = torch.cat([k_sp, k[:, :, n_spatial:]], dim=2)
        return a.attend(self._rope(q), k, v)
