"""Loading and saving checkpoints: Meta's official `.pt` files, our safetensors, and downloads.

An official checkpoint is `torch.save({"model": state_dict})`. We detect which of the eight official
configurations it holds from the tensors themselves; our own files carry their config as metadata, and the
output settings the weights were released with (`MaskPostprocess`, the model's `inference_defaults`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

import torch

from .model import OFFICIAL_CONFIGS, SAM2Config, SAM2Model, official_config
from .model.config import LEGACY_OUTPUT_FIELDS
from .postprocess import MaskPostprocess

_BASE_21 = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
_BASE_20 = "https://dl.fbaipublicfiles.com/segment_anything_2/072824/"
# name -> (url, size in bytes, sha256). The 2.1 hashes were recorded by third parties who downloaded the
# files (Meta publishes none); the 2.0 files have neither: their hash is recorded at first download and
# checked on every later use of the cached file.
CHECKPOINT_FILES: dict[str, tuple[str, int | None, str | None]] = {
    "sam2.1_hiera_tiny": (_BASE_21 + "sam2.1_hiera_tiny.pt", 156_008_466,
                          "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69"),
    "sam2.1_hiera_small": (_BASE_21 + "sam2.1_hiera_small.pt", 184_416_285,
                           "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38"),
    "sam2.1_hiera_base_plus": (_BASE_21 + "sam2.1_hiera_base_plus.pt", 323_606_802,
                               "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5"),
    "sam2.1_hiera_large": (_BASE_21 + "sam2.1_hiera_large.pt", 898_083_611,
                           "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318"),
    "sam2_hiera_tiny": (_BASE_20 + "sam2_hiera_tiny.pt", None, None),
    "sam2_hiera_small": (_BASE_20 + "sam2_hiera_small.pt", None, None),
    "sam2_hiera_base_plus": (_BASE_20 + "sam2_hiera_base_plus.pt", None, None),
    "sam2_hiera_large": (_BASE_20 + "sam2_hiera_large.pt", None, None),
}
CONFIG_METADATA_KEY = "samstream_config"
INFERENCE_METADATA_KEY = "samstream_inference_defaults"  # MaskPostprocess fields as JSON


class CheckpointError(ValueError):
    """A file that is not a usable SAM 2 checkpoint; the message says why."""


def cache_dir() -> Path:
    return Path(os.environ.get("SAMSTREAM_CACHE", Path.home() / ".cache" / "samstream"))


# ------------------------------------------------------------------------------------------ reading
def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], SAM2Config | None]:
    """-> (state dict, config stored in the file or None). Raises CheckpointError with the reason."""
    sd, cfg, _ = read_checkpoint(path)
    return sd, cfg


def inference_defaults_from(config_json: str | None, defaults_json: str | None) -> MaskPostprocess:
    """A file's inference defaults from its metadata. Files written before these had their own entry kept the
    edge refinement in the model config (LEGACY_OUTPUT_FIELDS): those values are taken from there."""
    legacy = {}
    if isinstance(config_json, str):
        legacy = {k: v for k, v in json.loads(config_json).items() if k in LEGACY_OUTPUT_FIELDS}
    stored = json.loads(defaults_json) if isinstance(defaults_json, str) else {}
    return MaskPostprocess.from_dict({**legacy, **stored})


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], SAM2Config | None, MaskPostprocess]:
    """-> (state dict, config stored in the file or None, inference defaults stored in the file; all off when
    none are). Raises CheckpointError with the reason."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                sd = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
        except Exception as e:  # safetensors raises its own error types for truncated headers/data
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e
        cfg = SAM2Config.from_json(meta[CONFIG_METADATA_KEY]) if CONFIG_METADATA_KEY in meta else None
        return sd, cfg, inference_defaults_from(meta.get(CONFIG_METADATA_KEY), meta.get(INFERENCE_METADATA_KEY))
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # zip/pickle errors of truncated or foreign files
        size = path.stat().st_size
        raise CheckpointError(f"{path}: cannot be read as a PyTorch checkpoint ({size} bytes; truncated or "
                              f"not a checkpoint?): {e}") from e
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        cfg = obj.get(CONFIG_METADATA_KEY)
        defaults = inference_defaults_from(cfg, obj.get(INFERENCE_METADATA_KEY))
        return obj["model"], SAM2Config.from_json(cfg) if isinstance(cfg, str) else None, defaults
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj, None, MaskPostprocess()  # a bare state dict
    raise CheckpointError(f"{path}: expected a dict with a 'model' state dict (SAM 2 checkpoint layout), "
                          f"found {type(obj).__name__} with keys {list(obj)[:5] if isinstance(obj, dict) else ''}")


def detect_config(sd: dict[str, torch.Tensor], source: str = "checkpoint") -> SAM2Config:
    """Tell which official configuration a state dict belongs to, from its tensor names and shapes."""
    if any(k.startswith("module.") for k in sd):
        sd = {k.removeprefix("module."): v for k, v in sd.items()}
    need = "image_encoder.trunk.patch_embed.proj.weight"
    if need not in sd or "sam_mask_decoder.iou_token.weight" not in sd:
        hint = ""
        if "image_encoder.patch_embed.proj.weight" in sd or "image_encoder.blocks.0.attn.qkv.weight" in sd:
            hint = " (it looks like a Segment Anything 1 checkpoint, which is a different model)"
        raise CheckpointError(f"{source}: not a SAM 2 checkpoint: no '{need}' / mask decoder tensors{hint}")
    embed_dim = sd[need].shape[0]
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"image_encoder\.trunk\.blocks\.(\d+)\.", k))})
    q_pool = [i for i in blocks if f"image_encoder.trunk.blocks.{i}.proj.weight" in sd]
    bounds = [0] + q_pool + [len(blocks)]
    stages = tuple(b - a for a, b in itertools.pairwise(bounds))
    v21 = "no_obj_embed_spatial" in sd
    for cfg in OFFICIAL_CONFIGS.values():
        if cfg.trunk.embed_dim == embed_dim and cfg.trunk.stages == stages and (cfg.version == "2.1") == v21:
            return dataclasses.replace(cfg, trunk=dataclasses.replace(cfg.trunk))
    raise CheckpointError(f"{source}: a SAM 2-style model (embed_dim {embed_dim}, stages {stages}) that matches "
                          f"none of the official configurations and carries no config metadata")


def load_into(model: SAM2Model, sd: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Strict load that reports missing, unexpected and mis-shaped tensors by name."""
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = [f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} with other shapes (e.g. {shapes[:3]})")
        raise CheckpointError(f"{source} does not fit {model.cfg.name}: " + "; ".join(parts))
    model.load_state_dict(sd, strict=True)


# ------------------------------------------------------------------------------------------ writing
def save_model(model: SAM2Model, path: str | os.PathLike) -> Path:
    """Write `.safetensors` (config and inference defaults in metadata) or `.pt` (official layout, loadable by
    Meta's code). Atomic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    defaults = json.dumps(model.inference_defaults.to_dict(), sort_keys=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(tmp), metadata={CONFIG_METADATA_KEY: model.cfg.to_json(),
                                          INFERENCE_METADATA_KEY: defaults})
    else:
        payload = {"model": sd}
        if model.cfg.name not in OFFICIAL_CONFIGS:  # official files hold nothing else; ours may need the config
            payload[CONFIG_METADATA_KEY] = model.cfg.to_json()
        if model.inference_defaults != MaskPostprocess():
            payload[INFERENCE_METADATA_KEY] = defaults
        torch.save(payload, str(tmp))
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------------------------------ download
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_checkpoint(name: str, directory: Path | None = None, progress: bool = True) -> Path:
    """Fetch an official checkpoint into the cache (resuming a partial download) and verify it."""
    cfg = official_config(name)
    url, size, sha = CHECKPOINT_FILES[cfg.name]
    directory = Path(directory) if directory else cache_dir()
    target = directory / url.rsplit("/", 1)[1]
    if target.is_file():
        _verify(target, size, sha)
        return target
    directory.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=30)
    except (urllib.error.URLError, OSError) as e:
        raise CheckpointError(
            f"cannot download {cfg.name} from {url} ({e}). Offline? Download the file elsewhere and put it at "
            f"{target} (or set SAMSTREAM_CACHE), or pass its path to load_model().") from e
    with resp:
        if have and resp.status != 206:  # the server ignored the range: start over
            have = 0
        total = int(resp.headers.get("Content-Length", 0)) + have
        from tqdm import tqdm

        with open(part, "ab" if have else "wb") as f, tqdm(
                total=total or None, initial=have, unit="B", unit_scale=True, desc=target.name,
                disable=not progress) as bar:
            while chunk := resp.read(1 << 20):
                f.write(chunk)
                bar.update(len(chunk))
    _verify(part, size, sha)
    os.replace(part, target)
    return target


def _verify(path: Path, size: int | None, sha: str | None) -> None:
    if size is not None and path.stat().st_size != size:
        raise CheckpointError(f"{path}: {path.stat().st_size} bytes, expected {size}: incomplete or wrong file; "
                              f"delete it and download again")
    digest = _sha256(path)
    record = path.with_name(path.name.removesuffix(".part") + ".sha256")
    if sha is None and record.exists():  # no published hash: hold the file to the one seen at download
        sha = record.read_text().strip()
    if sha is not None and digest != sha:
        raise CheckpointError(f"{path}: SHA-256 {digest} does not match the expected {sha}; the file is corrupt")
    if not record.exists():
        record.write_text(digest + "\n")


# ------------------------------------------------------------------------------------------ entry point
DEFAULT_MODEL_PATH = Path(__file__).parent / "weights" / "samstream-default.safetensors"


def load_model(name_or_path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32, postprocessing: bool = True,
               config: SAM2Config | None = None) -> SAM2Model:
    """Build a SAM2Model from an official name ("sam2.1-hiera-large"), a file, or (None) the embedded model.

    postprocessing=True matches Meta's builders (dynamic multimask fallback, binarised prompted memories,
    hole filling); False matches their evaluation scripts. The model's `inference_defaults` (the output
    settings its predictors start from) are the file's (Meta's checkpoints: all off).
    """
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
    sd, stored, defaults = read_checkpoint(path)
    cfg = config or stored or detect_config(sd, str(path))
    cfg = cfg.with_postprocessing(postprocessing)
    model = SAM2Model(cfg)
    load_into(model, sd, str(path))
    model.inference_defaults = defaults
    return model.to(device=device, dtype=dtype).eval()
