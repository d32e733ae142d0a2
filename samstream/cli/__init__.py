"""Command-line entry point: `samstream <command> ...`.

One module per command, each thin over library functions; it exposes `add_parser(subparsers)`, which
registers the sub-command and sets `func` (called with the parsed args, returns an exit code). Argument
types and option groups that several commands share live in `args`.

Errors: `main` is the one place that turns an expected error into one line `error: ...` on stderr and an exit
code (`EXIT_CODES`); anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import sys

# the modules of this package that register a sub-command, in the order `samstream --help` lists them
COMMANDS = ["segment", "track", "segment_all", "track_all", "eval", "train", "train_default", "finetune_default",
            "synth", "app", "export", "batch"]


# bad input: a value, a file that is missing, in the way or not what it should be (the project's own error
# classes are ValueErrors)
BAD_INPUT = (ValueError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError)
# the machine refused: disk full or over quota, read-only filesystem, no permission
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
EXIT_CODES = {"bad input": 2, "environment": 1}  # and 128 + the signal number when interrupted
_EPILOG = ("exit status: 0 done; 2 bad input (an option, a missing or malformed file, a non-empty output folder); "
           "1 the machine refused (disk full, read-only filesystem, no permission); 130 interrupted (143 SIGTERM, "
           "129 SIGHUP). Errors are one line starting with 'error:'.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="samstream", description="SAM 2 segmentation for images and videos",
                                     epilog=_EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def run(argv: list[str] | None = None) -> int:
    """Parse and run one command, letting its errors propagate (for callers that handle them)."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


def error_message(e: BaseException) -> str:
    """One line for an expected error: the OS's own errors as "PATH: reason", ours as their message."""
    if isinstance(e, OSError) and e.strerror and e.filename:
        where = f"{e.filename} -> {e.filename2}" if e.filename2 else e.filename
        text = f"{where}: {e.strerror}"
    elif isinstance(e, OSError) and e.strerror:
        text = e.strerror
    else:
        text = str(e) or type(e).__name__
    return " ".join(text.split("\n"))


def main(argv: list[str] | None = None) -> int:
    """`samstream ...`: an expected error becomes one line `error: ...` and exit code 2 (bad input) or 1 (the
    environment: disk full, read-only, permission); Ctrl-C or a termination signal 128 + its number (130)."""
    from .signals import interruptible

    try:
        with interruptible():  # SIGTERM and SIGHUP end a command like Ctrl-C: its clean-up runs
            return run(argv)
    except KeyboardInterrupt as e:
        print(str(e) or "interrupted", file=sys.stderr)
        return getattr(e, "exit_code", 130)  # 128 + the signal number
    except BAD_INPUT as e:
        print(f"error: {error_message(e)}", file=sys.stderr)
        return EXIT_CODES["bad input"]
    except OSError as e:
        if e.errno not in ENVIRONMENT_ERRNOS:
            raise
        print(f"error: {error_message(e)}", file=sys.stderr)
        return EXIT_CODES["environment"]
