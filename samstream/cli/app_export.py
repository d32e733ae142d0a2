"""`samstream app export`: a project's masks out of the app's database, without a server.

    samstream app export --data ~/videos --project 1 -o trainset      # a folder `samstream train --data` reads
    samstream app export --data ~/videos --project 1 -o masks.zip --format coco

Writes what GET /api/projects/{id}/export answers: the zip when OUT ends in .zip, else the same files in the
folder OUT (which must be new or empty). The formats: "training" (DAVIS layout: JPEGImages/480p/<video>/ and
Annotations/480p/<video>/, the masked frames only), or one of the video formats (one file per video).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

FORMATS = ("training", "davis", "sav", "coco", "yolo")  # samstream.app.trainset.PROJECT_FORMATS


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="export a project (as a training set too) without a server",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # no default of its own: a sub-parser's default would replace `samstream app --data DIR export ...`'s value
    p.add_argument("--data", default=argparse.SUPPRESS,
                   help="the app's library folder (holding .samstream/app.db; default: the app's --data, else the "
                        "current folder)")
    p.add_argument("--project", type=int, required=True, help="the project's id (as the app shows it)")
    p.add_argument("-o", "--out", required=True, help="output: a .zip file, or a new (or empty) folder")
    p.add_argument("--format", choices=FORMATS, default="training", help="default: training")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..app.library import Library
    from ..app.store import NotFound, Store
    from ..app.trainset import project_files, write_folder, write_zip
    from ..io.atomic import ensure_folder, temp_path

    db = Path(args.data) / ".samstream" / "app.db"
    if not db.is_file():
        raise FileNotFoundError(f"--data {args.data}: no app database there (.samstream/app.db); "
                                "is it the folder `samstream app --data` serves?")
    out = Path(args.out)
    is_zip = out.suffix.lower() == ".zip"
    if not is_zip and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"-o {out}: exists and is not an empty folder")
    store = Store(db)
    try:
        try:
            store.project(args.project)
        except NotFound:
            raise ValueError(f"--project {args.project}: no such project in {db}") from None
        files = project_files(store, Library(args.data), args.project, args.format)
        if is_zip:  # written beside OUT and renamed: a failed export leaves no half zip
            tmp = temp_path(ensure_folder(out.parent) / out.name)
            try:
                with open(tmp, "xb") as f:
                    n = write_zip(files, f)
                os.replace(tmp, out)
            finally:
                tmp.unlink(missing_ok=True)
        else:
            n = write_folder(files, out)
    finally:
        store.close()
    print(json.dumps({"project": args.project, "format": args.format, "files": n, "out": str(out)}))
    return 0
