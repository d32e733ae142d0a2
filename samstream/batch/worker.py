"""What a batch worker runs: the model loaded once, then one video at a time, written as the commands write it.

`track_video`, `track_all_video` and `vos_sequence` do for one video what `samstream track`, `track-all` and
`eval vos` do (the same library calls in the same order, so the files are the same), with a model that is
already loaded. `Worker` is the plain class the Ray actor wraps (samstream.batch.runner); it needs no Ray.
"""
from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from .config import TrackAllOptions, TrackOptions, VosOptions, WorkerConfig
from .manifest import VideoJob
from .outputs import BatchOutput


def _counted(results, on_frame):
    """The results, calling on_frame(number done so far) after each."""
    for n, r in enumerate(results, 1):
        yield r
        on_frame(n)


def _prompt(vp, job: VideoJob) -> None:
    """The job's prompts, in `samstream track`'s order: masks, then clicks and boxes per (frame, object)."""
    if job.masks is not None:
        from ..io.png import read_label_png

        labels = read_label_png(job.masks)[0]
        ids = [int(i) for i in np.unique(labels) if i not in (0, 255)]  # 255: DAVIS's void
        if not ids:
            raise ValueError(f"masks {job.masks}: no object (every pixel is 0 or 255)")
        for obj in ids:
            vp.add_mask(0, obj, labels == obj)
    clicks: dict[tuple[int, int], list] = defaultdict(list)
    boxes = {(frame, obj): v for frame, obj, v in job.boxes}
    for frame, obj, v in job.prompts:
        clicks[(frame, obj)].append((v[0], v[1], v[2] if len(v) == 3 else 1))
    for key in sorted(set(clicks) | set(boxes)):
        frame, obj = key
        pts = clicks.get(key)
        vp.add_points(frame, obj, None if not pts else [p[:2] for p in pts],
                      None if not pts else [p[2] for p in pts], box=boxes.get(key))


def track_video(model, job: VideoJob, opts: TrackOptions, out: Path, on_frame=lambda n: None,
                on_open=lambda n: None, precision: str = "fp32") -> int:
    """`samstream track` of one job into the folder `out` -> frames written."""
    from ..cli.args import open_video_writers, video_name, write_results
    from ..video.predictor import VideoPredictor

    vp = VideoPredictor(model, job.video, progress=False, mirror=opts.mirror,
                        postprocess=model.inference_defaults.override(**opts.postprocess), precision=precision)
    try:
        _prompt(vp, job)
        on_open(vp.num_frames)
        writers = open_video_writers(out, list(opts.formats), vp, video_name(job.video))
        finish = (lambda: writers[0].fill_missing(vp.num_frames, vp.video_size)) if vp.num_frames is not None else None
        return write_results(writers, _counted(vp.propagate(direction=opts.direction, max_frames=opts.max_frames),
                                               on_frame), finish)
    finally:
        vp.close()


def track_all_video(model, job: VideoJob, opts: TrackAllOptions, out: Path, on_frame=lambda n: None,
                    on_open=lambda n: None, precision: str = "fp32") -> int:
    """`samstream track-all` of one video into `out` -> frames written."""
    from ..amg.generator import MaskGenerator
    from ..amg.video import TrackAll, video_generator_options
    from ..cli.args import open_video_writers, video_name, write_results

    if not Path(job.video).exists():
        raise FileNotFoundError(f"video not found: {job.video} (expected a video file or a folder of images)")
    generator = MaskGenerator(model, precision=precision, **video_generator_options(model, **opts.generator))
    ta = TrackAll(model, job.video, key_every=opts.key_every, generator=generator,
                  new_object_overlap=opts.new_object_overlap, min_new_area=opts.min_new_area,
                  max_objects=opts.max_objects, drop_after=opts.drop_after, progress=False,
                  predictor_options={"mirror": True} if opts.mirror else None, precision=precision)
    vp = ta.video
    try:
        _ = vp.video_size  # reads frame 0: a corrupt video fails here
        on_open(vp.num_frames)
        return write_results(open_video_writers(out, list(opts.formats), vp, video_name(job.video)),
                             _counted(ta.run(opts.max_frames), on_frame))
    finally:
        ta.close()


def vos_sequence(model, job: VideoJob, opts: VosOptions, out: Path, on_frame=lambda n: None,
                 on_open=lambda n: None, precision: str = "fp32") -> int:
    """`samstream eval vos`'s tracking of one sequence (job.id) into out/<seq>/ -> frames written."""
    from ..eval.vos_run import run_vos

    run_vos(model, opts.data, out, prompt=opts.prompt, sequences=[job.id], progress=False, static=opts.static,
            mirror=opts.mirror, postprocess=model.inference_defaults.override(**opts.postprocess), precision=precision)
    n = len(list((out / job.id).glob("*.png")))
    on_frame(n)
    return n


RUNNERS = {"track": track_video, "track_all": track_all_video, "vos": vos_sequence}


class Worker:
    """A long-lived worker: loads the model once, then runs jobs of one kind, each into its folder of `out`.

    progress: None, or an object whose `report(key, frames_done, frames_total)` is called as frames finish
    (the Ray actor passes a handle's method; at most one call every `report_seconds` but the last)."""

    def __init__(self, config: WorkerConfig, kind: str, options, out: str, subfolder: str | None = None,
                 report=None, report_seconds: float = 0.5):
        import torch

        from ..load import load_model

        if kind not in RUNNERS:
            raise ValueError(f"unknown batch kind {kind!r}; one of {', '.join(RUNNERS)}")
        torch.set_num_threads(max(1, int(config.cpus)))
        self.kind, self.options = kind, options
        self.output = BatchOutput(out, subfolder)
        self.report, self.report_seconds = report, report_seconds
        # float32 weights; the sessions run them at config.precision under autocast (samstream.precision)
        self.precision = config.precision
        self.model = load_model(config.model, device=config.device, postprocessing=config.postprocessing)

    def info(self) -> dict:
        """Where this worker runs (the tests kill it by pid)."""
        import socket

        return {"pid": os.getpid(), "host": socket.gethostname()}

    def run(self, job: VideoJob) -> dict:
        """One video -> {"id", "status": "done" | "exists" | "failed", "frames", "seconds", "error"}. A video that
        fails leaves no folder; an error of the video (not of the worker) is returned, not raised."""
        t0 = time.monotonic()
        if self.output.is_done(job.id):  # a retry of a video that a killed worker had finished
            return {"id": job.id, "status": "exists", "frames": 0, "seconds": 0.0}
        total = [None]
        last = [0.0]

        def on_open(n):
            total[0] = n
            self._report(job.id, 0, n)

        def on_frame(n):
            if time.monotonic() - last[0] >= self.report_seconds:
                last[0] = time.monotonic()
                self._report(job.id, n, total[0])

        tmp = self.output.begin(job.id)
        # eval vos writes <masks>/<seq>/; the others write the video's files into the folder itself
        target = tmp if self.kind == "vos" else tmp / job.id
        (tmp / job.id).mkdir()  # a video of no frame is still a (complete, empty) folder
        try:
            frames = RUNNERS[self.kind](self.model, job, self.options, target, on_frame, on_open, self.precision)
        except Exception as e:
            self.output.discard(tmp)
            return {"id": job.id, "status": "failed", "error": f"{type(e).__name__}: {e}",
                    "seconds": time.monotonic() - t0, "frames": 0}
        self._report(job.id, frames, total[0] if total[0] is not None else frames)
        committed = self.output.commit(tmp / job.id, job.id)
        self.output.discard(tmp)
        return {"id": job.id, "status": "done" if committed else "exists", "frames": frames,
                "seconds": time.monotonic() - t0}

    def _report(self, key: str, done: int, total) -> None:
        if self.report is not None:
            self.report(key, done, total)
