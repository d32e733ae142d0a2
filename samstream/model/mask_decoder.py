"""Two-way transformer mask decoder with IoU and object-score heads and high-resolution skip features."""
from __future__ import annotations

import torch
from torch import nn

from .common import MLP, Attention, LayerNorm2d, autocast_on, full_precision


class TwoWayBlock(nn.Module):
    """Tokens attend to themselves and to the image; the image attends back to the tokens."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, skip_first_layer_pe: bool):
        super().__init__()
        self.self_attn = Attention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, num_heads, downsample_rate=2)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_dim, dim, 2)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, num_heads, downsample_rate=2)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries, keys, query_pe, key_pe, token_mask=None):
        # queries (B, Nt, C) tokens; keys (B, HW, C) image; token_mask (B, Nt) bool, False for padding tokens,
        # which no token or pixel attends to
        if self.skip_first_layer_pe:  # first layer: the tokens *are* their PE; no residual
            queries = self.self_attn(queries, queries, queries, token_mask)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries, token_mask)
        queries = self.norm1(queries)
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))
        queries = self.norm3(queries + self.mlp(queries))
        q, k = queries + query_pe, keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries, token_mask))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(self, depth: int, dim: int, num_heads: int, mlp_dim: int):
        super().__init__()
        self.layers = nn.ModuleList(TwoWayBlock(dim, num_heads, mlp_dim, i == 0) for i in range(depth))
        self.final_attn_token_to_image = Attention(dim, num_heads, downsample_rate=2)
        self.norm_final_attn = nn.LayerNorm(dim)

    def forward(self, image: torch.Tensor, image_pe: torch.Tensor, tokens: torch.Tensor,
                token_mask: torch.Tensor | None = None):
        # image, image_pe (B, C, H, W); tokens (B, Nt, C) -> tokens (B, Nt, C), image (B, HW, C);
        # token_mask (B, Nt) bool: False for padding tokens
        keys = image.flatten(2).transpose(1, 2)
        key_pe = image_pe.flatten(2).transpose(1, 2)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe, token_mask)
        attn = self.final_attn_token_to_image(queries + tokens, keys + key_pe, keys)
        return self.norm_final_attn(queries + attn), keys


def fp32_head(head: MLP, x: torch.Tensor) -> torch.Tensor:
    """A small scoring head run in float32 under autocast (object scores and IoU gate what is kept); x (B, C)."""
    with full_precision(x):
        return head(x.to(head.layers[0].weight.dtype))


def stability_score(logits: torch.Tensor, threshold: float, offset: float) -> torch.Tensor:
    """IoU between the masks thresholded at threshold +/- offset; logits (..., H, W) -> (...)."""
    inter = (logits > threshold + offset).flatten(-2).sum(-1).float()
    union = (logits > threshold - offset).flatten(-2).sum(-1).float()
    return torch.where(union > 0, inter / union, torch.ones_like(inter))


class MaskDecoder(nn.Module):
    NUM_MASK_TOKENS = 4  # 1 single-mask token + 3 multimask tokens

    def __init__(self, dim: int, depth: int, num_heads: int, mlp_dim: int, use_high_res_features: bool = True,
                 pred_obj_scores: bool = True, use_multimask_token_for_obj_ptr: bool = True,
                 dynamic_multimask_via_stability: bool = False, stability_delta: float = 0.05,
                 stability_thresh: float = 0.98):
        super().__init__()
        self.transformer = TwoWayTransformer(depth, dim, num_heads, mlp_dim)
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.NUM_MASK_TOKENS, dim)
        self.pred_obj_scores = pred_obj_scores
        if pred_obj_scores:
            self.obj_score_token = nn.Embedding(1, dim)
            self.pred_obj_score_head = MLP(dim, dim, 1, 3)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.use_high_res_features = use_high_res_features
        if use_high_res_features:
            self.conv_s0 = nn.Conv2d(dim, dim // 8, kernel_size=1)
            self.conv_s1 = nn.Conv2d(dim, dim // 4, kernel_size=1)
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(dim, dim, dim // 8, 3) for _ in range(self.NUM_MASK_TOKENS)
        )
        self.iou_prediction_head = MLP(dim, 256, self.NUM_MASK_TOKENS, 3, sigmoid_output=True)
        self.use_multimask_token_for_obj_ptr = use_multimask_token_for_obj_ptr
        self.dynamic_multimask_via_stability = dynamic_multimask_via_stability
        self.stability_delta = stability_delta
        self.stability_thresh = stability_thresh

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor,
                dense: torch.Tensor, multimask_output: bool, repeat_image: bool,
                high_res_features: list[torch.Tensor] | None = None, token_mask: torch.Tensor | None = None):
        """-> masks (B, M, 4E, 4E) logits, iou (B, M), pointer tokens (B, M', C), object score logits (B, 1).

        M = 3 with multimask_output else 1. image_embeddings (B or 1, C, E, E). Under autocast the logits
        and scores come back as float32. token_mask (B, N) bool over the sparse tokens (B, N, C): False for
        padding that is ignored (compiled graphs pad the prompt to a fixed length; samstream.model.compiled).
        """
        masks, iou, mask_tokens, obj_logits = self.predict_masks(
            image_embeddings, image_pe, sparse, dense, repeat_image, high_res_features, token_mask)
        if multimask_output:
            out_masks, out_iou = masks[:, 1:], iou[:, 1:]
        elif self.dynamic_multimask_via_stability and not self.training:
            out_masks, out_iou = self._dynamic_multimask(masks, iou)
        else:
            out_masks, out_iou = masks[:, 0:1], iou[:, 0:1]
        if multimask_output and self.use_multimask_token_for_obj_ptr:
            tokens = mask_tokens[:, 1:]
        else:
            tokens = mask_tokens[:, 0:1]
        return out_masks, out_iou, tokens, obj_logits

    def predict_masks(self, image_embeddings, image_pe, sparse, dense, repeat_image, high_res_features,
                      token_mask=None):
        b = sparse.shape[0]
        heads = [self.iou_token.weight, self.mask_tokens.weight]
        if self.pred_obj_scores:
            heads.insert(0, self.obj_score_token.weight)
        s = 1 if self.pred_obj_scores else 0
        head_tokens = torch.cat(heads, dim=0)  # (H, C): the output tokens, never padding
        tokens = torch.cat([head_tokens.unsqueeze(0).expand(b, -1, -1), sparse], dim=1)
        if token_mask is not None:  # (B, N) -> (B, H + N)
            token_mask = torch.cat([token_mask.new_ones(b, head_tokens.shape[0]), token_mask], dim=1)
        src = image_embeddings.repeat_interleave(b, dim=0) if repeat_image else image_embeddings
        src = src + dense
        pos = image_pe.expand(b, -1, -1, -1)
        _, c, h, w = src.shape
        hs, src = self.transformer(src, pos, tokens, token_mask)
        iou_token_out = hs[:, s]
        mask_tokens_out = hs[:, s + 1: s + 1 + self.NUM_MASK_TOKENS]

        src = src.transpose(1, 2).reshape(b, c, h, w)
        if self.use_high_res_features:
            up1, ln, act1, up2, act2 = self.output_upscaling
            feat_s0, feat_s1 = high_res_features
            x = act1(ln(up1(src) + feat_s1))
            upscaled = act2(up2(x) + feat_s0)  # (B, C/8, 4E, 4E)
        else:
            upscaled = self.output_upscaling(src)
        hyper = torch.stack([mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], 1)
        b, c8, hh, ww = upscaled.shape
        masks = (hyper @ upscaled.reshape(b, c8, hh * ww)).reshape(b, -1, hh, ww)
        if autocast_on(masks):  # the product may run in reduced precision; the logits leave as float32
            masks = masks.float()
        iou = fp32_head(self.iou_prediction_head, iou_token_out)
        if self.pred_obj_scores:
            obj_logits = fp32_head(self.pred_obj_score_head, hs[:, 0])
        else:
            obj_logits = 10.0 * iou.new_ones(b, 1)  # "always present"
        return masks, iou, mask_tokens_out, obj_logits

    def _dynamic_multimask(self, masks: torch.Tensor, iou: torch.Tensor):
        """Keep the single-mask output when it is stable, else fall back to the best multimask output."""
        best = iou[:, 1:].argmax(dim=-1)
        rows = torch.arange(masks.shape[0], device=masks.device)
        best_masks = masks[:, 1:][rows, best].unsqueeze(1)
        best_iou = iou[:, 1:][rows, best].unsqueeze(1)
        single, single_iou = masks[:, 0:1], iou[:, 0:1]
        stable = stability_score(single, 0.0, self.stability_delta) >= self.stability_thresh  # (B, 1)
        out_masks = torch.where(stable[..., None, None], single, best_masks)
        out_iou = torch.where(stable, single_iou, best_iou)
        return out_masks, out_iou
