"""Helpers shared by the benchmarks: timing and peak memory in a child process."""
from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def compare(reference, ours, repeat: int, warmup: int = 1) -> tuple[float, float]:
    """Median wall times of two functions, run alternately so that load on the machine hits both alike."""
    for _ in range(warmup):
        reference()
        ours()
    a, b = [], []
    for _ in range(repeat):
        for fn, acc in ((reference, a), (ours, b)):
            t = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t)
    return statistics.median(a), statistics.median(b)


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        lines = f.read().splitlines()
    for line in lines:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(target, args, queue):
    target(*args)
    queue.put(peak_rss_mb())


def peak_memory_of(target, *args) -> float:
    """Peak resident memory (MB) of a fresh process that runs target(*args)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(target, args, q))
    p.start()
    value = q.get()
    p.join()
    return value
