"""`samstream batch track | track-all | eval vos`: the same jobs over many videos, on a Ray cluster.

    samstream batch track videos.jsonl -o out/ [--address auto] [--workers 4] [--gpus-per-worker 1]
    samstream batch track-all DAVIS_ROOT -o out/
    samstream batch eval vos --data DAVIS_ROOT -o out/

MANIFEST: a JSONL file, one video a line: {"video": PATH, "prompts": ["0:1:210,350"], "boxes": [...],
"masks": DAVIS_PNG_OR_NULL, "id": NAME}, or a DAVIS-layout folder (its first-frame masks are the prompts).
Each video's files (as `samstream track` writes them) go to OUT/<id>/, complete or absent; a rerun skips
finished videos. OUT/failures.jsonl lists the videos that failed, OUT/summary.json the counts and frames/s.
Without --address a local Ray starts; needs `pip install 'samstream[ray]'`. See docs/batch.md.
Exit status 2 when some video failed (the others are done), as for any bad input.
"""
from __future__ import annotations

import argparse
import sys

from .args import (
    add_generator_arguments,
    add_postprocess_arguments,
    add_precision_argument,
    allow_negative_values,
    fraction,
    generator_options,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    video_formats,
)

_POSTPROCESS = {"edge_refine": "edge_refine_radius", "min_region_area": "min_region_area",
                "non_overlap": "non_overlap_masks"}


def _add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cluster")
    g.add_argument("--address", default=None, metavar="ADDRESS",
                   help="join this Ray cluster (HOST:PORT, ray://HOST:PORT, or auto: the one `ray start` started "
                        "on this machine); default: start a local Ray on 127.0.0.1")
    g.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="worker processes, each with its own model (default: as many as the cluster has room for)")
    g.add_argument("--cpus-per-worker", type=positive_float, default=1.0, metavar="C",
                   help="Ray CPUs per worker, also its torch threads (default 1)")
    g.add_argument("--gpus-per-worker", type=non_negative_float, default=0.0, metavar="G",
                   help="Ray GPUs per worker; > 0 runs the model on the GPU (fractions share one; default 0: CPU)")
    add_precision_argument(g)


def _postprocess(args) -> dict:
    return {field: getattr(args, dest) for dest, field in _POSTPROCESS.items() if getattr(args, dest, None) is not None}


def _common(args) -> dict:
    return dict(address=args.address, workers=args.workers, cpus_per_worker=args.cpus_per_worker,
                gpus_per_worker=args.gpus_per_worker, model=args.model, precision=args.precision,
                progress=not args.quiet)


def _finish(summary: dict) -> int:
    if summary["failed"]:
        print(f"error: {summary['failed']} video(s) failed: {', '.join(summary['failures'][:5])}"
              f"{' ...' if summary['failed'] > 5 else ''} (see failures.jsonl; a rerun retries them)", file=sys.stderr)
        return 2
    return 0


def _run_track(args) -> int:
    from .. import batch

    return _finish(batch.track(args.manifest, args.output, formats=args.format, direction=args.direction,
                               max_frames=args.max_frames, postprocessing=not args.no_postprocessing,
                               mirror=args.mirror, postprocess=_postprocess(args), **_common(args)))


def _run_track_all(args) -> int:
    from .. import batch

    return _finish(batch.track_all(
        args.manifest, args.output, formats=args.format, max_frames=args.max_frames, key_every=args.key_every,
        new_object_overlap=args.new_object_overlap, min_new_area=args.min_new_area, max_objects=args.max_objects,
        drop_after=args.drop_after, mirror=args.mirror, generator=generator_options(args),
        postprocessing=not args.no_postprocessing, **_common(args)))


def _run_vos(args) -> int:
    from .. import batch
    from ..eval.report import plot_sequences, write_csv, write_json
    from .eval import _events_file, _show_scores

    events = _events_file(args, args.data)
    summary, results = batch.eval_vos(args.data, args.output, prompt=args.prompt, sequences=args.sequences,
                                      postprocessing=args.postprocessing, static=args.static, mirror=args.mirror,
                                      postprocess=_postprocess(args), **_common(args))
    if results is None:
        return _finish(summary)
    _show_scores(results, events, args.quiet)
    out = batch.BatchOutput(args.output).root
    write_json(results, out / "results.json")
    write_csv(results, out / "results.csv")
    if args.plot:
        plot_sequences(results, out / "jf_per_sequence.png")
    print(f"masks in {out / 'masks'}; scores in {out / 'results.json'} and {out / 'results.csv'}", file=sys.stderr)
    return 0


def _add_common(p: argparse.ArgumentParser, default_postprocessing: bool = True) -> None:
    p.add_argument("-o", "--output", required=True,
                   help="output folder: new, or an earlier batch run's with the same settings (resumed)")
    p.add_argument("--model", default=None, help="official model name or checkpoint path (default: the built-in "
                                                 "model); a path must be readable on every node")
    _add_cluster_arguments(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars and no summary line")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("batch", help="track or evaluate many videos on a Ray cluster (local by default)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="batch_command", metavar="COMMAND", required=True)

    t = sub.add_parser("track", help="`samstream track` for every video of a manifest",
                       description="`samstream track` for every video of MANIFEST, into OUT/<id>/.")
    allow_negative_values(t)
    t.add_argument("manifest", help="JSONL manifest (one video a line) or a DAVIS-layout folder")
    _add_common(t)
    t.add_argument("--format", type=video_formats, default=["png"], help="comma list of png,json,mp4 (png always)")
    t.add_argument("--direction", choices=("forward", "backward", "both"), default="forward")
    t.add_argument("--max-frames", type=non_negative_int, default=None, help="frames to track after the start")
    t.add_argument("--no-postprocessing", action="store_true", help="as `samstream track --no-postprocessing`")
    t.add_argument("--mirror", action="store_true", help="mirror test-time augmentation (about 2x the time)")
    add_postprocess_arguments(t)
    t.set_defaults(func=_run_track)

    a = sub.add_parser("track-all", help="`samstream track-all` for every video of a manifest",
                       description="`samstream track-all` for every video of MANIFEST (its prompts unused).")
    a.add_argument("manifest", help="JSONL manifest (one video a line) or a DAVIS-layout folder")
    _add_common(a)
    a.add_argument("--format", type=video_formats, default=["png"], help="comma list of png,json,mp4 (png always)")
    a.add_argument("--max-frames", type=non_negative_int, default=None, help="frames to process after frame 0")
    a.add_argument("--key-every", type=positive_int, default=10, help="as `samstream track-all` (default 10)")
    a.add_argument("--new-object-overlap", type=fraction, default=0.3)
    a.add_argument("--min-new-area", type=positive_int, default=100)
    a.add_argument("--max-objects", type=int, default=255)
    a.add_argument("--drop-after", type=positive_int, default=None, metavar="N")
    add_generator_arguments(a.add_argument_group("generator on key frames (as `samstream track-all`)"), 16,
                            "clicks per frame side on key frames (default 16)")
    a.add_argument("--no-postprocessing", action="store_true")
    a.add_argument("--mirror", action="store_true")
    a.set_defaults(func=_run_track_all)

    e = sub.add_parser("eval", help="evaluation over a dataset on the cluster", description="Evaluation.")
    esub = e.add_subparsers(dest="batch_eval_command", metavar="COMMAND", required=True)
    v = esub.add_parser("vos", help="`samstream eval vos`, one sequence a task; the same J&F",
                        description="`samstream eval vos` with the tracking spread over the workers (one sequence "
                                    "a task) and the scoring on this machine: OUT/masks/<seq>/, results.json, "
                                    "results.csv, as `eval vos` writes them.")
    from ..eval.vos_run import PROMPTS

    v.add_argument("--data", required=True, help="DAVIS-layout dataset root (on a path every node reads)")
    _add_common(v)
    v.add_argument("--prompt", choices=PROMPTS, default="mask", help="first-frame prompt (default: mask)")
    v.add_argument("--sequences", nargs="+", metavar="SEQ", help="only these sequences")
    v.add_argument("--postprocessing", action="store_true", help="as `samstream eval vos --postprocessing`")
    v.add_argument("--mirror", action="store_true")
    v.add_argument("--static", action="store_true", help="as `samstream eval vos --static`")
    add_postprocess_arguments(v)
    v.add_argument("--plot", action="store_true", help="also write a bar plot of J&F per sequence")
    v.add_argument("--events", metavar="FILE", help="as `samstream eval vos --events`")
    v.add_argument("--no-events", action="store_true")
    v.set_defaults(func=_run_vos)
    return p
