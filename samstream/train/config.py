"""The training configuration: one `TrainConfig` that `samstream train`, each stage of the default model's
recipe and the `Trainer` take, with its parts (optimiser, prompt simulation, loss weights).

Plain dataclasses with no torch import, so a recipe can be declared (and a saved plan read) cheaply. A new
training option is a field here; `TrainConfig.from_dict` reads back what `to_dict` wrote.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class OptimConfig:
    base_lr: float = 5e-6
    vision_lr: float = 3e-6  # for image_encoder.*
    layer_decay: float = 0.9  # trunk block i (0-based) gets layer_decay ** (num_blocks - i)
    weight_decay: float = 0.1
    warmup_steps: int = 0
    final_lr_frac: float = 0.1  # cosine ends at lr / 10
    grad_clip: float = 0.1  # global L2 norm; <= 0 disables
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class PromptConfig:
    prob_point_input: float = 0.5  # else GT masks are the prompts on the conditioning frames
    prob_box_input: float = 0.5  # given point input, per conditioning frame
    num_init_cond_frames: int = 2
    rand_init_cond_frames: bool = True  # uniformly 1..num_init_cond_frames
    num_frames_to_correct: int = 2
    rand_frames_to_correct: bool = True  # uniformly in [#init cond, num_frames_to_correct]
    add_all_frames_to_correct_as_cond: bool = True  # corrected frames join the conditioning memory (video)
    num_correction_clicks: int = 7
    prob_click_from_gt: float = 0.1
    box_noise: float = 0.1  # fraction of box width/height
    box_noise_max_px: float = 20.0


@dataclass
class LossWeights:
    mask: float = 20.0  # focal
    dice: float = 1.0
    iou: float = 1.0
    cls: float = 1.0  # object score


@dataclass
class TrainConfig:
    steps: int = 1000
    # the clips a step trains on (`build_trainer` makes the ClipDataset from these)
    frames: int = 1  # frames per clip: 1 = single frames with correction clicks, > 1 = clips with memory
    batch_size: int = 1  # clips per step, their objects in one batch (SAM 2 trains on batches of clips)
    max_objects: int = 3  # objects per clip, drawn from those visible in its first frame
    max_stride: int = 1  # clips take every k-th frame, k drawn from 1..max_stride
    hard_prob: float = 0.0  # chance of a window where a chosen object gets covered or leaves
    augment: bool = True  # the clip-consistent augmentations of `augment.AugmentConfig`
    # processes drawing clips ahead of the loop; > 0 seeds each step's draw by (seed, step) (see loader.py)
    data_workers: int = 0
    seed: int = 123
    optim: OptimConfig = field(default_factory=OptimConfig)
    prompts: PromptConfig = field(default_factory=PromptConfig)
    loss_weights: LossWeights = field(default_factory=LossWeights)
    freeze_image_encoder: bool = False
    train_only: tuple[str, ...] = ()  # if set, only parameters whose names start with one of these train
    amp: bool = True  # bf16 autocast, CUDA only
    save_every: int = 0  # steps between checkpoints; 0 = only at the end
    progress: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """The config `to_dict` gave (JSON lists back to tuples); missing fields take their defaults."""
        parts = {"optim": OptimConfig, "prompts": PromptConfig, "loss_weights": LossWeights}
        return cls(**{k: parts[k](**_tuples(v)) if k in parts else v for k, v in _tuples(d).items()})


def _tuples(fields: dict) -> dict:
    """Fields read from JSON: lists become tuples, as the dataclasses declare them."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
