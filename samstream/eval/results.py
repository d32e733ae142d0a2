"""VOS evaluation results: per-object statistics and the global figures.

All figures are fractions in [0, 1] (the DAVIS tables' scale); multiply by 100 for the papers' scale.
Global J / F are means over all objects of all sequences (objects weighted equally, not sequences),
and J&F = (J + F) / 2, as in both the DAVIS toolkit and the SA-V evaluator.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .metrics import db_statistics


@dataclass
class ObjectResult:
    """One object of one sequence: per-frame J and F and their DAVIS statistics."""

    sequence: str
    object_id: str
    frames: list[str]
    j: list[float]
    f: list[float]

    def __post_init__(self):
        self.j_mean, self.j_recall, self.j_decay = db_statistics(self.j)
        self.f_mean, self.f_recall, self.f_decay = db_statistics(self.f)

    @property
    def jf(self) -> float:
        return (self.j_mean + self.f_mean) / 2

    def to_dict(self, per_frame: bool = True) -> dict:
        d = {"J&F": self.jf, "J": self.j_mean, "J_recall": self.j_recall, "J_decay": self.j_decay,
             "F": self.f_mean, "F_recall": self.f_recall, "F_decay": self.f_decay, "num_frames": len(self.frames)}
        if per_frame:
            d.update(frames=self.frames, J_per_frame=self.j, F_per_frame=self.f)
        return d


def _mean(values) -> float:
    # nanmean: an object with no evaluated frame (NaN) is left out of the averages, with a warning
    # from the evaluator; the toolkit's np.mean would turn every figure into NaN.
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0 or np.all(np.isnan(v)):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return float(np.nanmean(v))


@dataclass
class VOSResults:
    """All objects of all evaluated sequences, in sequence order."""

    objects: list[ObjectResult]
    sequences: list[str]
    settings: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # {subset: {"J&F", "J", "F", "num_objects", "objects"}}: hard subsets from an events file (eval/events.py)
    subsets: dict = field(default_factory=dict)

    def _g(self, attr: str) -> float:
        return _mean(getattr(o, attr) for o in self.objects)

    @property
    def J(self) -> float:
        return self._g("j_mean")

    @property
    def F(self) -> float:
        return self._g("f_mean")

    @property
    def JF(self) -> float:
        return (self.J + self.F) / 2

    def summary(self) -> dict[str, float]:
        """The DAVIS global table: J&F-Mean, J-Mean/Recall/Decay, F-Mean/Recall/Decay."""
        return {"J&F": self.JF, "J": self.J, "J_recall": self._g("j_recall"), "J_decay": self._g("j_decay"),
                "F": self.F, "F_recall": self._g("f_recall"), "F_decay": self._g("f_decay")}

    def per_sequence(self) -> dict[str, dict]:
        """{sequence: {"J&F", "J", "J_recall", "J_decay", "F", ..., "num_objects"}}: means over that
        sequence's objects."""
        out = {}
        for seq in self.sequences:
            objs = [o for o in self.objects if o.sequence == seq]
            d = {k: _mean(getattr(o, attr) for o in objs) for k, attr in
                 (("J", "j_mean"), ("J_recall", "j_recall"), ("J_decay", "j_decay"),
                  ("F", "f_mean"), ("F_recall", "f_recall"), ("F_decay", "f_decay"))}
            out[seq] = {"J&F": (d["J"] + d["F"]) / 2, **d, "num_objects": len(objs)}
        return out

    def to_dict(self, per_frame: bool = True) -> dict:
        seqs = self.per_sequence()
        for seq in seqs:
            seqs[seq]["objects"] = {o.object_id: o.to_dict(per_frame) for o in self.objects if o.sequence == seq}
        out = {**self.summary(), "scale": "fraction in [0, 1]", "num_sequences": len(self.sequences),
               "num_objects": len(self.objects), "settings": self.settings, "warnings": self.warnings}
        if self.subsets:
            out["subsets"] = self.subsets
        out["sequences"] = seqs
        return out
