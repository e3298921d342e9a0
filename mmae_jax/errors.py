"""Expected failures: a user's mistake or a fault of the machine, each told in one line.

The ``mmae-jax`` command catches these at its top level and prints
``error: <what> (<how to fix>)`` with exit code 2 (``EXIT_USER_ERROR``); anything else keeps
its traceback. ``EXIT_PREEMPTED`` is the exit code of a run stopped by SIGTERM after saving
its state (the same command resumes it), like ``EX_TEMPFAIL`` of sysexits.h;
``EXIT_INTERRUPTED`` (128 + SIGINT, as shells report Ctrl-C) that of a run stopped by Ctrl-C,
also after saving its state.
"""

from __future__ import annotations

import errno

EXIT_USER_ERROR = 2
EXIT_PREEMPTED = 75
EXIT_INTERRUPTED = 130
STOP_EXIT_CODES = {"SIGTERM": EXIT_PREEMPTED, "SIGINT": EXIT_INTERRUPTED}


def stopped_line(signal_name: str, step: int | None = None) -> tuple[str, int]:
    """The console line and exit code of a run stopped by ``signal_name`` after saving its state."""
    code = STOP_EXIT_CODES.get(signal_name, EXIT_PREEMPTED)
    what = "Ctrl-C (SIGINT)" if signal_name == "SIGINT" else signal_name
    at = f" at step {step}" if step is not None else " before every run finished"
    return f"stopped by {what}{at}; run the same command to resume (exit code {code})", code

# errno of OSErrors that are a fault of the machine, not of the program, and what to do.
_OS_FAULTS = {
    errno.ENOSPC: "free some space or choose another folder",
    errno.EDQUOT: "free some space or choose another folder",
    errno.EROFS: "choose a writable folder",
    errno.EACCES: "choose a folder you may write to, or fix its permissions",
    errno.EPERM: "choose a folder you may write to, or fix its permissions",
}


class UserError(Exception):
    """A failure the user can fix: ``what`` went wrong and ``fix``, how to put it right."""

    def __init__(self, what: str, fix: str = ""):
        super().__init__(f"{what} ({fix})" if fix else what)
        self.what = what
        self.fix = fix


class ConfigError(UserError, ValueError):
    """An experiment config (or command argument) that can not give the run asked for."""


class InputError(UserError, ValueError):
    """A file or folder given as input that is missing, damaged or of the wrong kind."""


class MissingInputError(InputError, FileNotFoundError):
    """An input file or folder that does not exist (still a FileNotFoundError for callers)."""


class WorkdirError(UserError):
    """A workdir that is in use by another run or holds a different experiment."""


def one_line_cause(error: BaseException) -> str | None:
    """``"<what> (<how to fix>)"`` for an expected failure anywhere in ``error``'s chain, else None.

    Looks through ``__cause__`` / ``__context__`` (libraries such as orbax and TensorFlow wrap
    the OSError of a full disk in their own exceptions) for a ``UserError`` or an OSError
    whose errno is a machine fault (full disk, read-only or forbidden folder).
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, UserError):
            return str(error)
        if isinstance(error, OSError) and error.errno in _OS_FAULTS:
            where = f": {error.filename}" if error.filename else ""
            return f"{error.strerror or errno.errorcode[error.errno]}{where} ({_OS_FAULTS[error.errno]})"
        error = error.__cause__ or error.__context__
    return None
