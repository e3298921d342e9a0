"""``mmae-jax predict``: predict the emotion of raw video files with a trained model.

Each file is preprocessed as the checkpoint's training data was (builder config, frames, spectrogram
rendering, fusion strategy) and classified. With each prediction comes the share of relevance
(gradient x input) on the face images versus the spectrogram images. Files that can not be used are
reported and skipped.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

from mmae_jax.cli.arguments import add_checkpoint, add_command, checkpoint_of


def register(subparsers) -> None:
    parser = add_command(subparsers, "predict", run, __doc__)
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files or folders of them")
    add_checkpoint(parser)
    parser.add_argument("--audio", help="a separate audio file for the (one) video, instead of its own track")
    parser.add_argument("--json", action="store_true", help="print one JSON list of the predictions")
    parser.add_argument("--explain", metavar="OUT.png",
                        help="draw the fused frames with their relevance (several files: OUT-<name>.png)")
    parser.add_argument("--no-attribution", action="store_true", help="skip the modality attribution")
    parser.add_argument("--dump-inputs", metavar="DIR",
                        help="write each file's exact model input: DIR/<stem>.npy ([T, S, S, 3] float32, "
                             "normalised as the training pipeline's evaluation input) and DIR/<stem>.png "
                             "(its fused frames in a row)")
    parser.add_argument("--builder-config", default="", metavar="[DATASET/]CONFIG",
                        help="read the media with this data_prep builder config instead of the checkpoint's")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rfas frame order")


def run(args: argparse.Namespace) -> int:
    from mmae_jax.cli.runtime import hide_accelerators_from_tensorflow

    hide_accelerators_from_tensorflow()
    from mmae_jax.infer.media import find_videos
    from mmae_jax.infer.predictor import FileError, Predictor

    if args.no_attribution and args.explain:
        print("error: --explain needs the attribution; drop --no-attribution", file=sys.stderr)
        return 2
    if args.explain:
        check_explain_path(Path(args.explain))
    videos = find_videos(args.videos)
    if not videos:
        print(f"error: no video files in {' '.join(args.videos)}", file=sys.stderr)
        return 2
    try:
        predictor = Predictor(checkpoint_of(args), builder_config=args.builder_config, seed=args.seed)
        results = list(predictor.predict_files(videos, args.audio, attribution=not args.no_attribution))
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    predictions = [result for result in results if not isinstance(result, FileError)]
    for result in results:
        if isinstance(result, FileError):
            print(f"error: {result.file}: {result.kind}: {result.message}", file=sys.stderr)
            continue
        if not result.face_found:
            print(f"warning: {result.file}: no face found in any frame; the face images are centre crops, so "
                  f"the prediction may not reflect a face", file=sys.stderr)
        if not args.json:
            print(format_prediction(result))
    if args.json:
        print(json.dumps([prediction.to_json() for prediction in predictions], indent=2))
    if args.explain:
        _write_explanations(predictions, Path(args.explain))
    if args.dump_inputs:
        _dump_inputs(predictions, Path(args.dump_inputs), predictor.data_cfg.normalization)
    failed = collections.Counter(result.kind for result in results if isinstance(result, FileError))
    if failed:
        counts = ", ".join(f"{kind} {count}" for kind, count in sorted(failed.items()))
        print(f"predicted {len(predictions)} of {len(results)} files; {sum(failed.values())} failed ({counts})",
              file=sys.stderr)
    return 1 if failed else 0


def format_prediction(prediction) -> str:
    """A few lines: the file, its most likely class, the modality shares, every class's probability."""
    lines = [f"{prediction.file}: {prediction.prediction}" + ("" if prediction.face_found else "  [no face found]")]
    attribution = prediction.attribution
    if attribution is not None:
        if attribution.face is None:
            lines[0] += f"  [modality split not separable: {attribution.note}]"
        else:
            lines[0] += (f"  [relevance: face {100 * attribution.face:.1f}%, "
                         f"spectrogram {100 * attribution.spectrogram:.1f}%]")
    width = max(map(len, prediction.probabilities))
    lines += [f"  {name:<{width}}  {probability:6.1%}" for name, probability in prediction.probabilities.items()]
    return "\n".join(lines)


def _unique_stems(predictions) -> list[str]:
    """Each file's stem, numbered ``-2``, ``-3`` ... when files in different folders share one."""
    stems: list[str] = []
    for prediction in predictions:
        stem = base = Path(prediction.file).stem
        number = 1
        while stem in stems:
            number += 1
            stem = f"{base}-{number}"
        stems.append(stem)
    return stems


EXPLAIN_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def check_explain_path(out: Path) -> None:
    """ConfigError for an ``--explain`` path without a picture suffix or in a missing folder."""
    from mmae_jax.errors import ConfigError

    if out.suffix.lower() not in EXPLAIN_SUFFIXES:
        raise ConfigError(f"--explain {out}: the name needs a picture suffix",
                          f"end it with one of {', '.join(EXPLAIN_SUFFIXES)}, e.g. {out.with_suffix('.png')}")
    if not out.absolute().parent.is_dir():
        raise ConfigError(f"--explain {out}: the folder {out.parent} does not exist", "create it first")


def _write_explanations(predictions, out: Path) -> None:
    from mmae_jax.infer.explain_plot import plot_explanation

    for prediction, stem in zip(predictions, _unique_stems(predictions)):
        path = out if len(predictions) == 1 else out.with_name(f"{out.stem}-{stem}{out.suffix}")
        plot_explanation(prediction, path)
        print(f"wrote {path}", file=sys.stderr)


def _dump_inputs(predictions, folder: Path, normalization: str) -> None:
    """``<stem>.npy``: ``to_model_input`` (the normalisation of the training steps) of the fused
    uint8 frames the model read, ``[T, S, S, 3]`` float32; ``<stem>.png``: the frames side by side."""
    import matplotlib.pyplot as plt
    import numpy as np

    from mmae_jax.data.normalize import to_model_input

    folder.mkdir(parents=True, exist_ok=True)
    for prediction, stem in zip(predictions, _unique_stems(predictions)):
        frames = np.asarray(prediction.frames, np.uint8)                        # [T, S, S, 3]
        np.save(folder / f"{stem}.npy", to_model_input(frames, normalization).astype(np.float32))
        plt.imsave(folder / f"{stem}.png", np.concatenate(list(frames), axis=1))
    print(f"wrote {len(predictions)} model inputs to {folder}", file=sys.stderr)
