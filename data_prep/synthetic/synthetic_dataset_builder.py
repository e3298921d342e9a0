"""TFDS builder for the synthetic demo data: ``tfds build data_prep/synthetic`` (no manual dir).

It renders a RAVDESS-layout folder of real mp4 files (``synthetic.render``) under the download
directory, then reads it with the RAVDESS layout code and the shared clip pipeline, so the demo
exercises decoding, face framing, audio windows and TFDS writing exactly as a real build does.

Faces: a Haar cascade trained on photographs does not fire on a drawn face, so the synthetic
configs use the ``foreground`` detector (the largest blob unlike the border colour) through the
same face-crop path (largest box, smoothing, square crop with margin, centre-crop fallback).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from mmae_jax.data_prep import clip_builder, protocols
from mmae_jax.data_prep.media.clip import ClipJob
from mmae_jax.data_prep.ravdess import layout
from mmae_jax.data_prep.report import BuildReport
from mmae_jax.data_prep.synthetic import render


@dataclasses.dataclass(eq=False)
class SyntheticConfig(clip_builder.ClipBuilderConfig):
    """A clip config plus what to render (see ``render.RenderSpec``)."""

    image_size: int = 64
    detector: str = "foreground"
    face_margin: float = 0.1
    num_actors: int = 30
    repetitions: int = 2
    seconds: float = 2.0
    fps: int = 12
    frame_size: int = 96
    seed: int = 0
    style: str = "independent"

    def render_spec(self) -> render.RenderSpec:
        return render.RenderSpec(num_actors=self.num_actors, repetitions=self.repetitions, seconds=self.seconds,
                                 fps=self.fps, frame_size=self.frame_size, seed=self.seed, style=self.style)


class Builder(clip_builder.ClipDatasetBuilder):
    """8 classes = 4 drawn expressions x 2 pitch contours; 30 actors x 8 x 2 clips by default
    (config ``coupled``: both modalities show the whole class, see ``render.py``)."""

    DATASET = "synthetic"
    BUILDER_CONFIGS = clip_builder.standard_configs(SyntheticConfig) + [
        SyntheticConfig(name="quick", num_actors=12, repetitions=1, seconds=1.5,
                        description="a small build for the Colab quick run: 12 actors x 8 classes x 1 clip"),
        SyntheticConfig(name="coupled", style="coupled",
                        description="the coupled style (render.py): voice and face each carry the whole class, "
                                    "onset time, head roll and per-clip colours as nuisance; the pre-training "
                                    "evidence setting (docs/pretraining.md)"),
    ]

    def source_dir(self, dl_manager) -> Path:
        """Render (or reuse an identical earlier rendering of) the RAVDESS-layout folder."""
        spec = self.builder_config.render_spec()
        root = Path(dl_manager.download_dir) / "synthetic_ravdess" / self.builder_config.name
        marker = root / "render_spec.json"
        wanted = json.dumps(dataclasses.asdict(spec), sort_keys=True)
        if not (marker.exists() and marker.read_text() == wanted):
            shutil.rmtree(root, ignore_errors=True)  # never mix clips of two renderings
            root.mkdir(parents=True)
            render.render_folder(root, spec, self.num_workers)
            marker.write_text(wanted)
        return root

    def list_clips(self, root: Path, report: BuildReport) -> list[ClipJob]:
        return [ClipJob(layout.clip_source(path), protocols.SYNTHETIC_CLASSES[name.emotion - 1],
                                     name.actor, path.stem)
                for path, name in layout.find_clips(root, report)]
