"""TFDS builder for IEMOCAP. ``tfds build data_prep/iemocap --manual_dir=DIR [--config=NAME]``
where DIR is ``IEMOCAP_full_release`` (``Session1`` ... ``Session5``).

Four classes (neutral, happy + excited, sad, angry); other labels are counted as excluded.
Each utterance is cut from ``Session*/dialog/avi/DivX/<dialog>.avi`` by its EmoEvaluation times,
keeping the half of the frame that shows the speaking actor; the audio is the sentence wav
``Session*/sentences/wav/<dialog>/<utterance>.wav``, which starts at the utterance start.
Speaker ids encode the session: ``10 * session + (0 female, 1 male)``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mmae_jax.data_prep import clip_builder
from mmae_jax.data_prep.iemocap import annotations
from mmae_jax.data_prep.media.clip import ClipJob, ClipSource
from mmae_jax.data_prep.media.errors import BadInputError
from mmae_jax.data_prep.report import BuildReport


@dataclasses.dataclass(eq=False)
class IemocapConfig(clip_builder.ClipBuilderConfig):
    """``marker_actor_side``: the half ('left' or 'right') showing the actor who wore the markers
    (the letter after SesNN in the dialog name); the other actor is on the other half. This is an
    assumption about the release's video layout: check one frame and flip it if needed."""

    marker_actor_side: str = "left"


class Builder(clip_builder.ClipDatasetBuilder):
    """IEMOCAP: 5,531 utterances of 10 actors in 5 sessions, 4 classes."""

    DATASET = "iemocap"
    BUILDER_CONFIGS = clip_builder.standard_configs(IemocapConfig)
    MANUAL_DOWNLOAD_INSTRUCTIONS = ("Request IEMOCAP from sail.usc.edu/iemocap and point the manual directory "
                                    "at IEMOCAP_full_release (holding Session1 ... Session5).")

    def speaker_side(self, utterance: annotations.Utterance) -> str:
        marker_side = self.builder_config.marker_actor_side
        if utterance.speaker_gender == utterance.recording_gender:
            return marker_side
        return "right" if marker_side == "left" else "left"

    def list_clips(self, root: Path, report: BuildReport) -> list[ClipJob]:
        jobs = []
        for utterance in annotations.read_evaluations(root, report):
            if utterance.label not in annotations.LABELS:
                report.exclude(f"label {utterance.label}")
                continue
            session = root / f"Session{utterance.session}"
            video = session / "dialog" / "avi" / "DivX" / f"{utterance.dialog}.avi"
            audio = session / "sentences" / "wav" / utterance.dialog / f"{utterance.utterance_id}.wav"
            missing = [path for path in (video, audio) if not path.exists()]
            if missing:
                report.bad_input(BadInputError(str(missing[0]), "missing_file",
                                               f"needed by utterance {utterance.utterance_id}"))
                continue
            source = ClipSource(video=str(video), audio=str(audio), start=utterance.start, end=utterance.end,
                                audio_start=utterance.start, region=self.speaker_side(utterance))
            jobs.append(ClipJob(source, annotations.LABELS[utterance.label], utterance.speaker,
                                             utterance.utterance_id))
        return jobs
