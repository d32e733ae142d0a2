"""Argument types and option groups that several commands share."""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

VIDEO_FORMATS = ("png", "json", "mp4")
# what `track` and `track-all` write into their output folder (the names OutputFolder matches)
VIDEO_OUTPUTS = ("NNNNN.png", "masks.json", "overlay.mp4")


def _number(text: str, cast, ok, bound: str):
    """`text` as an int or float (cast) for which ok(value) holds, else an ArgumentTypeError saying so."""
    try:
        v = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if cast is int else 'a number'}, "
                                         f"got {text!r}") from None
    if not ok(v):
        raise argparse.ArgumentTypeError(f"expected {'an integer' if cast is int else 'a number'} {bound}, got {v}")
    return v


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _number(text, int, lambda v: v >= 1, ">= 1")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _number(text, int, lambda v: v >= 0, ">= 0")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _number(text, float, lambda v: 0.0 < v < float("inf"), "> 0")


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    return _number(text, float, lambda v: 0.0 <= v <= 1.0, "in [0, 1]")


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0."""
    return _number(text, float, lambda v: v >= 0.0, ">= 0")


def video_formats(text: str) -> list[str]:
    """argparse type: a comma list of output formats out of VIDEO_FORMATS."""
    fmts = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in fmts if f not in VIDEO_FORMATS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown format(s) {bad}; choose from {', '.join(VIDEO_FORMATS)}")
    return fmts


def allow_negative_values(p: argparse.ArgumentParser) -> None:
    """Values that start with a minus and a digit ("--prompt -1:1:10,10", "--point -5,10") go to their option's
    type, which names the problem, instead of argparse taking them for unknown options ("expected one argument").
    None of our options is spelled like a negative number."""
    p._negative_number_matcher = re.compile(r"^-\.?\d")


def device(text: str) -> str:
    """argparse type: a device this machine has (cpu, cuda, cuda:N, mps), checked before any work starts."""
    name = text.strip().lower()
    if name == "cpu":
        return name
    from ..load import check_device

    try:
        check_device(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return name


def add_precision_argument(p) -> None:
    """--precision: mixed precision for the model (samstream.precision); argparse refuses other values."""
    from ..precision import PRECISIONS

    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32 (default): exact; bf16 / fp16: run the model under autocast in that dtype, mask logits, "
                        "scores and position encodings kept in float32 (bf16 for recent CPUs and Ampere+ GPUs, "
                        "fp16 for older GPUs; see docs/speed.md)")


def folder_path(text: str) -> str:
    """argparse type: a folder to write into; refused when it, or a parent, is a file."""
    from ..io.atomic import file_in_the_way

    blocker = file_in_the_way(text)
    if blocker is not None:
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder" if blocker == Path(text) else
                                         f"{text} cannot be a folder: {blocker} is a file")
    return text


def file_path(text: str) -> str:
    """argparse type: a file to write; refused when it is a folder or its folder cannot be one."""
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    folder_path(str(Path(text).parent))
    return text


def add_output_argument(p: argparse.ArgumentParser, outputs: tuple[str, ...], what: str = "") -> None:
    """-o/--output FOLDER and --overwrite, for a command that writes `outputs` (names as `OutputFolder` takes
    them) into a folder; `output_folder(args, outputs)` checks them."""
    p.add_argument("-o", "--output", required=True,
                   help=f"output folder{f' ({what})' if what else ''}: new or empty, unless --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help=f"write into a non-empty output folder: first delete what an earlier run wrote there "
                        f"({', '.join(outputs)}); other files in it are left alone")


class OutputFolder:
    """A command's output folder: new or empty, or replaced knowingly (`overwrite`).

    A folder that holds anything is refused without `overwrite`, so that no earlier run's files (frames a
    shorter rerun does not reach) stay beside the new ones. With it, `prepare` first deletes the files that
    match `outputs` (an earlier run's) and leaves every other file (the writers remove killed runs' temporary
    files themselves).
    `outputs` are names relative to the folder: `NNNNN` stands for digits, `*` for any part of a name,
    e.g. ("NNNNN.png", "masks.json", "*_overlay.png", "masks/*/*.png").
    Checked when built (before any work starts); `prepare` runs right before the first write, so a run that
    fails earlier (a bad prompt, a missing model) leaves the earlier outputs as they were.
    """

    def __init__(self, path: str | os.PathLike, outputs: tuple[str, ...], overwrite: bool = False,
                 inputs: tuple[str | os.PathLike, ...] = ()):
        from ..io.atomic import file_in_the_way

        self.path, self.outputs, self.overwrite = Path(path), tuple(outputs), overwrite
        self.inputs = tuple(Path(i).resolve() for i in inputs if i is not None)
        blocker = file_in_the_way(self.path)
        if blocker is not None:
            raise NotADirectoryError(f"output folder {self.path} is a file" if blocker == self.path else
                                     f"output folder {self.path} is under {blocker}, which is a file")
        if self.path.resolve() in self.inputs:
            raise ValueError(f"output folder {self.path} is the input folder: choose another output folder")
        if not overwrite and self.path.is_dir():
            entries = sorted(e.name for e in self.path.iterdir())
            if entries:
                more = f" and {len(entries) - 1} more" if len(entries) > 1 else ""
                raise FileExistsError(
                    f"output folder {self.path} is not empty (it holds {entries[0]}{more}): choose a new folder, "
                    f"or pass --overwrite to replace an earlier run's outputs there")
        patterns = [_output_regex(o) for o in self.outputs]
        self._match = re.compile("|".join(f"(?:{r})" for r in patterns)).fullmatch

    def stale(self) -> list[Path]:
        """The files of an earlier run in the folder: those that `prepare` deletes with `overwrite`."""
        if not self.path.is_dir():
            return []
        depth = max(o.count("/") for o in self.outputs)
        found = []
        for folder, dirs, files in os.walk(self.path):
            rel = Path(folder).relative_to(self.path)
            if len(rel.parts) >= depth:
                dirs.clear()
            found += [Path(folder) / f for f in files if self._match((rel / f).as_posix())]
        return sorted(f for f in found if not self._is_input(f))

    def _is_input(self, f: Path) -> bool:
        """An input file, or one in an input folder: never deleted, even if named like an output."""
        f = f.resolve()
        return any(f == i or i in f.parents for i in self.inputs)

    def prepare(self) -> Path:
        """Create the folder; with `overwrite`, first delete an earlier run's outputs (and folders that this
        empties, up to the output folder). Returns the folder."""
        from ..io.atomic import ensure_folder

        if self.overwrite:
            stale = self.stale()
            for f in stale:
                f.unlink()
            for d in sorted({f.parent for f in stale}, key=lambda d: -len(d.parts)):
                while d != self.path and d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
                    d = d.parent
            if stale:
                print(f"--overwrite: deleted {len(stale)} file(s) of an earlier run in {self.path}", file=sys.stderr)
        return ensure_folder(self.path)


def _output_regex(name: str) -> str:
    """The regex of an output name: NNNNN stands for digits, * for any part of a name."""
    return re.escape(name).replace("NNNNN", r"\d+").replace(r"\*", "[^/]*")


def output_folder(args: argparse.Namespace, outputs: tuple[str, ...], inputs=()) -> OutputFolder:
    """The checked OutputFolder of `add_output_argument`'s options; `inputs`: the command's input paths."""
    return OutputFolder(args.output, outputs, args.overwrite, inputs)


# the output pipeline's options (dest in args -> MaskPostprocess field); unset (None): the model's default
_POSTPROCESS_OPTIONS = {"edge_refine": "edge_refine_radius", "min_region_area": "min_region_area",
                        "non_overlap": "non_overlap_masks"}


def add_postprocess_arguments(p: argparse.ArgumentParser, what: str = "frame", video: bool = True) -> None:
    """The output pipeline's options (`samstream.postprocess.MaskPostprocess`): --edge-refine, and for video
    commands --min-region-area and --non-overlap. `postprocess_from_args` builds the pipeline from them."""
    p.add_argument("--edge-refine", type=non_negative_float, default=None, metavar="RADIUS",
                   help=f"snap mask edges to the {what}'s edges with a guided filter of this radius, in pixels of the "
                        "low-res mask grid; 0 turns it off (default: the model's setting, on for the built-in model)")
    if video:
        p.add_argument("--min-region-area", type=int, default=None, metavar="PIXELS",
                       help="drop each object's mask regions of fewer pixels than this (video resolution; default: "
                            "the model's setting, 0)")
        p.add_argument("--non-overlap", action="store_true", default=None,
                       help="each pixel keeps only the object with the highest mask logit (before --min-region-area)")


def postprocess_from_args(args: argparse.Namespace, model):
    """The MaskPostprocess of a command: the model's inference defaults with the options of
    `add_postprocess_arguments` that were given."""
    return model.inference_defaults.override(**{field: getattr(args, dest, None)
                                                for dest, field in _POSTPROCESS_OPTIONS.items()})


def add_generator_arguments(g, points_per_side: int, points_help: str) -> None:
    """The MaskGenerator options both commands take (official defaults but points_per_side; the thresholds
    default to None: the model's own, see MaskGenerator.for_model)."""
    g.add_argument("--points-per-side", type=positive_int, default=points_per_side, help=points_help)
    g.add_argument("--points-per-batch", type=positive_int, default=64)
    g.add_argument("--pred-iou-thresh", type=float, default=None,
                   help="default 0.8 (Meta's models) or the model's calibrated value")
    g.add_argument("--stability-score-thresh", type=float, default=None,
                   help="default 0.95 (Meta's models) or the model's calibrated value")
    g.add_argument("--stability-score-offset", type=float, default=1.0)
    g.add_argument("--box-nms-thresh", type=fraction, default=0.7)
    g.add_argument("--crop-n-layers", type=int, default=0)
    g.add_argument("--min-mask-region-area", type=int, default=0,
                   help="fill holes / drop islands up to this many pixels of the 256x256 logit grid")
    g.add_argument("--use-m2m", action="store_true", help="refine every candidate once with its own mask")
    g.add_argument("--single-mask", action="store_true", help="one mask per click instead of three")


def generator_options(args) -> dict:
    """MaskGenerator keyword arguments from the options `add_generator_arguments` defines."""
    names = ("points_per_side", "points_per_batch", "pred_iou_thresh", "stability_score_thresh",
             "stability_score_offset", "box_nms_thresh", "crop_n_layers", "min_mask_region_area", "use_m2m")
    return {**{k: getattr(args, k) for k in names}, "multimask_output": not args.single_mask}


def open_video_writers(out, formats: list[str], vp, name: str) -> list:
    """The writers of `track` and `track-all`: indexed PNGs always, masks.json and overlay.mp4 when asked."""
    from ..video.writers import JsonWriter, OverlayVideoWriter, PngWriter

    writers = [PngWriter(out)]
    if "json" in formats:
        writers.append(JsonWriter(out / "masks.json", name, vp.video_size, vp.num_frames))
    if "mp4" in formats:
        writers.append(OverlayVideoWriter(out / "overlay.mp4", vp.frame, fps=vp.fps, labels_dir=out))
    return writers


def write_results(writers: list, results, finish=None) -> int:
    """Every result to every writer, a frame to all of them or to none (a signal waits for the frame's end),
    then `finish()`; the writers are closed at the end, each of them even when one fails, also on errors,
    Ctrl-C and SIGTERM, so that what finished is kept. -> the number of results written."""
    from .signals import deferred

    done = 0
    try:
        for result in results:
            with deferred():
                for w in writers:
                    w.write(result)
            done += 1
        if finish is not None:
            finish()
    except BaseException:
        _close_all(writers)  # the error in flight is the one to report
        raise
    first = _close_all(writers)
    if first is not None:
        raise first
    return done


def _close_all(writers: list) -> Exception | None:
    """Close every writer (a second signal cannot cut this short); -> the first error a close raised."""
    from .signals import deferred

    first = None
    with deferred():
        for w in writers:
            try:
                w.close()
            except Exception as e:
                first = first or e
    return first


def video_name(path) -> str:
    """A video's name in masks.json: a file's stem, a folder's name."""
    from pathlib import Path

    p = Path(path)
    return p.stem if p.suffix else p.name
