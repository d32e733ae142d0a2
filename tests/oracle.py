"""Meta's reference implementation (PyPI `sam2`), used only as a test oracle.

Builds the reference model with random official initialisation, perturbs every floating tensor so each
parameter matters, and loads the same state dict into ours. Tests that use it carry the `oracle` marker
(`pytest -m "not oracle"` runs the others); the benchmarks import it as `tests.oracle`.
"""
from __future__ import annotations

import torch

YAML = {
    "sam2.1_hiera_tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_large": "configs/sam2.1/sam2.1_hiera_l.yaml",
    "sam2_hiera_tiny": "configs/sam2/sam2_hiera_t.yaml",
    "sam2_hiera_small": "configs/sam2/sam2_hiera_s.yaml",
    "sam2_hiera_base_plus": "configs/sam2/sam2_hiera_b+.yaml",
    "sam2_hiera_large": "configs/sam2/sam2_hiera_l.yaml",
}


def require_oracle():
    """The oracle is installed by tools/setup_test_env.sh; a missing oracle is an error, not a skip."""
    try:
        import sam2  # noqa: F401
    except ImportError as e:  # pragma: no cover
        raise RuntimeError("the reference package `sam2` is not installed: run tools/setup_test_env.sh") from e


def reference_state_dict(name: str, seed: int = 0, obj_score_bias: float | None = 1.0) -> dict[str, torch.Tensor]:
    """A state dict in the official layout from the reference's own random init, perturbed."""
    require_oracle()
    from sam2.build_sam import build_sam2

    torch.manual_seed(seed)
    ref = build_sam2(YAML[name], ckpt_path=None, device="cpu", mode="eval")
    g = torch.Generator().manual_seed(seed + 1)
    sd = {}
    for k, v in ref.state_dict().items():
        if v.is_floating_point():
            v = v + 0.02 * torch.randn(v.shape, generator=g)
        sd[k] = v
    if obj_score_bias is not None:  # random heads call every object absent; make them present
        sd["sam_mask_decoder.pred_obj_score_head.layers.2.bias"] = torch.tensor([obj_score_bias])
    return sd


def build_reference(name: str, sd: dict[str, torch.Tensor], video: bool = False, postprocessing: bool = True):
    require_oracle()
    from sam2.build_sam import build_sam2, build_sam2_video_predictor

    builder = build_sam2_video_predictor if video else build_sam2
    ref = builder(YAML[name], ckpt_path=None, device="cpu", mode="eval", apply_postprocessing=postprocessing)
    ref.load_state_dict(sd, strict=True)
    return ref.eval()

