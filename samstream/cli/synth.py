"""`samstream synth`: write synthetic videos as a DAVIS-layout folder, e.g. a held-out evaluation set.

    samstream synth heldout/ --seeds 1000000:1000060          # 60 videos never seen in training
    samstream eval vos --data heldout --prompt click1 -o results/   # picks up heldout/events.json

OUT gets JPEGImages/480p/<seq>/00000.jpg, Annotations/480p/<seq>/00000.png (indexed, exact),
events.json ({seq: {"objects", "occlusion", "leave_return"}}) and synth.json (the seeds and the
generator's name and settings, to re-create the folder). --generator picks the generator: shapes
(`samstream.train.synthetic`, the default), cutout (photographic, for training; seeds from 1000000 on are
held out) or collage (photographic, for validation only). Its default settings apply unless overridden,
so a held-out set matches the training distribution.

    samstream synth cutout-heldout --generator cutout --seeds 1000000:1000060
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from dataclasses import replace

from .args import folder_path, positive_int


def parse_seeds(text: str) -> list[int]:
    """'A:B' (A..B-1, like a Python range), 'A,B,C', or a mix ('0:10,42'); duplicates are an error."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if ":" in part:
                lo, hi = (int(v) for v in part.split(":"))  # ValueError on 'a:b:c' or non-integers
                if hi <= lo:
                    raise argparse.ArgumentTypeError(
                        f"bad --seeds {text!r}: empty range {part!r} (END must be > START)")
                seeds.extend(range(lo, hi))
            else:
                seeds.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad --seeds {text!r}: expected START:END (END excluded), a comma list of integers, or both "
                f"(e.g. 1000000:1000060 or 7,9,1000000:1000010)") from None
    if any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"bad --seeds {text!r}: seeds must be >= 0")
    dup = sorted(s for s, n in Counter(seeds).items() if n > 1)
    if dup:
        raise argparse.ArgumentTypeError(f"bad --seeds {text!r}: repeated seed(s) {dup[:5]}")
    return seeds


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("synth", help="write synthetic videos as a DAVIS-layout folder (e.g. a held-out set)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", type=folder_path, help="folder to create (must not exist unless --force)")
    p.add_argument("--seeds", required=True, type=parse_seeds, metavar="SEEDS",
                   help="START:END (END excluded), a comma list, or both; training uses 0:600 and held-out "
                        "seeds start at 1000000")
    p.add_argument("--frames", type=positive_int, default=None, help="frames per video (default: the generator's, 24)")
    p.add_argument("--height", type=positive_int, default=None, help="frame height (default 240)")
    p.add_argument("--width", type=positive_int, default=None, help="frame width (default 320)")
    p.add_argument("--generator", choices=("shapes", "cutout", "collage"), default="shapes",
                   help="which generator renders the videos (default shapes)")
    p.add_argument("--backgrounds", metavar="DIR", default=None,
                   help="shapes only: folder of photos to use as backgrounds")
    p.add_argument("--assets", metavar="DIR", default=None,
                   help="cutout and collage: the sam2-assets folder (default $SAMSTREAM_ASSETS, else "
                        "../shared/data/sam2-assets beside the repository)")
    p.add_argument("--force", "--overwrite", dest="force", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1,
                   help="processes that render videos (default: one per CPU core; the output does not depend on it)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_run)
    return p


def _training_seeds_below(generator: str) -> int | None:
    """Seeds below this are (or may be) trained on; None: the generator is never trained on."""
    if generator == "shapes":
        from ..train.recipe import STAGES

        return max(s.videos for s in STAGES)  # the embedded model saw seeds [0, this)
    if generator == "cutout":
        from ..train.generators import CUTOUT_HELDOUT_START

        return CUTOUT_HELDOUT_START
    return None


def _run(args) -> int:
    from ..train import generators
    from ..train.synthetic_set import write_synthetic_set

    if args.backgrounds is not None and args.generator != "shapes":
        raise ValueError(f"--backgrounds is for the shapes generator; {args.generator} takes its photos from --assets")
    if args.assets is not None and args.generator == "shapes":
        raise ValueError("--assets is for the cutout and collage generators; shapes takes --backgrounds")
    over = {k: v for k, v in (("num_frames", args.frames), ("height", args.height), ("width", args.width),
                              ("background_dir", args.backgrounds), ("assets", args.assets)) if v is not None}
    cfg = replace(generators.default_config(args.generator), **over)
    trained = _training_seeds_below(args.generator)
    seen = [s for s in args.seeds if trained is not None and s < trained]
    if seen and not args.quiet:  # allowed (e.g. to inspect training data), but not a held-out set
        print(f"warning: {len(seen)} seed(s) are training seeds (< {trained}), not held out", file=sys.stderr)
    out = write_synthetic_set(args.output, args.seeds, cfg, force=args.force, jobs=args.jobs,
                              progress=not args.quiet, generator=args.generator)
    if not args.quiet:
        print(f"wrote {len(args.seeds)} video(s) to {out}", file=sys.stderr)
    return 0
