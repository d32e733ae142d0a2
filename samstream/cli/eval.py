"""`samstream eval score | vos | image`: score existing predictions, or run a predictor on a dataset and score it.

Each sub-command registers itself on the nested sub-parsers through a function in `EVAL_COMMANDS`.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from .args import (
    add_output_argument,
    add_postprocess_arguments,
    add_precision_argument,
    device,
    file_path,
    output_folder,
    positive_int,
    postprocess_from_args,
)

VOS_OUTPUTS = ("masks/*/*.png", "results.json", "results.csv", "jf_per_sequence.png")


def _add_events_args(p: argparse.ArgumentParser, where: str) -> None:
    p.add_argument("--events", metavar="FILE",
                   help="events JSON ({seq: {\"occlusion\": [ids], \"leave_return\": [ids]}}, as `samstream synth` "
                        f"writes): also score those subsets (default: {where}/events.json when present)")
    p.add_argument("--no-events", action="store_true", help="do not score subsets, even if events.json is present")


def _events_file(args: argparse.Namespace, root) -> Path | None:
    """--events, else the dataset's events.json if any (None with --no-events); read once here so that a
    bad file fails before a long tracking run, not after it."""
    from ..eval.events import find_events, read_events

    if args.no_events:
        if args.events:
            raise ValueError("--events and --no-events contradict each other")
        return None
    path = Path(args.events) if args.events else find_events(root)
    if path is not None:
        read_events(path)
    return path


def _show_scores(results, events: Path | None, quiet: bool) -> None:
    """`eval score` and `eval vos`: add the hard subsets' J&F (eval/events.py) when there is an events file, print
    the scoring's warnings, and the table unless quiet."""
    from ..eval.events import add_subsets
    from ..eval.report import format_table

    if events is not None:
        add_subsets(results, events)
    for w in results.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not quiet:
        print(format_table(results))


def _run_score(args: argparse.Namespace) -> int:
    from ..eval.report import plot_sequences, write_csv, write_json
    from ..eval.vos import evaluate_vos

    events = _events_file(args, args.gt)
    results = evaluate_vos(
        args.gt, args.pred, layout=args.layout, protocol=args.protocol, sequences=args.sequences,
        strict=args.strict, skip_first_last=not args.no_skip_first_last, void=args.void,
        allow_missing=args.allow_missing, n_procs=args.procs, progress=not args.quiet,
    )
    _show_scores(results, events, args.quiet)
    if args.json:
        print(f"wrote {write_json(results, args.json)}", file=sys.stderr)
    if args.csv:
        print(f"wrote {write_csv(results, args.csv)}", file=sys.stderr)
    if args.plot:
        print(f"wrote {plot_sequences(results, args.plot)}", file=sys.stderr)
    return 0


def add_score_parser(eval_sub) -> argparse.ArgumentParser:
    p = eval_sub.add_parser(
        "score", help="score existing VOS predictions (J, F, J&F)",
        description="Score predicted masks against ground truth with the DAVIS 2017 / SA-V J&F. "
                    "Folders hold one sub-folder per sequence: indexed PNGs per frame (DAVIS layout) or "
                    "<obj>/<frame>.png binary PNGs (SA-V layout); DAVIS roots with Annotations/480p work too.",
    )
    p.add_argument("--gt", required=True, help="ground-truth folder (or DAVIS / SA-V dataset root)")
    p.add_argument("--pred", required=True, help="prediction folder, same layout as the ground truth")
    p.add_argument("--json", type=file_path, metavar="FILE",
                   help="write the summary JSON (J&F, J, F, per sequence and object)")
    p.add_argument("--csv", type=file_path, metavar="FILE", help="write one CSV row per object of each sequence")
    p.add_argument("--plot", type=file_path, metavar="FILE.png",
                   help="bar plot of J&F per sequence (needs matplotlib)")
    p.add_argument("--layout", choices=["auto", "davis", "sav"], default="auto",
                   help="mask layout (default: detected per video)")
    p.add_argument("--protocol", choices=["auto", "davis", "sav"], default="auto",
                   help="scoring rules: DAVIS 2017 toolkit or SA-V evaluator (default: same as the layout)")
    p.add_argument("--procs", type=positive_int, default=1, metavar="N", help="worker processes (default 1)")
    p.add_argument("--no-skip-first-last", action="store_true",
                   help="also score the first and last frame (not the semi-supervised standard)")
    p.add_argument("--void", choices=["background", "ignore"], default="background",
                   help="ground-truth 255: background (DAVIS toolkit default) or excluded from J and F")
    p.add_argument("--sequences", nargs="+", metavar="SEQ", help="score only these sequences")
    p.add_argument("--strict", action="store_true", help="fail when a ground-truth sequence has no prediction")
    p.add_argument("--allow-missing", action="store_true",
                   help="score missing prediction PNGs as empty masks (the DAVIS toolkit does) instead of failing")
    _add_events_args(p, "GT (or its dataset root)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no table")
    p.set_defaults(func=_run_score)
    return p


def _run_image(args: argparse.Namespace) -> int:
    from ..eval.image import (
        coco_image_samples,
        davis_image_samples,
        evaluate_image_clicks,
        format_click_table,
        plot_click_curve,
        write_click_json,
    )

    if args.coco:
        images = args.images or args.data
        if images is None:
            raise ValueError("--coco needs the image folder: --images DIR (or --data DIR)")
        samples = coco_image_samples(args.coco, images, every=args.every)
    elif args.data:
        samples = davis_image_samples(args.data, images=args.images, every=args.every, sequences=args.sequences)
    else:
        raise ValueError("give a DAVIS-layout folder (--data DIR) or a COCO file (--coco JSON --images DIR)")
    if len(samples) == 0:
        raise ValueError("the dataset has no objects to evaluate")

    from ..load import load_model
    from ..predictor import ImagePredictor

    model = load_model(args.model, device=args.device)
    predictor = ImagePredictor(model, postprocess_from_args(args, model), mirror=args.mirror, precision=args.precision)
    results = evaluate_image_clicks(predictor, samples, max_clicks=args.max_clicks, progress=not args.quiet)
    results.settings.update(model=args.model, data=args.data, coco=args.coco, every=args.every, mirror=args.mirror,
                            edge_refine=predictor.postprocess.edge_refine_radius, precision=args.precision)
    if not args.quiet:
        print(format_click_table(results))
    if args.json:
        print(f"wrote {write_click_json(results, args.json)}", file=sys.stderr)
    if args.plot:
        print(f"wrote {plot_click_curve(results, args.plot)}", file=sys.stderr)
    return 0


def add_image_parser(eval_sub) -> argparse.ArgumentParser:
    p = eval_sub.add_parser(
        "image", help="interactive image segmentation with simulated clicks (mIoU@1/5, NoC@85/90)",
        description="Run a model with simulated clicks (first click at the object's interior point farthest "
                    "from its boundary, each next one in the largest error region; all clicks and the previous "
                    "low-res mask are fed back, three masks on the first click) and report mIoU after 1 and 5 "
                    "clicks and NoC@85 / NoC@90. Data: a DAVIS-layout folder (every annotated frame is an image, "
                    "each object a sample) or a COCO JSON with its image folder.",
    )
    p.add_argument("--data", help="DAVIS-layout dataset root (Annotations/ and JPEGImages/) or mask folder")
    p.add_argument("--coco", metavar="JSON", help="COCO dataset JSON (one sample per non-crowd annotation)")
    p.add_argument("--images", metavar="DIR",
                   help="image folder: COCO file_names are relative to it; for DAVIS, one sub-folder per sequence "
                        "(default: JPEGImages beside the annotations)")
    p.add_argument("--model", default=None, help="official name (sam2.1-hiera-large) or checkpoint path; "
                                                 "default: the embedded model")
    p.add_argument("--device", type=device, default="cpu")
    p.add_argument("--max-clicks", type=positive_int, default=20, metavar="N", help="clicks per object (default 20)")
    p.add_argument("--mirror", action="store_true",
                   help="test-time augmentation: also predict on the mirrored image and average (about 2x the time)")
    add_precision_argument(p)
    add_postprocess_arguments(p, "image", video=False)
    p.add_argument("--every", type=positive_int, default=1, metavar="N",
                   help="use every N-th annotated frame of each sequence (COCO: every N-th image)")
    p.add_argument("--sequences", nargs="+", metavar="SEQ", help="DAVIS: only these sequences")
    p.add_argument("--json", type=file_path, metavar="FILE",
                   help="write the summary, the mean IoU per click and per-object traces")
    p.add_argument("--plot", type=file_path, metavar="FILE.png",
                   help="plot of mean IoU against clicks (needs matplotlib)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no table")
    p.set_defaults(func=_run_image)
    return p


def _run_vos(args: argparse.Namespace) -> int:
    from ..eval.report import plot_sequences, write_csv, write_json
    from ..eval.vos import evaluate_vos
    from ..eval.vos_run import run_vos
    from ..load import load_model

    folder = output_folder(args, VOS_OUTPUTS, inputs=(args.data,))
    events = _events_file(args, args.data)
    model = load_model(args.model, device=args.device, postprocessing=args.postprocessing)
    out = folder.prepare()
    masks = run_vos(model, args.data, out / "masks", prompt=args.prompt, sequences=args.sequences,
                    progress=not args.quiet, static=args.static, mirror=args.mirror,
                    postprocess=postprocess_from_args(args, model), precision=args.precision)
    results = evaluate_vos(args.data, masks, sequences=args.sequences, progress=not args.quiet)
    _show_scores(results, events, args.quiet)
    write_json(results, out / "results.json")
    write_csv(results, out / "results.csv")
    if args.plot:
        plot_sequences(results, out / "jf_per_sequence.png")
    print(f"masks in {masks}; scores in {out / 'results.json'} and {out / 'results.csv'}", file=sys.stderr)
    return 0


def add_vos_parser(eval_sub) -> argparse.ArgumentParser:
    from ..eval.vos_run import PROMPTS

    p = eval_sub.add_parser(
        "vos", help="semi-supervised VOS: track from first-frame prompts, then score J&F",
        description="Prompt every object on the first frame (ground-truth mask, 1/3/5 simulated clicks, or its "
                    "box), track it through the sequence, write indexed PNGs and score them with the DAVIS "
                    "J&F. Data: a DAVIS-layout folder (JPEGImages/480p and Annotations/480p). With an events file "
                    "(DATA/events.json, as `samstream synth` writes), also the J&F of the objects that are fully "
                    "occluded, leave the frame and return, or either.",
    )
    p.add_argument("--data", required=True, help="DAVIS-layout dataset root")
    p.add_argument("--model", default=None, help="official name or checkpoint path; default: the embedded model")
    p.add_argument("--prompt", choices=PROMPTS, default="mask", help="first-frame prompt (default: mask)")
    p.add_argument("--sequences", nargs="+", metavar="SEQ", help="only these sequences")
    p.add_argument("--device", type=device, default="cpu")
    p.add_argument("--postprocessing", action="store_true",
                   help="Meta's builder post-processing (their evaluation scripts run without it)")
    p.add_argument("--mirror", action="store_true",
                   help="test-time augmentation: also track on the mirrored video and average (about 2x the time)")
    p.add_argument("--static", action="store_true",
                   help="score the static baseline instead of tracking: the first frame's masks (with --prompt "
                        "mask, the ground truth) copied to every frame")
    add_precision_argument(p)
    add_postprocess_arguments(p)
    p.add_argument("--plot", action="store_true", help="also write a bar plot of J&F per sequence")
    add_output_argument(p, VOS_OUTPUTS, "masks/, results.json, results.csv")
    _add_events_args(p, "DATA")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no table")
    p.set_defaults(func=_run_vos)
    return p


#: Registrars of `samstream eval <command>`; each takes the nested subparsers object.
EVAL_COMMANDS: list[Callable] = [add_score_parser, add_vos_parser, add_image_parser]


def add_parser(subparsers) -> argparse._SubParsersAction:
    """Register `eval` on the top-level subparsers; returns the nested `eval` subparsers object."""
    p = subparsers.add_parser("eval", help="evaluate segmentation (VOS J&F, interactive clicks)",
                              description="Evaluation commands.")
    eval_sub = p.add_subparsers(dest="eval_command", metavar="COMMAND", required=True)

    def _help(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=_help)
    for register in EVAL_COMMANDS:
        register(eval_sub)
    return eval_sub
