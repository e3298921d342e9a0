"""IEMOCAP ``dialog/EmoEvaluation/*.txt`` parsing.

Utterance lines look like ``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5, 2.5, 2.5]``;
every other line (annotator details, headers) is ignored. A line that starts like an utterance
line but can not be read, or whose times are not ``0 <= start < end``, is reported.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from mmae_jax.data_prep.media.errors import BadInputError
from mmae_jax.data_prep.report import BuildReport

_LINE = re.compile(r"^\[\s*(\S+)\s*-\s*(\S+)\s*\]\s+(Ses\d\d[FM]_\S+)\s+(\S+)")
_UTTERANCE = re.compile(r"^Ses(\d\d)([FM])_(.+)_([FM])\d+$")
LABELS = {"neu": "neutral", "hap": "happy", "exc": "happy", "sad": "sad", "ang": "angry"}


@dataclasses.dataclass(frozen=True)
class Utterance:
    utterance_id: str
    dialog: str
    session: int
    speaker_gender: str   # 'F' or 'M': the actor who speaks
    recording_gender: str  # the letter after SesNN: the actor who wore the motion-capture markers
    start: float
    end: float
    label: str            # the raw code (neu, hap, exc, ...)

    @property
    def speaker(self) -> int:
        """10 * session + 0 (female) / 1 (male), so the session is ``speaker // 10``."""
        return 10 * self.session + (self.speaker_gender == "M")


def parse_line(line: str, source: Path, number: int) -> Utterance | None:
    """The utterance of one line, None for lines that are not utterance lines."""
    if not line.startswith("[") or "Ses" not in line:
        return None
    where = f"{source}:{number}"
    match = _LINE.match(line)
    ids = _UTTERANCE.match(match.group(3)) if match else None
    if not match or not ids:
        raise BadInputError(where, "bad_annotation", f"can not read {line.strip()!r}")
    try:
        start, end = float(match.group(1)), float(match.group(2))
    except ValueError:
        raise BadInputError(where, "bad_times", f"times are not numbers in {line.strip()!r}") from None
    if not 0 <= start < end:
        raise BadInputError(where, "bad_times", f"times [{start} - {end}] are not 0 <= start < end")
    utterance_id = match.group(3)
    return Utterance(utterance_id, utterance_id.rsplit("_", 1)[0], int(ids.group(1)), ids.group(4), ids.group(2),
                     start, end, match.group(4))


def read_evaluations(root: Path, report: BuildReport) -> list[Utterance]:
    """Every utterance of ``root/Session*/dialog/EmoEvaluation/*.txt``, bad lines reported."""
    utterances = []
    for path in sorted(root.glob("Session*/dialog/EmoEvaluation/*.txt")):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            try:
                utterance = parse_line(line, path, number)
            except BadInputError as error:
                report.bad_input(error)
                continue
            if utterance is not None:
                utterances.append(utterance)
    return utterances
