"""Mask decoding for many single-image prompts at once, sharing the work that does not depend on the prompt.

The mask decoder of SAM 2 runs one two-way transformer per prompt over the image tokens. For an automatic
mask generator (hundreds of clicks on one image) three things are wasted when every prompt runs the
plain decoder:

* Without a mask prompt every prompt starts from the same image tokens, so the image-side projections
  of the first transformer layer (keys and values of the token-to-image attention, queries of the
  image-to-token attention) are the same for every prompt: they are computed once per image here.
* The predicted IoU depends only on the transformer, not on the upscaling path (two transposed
  convolutions at 128x128 and 256x256, the costliest part after the transformer). A caller that
  drops masks whose predicted IoU is too low only needs masks for the prompts that keep at least one:
  the others skip the upscaling.
* The batch's image tokens (B x 4096 x 256 floats) do not fit in the CPU caches; prompts are run in
  small chunks so that the element-wise steps (residuals, layer norms, GELU) work in cache.

Every value is computed with the same operations, on the same operands, in the same order as in the
model's own `MaskDecoder` run on the whole batch (as the image predictor runs it), so the outputs are
equal bit for bit; tests/test_amg_decoder.py checks this. Three details matter for that: a linear layer
rounds differently on the transposed first-layer image tokens (product, then bias) than on contiguous
ones (fused); the upscaling convolutions work in channels-last layout only for batches > 1; and small
matrix products (the point encoding, the IoU and hypernetwork heads) round a row differently when the
batch has fewer rows than the kernel's block, so those run on the whole batch, not per chunk.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..model import SAM2Model
from ..model.common import pe_dtype
from ..model.mask_decoder import fp32_head


def _split_heads(x: torch.Tensor, n: int) -> torch.Tensor:
    b, t, c = x.shape  # (B, N, C) -> (B, heads, N, C / heads)
    return x.reshape(b, t, n, c // n).transpose(1, 2)


def _attend(attn, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """attn's scaled dot-product attention on already projected, head-split q/k/v, then its output projection."""
    out = F.scaled_dot_product_attention(q, k, v)
    b, h, n, c = out.shape
    return attn.out_proj(out.transpose(1, 2).reshape(b, n, h * c))


def _project(attn, x: torch.Tensor, which: str) -> torch.Tensor:
    return _split_heads(getattr(attn, which)(x), attn.num_heads)


def _project_image0(attn, x: torch.Tensor, which: str) -> torch.Tensor:
    """Projection of first-layer image tokens, computed as the decoder computes it.

    There the tokens are a transposed view of the (B, C, H, W) features, and a linear layer on such a
    view multiplies first and adds the bias afterwards, whereas on contiguous input it fuses both
    (addmm), which rounds differently. Doing the product and the sum separately gives the decoder's
    numbers whatever the layout or batch size of x.
    """
    lin = getattr(attn, which)
    return _split_heads(torch.matmul(x, lin.weight.t()) + lin.bias, attn.num_heads)


def _layer_norm_2d(ln, x: torch.Tensor) -> torch.Tensor:
    """ln(x) for the model's LayerNorm2d, the same operations in the same order, but in place where the
    model allocates (x is consumed): fewer passes over the largest tensors of the decoder."""
    d = x - x.mean(1, keepdim=True)
    s = d.pow(2).mean(1, keepdim=True)
    return d.div_(torch.sqrt(s + ln.eps)).mul_(ln.weight[:, None, None]).add_(ln.bias[:, None, None])


@dataclass
class DecodedPrompts:
    """Decoder output for B prompts with M masks each (M = 3 multimask, else 1).

    ious (B, M) for every prompt; low-res logits (K, L, L) only for the K candidates listed in `index`
    (flat positions b * M + m, ascending), i.e. those the caller asked for.
    """

    ious: torch.Tensor
    index: torch.Tensor
    low_res: torch.Tensor


class PromptDecoder:
    """Decodes click prompts on one image whose features are given (embed already holds no_mem_embed).

    embed (1, C, E, E), high_res [(1, C/8, 4E, 4E), (1, C/4, 2E, 2E)] as produced by SAM2Model.encode_image
    (+ no_memory_embed). chunk: prompts per pass through the transformer.
    """

    def __init__(self, model: SAM2Model, embed: torch.Tensor, high_res: list[torch.Tensor], chunk: int = 4):
        if embed.ndim != 4 or embed.shape[0] != 1:
            raise ValueError(f"PromptDecoder works on one image: embed must be (1, C, E, E), got {tuple(embed.shape)}")
        self.model = model
        self.dec = model.sam_mask_decoder
        self.pe = model.sam_prompt_encoder
        self.embed = embed
        self.high_res = high_res
        self.chunk = max(1, int(chunk))
        tr = self.dec.transformer
        first = tr.layers[0]
        if not first.skip_first_layer_pe:  # the released decoders all skip the PE in their first layer
            raise ValueError("PromptDecoder expects a decoder whose first layer skips the token PE")
        e = self.pe.image_embedding_size
        pos = self.pe.dense_pe().to(pe_dtype(embed))  # (1, C, E, E), float32 under autocast
        self.key_pe = pos.flatten(2).transpose(1, 2)  # (1, HW, C)
        # the image tokens every prompt without a mask input starts from, and what layer 0 derives from them
        dense = self.pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, e, e)
        self.keys0 = (embed + dense).flatten(2).transpose(1, 2)  # (1, HW, C)
        keys_pe0 = self.keys0 + self.key_pe
        self.k0 = _project_image0(first.cross_attn_token_to_image, keys_pe0, "k_proj")
        self.v0 = _project_image0(first.cross_attn_token_to_image, self.keys0, "v_proj")
        self.q0 = _project_image0(first.cross_attn_image_to_token, keys_pe0, "q_proj")
        heads = [self.dec.iou_token.weight, self.dec.mask_tokens.weight]
        if self.dec.pred_obj_scores:
            heads.insert(0, self.dec.obj_score_token.weight)
        self.output_tokens = torch.cat(heads, dim=0).unsqueeze(0)  # (1, T, C)
        self.iou_slot = 1 if self.dec.pred_obj_scores else 0

    # ------------------------------------------------------------------------------------------ transformer
    def _transformer(self, sparse: torch.Tensor, dense: torch.Tensor | None):
        """sparse (b, N, C) point tokens; dense (b, C, E, E) mask-prompt embedding or None (no mask input).

        -> output tokens (b, T+N, C), image tokens (b, HW, C); as TwoWayTransformer on the decoder's inputs.
        """
        tr = self.dec.transformer
        b = sparse.shape[0]
        tokens = torch.cat([self.output_tokens.expand(b, -1, -1), sparse], dim=1)
        first = tr.layers[0]
        if dense is None:
            keys0, k0, v0, q0 = self.keys0, self.k0.expand(b, -1, -1, -1), self.v0.expand(b, -1, -1, -1), None
        else:
            keys0 = (self.embed + dense).flatten(2).transpose(1, 2)
            keys_pe0 = keys0 + self.key_pe
            k0 = _project_image0(first.cross_attn_token_to_image, keys_pe0, "k_proj")
            v0 = _project_image0(first.cross_attn_token_to_image, keys0, "v_proj")
            q0 = _project_image0(first.cross_attn_image_to_token, keys_pe0, "q_proj")
        # layer 0: the tokens are their own PE and the self-attention has no residual
        queries = first.norm1(first.self_attn(tokens, tokens, tokens))
        t2i = first.cross_attn_token_to_image
        queries = first.norm2(queries + _attend(t2i, _project(t2i, queries + tokens, "q_proj"), k0, v0))
        queries = first.norm3(queries + first.mlp(queries))
        i2t = first.cross_attn_image_to_token
        q = queries + tokens
        if q0 is None:
            q0 = self.q0.expand(b, -1, -1, -1)
        keys = first.norm4(keys0 + _attend(i2t, q0, _project(i2t, q, "k_proj"), _project(i2t, queries, "v_proj")))
        for layer in tr.layers[1:]:
            q = queries + tokens
            queries = layer.norm1(queries + layer.self_attn(q, q, queries))
            keys_pe = keys + self.key_pe  # the same tensor serves both cross-attentions (keys do not change between)
            queries = layer.norm2(queries + layer.cross_attn_token_to_image(queries + tokens, keys_pe, keys))
            queries = layer.norm3(queries + layer.mlp(queries))
            keys = layer.norm4(keys + layer.cross_attn_image_to_token(keys_pe, queries + tokens, queries))
        attn = tr.final_attn_token_to_image(queries + tokens, keys + self.key_pe, keys)
        return tr.norm_final_attn(queries + attn), keys

    def _upscale(self, keys: torch.Tensor) -> torch.Tensor:
        """Image tokens (b, HW, C) after the transformer -> upscaled embedding (b, C/8, 4E, 4E).

        In the decoder the (B, C, E, E) view of the tokens is channels-last when B > 1, and the
        convolutions and the channel layer norm then work (and round) in that layout; with B = 1 the
        view is not recognised as channels-last. The B > 1 layout is reproduced for any chunk.
        """
        dec = self.dec
        b, _, c = keys.shape
        e = self.pe.image_embedding_size
        src = keys.transpose(1, 2).reshape(b, c, e, e)
        if b == 1:  # strides of a B > 1 view (contiguous() would see nothing to do)
            src = torch.empty_like(src, memory_format=torch.channels_last).copy_(src)
        if dec.use_high_res_features:
            up1, ln, act1, up2, act2 = dec.output_upscaling
            feat_s0, feat_s1 = self.high_res
            x = act1(_layer_norm_2d(ln, up1(src).add_(feat_s1)))
            return act2(up2(x).add_(feat_s0))
        return dec.output_upscaling(src)

    # ------------------------------------------------------------------------------------------ public
    @torch.inference_mode()
    def decode(self, coords: torch.Tensor, labels: torch.Tensor, mask_input: torch.Tensor | None = None,
               multimask_output: bool = True, min_iou: float | None = None) -> DecodedPrompts:
        """One decoder batch: B prompts, coords (B, N, 2) in model-input pixels, labels (B, N), optional
        mask logits (B, 1, 4E, 4E).

        Returns what MaskDecoder outputs for this batch (3 masks per prompt with multimask_output, else 1,
        with the dynamic multimask fallback when the model enables it), with low-res logits only for the
        candidates whose predicted IoU is > min_iou (all if None).

        The small heads (IoU, hypernetworks) run on the whole batch: a matrix product's rows can round
        differently when the batch has fewer rows than the kernel's block, so the batch must be the one
        the reference decoder sees for the results to be identical to it.
        """
        m, dec = self.model, self.dec
        dev = self.embed.device
        coords, labels = coords.to(dev, m.dtype), labels.to(dev)
        if mask_input is not None:
            mask_input = mask_input.to(dev, m.dtype)
        n = coords.shape[0]
        nmask = 3 if multimask_output else 1
        e4 = 4 * self.pe.image_embedding_size
        if n == 0:
            return DecodedPrompts(torch.zeros(0, nmask, device=dev), torch.zeros(0, dtype=torch.long, device=dev),
                                  torch.zeros(0, e4, e4, device=dev))
        if n == 1:  # a lone prompt takes other layouts inside the decoder: run the decoder itself
            sparse, dense = self.pe((coords, labels), None, mask_input)
            masks, out_iou, _, _ = dec(self.embed, self.pe.dense_pe().to(m.dtype), sparse, dense, multimask_output,
                                       repeat_image=False, high_res_features=self.high_res)
            want = out_iou > min_iou if min_iou is not None else torch.ones_like(out_iou, dtype=torch.bool)
            return DecodedPrompts(out_iou.float(), want[0].nonzero().flatten(), masks[0][want[0]].float())
        dynamic = not multimask_output and dec.dynamic_multimask_via_stability and not dec.training
        # point tokens for the whole batch (the Fourier features are a small matrix product, see above)
        sparse, _ = self.pe((coords, labels), None, None)
        hs_parts, keys_parts = [], []
        for s in range(0, n, self.chunk):
            sl = slice(s, s + self.chunk)
            dense = None if mask_input is None else self.pe.mask_downscaling(mask_input[sl])
            hs, keys = self._transformer(sparse[sl], dense)
            hs_parts.append(hs)
            keys_parts.append(keys)
        hs = torch.cat(hs_parts)
        iou = fp32_head(dec.iou_prediction_head, hs[:, self.iou_slot])  # (B, 4), float32 under autocast too
        tok = hs[:, self.iou_slot + 1: self.iou_slot + 1 + dec.NUM_MASK_TOKENS]
        hyper = torch.stack([mlp(tok[:, i]) for i, mlp in enumerate(dec.output_hypernetworks_mlps)], 1)

        def masks_of(rows: torch.Tensor) -> torch.Tensor:
            """All 4 low-res masks (r, 4, 4E, 4E) of the prompts `rows`, upscaled chunk by chunk."""
            out = []
            for s in range(0, rows.numel(), self.chunk):
                r = rows[s: s + self.chunk]
                keys = torch.cat([keys_parts[int(i) // self.chunk][int(i) % self.chunk: int(i) % self.chunk + 1]
                                  for i in r])
                up = self._upscale(keys)
                b, c8, hh, ww = up.shape
                out.append((hyper[r] @ up.reshape(b, c8, hh * ww)).reshape(b, -1, hh, ww))
            return torch.cat(out) if out else hs.new_zeros(0, dec.NUM_MASK_TOKENS, e4, e4)

        everyone = torch.arange(n, device=dev)
        if dynamic:  # the choice between single and multimask output needs the masks themselves
            out_masks, out_iou = dec._dynamic_multimask(masks_of(everyone), iou)
            want = out_iou > min_iou if min_iou is not None else torch.ones_like(out_iou, dtype=torch.bool)
            rows = want.any(dim=1).nonzero().flatten()
            out_masks = out_masks[rows]
        else:
            out_iou = iou[:, 1:] if multimask_output else iou[:, 0:1]
            want = out_iou > min_iou if min_iou is not None else torch.ones_like(out_iou, dtype=torch.bool)
            rows = want.any(dim=1).nonzero().flatten()
            masks = masks_of(rows)
            out_masks = masks[:, 1:] if multimask_output else masks[:, 0:1]
        sel = want[rows].flatten()  # (r * M,)
        index = (rows[:, None] * nmask + torch.arange(nmask, device=dev)[None]).flatten()[sel]
        return DecodedPrompts(out_iou.float(), index, out_masks.flatten(0, 1)[sel].float())
