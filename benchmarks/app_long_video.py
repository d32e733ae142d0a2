"""The annotation app on a long video: time to open it, and the server's memory while scrubbing and propagating.

    .venv/bin/python -m benchmarks.app_long_video                       # 10,000 frames, 120 s of propagation
    .venv/bin/python -m benchmarks.app_long_video --frames 2000 --propagate-seconds 20 --json out.json

(the raw results go to benchmarks/results/app-long-video-<date>.json unless --json says otherwise)

A real `samstream app` server process (embedded model) on a data folder holding one video file of `--frames`
frames: the shipped demo clip (320x240) looped. "Open" is the time from adding the video to a project until its
state and first frame have arrived, as the browser asks for them. Then `--scrub` random frames are fetched (JPEG
and overlay) and the object is propagated forward for `--propagate-seconds`, then cancelled; the server's
resident memory (VmRSS) is sampled all along. Flat memory: the last samples of each phase are no higher than its
first ones plus the noise of the allocator (`growth_mb`: last-quarter max - first-quarter min; the server's caches
are bounded but fill first, so `growth_second_half_mb`, last-quarter max - first-half max, is the flatness
figure). The machine's load average is recorded before and after: the figures are as good as the machine was idle.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DEMO_CLIP = ROOT / "samstream" / "assets" / "demo.mp4"
RESULTS = ROOT / "benchmarks" / "results"
CLICK = (179, 40)  # object 1 of the demo clip on its frame 0 (samstream/assets/demo.json)


def write_long_video(path: Path, frames: int) -> None:
    """The demo clip, looped to `frames` frames, as an H.264 file."""
    import av

    with av.open(str(DEMO_CLIP)) as src:
        clip = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24, options={"preset": "ultrafast", "crf": "23"})
        stream.height, stream.width = clip[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for t in range(frames):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(clip[t % len(clip)], format="rgb24")))
        out.mux(stream.encode())


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages (this machine is shared: the figures are measured under them)."""
    return [round(v, 2) for v in os.getloadavg()]


def start_server(data: Path, port: int, model: str | None = None) -> subprocess.Popen:
    """A `samstream app` process on `data`, once it answers; its stderr goes to a file (a pipe nobody reads
    would fill and block the server)."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
    cmd = [sys.executable, "-m", "samstream", "app", "--data", str(data), "--port", str(port), "--device", "cpu"]
    proc = subprocess.Popen(cmd + (["--model", model] if model else []), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=log)
    proc.log = log
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server exited: {log.read().decode(errors='replace')[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/info", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start in 120 s")


def summary(samples: list[float]) -> dict:
    k = max(1, len(samples) // 4)
    first, last, half = min(samples[:k]), max(samples[-k:]), max(samples[: max(1, len(samples) // 2)])
    # the caches fill first (bounded): what still grows in the second half is what would not stay flat
    return {"first_mb": round(first, 1), "last_mb": round(last, 1), "growth_mb": round(last - first, 1),
            "growth_second_half_mb": round(last - half, 1), "max_mb": round(max(samples), 1),
            "samples_mb": [round(v, 1) for v in samples]}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--scrub", type=int, default=1000, help="random frames fetched while scrubbing")
    ap.add_argument("--propagate-seconds", type=float, default=120.0)
    ap.add_argument("--json", type=Path, default=None,
                    help="where to write the results (default: benchmarks/results/app-long-video-<date>.json)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        t0 = time.perf_counter()
        write_long_video(data / "long.mp4", args.frames)
        made_s = time.perf_counter() - t0
        port = free_port()
        proc = start_server(data, port)
        try:
            c = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
            pid = proc.pid
            res = {"date": datetime.now().isoformat(timespec="seconds"), "cpus": os.cpu_count(),
                   "load_before": load(), "frames": args.frames, "video_written_s": round(made_s, 1),
                   "server_idle_mb": round(rss_mb(pid), 1)}
            project = c.post("/api/projects", json={"name": "long"}).json()
            t0 = time.perf_counter()
            video = c.post(f"/api/projects/{project['id']}/videos", json={"path": "long.mp4"}).json()
            vid = video["id"]
            c.get(f"/api/videos/{vid}").raise_for_status()
            c.get(f"/api/videos/{vid}/frames/0").raise_for_status()
            c.get(f"/api/videos/{vid}/overlay/0").raise_for_status()
            c.get(f"/api/videos/{vid}/timeline").raise_for_status()
            res["open_s"] = round(time.perf_counter() - t0, 2)
            res["num_frames_seen"] = video["num_frames"]

            rng = random.Random(0)
            scrub, times = [], []
            for i in range(args.scrub):
                t = rng.randrange(args.frames)
                t1 = time.perf_counter()
                c.get(f"/api/videos/{vid}/frames/{t}").raise_for_status()
                c.get(f"/api/videos/{vid}/overlay/{t}").raise_for_status()
                times.append(time.perf_counter() - t1)
                if i % 10 == 0:
                    scrub.append(rss_mb(pid))
            times.sort()
            res["scrub"] = {**summary(scrub), "median_ms": round(1000 * times[len(times) // 2], 1),
                            "p95_ms": round(1000 * times[int(len(times) * 0.95)], 1)}

            obj = c.post(f"/api/videos/{vid}/objects", json={}).json()["object"]["obj_id"]
            t0 = time.perf_counter()  # the first click opens the model session on the video
            c.post(f"/api/videos/{vid}/click", json={"obj_id": obj, "frame": 0, "x": CLICK[0], "y": CLICK[1]}
                   ).raise_for_status()
            res["first_click_s"] = round(time.perf_counter() - t0, 2)
            c.post(f"/api/videos/{vid}/propagate", json={"frame": 0, "direction": "forward"}).raise_for_status()
            prop, t0 = [], time.perf_counter()
            while time.perf_counter() - t0 < args.propagate_seconds:
                time.sleep(1.0)
                prop.append(rss_mb(pid))
            job = c.post(f"/api/videos/{vid}/cancel").json()
            while job and job["state"] == "running":
                time.sleep(0.2)
                job = c.get(f"/api/videos/{vid}/job").json()
            elapsed = time.perf_counter() - t0
            res["propagate"] = {**summary(prop), "frames_done": job["done"],
                                "frames_per_s": round(job["done"] / elapsed, 2), "state": job["state"]}
            res["stored_frames"] = len(c.get(f"/api/videos/{vid}/timeline").json()["objects"][str(obj)]["frames"])
            res["load_after"] = load()
        finally:
            proc.kill()
            proc.wait()
    print(json.dumps(res, indent=1))
    save_results(res, args.json, "app-long-video")
    return res


def save_results(res: dict, path: Path | None, kind: str) -> Path:
    """res as JSON at `path`, or benchmarks/results/<kind>-<date and time>.json."""
    out = path or RESULTS / f"{kind}-{datetime.now():%Y-%m-%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    return out


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
