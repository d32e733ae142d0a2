"""Running a batch on Ray: long-lived worker actors, one task per video, retries when a worker dies.

The driver (this module, in the process that calls `run_batch`) keeps every worker busy with one video at a
time: it sends the next video to whichever worker is free, so a slow video holds one worker only. A video
that fails (the worker returns its error) is recorded and not retried; a worker that dies (its process
killed, its node lost) makes Ray raise an actor error for its video, which goes back to the front of the
queue for another worker, and a new worker replaces the dead one. A video is written once: its folder
appears by one rename (samstream.batch.outputs), and a retry finds it when the dead worker had got that far.
Workers report finished frames to a small progress actor, which the driver reads for the progress bars.
Ray is imported here only, when a batch runs.
"""
from __future__ import annotations

import contextlib
import sys
import time
from collections import deque

from .manifest import VideoJob
from .outputs import BatchOutput

MAX_ATTEMPTS = 3  # a video whose worker died this many times is recorded as failed
_POLL_SECONDS = 0.2


class BatchError(ValueError):
    """The batch could not run: Ray missing, no cluster at the address, or no worker could start (a ValueError,
    so that the CLI shows it as one line)."""


def _ray():
    try:
        import ray
    except ImportError:
        raise BatchError("samstream batch needs Ray: pip install 'samstream[ray]'") from None
    return ray


def connect(address: str | None):
    """Join the cluster at `address` ("auto": the one `ray start` started here), or start a local Ray bound to
    127.0.0.1. -> whether this call started the connection (and so must end it)."""
    ray = _ray()
    if ray.is_initialized():
        return False
    opts = dict(include_dashboard=False, log_to_driver=True, logging_level="WARNING")
    try:
        if address:
            ray.init(address=address, **opts)
        else:
            ray.init(_node_ip_address="127.0.0.1", object_store_memory=200 * 2**20, **opts)
    except ConnectionError as e:
        raise BatchError(f"cannot reach the Ray cluster at {address}: {e}") from None
    return True


class _Progress:
    """Frames done per video, as the workers report them (the driver reads `snapshot`)."""

    def __init__(self):
        self.frames: dict[str, tuple[int, int | None]] = {}

    def report(self, key: str, done: int, total) -> None:
        self.frames[key] = (done, total)

    def snapshot(self) -> dict:
        return dict(self.frames)


def _actor_classes(ray):
    from .worker import Worker

    class RayWorker(Worker):
        def __init__(self, config, kind, options, out, subfolder, progress):
            super().__init__(config, kind, options, out, subfolder,
                             report=lambda *a: progress.report.remote(*a))

    return ray.remote(RayWorker), ray.remote(_Progress)


def _default_workers(ray, cpus: float, gpus: float) -> int:
    res = ray.cluster_resources()
    n = int(res.get("GPU", 0) // gpus) if gpus > 0 else int(res.get("CPU", 0) // cpus)
    if n < 1:
        what = f"{gpus} GPU(s)" if gpus > 0 else f"{cpus} CPU(s)"
        raise BatchError(f"the Ray cluster has no room for one worker of {what} (it has {res})")
    return n


class _Bars:
    """tqdm bars over videos and frames (frames' total grows as workers open videos)."""

    def __init__(self, n_videos: int, enabled: bool):
        from tqdm import tqdm

        self.videos = tqdm(total=n_videos, desc="videos", unit="video", disable=not enabled, position=0)
        self.frames = tqdm(total=0, desc="frames", unit="frame", disable=not enabled, position=1)
        self.done_frames = 0  # of finished videos

    def update(self, live: dict[str, tuple[int, int | None]], finished_total: int) -> None:
        self.frames.total = finished_total + sum(t or d for d, t in live.values())
        self.frames.n = self.done_frames + sum(d for d, _ in live.values())
        self.frames.refresh()

    def close(self):
        self.frames.close()
        self.videos.close()


def run_batch(kind: str, jobs: list[VideoJob], output: BatchOutput, settings: dict, worker_config, options, *,
              address: str | None = None, workers: int | None = None, progress: bool = True,
              on_event=None, max_attempts: int = MAX_ATTEMPTS) -> dict:
    """Run `jobs` (kind: "track", "track_all" or "vos") on Ray workers into `output`. -> the summary (also in
    OUT/summary.json); failed videos are in OUT/failures.jsonl.

    on_event: called in the driver with dicts {"event": "started" | "frames" | "finished" | "worker_died", "id",
    "pid", ...} (monitoring; the tests kill a worker from it)."""
    t0 = time.monotonic()
    output.check_settings(settings)
    output.clear_partial()  # what attempts killed in an earlier run left
    todo = [j for j in jobs if not output.is_done(j.id)]
    skipped = len(jobs) - len(todo)
    emit = on_event or (lambda e: None)
    failures: list[dict] = []
    stats = {"frames": 0, "done": 0, "retries": 0, "duplicates": 0, "startup_seconds": 0.0, "t0": t0,
             "overhead": []}
    n_workers = 0
    if todo:
        ray = _ray()
        started = connect(address)
        try:
            n_workers = _run(ray, kind, todo, output, worker_config, options, workers, progress, emit, failures,
                             stats, max_attempts)
        finally:
            if started:
                ray.shutdown()
    output.write_failures(failures)
    output.clear_partial()
    seconds = time.monotonic() - t0
    working = seconds - stats["startup_seconds"]
    summary = {"command": kind, "videos": len(jobs), "done": stats["done"], "skipped": skipped,
               "failed": len(failures), "frames": stats["frames"], "seconds": round(seconds, 3),
               # startup: connecting, starting the workers and loading their models (once per run)
               "startup_seconds": round(stats["startup_seconds"], 3),
               "frames_per_second": round(stats["frames"] / working, 3) if working > 0 else None,
               "overhead_seconds_per_video": (round(sum(stats["overhead"]) / len(stats["overhead"]), 4)
                                              if stats["overhead"] else None),
               "workers": n_workers, "worker_deaths": stats["retries"], "failures": [f["id"] for f in failures]}
    output.write_summary(summary)
    if progress:
        print(f"batch {kind}: {summary['done']} video(s) done, {skipped} skipped (already complete), "
              f"{len(failures)} failed; {summary['frames']} frames in {seconds:.1f} s "
              f"({summary['frames_per_second']} frames/s after {summary['startup_seconds']:.1f} s of startup) on "
              f"{n_workers} worker(s) -> {output.root}", file=sys.stderr)
    return summary


def _run(ray, kind, todo, output, worker_config, options, workers, progress, emit, failures, stats,
         max_attempts) -> int:
    t0 = stats["t0"]
    from ray.exceptions import RayActorError
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    WorkerActor, ProgressActor = _actor_classes(ray)
    # the progress actor lives beside the driver: it goes when the driver goes, not with a worker's node
    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=True)
    prog = ProgressActor.options(num_cpus=0, scheduling_strategy=here).remote()
    n = workers or _default_workers(ray, worker_config.cpus, worker_config.gpus)
    n = max(1, min(n, len(todo)))
    make = WorkerActor.options(num_cpus=worker_config.cpus, num_gpus=worker_config.gpus, max_restarts=0)

    def new_worker():
        a = make.remote(worker_config, kind, options, str(output.root), output.subfolder, prog)
        return a, a.info.remote()

    slots = [new_worker() for _ in range(n)]
    pids: dict[int, int | None] = {}
    try:
        for i, (_, ready) in enumerate(slots):
            pids[i] = ray.get(ready)["pid"]  # the model loads in each worker: a bad model fails here
    except RayActorError as e:
        raise BatchError(f"a worker could not start: {_last_line(e)}") from None
    stats["startup_seconds"] = time.monotonic() - t0
    queue = deque((j, 1) for j in todo)
    idle = deque(range(n))
    inflight: dict = {}  # ObjectRef -> (slot, job, attempt)
    sent: dict[str, float] = {}  # video id -> when its (last) attempt was sent
    bars = _Bars(len(todo), progress)
    finished_total = 0
    try:
        while queue or inflight:
            while queue and idle:
                slot = idle.popleft()
                job, attempt = queue.popleft()
                inflight[slots[slot][0].run.remote(job)] = (slot, job, attempt)
                sent[job.id] = time.monotonic()
                emit({"event": "started", "id": job.id, "pid": pids.get(slot), "attempt": attempt})
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=_POLL_SECONDS)
            for ref in ready:
                slot, job, attempt = inflight.pop(ref)
                try:
                    res = ray.get(ref)
                except RayActorError as e:
                    stats["retries"] += 1
                    emit({"event": "worker_died", "id": job.id, "pid": pids.get(slot), "attempt": attempt})
                    if attempt < max_attempts:
                        queue.appendleft((job, attempt + 1))
                    else:
                        failures.append(_failure(job, f"its worker died {attempt} times; last: {_last_line(e)}"))
                        output.write_failures(failures)
                        bars.videos.update(1)
                    slots[slot] = new_worker()  # a new process, placed wherever the cluster has room
                    pids[slot] = None
                    idle.append(slot)
                    continue
                idle.append(slot)
                bars.videos.update(1)
                # scheduling overhead: the round trip less the worker's own time on the video
                stats["overhead"].append(max(0.0, time.monotonic() - sent[job.id] - res["seconds"]))
                if res["status"] == "failed":
                    failures.append(_failure(job, res["error"]))
                    output.write_failures(failures)
                else:
                    stats["done"] += 1
                    stats["frames"] += res["frames"]
                    stats["duplicates"] += res["status"] == "exists"
                    bars.done_frames += res["frames"]
                    finished_total += res["frames"]
                emit({"event": "finished", **res, "pid": pids.get(slot)})
            for i, (_, ready) in enumerate(slots):  # a replacement worker's pid, once it has started
                if pids[i] is None and ray.wait([ready], timeout=0)[0]:
                    with contextlib.suppress(RayActorError):  # it died too: its video comes back as an actor error
                        pids[i] = ray.get(ready)["pid"]
            try:
                live = ray.get(prog.snapshot.remote(), timeout=5)
            except Exception:  # the progress bars only: the run goes on without them
                live = {}
            live = {k: v for k, v in live.items() if any(j.id == k for _, j, _ in inflight.values())}
            bars.update(live, finished_total)
            running = {j.id: pids.get(s) for s, j, _ in inflight.values()}
            for k, (d, t) in live.items():
                emit({"event": "frames", "id": k, "frames": d, "total": t, "pid": running.get(k)})
    finally:
        bars.close()
        for actor, _ in slots:
            ray.kill(actor)
        ray.kill(prog)
    return n


def _failure(job: VideoJob, error: str) -> dict:
    return {"id": job.id, "video": job.video, "line": job.line or None, "error": error}


def _last_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__
