"""The synthetic-video generators by name: "shapes" (samstream.train.synthetic, geometric shapes; the data spec
"synthetic[:A:B]" is this one), "cutout" (samstream.train.synthetic_cutout, photographic, for training) and
"collage" (samstream.train.synthetic_collage, photographic, an independent one for validation only).

A generator is a module with `generate_video(seed, cfg=None, name=None) -> SyntheticVideo` and `CONFIG_CLASS`
(a dataclass with height, width, num_frames); modules are imported when first used.
"""
from __future__ import annotations

import importlib
from types import ModuleType

MODULES = {"shapes": "samstream.train.synthetic", "cutout": "samstream.train.synthetic_cutout",
           "collage": "samstream.train.synthetic_collage"}
NAMES = tuple(MODULES)
_SEQUENCE = {"shapes": "synth{:06d}", "cutout": "cutout{:07d}", "collage": "collage{:07d}"}
CUTOUT_HELDOUT_START = 1_000_000  # cutout seeds from here on are never trained on


def module(name: str) -> ModuleType:
    """The generator's module; ValueError (one line) for an unknown or missing one."""
    if name not in MODULES:
        raise ValueError(f"unknown generator {name!r}: expected one of {', '.join(NAMES)}")
    try:
        return importlib.import_module(MODULES[name])
    except ModuleNotFoundError as e:
        if e.name != MODULES[name]:
            raise
        raise ValueError(f"generator {name!r} is not available: module {MODULES[name]} is missing") from None


def config_class(name: str) -> type:
    return module(name).CONFIG_CLASS


def default_config(name: str):
    return config_class(name)()


def name_of(cfg) -> str:
    """The generator a config instance belongs to (None: shapes, the default)."""
    if cfg is None:
        return "shapes"
    for name, mod in MODULES.items():
        if type(cfg).__module__ == mod:
            return name
    raise ValueError(f"{type(cfg).__name__} is not the config of any generator ({', '.join(NAMES)})")


def check_config(name: str, cfg) -> None:
    """cfg must be None or the generator's own config class (a shapes config cannot drive cutout)."""
    if cfg is not None and not isinstance(cfg, config_class(name)):
        raise ValueError(f"generator {name!r} needs a {config_class(name).__name__}, got {type(cfg).__name__}")


def sequence_name(name: str, seed: int) -> str:
    if name not in _SEQUENCE:
        module(name)  # the unknown-name error
    return _SEQUENCE[name].format(seed)


def generate_video(name: str, seed: int, cfg=None):
    """The SyntheticVideo of `seed` from generator `name` (cfg None: its defaults)."""
    check_config(name, cfg)
    return module(name).generate_video(seed, cfg, sequence_name(name, seed))
