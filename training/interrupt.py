"""Ctrl-C (SIGINT): a run stops cleanly, records itself as interrupted and says how to resume.

A KeyboardInterrupt can land anywhere, also between two parameter updates of one optimizer step,
which would leave nothing consistent to checkpoint. So while the training loop runs, Ctrl-C only
asks it to stop (`stop_requested`): the loop stops at the next step boundary and saves a
checkpoint there, from which `resume=true` ends exactly where the uninterrupted run would. A
second Ctrl-C stops at once. Before the run starts (imports, Hydra's setup), Ctrl-C ends the
process with one line. Either way the exit status is 130, as a shell reports a command that
Ctrl-C stopped, and there is no traceback.
"""
from __future__ import annotations

import shlex
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

EXIT_STATUS = 130  # 128 + SIGINT


class StopRequest:
    """Called by the training loop between steps: True once Ctrl-C was pressed."""

    def __init__(self):
        self.requested = False

    def __call__(self) -> bool:
        return self.requested


@contextmanager
def stop_requested() -> Iterator[StopRequest]:
    """While inside, the first Ctrl-C sets the request and the second raises KeyboardInterrupt."""
    request = StopRequest()
    if not _may_handle_sigint():
        yield request
        return

    def ask_to_stop(signum, frame) -> None:
        if request.requested:
            raise KeyboardInterrupt
        request.requested = True

    previous = signal.signal(signal.SIGINT, ask_to_stop)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)


def exit_quietly_on_interrupt() -> None:
    """Until `interrupt_with_keyboard_interrupt`, Ctrl-C ends the process with one line."""
    if _may_handle_sigint():
        signal.signal(signal.SIGINT, _exit_before_the_run)


def interrupt_with_keyboard_interrupt() -> None:
    """Back to Python's own Ctrl-C (KeyboardInterrupt), which a run turns into its record."""
    if signal.getsignal(signal.SIGINT) is _exit_before_the_run:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _exit_before_the_run(signum, frame) -> None:
    exit_interrupted("interrupted before training started")


def exit_interrupted(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
    sys.exit(EXIT_STATUS)


def _may_handle_sigint() -> bool:
    """Only the main thread may set signal handlers; a process that ignores SIGINT (started in the
    background by a shell) keeps ignoring it."""
    return threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN


def resume_command(argv: list[str], folder: str | Path, sweep: bool) -> str:
    """The command line that continues an interrupted run: the same one, pointed at its folder,
    with resume=true; for a sweep, at the sweep's folder with skip_complete=true, which skips the
    finished jobs and resumes the others."""
    script, *overrides = argv
    flag, folder_key = ("skip_complete", "hydra.sweep.dir") if sweep else ("resume", "hydra.run.dir")
    kept = [arg for arg in overrides if _key(arg) not in (flag, folder_key)]
    return shlex.join(["python", script, *kept, f"{flag}=true", f"{folder_key}={folder}"])


def interrupted_sweep_line(argv: list[str]) -> str:
    """The line for a sweep that Ctrl-C stopped while its launcher waited for jobs in other
    processes (hydra/launcher=local), which record themselves."""
    given = [arg.split("=", 1)[1] for arg in argv if _key(arg) == "hydra.sweep.dir"]
    folder = given[-1] if given else "<the sweep output dir above>"
    return f"interrupted; resume the sweep with: {resume_command(argv, folder, sweep=True)}"


def _key(argument: str) -> str:
    return argument.split("=", 1)[0].lstrip("+~")
