"""The SAM 2 model: all learned parts plus the stateless steps that the image and video APIs compose.

Nothing here remembers anything between calls: a video's memory bank lives in the tracker's state
object and is passed in explicitly.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..postprocess import MaskPostprocess
from .common import MLP, autocast_on, full_precision, pe_dtype, sine_encoding_1d
from .config import SAM2Config
from .image_encoder import FpnNeck, Hiera, ImageEncoder
from .mask_decoder import MaskDecoder
from .memory_attention import MemoryAttention
from .memory_encoder import MemoryEncoder
from .prompt_encoder import PromptEncoder

NO_OBJ_SCORE = -1024.0  # logit given to every pixel of an object judged absent


@dataclass
class ImageFeatures:
    """Backbone output for a batch of B frames (E = image_size / 16)."""

    embed: torch.Tensor  # (B, C, E, E) lowest-resolution FPN level, no memory added
    pos: torch.Tensor  # (B, C, E, E) its sine position encoding
    high_res: list[torch.Tensor]  # [(B, C/8, 4E, 4E), (B, C/4, 2E, 2E)] after conv_s0 / conv_s1

    def select(self, idx) -> ImageFeatures:
        return ImageFeatures(self.embed[idx], self.pos[idx], [h[idx] for h in self.high_res])


@dataclass
class HeadOutput:
    """Mask decoder output for B objects (S = image_size, L = S / 4)."""

    low_res_multimasks: torch.Tensor  # (B, M, L, L) logits, M = 3 or 1
    ious: torch.Tensor  # (B, M)
    low_res_masks: torch.Tensor  # (B, 1, L, L) the chosen mask
    high_res_masks: torch.Tensor  # (B, 1, S, S)
    obj_ptr: torch.Tensor  # (B, C)
    object_score_logits: torch.Tensor  # (B, 1); > 0 means visible


class SAM2Model(nn.Module):
    def __init__(self, cfg: SAM2Config):
        super().__init__()
        self.cfg = cfg
        # the output settings the weights were released with (not architecture; read from the weights file)
        self.inference_defaults = MaskPostprocess()
        c, e = cfg.hidden_dim, cfg.embed_size
        trunk = Hiera(cfg.trunk)
        self.image_encoder = ImageEncoder(trunk, FpnNeck(c, cfg.trunk.channel_list, cfg.fpn_top_down_levels),
                                          cfg.scalp)
        self.memory_attention = MemoryAttention(c, cfg.mem_dim, cfg.mem_attn_layers, cfg.mem_attn_ffn_dim,
                                                cfg.mem_attn_dropout, cfg.rope_theta)
        self.memory_encoder = MemoryEncoder(c, cfg.mem_dim)
        self.sam_prompt_encoder = PromptEncoder(c, e, cfg.image_size)
        self.sam_mask_decoder = MaskDecoder(
            c, cfg.decoder_depth, cfg.decoder_heads, cfg.decoder_mlp_dim,
            dynamic_multimask_via_stability=cfg.dynamic_multimask_via_stability,
            stability_delta=cfg.dynamic_multimask_stability_delta,
            stability_thresh=cfg.dynamic_multimask_stability_thresh,
        )
        self.obj_ptr_proj = MLP(c, c, c, 3)
        if cfg.proj_tpos_enc_in_obj_ptrs:
            self.obj_ptr_tpos_proj = nn.Linear(c, cfg.mem_dim)
        # maps a full-resolution mask prompt to the decoder's mask-input size
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(cfg.num_maskmem, 1, 1, cfg.mem_dim))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, c))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, c))  # in the checkpoints, unused by the released configs
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, c))
        if cfg.no_obj_embed_spatial:
            self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, cfg.mem_dim))
        for p in (self.maskmem_tpos_enc, self.no_mem_embed, self.no_mem_pos_enc, self.no_obj_ptr):
            nn.init.trunc_normal_(p, std=0.02)
        if cfg.no_obj_embed_spatial:
            nn.init.trunc_normal_(self.no_obj_embed_spatial, std=0.02)

    # ---------------------------------------------------------------- image features
    @property
    def device(self) -> torch.device:
        return self.no_mem_embed.device

    @property
    def dtype(self) -> torch.dtype:
        return self.no_mem_embed.dtype

    def encode_image(self, images: torch.Tensor) -> ImageFeatures:
        """images (B, 3, S, S), normalised -> ImageFeatures. Runs once per frame, whatever the prompts."""
        feats, pos = self.image_encoder(images)
        dec = self.sam_mask_decoder
        high_res = [dec.conv_s0(feats[0]), dec.conv_s1(feats[1])] if dec.use_high_res_features else []
        return ImageFeatures(embed=feats[-1], pos=pos[-1], high_res=high_res)

    def no_memory_embed(self, embed: torch.Tensor) -> torch.Tensor:
        """Features of a frame seen without memory (an image, or a video's first prompted frame)."""
        return embed + self.no_mem_embed.view(1, -1, 1, 1).to(embed.dtype)

    # ---------------------------------------------------------------- prompts -> masks
    def forward_sam_heads(self, embed: torch.Tensor, high_res: list[torch.Tensor],
                          points: tuple[torch.Tensor, torch.Tensor] | None = None,
                          mask_inputs: torch.Tensor | None = None, multimask_output: bool = False) -> HeadOutput:
        """Decode masks for B objects on (possibly memory-conditioned) features embed (B, C, E, E).

        points: coords (B, N, 2) in model-input pixels and labels (B, N). mask_inputs: (B, 1, h, w) logits.
        Objects whose score is <= 0 get NO_OBJ_SCORE everywhere and the learned "no object" pointer.
        """
        b = embed.shape[0]
        pe = self.sam_prompt_encoder
        if points is None:  # the decoder was trained to always see at least one (padding) point
            points = (embed.new_zeros(b, 1, 2), -torch.ones(b, 1, dtype=torch.int32, device=embed.device))
        if mask_inputs is not None and mask_inputs.shape[-2:] != (pe.mask_input_size, pe.mask_input_size):
            mask_inputs = F.interpolate(mask_inputs.float(), size=(pe.mask_input_size,) * 2, mode="bilinear",
                                        align_corners=False, antialias=True)
        sparse, dense = pe(points, None, mask_inputs)
        masks, ious, tokens, obj_logits = self.sam_mask_decoder(
            embed, pe.dense_pe().to(pe_dtype(embed)), sparse, dense, multimask_output, repeat_image=False,
            high_res_features=high_res)
        present = obj_logits > 0  # (B, 1)
        masks = torch.where(present[:, :, None, None], masks, NO_OBJ_SCORE).float()
        s = self.cfg.image_size
        high = F.interpolate(masks, size=(s, s), mode="bilinear", align_corners=False)
        token = tokens[:, 0]
        if multimask_output:
            best = ious.argmax(dim=-1)
            rows = torch.arange(b, device=embed.device)
            low_best, high_best = masks[rows, best].unsqueeze(1), high[rows, best].unsqueeze(1)
            if tokens.shape[1] > 1:
                token = tokens[rows, best]
        else:
            low_best, high_best = masks, high
        obj_ptr = self._gate_pointer(self.obj_ptr_proj(token), present)
        return HeadOutput(masks, ious, low_best, high_best, obj_ptr, obj_logits)

    def _gate_pointer(self, obj_ptr: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        lam = present.to(obj_ptr.dtype)
        return lam * obj_ptr + (1 - lam) * self.no_obj_ptr

    def mask_as_output(self, embed: torch.Tensor, high_res: list[torch.Tensor], mask: torch.Tensor) -> HeadOutput:
        """A mask prompt (B, 1, S, S) in {0,1} taken as the prediction itself (+-10 logits).

        The pointer still comes from the decoder, run on the raw features with the mask as prompt.
        """
        m = mask.float()
        high = m * 20.0 - 10.0
        low = F.interpolate(high, size=(high.shape[-2] // 4, high.shape[-1] // 4), mode="bilinear",
                            align_corners=False, antialias=True)
        ious = m.new_ones(m.shape[0], 1)
        ptr = self.forward_sam_heads(embed, high_res, mask_inputs=self.mask_downsample(m)).obj_ptr
        present = (m.flatten(1) > 0).any(dim=1, keepdim=True)
        obj_logits = 20.0 * present.float() - 10.0
        return HeadOutput(low, ious, low, high, self._gate_pointer(ptr, present), obj_logits)

    # ---------------------------------------------------------------- memory
    def encode_memory(self, embed: torch.Tensor, high_res_masks: torch.Tensor, object_score_logits: torch.Tensor,
                      binarize: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw frame features (B, C, E, E) + chosen mask logits (B, 1, S, S) -> memory (B, Cm, E, E) and its PE."""
        if binarize:
            mask = (high_res_masks > 0).to(embed.dtype)
        else:
            with full_precision(embed):  # under autocast too, the soft mask comes from float32 logits
                mask = torch.sigmoid(high_res_masks.float() if autocast_on(embed) else high_res_masks)
        mask = mask * self.cfg.sigmoid_scale_for_mem_enc + self.cfg.sigmoid_bias_for_mem_enc
        feats, pos = self.memory_encoder(embed, mask.to(embed.dtype))
        if self.cfg.no_obj_embed_spatial:
            absent = (object_score_logits <= 0).to(feats.dtype)[:, :, None, None]  # (B, 1, 1, 1)
            feats = feats + absent * self.no_obj_embed_spatial.view(1, -1, 1, 1).to(feats.dtype)
        return feats, pos

    def attend_memory(self, embed: torch.Tensor, pos: torch.Tensor, memory: torch.Tensor,
                      memory_pos: torch.Tensor, num_obj_ptr_tokens: int) -> torch.Tensor:
        """Condition frame features (B, C, E, E) on memory tokens (B, M, Cm) -> (B, C, E, E)."""
        b, c, h, w = embed.shape
        x = self.memory_attention(embed.flatten(2).transpose(1, 2), pos.flatten(2).transpose(1, 2),
                                  memory, memory_pos, num_obj_ptr_tokens)
        return x.transpose(1, 2).reshape(b, c, h, w)

    def obj_ptr_pos_enc(self, rel_pos: torch.Tensor, max_abs_pos: int) -> torch.Tensor:
        """Temporal encoding of object pointers at relative positions rel_pos (N,) -> (N, Cm)."""
        cfg = self.cfg
        if not cfg.add_tpos_enc_to_obj_ptrs:
            return rel_pos.new_zeros(rel_pos.shape[0], cfg.mem_dim, dtype=self.dtype)
        dim = cfg.hidden_dim if cfg.proj_tpos_enc_in_obj_ptrs else cfg.mem_dim
        enc = sine_encoding_1d(rel_pos.float() / max(max_abs_pos - 1, 1), dim).to(self.dtype)
        return self.obj_ptr_tpos_proj(enc) if cfg.proj_tpos_enc_in_obj_ptrs else enc

    def forward(self, *args, **kwargs):
        raise NotImplementedError("use ImagePredictor / VideoPredictor, or the model's step functions")
