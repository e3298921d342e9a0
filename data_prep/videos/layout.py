"""Which videos an unlabeled corpus holds: a folder tree, or a CSV list of paths.

- Folder tree: every file with a video suffix under the root, sorted by path.
- CSV list (``--manual-dir list.csv``): a header row with a ``path`` column (absolute, or
  relative to the CSV's folder) and optionally a ``speaker`` column (an int).
- The VoxCeleb2 layout ``<speaker>/<video>/<clip>.mp4`` with speaker folders ``id00012`` is
  recognised anywhere in a path: the speaker id is the folder's number (12). Other layouts
  get speaker -1 (unknown) unless the CSV names one.

The clip id is the path relative to the root (or as written in the CSV) without its suffix,
e.g. ``id00012/21Uxsk56VDQ/00001``, so it is unique within a build.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path

from mmae_jax.data_prep.media.errors import BadInputError
from mmae_jax.data_prep.report import BuildReport

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".flv", ".webm", ".m4v", ".mpg", ".mpeg")
UNKNOWN_SPEAKER = -1
_VOXCELEB_SPEAKER = re.compile(r"^id(\d+)$")


@dataclasses.dataclass(frozen=True)
class VideoEntry:
    """One video of the corpus: its file, id within the build and speaker (-1: unknown)."""

    path: Path
    clip_id: str
    speaker: int


def voxceleb_speaker(relative: Path) -> int:
    """The speaker of a VoxCeleb2-layout path ``.../idNNNNN/<video>/<clip>.ext``, else -1."""
    parts = relative.parts
    if len(parts) >= 3:
        match = _VOXCELEB_SPEAKER.match(parts[-3])
        if match:
            return int(match.group(1))
    return UNKNOWN_SPEAKER


def _entry(path: Path, relative: Path, speaker: int | None = None) -> VideoEntry:
    clip_id = relative.with_suffix("").as_posix()
    return VideoEntry(path, clip_id, voxceleb_speaker(relative) if speaker is None else speaker)


def find_tree(root: Path) -> list[VideoEntry]:
    """Every video file under ``root`` (suffixes in ``VIDEO_SUFFIXES``, any case), sorted."""
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    return [_entry(path, path.relative_to(root)) for path in paths]


def read_list(csv_path: Path, report: BuildReport) -> list[VideoEntry]:
    """The videos a CSV lists; rows without a usable path or speaker go to ``report``."""
    entries, seen = [], set()
    with open(csv_path, newline="") as handle:
        rows = csv.DictReader(handle)
        if "path" not in (rows.fieldnames or []):
            raise ValueError(f"{csv_path}: the header must name a 'path' column (has {rows.fieldnames})")
        for line, row in enumerate(rows, start=2):
            where = f"{csv_path}:{line}"
            text = (row.get("path") or "").strip()
            if not text:
                report.bad_input(BadInputError(where, "bad_list_row", "empty path"))
                continue
            relative = Path(text)
            path = relative if relative.is_absolute() else csv_path.parent / relative
            speaker_text = (row.get("speaker") or "").strip()
            try:
                speaker = int(speaker_text) if speaker_text else None
            except ValueError:
                report.bad_input(BadInputError(where, "bad_list_row", f"speaker {speaker_text!r} is not an int"))
                continue
            entry = _entry(path, Path(*relative.parts[1:]) if relative.is_absolute() else relative, speaker)
            if entry.clip_id in seen:
                report.bad_input(BadInputError(where, "bad_list_row", f"{text} is listed twice"))
                continue
            seen.add(entry.clip_id)
            entries.append(entry)
    return entries


def find_videos(source: Path, report: BuildReport) -> list[VideoEntry]:
    """The corpus at ``source``: a CSV file (see ``read_list``) or a folder tree."""
    if source.is_file() and source.suffix.lower() == ".csv":
        return read_list(source, report)
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is neither a folder of videos nor a .csv list")
    return find_tree(source)
