"""Model configurations as plain dataclasses.

`OFFICIAL_CONFIGS` holds Meta's eight released configurations (SAM 2 / 2.1 x tiny, small, base+, large);
any other size is built by changing the fields (image size, widths, depths, windows).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field


def lists_to_tuples(fields: dict) -> dict:
    """Config fields read from JSON: lists become tuples, as the dataclasses declare them (hashable, comparable)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}


@dataclass
class HieraConfig:
    embed_dim: int = 96  # width of stage 1; doubles at every q-pool
    num_heads: int = 1  # heads of stage 1; doubles at every q-pool
    stages: tuple[int, ...] = (2, 3, 16, 3)  # blocks per stage
    global_att_blocks: tuple[int, ...] = (12, 16, 20)  # blocks with global (not windowed) attention
    window_spec: tuple[int, ...] = (8, 4, 14, 7)  # window size per stage
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (14, 14)
    q_pool: int = 3  # number of stages that start with query pooling
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.0

    @property
    def stage_ends(self) -> list[int]:
        return [sum(self.stages[: i + 1]) - 1 for i in range(len(self.stages))]

    @property
    def q_pool_blocks(self) -> list[int]:
        return [e + 1 for e in self.stage_ends[:-1]][: self.q_pool]

    @property
    def channel_list(self) -> list[int]:
        """Output channels per stage, lowest resolution first (as the FPN neck takes them)."""
        return [self.embed_dim * 2**i for i in range(len(self.stages))][::-1]


# output settings that config files written before they moved to a model's inference defaults hold
LEGACY_OUTPUT_FIELDS = ("edge_refine_radius", "edge_refine_eps")


@dataclass
class SAM2Config:
    name: str = "custom"
    trunk: HieraConfig = field(default_factory=HieraConfig)
    image_size: int = 1024
    backbone_stride: int = 16  # image embedding grid = image_size / 16
    hidden_dim: int = 256  # FPN, prompt encoder, mask decoder and memory-attention width
    mem_dim: int = 64  # memory feature width
    num_maskmem: int = 7  # 1 conditioning slot + 6 recent frames
    mem_attn_layers: int = 4
    mem_attn_ffn_dim: int = 2048
    mem_attn_dropout: float = 0.1
    rope_theta: float = 10000.0
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    fpn_top_down_levels: tuple[int, ...] = (2, 3)
    scalp: int = 1  # lowest-resolution FPN levels dropped
    # tracking behaviour (identical in all released configs)
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    max_obj_ptrs_in_encoder: int = 16
    max_cond_frames_in_attn: int = -1
    memory_temporal_stride_for_eval: int = 1
    non_overlap_masks_for_mem_enc: bool = False  # the frame's objects' masks made disjoint before memory encoding
    multimask_min_pt_num: int = 0
    multimask_max_pt_num: int = 1
    # SAM 2.1 additions
    add_tpos_enc_to_obj_ptrs: bool = True
    proj_tpos_enc_in_obj_ptrs: bool = True
    use_signed_tpos_enc_to_obj_ptrs: bool = True
    no_obj_embed_spatial: bool = True
    # post-processing (the official builders turn these on; architecture is unchanged)
    dynamic_multimask_via_stability: bool = True
    dynamic_multimask_stability_delta: float = 0.05
    dynamic_multimask_stability_thresh: float = 0.98
    binarize_mask_from_pts_for_mem_enc: bool = True
    fill_hole_area: int = 8

    @property
    def version(self) -> str:
        return "2.1" if self.no_obj_embed_spatial else "2.0"

    @property
    def embed_size(self) -> int:
        """Side of the image-embedding grid (64 for 1024 inputs)."""
        return self.image_size // self.backbone_stride

    def with_postprocessing(self, enabled: bool) -> SAM2Config:
        return dataclasses.replace(
            self,
            dynamic_multimask_via_stability=enabled,
            binarize_mask_from_pts_for_mem_enc=enabled,
            fill_hole_area=8 if enabled else 0,
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SAM2Config:
        """The config of `to_json`. Output settings that older files kept here (LEGACY_OUTPUT_FIELDS) are
        skipped: they are a model's inference defaults now (samstream.checkpoint reads them)."""
        d = {k: v for k, v in json.loads(text).items() if k not in LEGACY_OUTPUT_FIELDS}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config fields: {sorted(unknown)}")
        trunk = HieraConfig(**lists_to_tuples(d.pop("trunk")))
        return cls(trunk=trunk, **lists_to_tuples(d))


_TRUNKS = {
    "tiny": HieraConfig(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2), global_att_blocks=(5, 7, 9),
                        window_pos_embed_bkg_spatial_size=(7, 7)),
    "small": HieraConfig(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2), global_att_blocks=(7, 10, 13),
                         window_pos_embed_bkg_spatial_size=(7, 7)),
    "base_plus": HieraConfig(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3), global_att_blocks=(12, 16, 20),
                             window_pos_embed_bkg_spatial_size=(14, 14)),
    "large": HieraConfig(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4), global_att_blocks=(23, 33, 43),
                         window_spec=(8, 4, 16, 8), window_pos_embed_bkg_spatial_size=(7, 7)),
}
SIZE_LETTER = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}


def _official(size: str, version: str) -> SAM2Config:
    v21 = version == "2.1"
    prefix = "sam2.1" if v21 else "sam2"
    return SAM2Config(
        name=f"{prefix}_hiera_{size}",
        trunk=dataclasses.replace(_TRUNKS[size]),
        add_tpos_enc_to_obj_ptrs=v21,
        proj_tpos_enc_in_obj_ptrs=v21,
        use_signed_tpos_enc_to_obj_ptrs=v21,
        no_obj_embed_spatial=v21,
    )


OFFICIAL_CONFIGS: dict[str, SAM2Config] = {
    c.name: c for c in (_official(s, v) for v in ("2.1", "2.0") for s in _TRUNKS)
}


def official_config(name: str) -> SAM2Config:
    """Look up an official config by any common spelling.

    Accepts "sam2.1_hiera_tiny", "sam2.1-hiera-tiny", "sam2.1_hiera_t", "facebook/sam2.1-hiera-base-plus",
    "configs/sam2.1/sam2.1_hiera_b+.yaml", "sam2_hiera_large.pt", ...
    """
    key = name.strip().split("/")[-1]
    for ext in (".yaml", ".pt", ".safetensors"):
        key = key.removesuffix(ext)
    key = key.replace("-", "_").lower()
    letters = {v: k for k, v in SIZE_LETTER.items()}
    for prefix in ("sam2.1_hiera_", "sam2_hiera_"):
        if key.startswith(prefix):
            size = key[len(prefix):]
            size = letters.get(size, size)
            cfg = OFFICIAL_CONFIGS.get(prefix + size)
            if cfg is not None:
                return dataclasses.replace(cfg, trunk=dataclasses.replace(cfg.trunk))
    raise ValueError(
        f"unknown model name {name!r}; official names are: {', '.join(OFFICIAL_CONFIGS)}"
    )
