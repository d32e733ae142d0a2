"""`load_model`: a ready model from an official name (downloaded once), a checkpoint file, or the embedded
default weights, on a device this machine has."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .checkpoint import CheckpointError, detect_config, load_into, read_checkpoint
from .download import download_checkpoint, record_path
from .model import OFFICIAL_CONFIGS, SAM2Config, SAM2Model, official_config


def available_devices() -> list[str]:
    found = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0)]
    return found + (["mps"] if torch.backends.mps.is_available() else [])


def check_device(device: str | torch.device) -> torch.device:
    """The torch.device `device` names, or a ValueError naming it and the devices this machine has."""
    have = ", ".join(available_devices())
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {str(device)!r}; available here: {have}") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            why = "this PyTorch build has no CUDA support" if torch.version.cuda is None else "no CUDA GPU was found"
            raise ValueError(f"device {str(device)!r}: CUDA is not available ({why}); available here: {have}")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {str(device)!r}: there is no GPU {dev.index}; available here: {have}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r}: Apple MPS is not available; available here: {have}")
    elif dev.type not in ("cpu", "cuda", "mps", "meta"):
        try:
            torch.empty(0, device=dev)
        except RuntimeError as e:
            raise ValueError(f"device {str(device)!r} is not usable here ({e}); available here: {have}") from None
    return dev


DEFAULT_MODEL_PATH = Path(__file__).parent / "weights" / "samstream-default.safetensors"


def load_model(name_or_path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32, postprocessing: bool = True,
               config: SAM2Config | None = None) -> SAM2Model:
    """Build a SAM2Model from an official name ("sam2.1-hiera-large"), a file, or (None) the embedded model.

    postprocessing=True matches Meta's builders (dynamic multimask fallback, binarised prompted memories,
    hole filling); False matches their evaluation scripts. The model's `inference_defaults` (the output
    settings its predictors start from) are the file's (Meta's checkpoints: all off). An unknown or absent
    `device` is refused first, before any download.
    """
    device = check_device(device)
    if name_or_path is None:
        if not DEFAULT_MODEL_PATH.is_file():
            raise FileNotFoundError(f"the embedded default model is missing ({DEFAULT_MODEL_PATH}); "
                                    f"pass an official checkpoint name or path")
        name_or_path = DEFAULT_MODEL_PATH
    path = Path(name_or_path)
    if not path.is_file():
        try:
            official_config(str(name_or_path))
        except ValueError:
            raise FileNotFoundError(f"checkpoint not found: {path} (and not an official model name; those are "
                                    f"{', '.join(OFFICIAL_CONFIGS)})") from None
        path = download_checkpoint(str(name_or_path))
        try:
            return _load(path, device, dtype, postprocessing, config)
        except CheckpointError as e:  # a cached download that went bad (or was pinned by an older version)
            raise CheckpointError(f"{e}. It is the cached download of {name_or_path}: delete {path} and "
                                  f"{record_path(path)} to download it again") from e
    return _load(path, device, dtype, postprocessing, config)


def _load(path: Path, device: torch.device, dtype: torch.dtype, postprocessing: bool,
          config: SAM2Config | None) -> SAM2Model:
    sd, stored, defaults = read_checkpoint(path)
    cfg = config or stored or detect_config(sd, str(path))
    cfg = cfg.with_postprocessing(postprocessing)
    model = SAM2Model(cfg)
    load_into(model, sd, str(path))
    model.inference_defaults = defaults
    return model.to(device=device, dtype=dtype).eval()
