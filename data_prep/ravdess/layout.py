"""The RAVDESS file layout: ``Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4``.

MM modality (01 audio-video), VV vocal channel (01 speech), EE emotion 01-08, II intensity,
SS statement, RR repetition, AA actor (must match the folder). The synthetic builder writes the
same layout and reads it with this module.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from mmae_jax.data_prep.media.clip import ClipSource
from mmae_jax.data_prep.media.errors import BadInputError
from mmae_jax.data_prep.report import BuildReport

_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_ACTOR_DIR = re.compile(r"^Actor_(\d\d)$")
AUDIO_VIDEO, SPEECH = 1, 1
NUM_EMOTIONS = 8


@dataclasses.dataclass(frozen=True)
class RavdessName:
    modality: int
    vocal_channel: int
    emotion: int
    intensity: int
    statement: int
    repetition: int
    actor: int


def parse_name(path: Path) -> RavdessName:
    """The fields of a RAVDESS file name; BadInputError when the name or its actor folder is wrong."""
    match = _NAME.match(path.stem)
    if not match:
        raise BadInputError(str(path), "bad_name", "name is not MM-VV-EE-II-SS-RR-AA")
    name = RavdessName(*(int(field) for field in match.groups()))
    if not 1 <= name.emotion <= NUM_EMOTIONS:
        raise BadInputError(str(path), "bad_name", f"emotion code {name.emotion:02d} is not 01-08")
    folder = _ACTOR_DIR.match(path.parent.name)
    if not folder or int(folder.group(1)) != name.actor:
        raise BadInputError(str(path), "bad_name", f"actor {name.actor:02d} in the name but folder {path.parent.name}")
    return name


def find_clips(root: Path, report: BuildReport) -> list[tuple[Path, RavdessName]]:
    """Audio-video speech clips under ``root`` (sorted); other RAVDESS files are counted as excluded."""
    clips = []
    for path in sorted(p for p in root.glob("Actor_*/*") if p.suffix.lower() == ".mp4"):  # .mp4, .MP4 ...
        try:
            name = parse_name(path)
        except BadInputError as error:
            report.bad_input(error)
            continue
        if (name.modality, name.vocal_channel) != (AUDIO_VIDEO, SPEECH):
            report.exclude("not an audio-video speech clip")
            continue
        clips.append((path, name))
    return clips


def clip_source(path: Path) -> ClipSource:
    """The whole mp4, audio from its own track."""
    return ClipSource(video=str(path))
