"""`samstream train`: fine-tuning a saved checkpoint on DAVIS lowers the loss; resume; argument errors."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from samstream.checkpoint import save_model
from samstream.cli import run as main
from samstream.cli.train import add_parser
from samstream.load import load_model
from samstream.model import SAM2Model
from samstream.train.build import tiny_config
from samstream.train.data import ClipDataset, davis_videos
from samstream.train.prompts import PromptConfig
from samstream.train.trainer import evaluate_loss

DAVIS = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016"


def test_parser_registers_train():
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", "--data", "synthetic", "--steps", "3", "--out", "o", "--config", "tiny",
                              "--freeze-image-encoder", "--max-stride", "3", "--train-only", "a.", "b."])
    assert args.freeze_image_encoder and args.init == "none" and callable(args.func)
    assert args.max_stride == 3 and args.train_only == ["a.", "b."]
    for flag in ("--max-stride", "--frames"):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", "--data", "synthetic", "--steps", "3", "--out", "o", flag, "0"])


def test_clip_sampling_and_prompt_options_reach_the_trainer(tmp_path, monkeypatch):
    """--hard-clip-prob, --init-cond-frames and --frames-to-correct end up in the sampler and prompt plan."""
    from samstream.train import trainer as trainer_mod

    seen = []
    monkeypatch.setattr(trainer_mod.Trainer, "train", lambda self: seen.append(self) or [])
    assert main(["train", "--config", "tiny", "--data", "synthetic", "--steps", "1", "--out", str(tmp_path / "o"),
                 "--frames", "4", "--hard-clip-prob", "0.6", "--init-cond-frames", "1", "--frames-to-correct", "1",
                 "--quiet", "--device", "cpu"]) == 0
    (t,) = seen
    assert t.dataset.sampler.hard_prob == 0.6 and t.dataset.sampler.num_frames == 4
    assert len(t.dataset.videos) == 64 and t.cfg.batch_size == 1
    assert t.cfg.prompts.num_init_cond_frames == 1 and t.cfg.prompts.num_frames_to_correct == 1
    seen.clear()
    assert main(["train", "--config", "tiny", "--data", "synthetic:100:1000100", "--steps", "1", "--out",
                 str(tmp_path / "m"), "--quiet"]) == 0
    assert (seen[0].dataset.videos.start, len(seen[0].dataset.videos)) == (100, 1_000_000)
    seen.clear()
    assert main(["train", "--config", "tiny", "--data", "synthetic", "--steps", "1", "--out", str(tmp_path / "d"),
                 "--quiet", "--device", "cpu"]) == 0
    assert seen[0].dataset.sampler.hard_prob == 0.0 and seen[0].cfg.prompts.num_init_cond_frames == 2
    # the image encoder's lr: Meta's fine-tuning pair (5e-6, 3e-6) by default, 0.6 x --lr, or as given
    assert (seen[0].cfg.optim.base_lr, seen[0].cfg.optim.vision_lr) == pytest.approx((5e-6, 3e-6))
    for extra, want in ((["--lr", "1e-3"], 6e-4), (["--lr", "1e-3", "--vision-lr", "2e-4"], 2e-4)):
        seen.clear()
        assert main(["train", "--config", "tiny", "--data", "synthetic", "--steps", "1", "--out",
                     str(tmp_path / "d"), "--quiet", "--device", "cpu", *extra]) == 0
        assert seen[0].cfg.optim.vision_lr == pytest.approx(want)
    seen.clear()
    assert main(["train", "--config", "tiny", "--data", "synthetic", "--steps", "1", "--out", str(tmp_path / "b"),
                 "--batch-size", "4", "--quiet", "--device", "cpu"]) == 0
    assert seen[0].cfg.batch_size == 4 and seen[0].cfg.data_workers == 0
    seen.clear()
    assert main(["train", "--config", "tiny", "--data", "synthetic", "--steps", "1", "--out", str(tmp_path / "w"),
                 "--data-workers", "2", "--quiet", "--device", "cpu"]) == 0
    assert seen[0].cfg.data_workers == 2


def test_finetune_on_davis_lowers_loss(tmp_path):
    torch.manual_seed(0)
    init = save_model(SAM2Model(tiny_config()), tmp_path / "init.safetensors")
    data = ClipDataset(davis_videos(DAVIS), 128, num_frames=1, augment=None)  # 480p frames downsampled to 128
    pc = PromptConfig(num_correction_clicks=1)
    before = evaluate_loss(load_model(init), data, num_clips=3, seed=0, pcfg=pc)
    out = tmp_path / "run"
    argv = ["train", "--init", str(init), "--data", str(DAVIS), "--steps", "6", "--out", str(out), "--lr", "1e-3",
            "--vision-lr", "1e-3", "--grad-clip", "1.0", "--corrections", "1", "--no-augment", "--quiet",
            "--freeze-image-encoder", "--device", "cpu"]
    assert main(argv) == 0
    tuned = load_model(out / "model.safetensors")
    after = evaluate_loss(tuned, data, num_clips=3, seed=0, pcfg=pc)
    assert after < 0.8 * before, (before, after)
    start = load_model(init)
    assert all(torch.equal(a, b) for a, b in zip(start.image_encoder.parameters(), tuned.image_encoder.parameters()))
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 6 and (out / "loss_curves.png").is_file()

    with pytest.raises(FileExistsError, match="--resume"):
        main(argv)
    argv[argv.index("--steps") + 1] = "7"
    assert main(argv + ["--resume"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 7
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 8))


def test_from_scratch_on_synthetic_with_json_config(tmp_path):
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(tiny_config().to_json())
    out = tmp_path / "s"
    assert main(["train", "--config", str(cfg_path), "--data", "synthetic", "--steps", "1", "--out", str(out),
                 "--corrections", "0", "--quiet", "--device", "cpu", "--frames", "3", "--max-stride", "2",
                 "--train-only", "sam_mask_decoder."]) == 0
    trained = load_model(out / "model.safetensors")
    assert trained.cfg.image_size == 128
    torch.manual_seed(0)  # the CLI's from-scratch init
    fresh = SAM2Model(tiny_config())
    same = {n for (n, a), (_, b) in zip(fresh.named_parameters(), trained.named_parameters()) if torch.equal(a, b)}
    assert {n for n, _ in fresh.named_parameters() if not n.startswith("sam_mask_decoder.")} <= same
    assert any(n.startswith("sam_mask_decoder.") and n not in same for n, _ in fresh.named_parameters())


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="needs --config"):
        main(["train", "--data", "synthetic", "--steps", "1", "--out", str(tmp_path), "--quiet"])
    with pytest.raises(ValueError, match="unknown config"):
        main(["train", "--config", "huge-thing", "--data", "synthetic", "--steps", "1", "--out", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="training data not found"):
        main(["train", "--config", "tiny", "--data", str(tmp_path / "x"), "--steps", "1", "--out", str(tmp_path)])


def test_a_larger_config_grows_the_init_checkpoint(tmp_path):
    """--config with more memory-attention layers than --init's: init's weights, the new layers as no-ops; a
    config that changes anything else is refused with the field named."""
    import dataclasses

    from samstream.train.build import build_model

    torch.manual_seed(1)
    small = SAM2Model(tiny_config())
    init = save_model(small, tmp_path / "small.safetensors")
    big_cfg = dataclasses.replace(tiny_config(), mem_attn_layers=small.cfg.mem_attn_layers + 1)
    (tmp_path / "big.json").write_text(big_cfg.to_json())
    big = build_model(str(tmp_path / "big.json"), str(init))
    assert big.cfg == big_cfg
    grown = big.state_dict()
    for k, v in small.state_dict().items():
        assert torch.equal(grown[k], v), k
    new = f"memory_attention.layers.{small.cfg.mem_attn_layers}"
    assert grown[f"{new}.linear2.weight"].abs().sum() == 0 and grown[f"{new}.linear1.weight"].abs().sum() > 0
    # a deeper image encoder, given as JSON like any config: one more block at the end of the last stage
    trunk = tiny_config().trunk
    deeper_trunk = dataclasses.replace(trunk, stages=(*trunk.stages[:-1], trunk.stages[-1] + 1))
    deeper_cfg = dataclasses.replace(tiny_config(), trunk=deeper_trunk)
    (tmp_path / "deeper.json").write_text(deeper_cfg.to_json())
    deeper = build_model(str(tmp_path / "deeper.json"), str(init)).state_dict()
    last = sum(deeper_trunk.stages) - 1
    assert deeper[f"image_encoder.trunk.blocks.{last}.attn.proj.weight"].abs().sum() == 0
    assert torch.equal(deeper[f"image_encoder.trunk.blocks.{last - 1}.attn.proj.weight"],
                       small.state_dict()[f"image_encoder.trunk.blocks.{last - 1}.attn.proj.weight"])
    wider = dataclasses.replace(tiny_config(), hidden_dim=96)
    (tmp_path / "wider.json").write_text(wider.to_json())
    with pytest.raises(ValueError, match=r"does not fit --init.*hidden_dim"):
        build_model(str(tmp_path / "wider.json"), str(init))


TINY = ["--config", "tiny", "--data", "synthetic", "--quiet", "--device", "cpu"]


def _steps(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def _records(out: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock times."""
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "time"} for r in recs]


def test_two_frame_clips_whose_frames_all_get_mask_prompts_train(tmp_path):
    """The default seed's step 4 draws a 2-frame clip with both frames mask-prompted (nothing to train there
    once mask prompts are the output): the plan keeps a frame to track, so all 6 steps train."""
    out = tmp_path / "x"
    assert main(["train", *TINY, "--frames", "2", "--steps", "6", "--out", str(out)]) == 0
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == list(range(1, 7)) and not any("skipped" in r for r in recs)
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 6 and (out / "model.safetensors").is_file()


class _Killed(BaseException):
    pass


def test_resume_after_a_kill_between_metrics_and_checkpoint_logs_each_step_once(tmp_path, monkeypatch):
    from samstream.train.trainer import Trainer

    straight = tmp_path / "straight"
    assert main(["train", *TINY, "--steps", "4", "--out", str(straight)]) == 0
    out = tmp_path / "run"
    real = Trainer.train_step

    def killed_in_step_4(self):
        if self.step == 3:
            raise _Killed
        return real(self)

    monkeypatch.setattr(Trainer, "train_step", killed_in_step_4)
    with pytest.raises(_Killed):  # checkpointed at step 2, steps 1-3 logged; then the kill tore step 4's line
        main(["train", *TINY, "--steps", "4", "--save-every", "2", "--out", str(out)])
    monkeypatch.undo()
    assert _steps(out) == [1, 2, 3] and torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 2
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 4, "core_lo')
    assert main(["train", *TINY, "--steps", "4", "--out", str(out), "--resume"]) == 0
    assert _steps(out) == [1, 2, 3, 4]
    assert _records(out) == _records(straight)  # the resumed steps' own records, as in a run never killed
    a, b = load_model(out / "model.safetensors"), load_model(straight / "model.safetensors")
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    # killed before its first checkpoint: a new run into that folder starts its metrics over
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "metrics.jsonl").write_text(json.dumps({"step": 1, "core_loss": -1.0}) + "\n")
    assert main(["train", *TINY, "--steps", "2", "--out", str(fresh)]) == 0
    assert _steps(fresh) == [1, 2] and json.loads((fresh / "metrics.jsonl").read_text().splitlines()[0])[
        "core_loss"] > 0


def test_an_existing_run_is_refused_in_one_line_without_resume(tmp_path, capsys):
    from samstream.cli import main as cli_main

    out = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "1", "--out", str(out)]) == 0
    before = (out / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    with pytest.raises(FileExistsError, match="--resume"):  # also a ValueError: one line from main
        main(["train", *TINY, "--steps", "2", "--out", str(out), "--data", str(tmp_path / "missing")])
    assert cli_main(["train", *TINY, "--steps", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--resume" in err and "another --out" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert (out / "checkpoint.pt").read_bytes() == before and _steps(out) == [1]


def test_resume_with_another_config_names_the_differing_fields(tmp_path, capsys):
    import dataclasses

    from samstream.cli import main as cli_main

    out = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "1", "--out", str(out)]) == 0
    before = (out / "checkpoint.pt").read_bytes()
    wider = tmp_path / "wider.json"
    wider.write_text(dataclasses.replace(tiny_config(), name="wider", hidden_dim=96, mem_dim=48).to_json())
    argv = ["train", *TINY, "--steps", "2", "--out", str(out), "--resume", "--config", str(wider)]
    with pytest.raises(ValueError, match=r"'train-tiny'; the config given \('wider'\) differs: hidden_dim: 64 in "
                                         r"the run, 96 given; mem_dim: 32 in the run, 48 given\..*model_config.json"):
        main(argv)
    capsys.readouterr()
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "size mismatch" not in err and len(err.strip().splitlines()) == 1
    # a nested field is named with its path; the run itself is untouched
    deeper = dataclasses.replace(tiny_config(), trunk=dataclasses.replace(tiny_config().trunk, embed_dim=24))
    (tmp_path / "deeper.json").write_text(deeper.to_json())
    with pytest.raises(ValueError, match=r"trunk.embed_dim: 16 in the run, 24 given"):
        main(["train", *TINY, "--steps", "2", "--out", str(out), "--resume", "--config", str(tmp_path / "deeper.json")])
    assert (out / "checkpoint.pt").read_bytes() == before and _steps(out) == [1]
    assert main(["train", *TINY, "--steps", "2", "--out", str(out), "--resume"]) == 0 and _steps(out) == [1, 2]
