"""Batch tracking and evaluation over many videos on a Ray cluster (local by default). See docs/batch.md.

    import samstream.batch
    summary = samstream.batch.track("videos.jsonl", "out/", address=None, workers=2, formats=("png", "json"))

`track`, `track_all` and `eval_vos` do for every video what `samstream track`, `track-all` and `eval vos`
do, on long-lived workers (the model loaded once each), one video a task, each video's folder written
completely or not at all; a rerun skips finished videos. Ray (`pip install 'samstream[ray]'`) is imported
only when one of them runs.
"""
from __future__ import annotations

import os

from .config import TrackAllOptions, TrackOptions, VosOptions, WorkerConfig, settings
from .manifest import ManifestError, VideoJob, load_jobs, read_manifest
from .outputs import BatchOutput


def _worker(model, precision, postprocessing, cpus_per_worker, gpus_per_worker) -> WorkerConfig:
    _check_model(model)
    return WorkerConfig(model=None if model is None else str(model), precision=precision,
                        postprocessing=postprocessing, cpus=cpus_per_worker, gpus=gpus_per_worker)


def _check_model(model) -> None:
    """Refuse a model that is neither a file nor an official name before any worker starts."""
    if model is None or os.path.isfile(model):
        return
    from ..model import OFFICIAL_CONFIGS

    if str(model) not in OFFICIAL_CONFIGS:
        raise FileNotFoundError(f"checkpoint not found: {model} (and not an official model name; those are "
                                f"{', '.join(OFFICIAL_CONFIGS)})")


def track(manifest, out: str | os.PathLike, *, address: str | None = None, workers: int | None = None,
          cpus_per_worker: float = 1, gpus_per_worker: float = 0, model: str | None = None, precision: str = "fp32",
          formats=("png",), direction: str = "forward", max_frames: int | None = None, postprocessing: bool = True,
          mirror: bool = False, postprocess: dict | None = None, progress: bool = True, on_event=None) -> dict:
    """`samstream track` over every video of `manifest` (a JSONL file, a DAVIS-layout folder, or a list of
    manifest dicts / VideoJobs) into out/<id>/. -> the summary (out/summary.json); failures in
    out/failures.jsonl. postprocess: MaskPostprocess fields to override (edge_refine_radius, ...)."""
    from .runner import run_batch

    if direction not in ("forward", "backward", "both"):
        raise ValueError(f"direction must be forward, backward or both, got {direction!r}")
    jobs = load_jobs(manifest)
    config = _worker(model, precision, postprocessing, cpus_per_worker, gpus_per_worker)
    opts = TrackOptions(formats=tuple(formats), direction=direction, max_frames=max_frames, mirror=mirror,
                        postprocess=dict(postprocess or {}))
    return run_batch("track", jobs, BatchOutput(out), settings("track", config, opts), config, opts,
                     address=address, workers=workers, progress=progress, on_event=on_event)


def track_all(manifest, out: str | os.PathLike, *, address: str | None = None, workers: int | None = None,
              cpus_per_worker: float = 1, gpus_per_worker: float = 0, model: str | None = None,
              precision: str = "fp32", postprocessing: bool = True, progress: bool = True, on_event=None,
              **options) -> dict:
    """`samstream track-all` over every video of `manifest` (prompts are ignored) into out/<id>/; `options`:
    TrackAllOptions fields (formats, key_every, max_frames, generator={MaskGenerator options}, ...)."""
    from .runner import run_batch

    jobs = load_jobs(manifest, need_prompts=False)
    config = _worker(model, precision, postprocessing, cpus_per_worker, gpus_per_worker)
    if "formats" in options:
        options["formats"] = tuple(options["formats"])
    opts = TrackAllOptions(**options)
    if not 1 <= opts.max_objects <= 255:
        raise ValueError(f"max_objects must be in 1..255 (object ids are PNG pixel values), got {opts.max_objects}")
    return run_batch("track_all", jobs, BatchOutput(out), settings("track_all", config, opts), config, opts,
                     address=address, workers=workers, progress=progress, on_event=on_event)


def eval_vos(data: str | os.PathLike, out: str | os.PathLike, *, address: str | None = None,
             workers: int | None = None, cpus_per_worker: float = 1, gpus_per_worker: float = 0,
             model: str | None = None, precision: str = "fp32", postprocessing: bool = False, prompt: str = "mask",
             sequences: list[str] | None = None, static: bool = False, mirror: bool = False,
             postprocess: dict | None = None, progress: bool = True, on_event=None):
    """`samstream eval vos`'s tracking, one sequence a task, into out/masks/<seq>/, then its scoring on the
    driver. -> (summary, VOSResults or None when a sequence failed: see out/failures.jsonl)."""
    from ..eval.vos import evaluate_vos
    from ..eval.vos_run import check_prompt
    from .manifest import davis_jobs
    from .runner import run_batch

    check_prompt(prompt)
    jobs = davis_jobs(data, sequences, need_prompts=False)
    config = _worker(model, precision, postprocessing, cpus_per_worker, gpus_per_worker)
    opts = VosOptions(data=str(os.path.abspath(data)), prompt=prompt, static=static, mirror=mirror,
                      postprocess=dict(postprocess or {}))
    output = BatchOutput(out, subfolder="masks")
    summary = run_batch("vos", jobs, output, settings("vos", config, opts), config, opts, address=address,
                        workers=workers, progress=progress, on_event=on_event)
    if summary["failed"]:
        return summary, None
    results = evaluate_vos(data, output.root / "masks", sequences=sequences, progress=progress)
    return summary, results


__all__ = ["BatchOutput", "ManifestError", "TrackAllOptions", "TrackOptions", "VideoJob", "VosOptions",
           "WorkerConfig", "eval_vos", "load_jobs", "read_manifest", "track", "track_all"]
