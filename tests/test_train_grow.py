"""Growing a trained model (samstream.train.grow): the grown model computes what the small one did, its new
parts train, and only the growable fields may change."""
import dataclasses

import numpy as np
import pytest
import torch

from samstream.model import SAM2Model
from samstream.train.grow import block_map, check_growable, grow_state_dict
from samstream.train.recipe import default_model_config
from samstream.train.synthetic import SynthConfig, generate_video
from samstream.transforms import preprocess_frame
from samstream.video import VideoPredictor


def _small(**arch):
    return default_model_config(128, **arch)


def _trained_like(cfg, seed=0):
    """Random weights with every parameter away from its init (a zero-initialised parameter of a fresh model
    would hide a grown layer that is not a no-op)."""
    torch.manual_seed(seed)
    model = SAM2Model(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def _track(model, frames, gt0):
    with VideoPredictor(model, list(frames), progress=False, memory_dtype=torch.float32) as vp:
        vp.add_mask(0, 1, gt0)
        ys, xs = np.nonzero(gt0)
        vp.add_points(0, 2, [[int(xs.mean()), int(ys.mean())]])
        return np.stack([r.logits for r in vp.propagate(0)])  # (T, O, H, W)


DEEP_TRUNK = {"stages": [1, 3, 6, 2], "global_att_blocks": [7, 9]}  # old global block 6 -> 7; new block 9 global


@pytest.mark.parametrize("arch", [dict(mem_attn_layers=4, mem_attn_ffn_dim=512), dict(trunk=DEEP_TRUNK)],
                         ids=["memory-attention", "image-encoder"])
def test_grown_model_tracks_exactly_as_the_small_one(arch):
    video = generate_video(7, SynthConfig(height=96, width=128, num_frames=6))
    frames = list(video.frames)
    gt0 = video.masks(video.object_ids[0])[0]
    old_cfg, new_cfg = _small(), _small(**arch)
    small = _trained_like(old_cfg)
    big = SAM2Model(new_cfg)
    big.load_state_dict(grow_state_dict(small.state_dict(), old_cfg, new_cfg))
    big.eval()
    assert sum(p.numel() for p in big.parameters()) > sum(p.numel() for p in small.parameters())
    a, b = _track(small, frames, gt0), _track(big, frames, gt0)
    assert np.abs(a).max() > 1.0  # the comparison is between real predictions, not two empty outputs
    np.testing.assert_allclose(b, a, atol=1e-4, rtol=0)


def test_new_parts_get_gradients_and_train():
    from samstream.train.prompts import ClipPromptPlan
    from samstream.train.video_step import clip_forward

    old_cfg, new_cfg = _small(), _small(mem_attn_layers=3)
    big = SAM2Model(new_cfg)
    big.load_state_dict(grow_state_dict(_trained_like(old_cfg).state_dict(), old_cfg, new_cfg))
    big.train()
    video = generate_video(3, SynthConfig(height=128, width=128, num_frames=3))
    images = torch.stack([preprocess_frame(f, 128) for f in video.frames])
    masks = torch.stack([torch.from_numpy(video.masks(o)) for o in video.object_ids], dim=1)  # (T, O, S, S)
    plan = ClipPromptPlan(use_points=False, init_cond_frames=[0], frames_to_correct=[], box_frames=[])
    losses = clip_forward(big, images, masks, plan, np.random.default_rng(0))
    sum(losses.losses.values()).backward()
    new = dict(big.memory_attention.layers[2].named_parameters())
    # the zero output projections get a gradient at once (their inputs are not zero)...
    assert new["linear2.weight"].grad.abs().sum() > 0
    assert new["cross_attn_image.out_proj.weight"].grad.abs().sum() > 0
    # ...and the layer is an exact no-op before the first step
    assert all(new[f"{n}.weight"].abs().sum() == 0 for n in ("self_attn.out_proj", "cross_attn_image.out_proj",
                                                              "linear2"))


def test_only_growable_fields_may_change():
    base = _small()
    check_growable(base, _small(mem_attn_layers=3, mem_attn_ffn_dim=384))
    check_growable(base, dataclasses.replace(base, image_size=320, fill_hole_area=0))  # not architecture
    # nor which memories a frame reads (the default model's release settings)
    check_growable(base, dataclasses.replace(base, max_obj_ptrs_in_encoder=4, memory_temporal_stride_for_eval=2,
                                             non_overlap_masks_for_mem_enc=True))
    with pytest.raises(ValueError, match="hidden_dim"):
        check_growable(base, _small(hidden_dim=96))
    with pytest.raises(ValueError, match="shrink mem_attn_layers"):
        check_growable(_small(mem_attn_layers=3), base)
    with pytest.raises(ValueError, match="trunk"):
        grow_state_dict(SAM2Model(base).state_dict(), base,
                        dataclasses.replace(base, trunk=dataclasses.replace(base.trunk, embed_dim=32)))


def test_trunk_blocks_keep_their_order_and_new_ones_start_as_identities():
    old_cfg, new_cfg = _small(), _small(trunk=DEEP_TRUNK)
    assert new_cfg.trunk.stages == (1, 3, 6, 2) and new_cfg.trunk.global_att_blocks == (7, 9)
    assert block_map(old_cfg.trunk, new_cfg.trunk) == {0: 0, 1: 1, 2: 2, 3: 4, 4: 5, 5: 6, 6: 7, 7: 10}
    small = _trained_like(old_cfg).state_dict()
    grown = grow_state_dict(small, old_cfg, new_cfg)
    blocks = "image_encoder.trunk.blocks"
    assert torch.equal(grown[f"{blocks}.7.attn.qkv.weight"], small[f"{blocks}.6.attn.qkv.weight"])
    assert torch.equal(grown[f"{blocks}.10.mlp.layers.0.weight"], small[f"{blocks}.7.mlp.layers.0.weight"])
    for i in (3, 8, 9, 11):  # the new blocks: zero residual outputs, fresh (non-zero) inputs
        assert grown[f"{blocks}.{i}.attn.proj.weight"].abs().sum() == 0
        assert grown[f"{blocks}.{i}.mlp.layers.1.bias"].abs().sum() == 0
        assert grown[f"{blocks}.{i}.attn.qkv.weight"].abs().sum() > 0
    big = SAM2Model(new_cfg)
    big.load_state_dict(grown)
    assert big.image_encoder.trunk.blocks[9].window_size == 0  # the new global block
    assert big.image_encoder.trunk.blocks[8].window_size > 0


def test_trunk_growth_refuses_what_is_not_function_preserving():
    base = _small()
    with pytest.raises(ValueError, match=r"only trunk\.stages"):
        check_growable(base, _small(trunk={"mlp_ratio": 2.0}))
    with pytest.raises(ValueError, match="add blocks only"):
        check_growable(base, _small(trunk={"stages": [1, 2, 3, 2], "global_att_blocks": [5]}))
    with pytest.raises(ValueError, match="add blocks only"):
        check_growable(base, _small(trunk={"stages": [1, 2, 4, 1, 1]}))
    # the trained global block is block 6 in both: leaving it at 6 while stage 2 grows moves it to 7
    with pytest.raises(ValueError, match=r"global_att_blocks \(6,\) must be the trained global blocks at their new "
                                         r"indices \(7,\)"):
        check_growable(base, _small(trunk={"stages": [1, 3, 4, 1]}))
    # a trained windowed block may not turn global
    with pytest.raises(ValueError, match="global_att_blocks"):
        check_growable(base, _small(trunk={"stages": [1, 3, 4, 1], "global_att_blocks": [6, 7]}))
