"""The default model's recipe: stages chain, the result loads as the default config, a re-run resumes."""
import json
import shutil
from dataclasses import fields, replace
from functools import partial

import pytest
import torch

from samstream import checkpoint, load
from samstream.train import recipe
from samstream.train.config import TrainConfig
from samstream.train.synthetic import SynthConfig, write_davis_folder

# TrainConfig fields a stage sets in its `train` (a stage's own seed is Stage.seed)
TRAIN_FIELDS = {f.name for f in fields(TrainConfig)} - {f.name for f in fields(recipe.Stage)}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe-data")
    write_davis_folder(root, [5, 6], SynthConfig(height=96, width=128, num_frames=8))
    return root


def _with(stage, warmup=None, **changes):
    """`stage` with Stage or TrainConfig fields changed (warmup: its optimiser's warm-up steps)."""
    train = {k: changes.pop(k) for k in list(changes) if k in TRAIN_FIELDS}
    if warmup is not None:
        train["optim"] = replace(stage.train.optim, warmup_steps=warmup)
    return replace(stage.with_train(**train), **changes)


def _stages():
    return tuple(_with(s, steps=2, warmup=0, frames=min(s.train.frames, 3)) for s in recipe.STAGES)


def test_recipe_runs_stages_installs_and_resumes(data, tmp_path, monkeypatch):
    installed = tmp_path / "weights" / "default.safetensors"
    monkeypatch.setattr(load, "DEFAULT_MODEL_PATH", installed)
    out = tmp_path / "run"
    final = recipe.run_recipe(out, _stages(), data=data, install=True, progress=False)
    # recipe.json holds the stages as they ran, and reads back as them
    written = json.loads((out / "recipe.json").read_text())["stages"]
    assert tuple(recipe.Stage.from_dict(d) for d in written) == _stages()
    for s in recipe.STAGES:
        assert (out / s.name / "checkpoint.pt").is_file()
        assert (out / s.name / "metrics.jsonl").read_text().count("\n") == 2
        # each stage trains at its own input size (the early ones at 256 px); the last at the shipped size
        assert checkpoint.read_state_dict(out / s.name / "model.safetensors")[1].image_size == s.image_size
    assert recipe.STAGES[-1].image_size == recipe.default_model_config().image_size
    assert len({s.image_size for s in recipe.STAGES}) > 1
    model = load.load_model(installed)  # the installed copy is the final stage's model
    shipped = recipe.release_config(recipe.default_model_config(**recipe.STAGES[-1].arch))
    assert model.cfg.with_postprocessing(True) == shipped.with_postprocessing(True)
    last = checkpoint.read_state_dict(out / recipe.STAGES[-1].name / "model.safetensors")[0]
    for k, v in model.state_dict().items():
        assert torch.equal(v, last[k]), k
    # the second stage started from the first stage's weights, not from scratch
    first = checkpoint.read_state_dict(out / recipe.STAGES[0].name / "model.safetensors")[0]
    torch.manual_seed(123 + 1)
    fresh = recipe.default_model_config()
    from samstream.model import SAM2Model

    scratch = SAM2Model(fresh).state_dict()
    key = "image_encoder.trunk.patch_embed.proj.weight"
    assert (last[key] - first[key]).abs().max() < (last[key] - scratch[key]).abs().max()
    # a stage that trains only some parameters changes only those
    partial = [i for i, s in enumerate(recipe.STAGES) if s.train.train_only]
    assert partial and partial[0] > 0
    for i in partial:
        prev, cur = (checkpoint.read_state_dict(out / recipe.STAGES[j].name / "model.safetensors")[0]
                     for j in (i - 1, i))
        changed = {k for k in cur if not torch.equal(cur[k], prev[k])}
        assert changed and all(k.startswith(recipe.STAGES[i].train.train_only) for k in changed), changed

    # re-running finds every stage finished: nothing is retrained
    stamp = {s.name: (out / s.name / "model.safetensors").stat().st_mtime_ns for s in recipe.STAGES}
    assert recipe.run_recipe(out, _stages(), data=data, progress=False) == final
    assert stamp == {s.name: (out / s.name / "model.safetensors").stat().st_mtime_ns for s in recipe.STAGES}


def test_stages_train_with_the_recipe_config_and_write_the_release_settings(data, tmp_path, monkeypatch):
    """RELEASE_SETTINGS hold no weights: the trainer's model has default_model_config()'s values (the pointers of
    every tracked frame of an 8-frame clip), the stage's model.safetensors the release's."""
    from samstream.train import trainer as trainer_mod

    seen = []
    train = trainer_mod.Trainer.train
    monkeypatch.setattr(trainer_mod.Trainer, "train", lambda self: seen.append(self.model.cfg) or train(self))
    stage = _with(recipe.STAGES[-1], steps=1, frames=3)
    weights = recipe.run_stage(stage, tmp_path / "run", partial(recipe.stage_videos, tmp_path / "run", stage,
                                                                   recipe.STAGES, data), None, 0, progress=False)
    trained = recipe.default_model_config(stage.image_size, **stage.arch)
    assert seen == [trained]
    assert trained.max_obj_ptrs_in_encoder == 16 and recipe.RELEASE_SETTINGS["max_obj_ptrs_in_encoder"] == 4
    assert checkpoint.read_state_dict(weights)[1] == recipe.release_config(trained)
    released_model = load.load_model(weights)
    released = released_model.cfg
    assert released.max_obj_ptrs_in_encoder == 4 and released.non_overlap_masks_for_mem_enc
    edge = released_model.inference_defaults.edge_refine_radius
    assert edge == recipe.RELEASE_INFERENCE_DEFAULTS["edge_refine_radius"] > 0
    assert not trained.non_overlap_masks_for_mem_enc and not hasattr(trained, "edge_refine_radius")


def test_recipe_resumes_an_interrupted_stage(data, tmp_path):
    stages = _stages()
    out = tmp_path / "run"
    # an interrupted first stage: a checkpoint at step 1, no model file yet
    recipe.run_recipe(out, (_with(stages[0], steps=1),), data=data, progress=False)
    (out / stages[0].name / "model.safetensors").unlink()
    recipe.run_recipe(out, stages, data=data, progress=False)
    lines = (out / stages[0].name / "metrics.jsonl").read_text().splitlines()
    assert [int(line.split('"step": ')[1].split(",")[0]) for line in lines] == [1, 2]


def test_stage_sampling_and_prompt_options_reach_the_trainer(data, tmp_path, monkeypatch):
    from samstream.train import trainer as trainer_mod

    seen = []
    monkeypatch.setattr(trainer_mod.Trainer, "train", lambda self: seen.append(self) or [])
    hard = [s for s in recipe.STAGES if s.train.hard_prob > 0]
    assert hard
    for stage in hard:
        seen.clear()
        videos = partial(recipe.stage_videos, tmp_path / "run", stage, recipe.STAGES, data)
        recipe.run_stage(_with(stage, steps=1), tmp_path / "run", videos, None, 0, progress=False)
        (t,) = seen
        assert t.dataset.sampler.hard_prob == stage.train.hard_prob
        assert t.dataset.sampler.max_stride == stage.train.max_stride
        assert t.cfg.prompts.num_init_cond_frames == stage.train.prompts.num_init_cond_frames == 1
        assert t.cfg.prompts.num_frames_to_correct == stage.train.prompts.num_frames_to_correct == 1
        assert t.cfg.batch_size == stage.train.batch_size
    seen.clear()
    recipe.run_stage(_with(hard[0], steps=1, batch_size=4), tmp_path / "run4", partial(
        recipe.stage_videos, tmp_path / "run4", hard[0], recipe.STAGES, data), None, 0, progress=False)
    assert seen[0].cfg.batch_size == 4


def test_a_stage_keeps_its_own_seed_and_draws_per_step_with_its_minimum_of_workers(data, tmp_path, monkeypatch):
    from samstream.train import trainer as trainer_mod

    seen = []
    monkeypatch.setattr(trainer_mod.Trainer, "train", lambda self: seen.append(self) or [])
    first = _with(recipe.STAGES[0], steps=1, warmup=0, image_size=128)
    own = _with(first, name="own", seed=2026, min_data_workers=1)
    recipe.run_recipe(tmp_path / "run", (first, own, _with(first, name="third")), data=data, progress=False,
                      seed=10)
    assert [(t.cfg.seed, t.cfg.data_workers) for t in seen] == [(10, 0), (2026, 1), (12, 0)]
    seen.clear()
    recipe.run_recipe(tmp_path / "run2", (own,), data=data, progress=False, data_workers=3)
    assert (seen[0].cfg.seed, seen[0].cfg.data_workers) == (2026, 3)
    # the fine-tune stages the shipped weights came from are rerun as samstream.train.finetune ran them
    assert all(s.seed is not None and s.min_data_workers >= 1 for s in recipe.STAGES if s.in_memory)


def test_a_stage_with_a_larger_architecture_grows_the_weights_before_it(data, tmp_path):
    from samstream.train.grow import grow_state_dict

    first = _with(recipe.STAGES[0], steps=1, warmup=0, image_size=128)
    big = _with(first, name="grown", frames=2, arch=dict(mem_attn_layers=3, mem_attn_ffn_dim=384))
    out = tmp_path / "run"
    recipe.run_recipe(out, (first, _with(big, steps=0)), data=data, progress=False)
    small, small_cfg = checkpoint.read_state_dict(out / first.name / "model.safetensors")
    grown, grown_cfg = checkpoint.read_state_dict(out / big.name / "model.safetensors")
    assert grown_cfg == recipe.release_config(recipe.default_model_config(128, mem_attn_layers=3, mem_attn_ffn_dim=384))
    # with no training step, the stage's model is exactly the first stage's weights grown (seeded by the stage)
    expected = grow_state_dict(small, small_cfg, grown_cfg, seed=123 + 1)
    assert grown.keys() == expected.keys()
    for k, v in expected.items():
        assert torch.equal(grown[k], v), k


def test_stages_draw_from_their_synthetic_chunks(tmp_path, monkeypatch):
    from samstream.train import trainer as trainer_mod

    assert recipe.synthetic_chunks(recipe.STAGES)[0] == (0, recipe.TRAIN_SEEDS)
    assert max(s.videos for s in recipe.STAGES) <= recipe.HELDOUT_SEED_START  # training never sees held-out seeds
    seen = []
    monkeypatch.setattr(trainer_mod.Trainer, "train", lambda self: seen.append(self) or [])
    first = recipe.STAGES[0]
    clips = next(s for s in recipe.STAGES if s.train.frames > 1)
    stages = (_with(first, steps=1, videos=2), _with(clips, steps=1, frames=2, videos=3),
              _with(first, name="frames-again", steps=1, videos=3))
    out = tmp_path / "run"
    recipe.run_recipe(out, stages, progress=False)
    # the videos are written once, in one chunk per distinct stage size; a larger stage adds a chunk
    assert sorted(p.name for p in out.glob("synthetic-*")) == ["synthetic-0-2", "synthetic-2-3"]
    assert [[v.name for v in t.dataset.videos] for t in seen] == [
        ["synth000000", "synth000001"], ["synth000000", "synth000001", "synth000002"],
        ["synth000000", "synth000001", "synth000002"]]


def test_in_memory_stages_write_nothing_and_draw_from_their_whole_range(tmp_path, monkeypatch):
    from samstream.train import trainer as trainer_mod
    from samstream.train.data import SynthVideoRange

    seen = []
    monkeypatch.setattr(trainer_mod.Trainer, "train", lambda self: seen.append(self) or [])
    clips = next(s for s in recipe.STAGES if s.train.frames > 1)
    disk = _with(clips, name="disk", steps=1, frames=2, videos=2)
    fresh = _with(clips, name="fresh", steps=1, frames=2, videos=recipe.HELDOUT_SEED_START, in_memory=True)
    assert recipe.synthetic_chunks((disk, fresh)) == [(0, 2)]  # no chunk for the in-memory stage
    out = tmp_path / "run"
    recipe.run_recipe(out, (disk, fresh), progress=False)
    assert sorted(p.name for p in out.glob("synthetic-*")) == ["synthetic-0-2"]
    videos = seen[1].dataset.videos
    assert isinstance(videos, SynthVideoRange) and (videos.start, videos.stop) == (0, recipe.HELDOUT_SEED_START)
    # a re-run finds both stages done and opens no data at all (a removed chunk is not written again)
    shutil.rmtree(out / "synthetic-0-2")
    recipe.run_recipe(out, (disk, fresh), progress=False)
    assert len(seen) == 2 and not list(out.glob("synthetic-*"))


def test_a_stage_with_a_data_spec_draws_from_it_and_writes_nothing(tmp_path, monkeypatch):
    from samstream.train import trainer as trainer_mod
    from samstream.train.data import MixedVideos, open_videos

    seen = []
    monkeypatch.setattr(trainer_mod.Trainer, "train", lambda self: seen.append(self) or [])
    clips = next(s for s in recipe.STAGES if s.train.frames > 1)
    mixed = _with(clips, name="mixed", steps=1, frames=2, data="shapes:0:3+shapes:10:12")
    assert recipe.synthetic_chunks((mixed,)) == []
    out = tmp_path / "run"
    recipe.run_recipe(out, (mixed,), progress=False)
    assert not list(out.glob("synthetic-*"))
    videos = seen[0].dataset.videos
    assert isinstance(videos, MixedVideos) and [v.name for v in videos][-1] == "synth000011"
    photo = [s for s in recipe.STAGES + recipe.PHOTO_TRIAL if s.data]  # mixtures train on training seeds only
    parts = [p for s in photo for p in open_videos(s.data).parts]
    assert parts and all(p.stop <= recipe.HELDOUT_SEED_START for p in parts)

def test_default_config_is_fast_enough_shape():
    cfg = recipe.default_model_config()
    assert cfg.image_size == 320 and cfg.embed_size == 20
    n = sum(p.numel() for p in __import__("samstream").SAM2Model(cfg).parameters())
    assert 1e6 < n < 3e6  # a few MB of float32


def test_ensure_synthetic_writes_once_and_replaces_a_leftover(tmp_path):
    root = tmp_path / "synthetic-train"
    root.mkdir()
    (root / "stale.txt").write_text("a leftover without synth.json")
    assert recipe.ensure_synthetic(root, [3], progress=False) == root
    assert not (root / "stale.txt").exists()
    frames = sorted((root / "JPEGImages" / "480p" / "synth000003").glob("*.jpg"))
    assert len(frames) == SynthConfig().num_frames
    stamp = frames[0].stat().st_mtime_ns
    recipe.ensure_synthetic(root, [3], progress=False)  # complete: reused, not rewritten
    assert frames[0].stat().st_mtime_ns == stamp


def test_train_default_batch_size_and_scale_reach_every_stage(tmp_path, monkeypatch):
    from samstream.cli import main

    got = {}
    monkeypatch.setattr(recipe, "run_recipe", lambda out, stages, *a, **k: got.update(stages=stages, **k) or out)
    assert main(["train-default", "--out", str(tmp_path), "--batch-size", "8", "--scale", "0.5", "--data-workers",
                 "3", "--quiet"]) == 0
    assert [s.train.batch_size for s in got["stages"]] == [8] * len(recipe.STAGES) and got["data_workers"] == 3
    assert [s.train.steps for s in got["stages"]] == [max(1, round(s.train.steps * 0.5)) for s in recipe.STAGES]
    got.clear()
    assert main(["train-default", "--out", str(tmp_path), "--quiet"]) == 0
    # each stage's own
    assert [s.train.batch_size for s in got["stages"]] == [s.train.batch_size for s in recipe.STAGES]
    assert {s.train.batch_size for s in recipe.STAGES} == {1, 4}
    with pytest.raises(SystemExit):
        main(["train-default", "--out", str(tmp_path), "--batch-size", "0"])
