"""The original notebook's own split, recovered from the archive it trains on.

The notebook downloads ``RAVDESS_FSLF.zip`` (Hugging Face dataset ``NoahMartinezXiang/RAVDESS``)
and reads ``RAVDESS_FSLF/{train,val,test}/<Class>/<name>.mp4``: one fused FSLF clip per file,
renamed (``test293.mp4``), 16 frames of which the last 8 are the face frames 0, 6, ..., 42
of the source clip (``fusion.frame_order``). Their clip ids are not in the archive, so each
file is matched to a stored clip by content: its face frames against the stored build's
faces at the same frames (a ``notebook_mfcc`` build: stored positions 0, 2, ..., 14), both reduced
to small grey thumbnails, so re-encoding (mp4v, JPEG, another resize) moves them little.

A file is matched when its nearest stored clip is clearly nearer than the next one
(``MARGIN``), under ``MAX_DISTANCE``, of the class its folder names, and no other file of the
same split folder took that clip; otherwise the whole archive is refused, naming the files.

``match_archive`` -> ``ArchiveMatch``: the split names per stored clip (a clip in both the
train and the val folder is 'train+validation') and each file's clip id, written by
``write_archive_split_files`` as the files ``mmae-jax splits`` writes.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from mmae_jax.data.fusion import frame_order
from mmae_jax.errors import InputError

FOLDERS = {"train": "train", "val": "validation", "test": "test"}
# The notebook's class folders (os.listdir order in its outputs) -> the stored label names.
CLASS_FOLDERS = {"Happy": "happy", "Surprised": "surprised", "Neutral": "neutral", "Angry": "angry",
                 "Disgust": "disgust", "Sad": "sad", "Fear": "fearful"}
ARCHIVE_STRATEGIES = ("fslf", "ffls", "ofos")
THUMBNAIL = 32          # grey thumbnails of THUMBNAIL x THUMBNAIL pixels
MAX_DISTANCE = 20.0     # RMS grey-level distance of a match (0..255 scale)
MARGIN = 1.5            # the second nearest clip must be this many times farther


@dataclasses.dataclass(frozen=True)
class ArchiveFile:
    """One fused clip of the archive: its path inside it, split folder and class folder."""

    path: str
    split: str          # train | validation | test
    label_name: str     # the stored label name of its class folder


@dataclasses.dataclass(frozen=True)
class ArchiveMatch:
    """The recovered split: ``names`` [N] of the stored clips ``clip_ids`` ('' when in no
    folder), ``clip_of`` archive path -> clip id, ``distances`` archive path -> RMS distance."""

    clip_ids: list[str]
    names: np.ndarray
    clip_of: dict[str, str]
    distances: dict[str, float]

    def overlap(self, first: str, second: str) -> int:
        """How many stored clips are in both splits ``first`` and ``second``."""
        return int(sum(first in name.split("+") and second in name.split("+") for name in self.names))

    def count(self, split: str) -> int:
        return int(sum(split in name.split("+") for name in self.names))


def list_archive(root: Path) -> list[ArchiveFile]:
    """Every mp4 under ``root`` laid out as ``.../{train,val,test}/<Class>/<name>.mp4``.

    Raises InputError naming files elsewhere or in a class folder the notebook does not have.
    """
    found, bad = [], []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        parts = PurePosixPath(path.relative_to(root).as_posix()).parts
        if len(parts) >= 3 and parts[-3] in FOLDERS and parts[-2] in CLASS_FOLDERS and path.suffix == ".mp4":
            found.append(ArchiveFile(str(path), FOLDERS[parts[-3]], CLASS_FOLDERS[parts[-2]]))
        elif path.suffix == ".mp4":
            bad.append("/".join(parts))
    if bad:
        raise InputError(f"{len(bad)} files are not laid out as {{train,val,test}}/<Class>/<name>.mp4 with the "
                         f"notebook's classes {sorted(CLASS_FOLDERS)}: {', '.join(bad[:5])}",
                         "give the notebook's archive (RAVDESS_FSLF.zip) or its unpacked folder")
    if not found:
        raise InputError(f"{root}: no train/val/test/<Class>/*.mp4 files", "give the notebook's archive")
    return found


def thumbnails(frames: np.ndarray) -> np.ndarray:
    """uint8 [K, H, W, 3] -> float32 [K * THUMBNAIL * THUMBNAIL] grey thumbnails (area resize)."""
    import cv2

    grey = [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in frames]
    small = [cv2.resize(image, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA) for image in grey]
    return np.stack(small).astype(np.float32).reshape(-1)


def archive_face_positions(strategy: str, num_frames: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(positions in the fused clip, stored face indices) of the face frames of ``strategy``."""
    if strategy not in ARCHIVE_STRATEGIES:
        raise InputError(f"archive strategy {strategy!r} is not known", f"choose one of {ARCHIVE_STRATEGIES}")
    order = frame_order(strategy, num_frames)
    positions = np.flatnonzero(order < num_frames)
    return positions, order[positions]


def _decoded_frames(path: str, positions: np.ndarray) -> np.ndarray:
    """uint8 [len(positions), H, W, 3]: those frames of the mp4 at ``path``."""
    import av

    try:
        with av.open(path) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except (av.error.FFmpegError, OSError) as error:
        raise InputError(f"{path}: can not decode: {error}", "give the notebook's archive unchanged") from error
    if len(frames) <= positions.max():
        raise InputError(f"{path}: {len(frames)} frames, the fused clip has {positions.max() + 1} or more",
                         "give an archive of fused 16-frame clips")
    return np.stack([frames[p] for p in positions])


def stored_thumbnails(builder, stored_split: str, face_indices: np.ndarray) -> tuple[list[str], np.ndarray,
                                                                                   np.ndarray]:
    """(clip ids, labels [N], thumbnails [N, D]) of the stored faces at ``face_indices``."""
    clip_ids, labels, rows = [], [], []
    for example in builder.as_dataset(split=stored_split, shuffle_files=False).as_numpy_iterator():
        clip_ids.append(example["clip_id"].decode())
        labels.append(int(example["label"]))
        rows.append(thumbnails(example["faces"][face_indices]))
    return clip_ids, np.asarray(labels), np.stack(rows)


def _distances(queries: np.ndarray, stored: np.ndarray) -> np.ndarray:
    """[Q, N] RMS distances between rows."""
    squared = (queries ** 2).sum(1)[:, None] + (stored ** 2).sum(1)[None, :] - 2 * queries @ stored.T
    return np.sqrt(np.maximum(squared, 0.0) / queries.shape[1])


def match_archive(root: Path, builder, stored_split: str = "data", strategy: str = "fslf") -> ArchiveMatch:
    """Match every file under ``root`` (an unpacked archive) to a stored clip of ``builder``.

    Raises InputError naming every file that matches no clip, matches ambiguously, matches a
    clip of another class, or takes a clip another file of its split folder took.
    """
    files = list_archive(root)
    positions, face_indices = archive_face_positions(strategy)
    clip_ids, labels, stored = stored_thumbnails(builder, stored_split, face_indices)
    label_names = list(builder.info.features["label"].names)
    queries = np.stack([thumbnails(_decoded_frames(f.path, positions)) for f in files])
    distances = _distances(queries, stored)
    nearest = np.argsort(distances, axis=1)[:, :2]
    problems, clip_of, matched_distance, taken = [], {}, {}, {}
    for row, file in enumerate(files):
        name = str(Path(file.path).relative_to(root))
        best, second = (distances[row, nearest[row, k]] if nearest.shape[1] > k else np.inf for k in (0, 1))
        clip = clip_ids[nearest[row, 0]]
        if best > MAX_DISTANCE:
            problems.append(f"{name} (no stored clip within {MAX_DISTANCE:g}: nearest {clip} at {best:.1f})")
        elif second < MARGIN * best:
            problems.append(f"{name} (ambiguous: {clip} at {best:.1f}, "
                            f"{clip_ids[nearest[row, 1]]} at {second:.1f})")
        elif label_names[labels[nearest[row, 0]]] != file.label_name:
            problems.append(f"{name} (its folder says {file.label_name}, the matched clip {clip} is "
                            f"{label_names[labels[nearest[row, 0]]]})")
        elif (file.split, clip) in taken:
            problems.append(f"{name} (matches {clip}, as {taken[file.split, clip]} of the same folder does)")
        else:
            taken[file.split, clip] = name
            clip_of[name], matched_distance[name] = clip, float(best)
    if problems:
        raise InputError(f"{len(problems)} of the {len(files)} archive files do not match one stored clip each: "
                         + "; ".join(problems[:20]) + (" ..." if len(problems) > 20 else ""),
                         "check that the archive and the build are of the same dataset (a `notebook_mfcc` build)")
    splits_of: dict[str, list[str]] = {}
    for file in files:
        name = str(Path(file.path).relative_to(root))
        splits_of.setdefault(clip_of[name], []).append(file.split)
    order = {split: rank for rank, split in enumerate(FOLDERS.values())}
    names = np.array(["+".join(sorted(set(splits_of.get(c, [])), key=order.get)) for c in clip_ids], dtype=object)
    return ArchiveMatch(clip_ids, names, clip_of, matched_distance)


def unpacked(archive: str | Path, workdir: Path) -> Path:
    """The folder of ``archive``: itself when it is one, else its zip unpacked under ``workdir``."""
    archive = Path(archive)
    if archive.is_dir():
        return archive
    try:
        with zipfile.ZipFile(archive) as handle:
            handle.extractall(workdir)
    except (OSError, zipfile.BadZipFile) as error:
        raise InputError(f"{archive}: can not read the archive: {error}",
                         "give the notebook's RAVDESS_FSLF.zip or its unpacked folder") from error
    return workdir


def write_archive_split_files(data_cfg, archive: str | Path, out_dir: str | Path,
                              strategy: str = "fslf") -> tuple[str, ArchiveMatch]:
    """Match ``archive`` against the build of ``data_cfg`` and write the split files under
    ``out_dir`` (the files of ``split_files.write_split_files``, plus ``archive_matches.csv``:
    archive path, clip id, distance). Returns (their hash, the match)."""
    from mmae_jax.data.source import load_builder
    from mmae_jax.data.split_files import COLUMNS, membership_tables, splits_sha256, stored_examples, with_sums

    if data_cfg.get("frame_sampling", "uniform") != "notebook_timing":
        raise InputError("the notebook's archive shows frames 0, 6, ..., 42 of each clip; matching needs a build "
                         "that stores those frames", "use a notebook_mfcc build (recipe=multimae_der, data.builder_config=notebook_mfcc)")
    builder = load_builder(data_cfg)
    with tempfile.TemporaryDirectory() as workdir:
        root = unpacked(archive, Path(workdir))
        match = match_archive(root, builder, data_cfg.stored_split, strategy)
    table, class_names = stored_examples(data_cfg)
    name_of = dict(zip(match.clip_ids, match.names))
    names = np.array([name_of[clip_id] for clip_id in table["clip_id"]], dtype=object)
    files = {"protocol.json": json.dumps(
        {"dataset": data_cfg.dataset, "builder_config": data_cfg.builder_config, "protocol": "notebook",
         "source": f"notebook archive {Path(archive).name} ({strategy})", "folds": None,
         "columns": list(COLUMNS), "examples": len(table["clip_id"])}, indent=2, sort_keys=True) + "\n"}
    files.update(membership_tables(table, class_names, names))
    files["archive_matches.csv"] = "archive_file,clip_id,distance\n" + "".join(
        f"{name},{clip},{match.distances[name]:.2f}\n" for name, clip in sorted(match.clip_of.items()))
    files = with_sums(files)
    for relative, text in files.items():
        path = Path(out_dir) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return splits_sha256(files), match
