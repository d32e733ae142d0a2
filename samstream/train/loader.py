"""Clip batches drawn by worker processes ahead of the training loop (`samstream train --data-workers N`).

Drawing a clip (reading or rendering frames, augmenting, resizing) takes 0.06-0.09 s on a CPU core: nothing
next to a CPU training step, but at 16 clips a step it would keep a GPU waiting. With workers, each step's
batch is drawn from its own generator, seeded by (seed, step), so the stream is the same whatever the number
of workers, and a resumed run draws exactly what the uninterrupted one would. (Without workers the Trainer
draws from its single RNG stream, as the shipped model's stages did.)
"""
from __future__ import annotations

import multiprocessing as mp
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

from .data import Clip, ClipDataset, batch_clips

_DATASET: ClipDataset | None = None  # a worker's copy, sent once when it starts


def draw_batch(dataset: ClipDataset, seed: int, step: int, batch_size: int) -> Clip:
    """The batch of training step `step` in per-step seeded sampling: a function of (seed, step) only."""
    rng = np.random.default_rng([seed, step])
    return batch_clips([dataset.sample(rng) for _ in range(batch_size)])


def _init_worker(dataset: ClipDataset) -> None:
    import torch

    global _DATASET
    _DATASET = dataset
    torch.set_num_threads(1)  # workers share the machine with the training process


def _draw(seed: int, step: int, batch_size: int) -> Clip:
    return draw_batch(_DATASET, seed, step, batch_size)


class ClipLoader:
    """Batches for steps start, start + 1, ... computed by `workers` processes, `prefetch` steps ahead.

    Processes are spawned (not forked: a fork of a process that has run torch's thread pools can hang), so
    the dataset must pickle (each worker gets it once), and a script that trains with workers must start
    under `if __name__ == "__main__":`, since each worker imports the script's main module.
    """

    def __init__(self, dataset: ClipDataset, seed: int, batch_size: int, workers: int, start: int = 0,
                 prefetch: int | None = None):
        if workers < 1:
            raise ValueError(f"a ClipLoader needs at least 1 worker, got {workers}")
        self.seed, self.batch_size = seed, batch_size
        self.prefetch = prefetch or 2 * workers
        self.pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                        initargs=(dataset,))
        self.pending: deque[tuple[int, Future]] = deque()
        self.next_step = start

    def get(self, step: int) -> Clip:
        """The batch of `step` (steps are asked for in order, from `start`)."""
        expected = self.pending[0][0] if self.pending else self.next_step
        if step != expected:
            raise ValueError(f"batches are served in order: asked for step {step}, next is {expected}")
        while len(self.pending) < self.prefetch:
            self.pending.append((self.next_step, self.pool.submit(_draw, self.seed, self.next_step, self.batch_size)))
            self.next_step += 1
        return self.pending.popleft()[1].result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
