"""The settings of a batch run: how workers load the model, and what each job runs with."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

PRECISIONS = ("fp32", "bf16", "fp16")  # samstream.precision's (not imported here: it imports torch)


@dataclass(frozen=True)
class WorkerConfig:
    """What every worker loads once: the model (None: the embedded one), on CPU or its GPU, and the precision it runs at
    (float32 weights, run under autocast: samstream.precision)."""

    model: str | None = None
    precision: str = "fp32"
    postprocessing: bool = True  # Meta's builder post-processing (load_model's); `eval vos` runs without it
    cpus: float = 1.0  # Ray CPUs per worker; also its torch threads
    gpus: float = 0.0  # Ray GPUs per worker; > 0 runs the model on the GPU Ray assigns

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not self.cpus > 0:
            raise ValueError(f"cpus per worker must be > 0, got {self.cpus}")
        if self.gpus < 0:
            raise ValueError(f"gpus per worker must be >= 0, got {self.gpus}")

    @property
    def device(self) -> str:
        return "cuda" if self.gpus > 0 else "cpu"


@dataclass(frozen=True)
class TrackOptions:
    """`samstream track`'s options for every video of a `batch track`."""

    formats: tuple = ("png",)
    direction: str = "forward"
    max_frames: int | None = None
    mirror: bool = False
    postprocess: dict = field(default_factory=dict)  # MaskPostprocess fields to override (None: the model's)


@dataclass(frozen=True)
class TrackAllOptions:
    """`samstream track-all`'s options for every video of a `batch track-all`."""

    formats: tuple = ("png",)
    max_frames: int | None = None
    key_every: int = 10
    new_object_overlap: float = 0.3
    min_new_area: int = 100
    max_objects: int = 255
    drop_after: int | None = None
    mirror: bool = False
    generator: dict = field(default_factory=dict)  # MaskGenerator keyword arguments (None values: the default)


@dataclass(frozen=True)
class VosOptions:
    """`samstream eval vos`'s tracking options for every sequence of a `batch eval vos`."""

    data: str = ""
    prompt: str = "mask"
    static: bool = False
    mirror: bool = False
    postprocess: dict = field(default_factory=dict)


def settings(kind: str, worker: WorkerConfig, options) -> dict:
    """What decides a run's outputs, as recorded in OUT/batch.json (a resumed run must match it)."""
    opts = asdict(options)
    opts.pop("data", None)  # the dataset may move; its sequences are the videos
    w = asdict(worker)
    for k in ("cpus", "gpus"):  # how many resources a worker gets does not change its outputs
        w.pop(k)
    return {"command": kind, "worker": w, "options": {k: list(v) if isinstance(v, tuple) else v
                                                      for k, v in opts.items()}}
