"""The one error type the media code raises for input it can not use."""

from __future__ import annotations


class BadInputError(ValueError):
    """A source file (or one entry of an annotation file) that can not give a correct example.

    Builders catch it, report ``path`` and ``reason``, skip the clip and count it; ``kind`` is a
    short stable tag (``corrupt``, ``no_audio``, ``too_short``, ...) used for the summary.
    """

    def __init__(self, path: str, kind: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.kind = kind
        self.reason = reason

    def __reduce__(self):  # survives the trip back from a worker process
        return type(self), (self.path, self.kind, self.reason)
