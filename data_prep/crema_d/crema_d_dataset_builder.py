"""TFDS builder for CREMA-D. ``tfds build data_prep/crema_d --manual_dir=DIR [--config=NAME]``
where DIR holds ``VideoFlash/ActorID_Sentence_Emotion_Level.flv`` and ``AudioWAV/<same>.wav``.

Six classes (anger, disgust, fear, happy, neutral, sad); speaker = actor id (1001-1091). The
audio comes from the wav (16 kHz), assumed to start with the video's first frame.
"""

from __future__ import annotations

import re
from pathlib import Path

from mmae_jax.data_prep import clip_builder, protocols
from mmae_jax.data_prep.media.clip import ClipJob, ClipSource
from mmae_jax.data_prep.media.errors import BadInputError
from mmae_jax.data_prep.report import BuildReport

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
EMOTION_CODES = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
assert tuple(EMOTION_CODES.values()) == protocols.CREMA_D_EMOTIONS


def parse_name(path: Path) -> tuple[int, str]:
    """(actor id, emotion name) of a CREMA-D file; BadInputError for any other name."""
    match = _NAME.match(path.stem)
    if not match:
        raise BadInputError(str(path), "bad_name", "name is not ActorID_Sentence_Emotion_Level")
    actor, _, emotion, _ = match.groups()
    if emotion not in EMOTION_CODES:
        raise BadInputError(str(path), "bad_name", f"unknown emotion code {emotion}")
    return int(actor), EMOTION_CODES[emotion]


class Builder(clip_builder.ClipDatasetBuilder):
    """CREMA-D: 7,442 clips of 91 actors, 6 emotions."""

    DATASET = "crema_d"
    MANUAL_DOWNLOAD_INSTRUCTIONS = ("Clone github.com/CheyneyComputerScience/CREMA-D (git lfs) and point the "
                                    "manual directory at the folder holding VideoFlash/ and AudioWAV/.")

    def list_clips(self, root: Path, report: BuildReport) -> list[ClipJob]:
        jobs = []
        for video in sorted(p for p in (root / "VideoFlash").glob("*") if p.suffix.lower() == ".flv"):
            audio = root / "AudioWAV" / f"{video.stem}.wav"
            try:
                actor, emotion = parse_name(video)
                if not audio.exists():
                    raise BadInputError(str(video), "missing_audio", f"no matching {audio}")
            except BadInputError as error:
                report.bad_input(error)
                continue
            jobs.append(ClipJob(ClipSource(video=str(video), audio=str(audio)), emotion, actor, video.stem))
        return jobs
