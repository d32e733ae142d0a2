"""Termination signals end a command the way Ctrl-C does, so its clean-up runs.

Inside `interruptible()`, SIGINT, SIGTERM and SIGHUP raise `Interrupted` (a KeyboardInterrupt) in the main
thread: the commands' `finally` blocks close their writers, so finished frames are kept and temporary files
moved into place or removed. Exit code 128 + the signal number (130 SIGINT, 143 SIGTERM, 129 SIGHUP), as a
shell reports a process killed by that signal.

`deferred()` marks a step that must not be cut in half (one frame written to every output, the writers
closed): a signal arriving inside it is raised when the step ends. After the first signal, later ones are
ignored until the command returns, so the clean-up finishes (SIGKILL still ends the process).
"""
from __future__ import annotations

import contextlib
import signal
import threading

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Interrupted(KeyboardInterrupt):
    """A command ended by a signal; `exit_code` is 128 + its number."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _State:
    installed = False
    depth = 0  # nesting of deferred() blocks
    pending: int | None = None  # a signal that arrived inside a deferred() block
    raised = False


_state = _State()


def _handler(signum, frame) -> None:
    if _state.raised:
        return
    if _state.depth:
        _state.pending = signum
        return
    _state.raised = True
    raise Interrupted(signum)


@contextlib.contextmanager
def interruptible():
    """Handle SIGINT, SIGTERM and SIGHUP as `Interrupted` inside this block; the previous handlers are restored
    after. Signals the caller ignores (`nohup`, background jobs) stay ignored. Outside the main thread (where
    Python cannot set handlers) this does nothing."""
    if _state.installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in SIGNALS}
    for s, h in old.items():
        if h is not signal.SIG_IGN:
            signal.signal(s, _handler)
    _state.installed, _state.depth, _state.pending, _state.raised = True, 0, None, False
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, signal.SIG_DFL if h is None else h)  # None: a handler not set from Python
        _state.installed, _state.depth, _state.pending, _state.raised = False, 0, None, False


@contextlib.contextmanager
def deferred():
    """A signal arriving inside this block is raised as `Interrupted` when it ends (unless it ends with an
    error of its own). Without `interruptible()` around it, signals behave as usual."""
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
    if not _state.depth and _state.pending is not None and not _state.raised:
        signum, _state.pending, _state.raised = _state.pending, None, True
        raise Interrupted(signum)
