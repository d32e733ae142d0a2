"""`samstream track VIDEO --model DIR` with a `samstream export` folder: tracking on ONNX Runtime.

The frames come from samstream's own frame sources (video files through PyAV, folders, single images), as on
the PyTorch path, so both see the same pixels; the runtime's FrameResults go through the same writers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

# (option, its value when not given): what the runtime does not do (see samstream/runtime/video.py)
UNSUPPORTED = (("--mirror", "mirror", False), ("--edge-refine", "edge_refine", None),
               ("--min-region-area", "min_region_area", None), ("--non-overlap", "non_overlap", None),
               ("--no-postprocessing", "no_postprocessing", False), ("--precision", "precision", "fp32"))


def is_export_folder(model) -> bool:
    """Whether --model names a `samstream export` folder (it holds manifest.json)."""
    return model is not None and (Path(model) / "manifest.json").is_file()


def check_options(args) -> None:
    """Refuse, in one line, the options of `track` that the ONNX runtime does not have."""
    given = [flag for flag, dest, unset in UNSUPPORTED if getattr(args, dest, unset) != unset]
    if args.device not in (None, "cpu"):
        given.append(f"--device {args.device}")
    if given:
        raise ValueError(f"{', '.join(given)}: not available with an ONNX export folder as --model (the runtime "
                         "runs on the CPU, with plain outputs)")


class SourceFrames:
    """A FrameSource as the runtime reads frames (len() and [i] -> (H, W, 3) uint8), read on demand. A bounded
    cache keeps the frames decoded lately and those a seek decoded on the way (as samstream.video's FrameStore),
    since the runtime reads a frame again for its results' size."""

    def __init__(self, source):
        from ..video.frames import LRUCache

        self.source = source
        self.cache = LRUCache(64, 256 << 20)

    def __len__(self) -> int:
        return self.source.num_frames

    def __getitem__(self, idx: int) -> np.ndarray:
        frame = self.cache.get(idx)
        if frame is None:
            for k, f in self.source.fetch(idx):  # idx last
                self.cache.put(k, f)
                frame = f
        return frame


class OnnxTracking:
    """The runtime's VideoPredictor over a video path, with what the writers read of a predictor (video_size,
    num_frames, fps, frame) and close()."""

    def __init__(self, folder, video, progress: bool = True):
        from ..video.sources import open_source

        self.progress = progress
        self.source = open_source(video)
        self.frames = SourceFrames(self.source)
        try:
            from ..runtime import VideoPredictor

            self.vp = VideoPredictor(folder, self.frames)
        except ImportError as e:
            self.source.close()
            if not (e.name or "").startswith("onnxruntime"):
                raise
            raise ValueError("an ONNX export folder as --model needs onnxruntime: pip install 'samstream[onnx]'"
                             ) from None
        except BaseException:
            self.source.close()
            raise

    # what `track` calls
    def add_points(self, frame_idx, obj_id, points=None, labels=None, *, box=None):
        return self.vp.add_points(frame_idx, obj_id, points, labels, box=box)

    def add_mask(self, frame_idx, obj_id, mask):
        return self.vp.add_mask(frame_idx, obj_id, mask)

    def propagate(self, direction: str = "forward", max_frames: int | None = None):
        from tqdm import tqdm

        results = self.vp.propagate(direction=direction, max_frames=max_frames)  # checks and commits the prompts now
        return tqdm(results, desc="tracking (ONNX Runtime)", unit="frame", leave=False, disable=not self.progress)

    @property
    def obj_ids(self) -> list:
        return self.vp.obj_ids

    # what the writers read
    @property
    def num_frames(self) -> int:
        return self.vp.num_frames

    @property
    def video_size(self) -> tuple[int, int]:
        return self.vp.video_size

    @property
    def fps(self) -> float | None:
        return self.source.fps

    def frame(self, frame_idx: int) -> np.ndarray:
        return self.frames[frame_idx]

    def close(self) -> None:
        self.source.close()
