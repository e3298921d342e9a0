"""Video decoding with PyAV and temporal sampling of T frames, two ways.

``sample_frames`` (uniform, the default): the clip ``[start, end)`` is cut into T equal segments
and frame t is the frame *on screen* at the centre of segment t,
``times[t] = start + (t + 0.5) * (end - start) / T``. Audio windows are later centred on exactly
these times, so frame t and window t describe the same moment.

``frames_at_stride`` (the original's ``uniform_temporal_subsample(clip_idx=0, total_clips=1)``):
the frames with index ``k * stride`` counted from the clip's first frame, an index past the
clip's last frame replaced by the last frame; independent of the clip's length.

Frames come out upright: the display matrix of phone videos (portrait clips stored as landscape
pictures) is applied; a mirrored one is refused as bad input. Only the chosen frames are converted to RGB, and decoding stops at ``end`` (or after the last
frame needed).
"""

from __future__ import annotations

import dataclasses

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from mmae_jax.data_prep.media.errors import BadInputError


@dataclasses.dataclass(frozen=True)
class SampledFrames:
    """T frames of one clip and the moments they show.

    frames: uint8 [T, H, W, 3] RGB.
    times: float64 [T], seconds in the container's timeline.
    video_start: time of the container's first video frame (seconds); separate audio files are
      assumed to start at this moment unless the builder says otherwise.
    """

    frames: np.ndarray
    times: np.ndarray
    video_start: float


def _open(path: str) -> av.container.InputContainer:
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise BadInputError(path, "corrupt", f"can not open the video: {err}") from err


def _duration(container, stream) -> float | None:
    if stream.duration:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def upright_quarter_turns(path: str, frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns (0..3) that show ``frame`` upright, from its display matrix.

    Phone videos store portrait clips as landscape pictures plus a display matrix (PyAV:
    ``frame.rotation``, degrees counter-clockwise). Raises BadInputError (kind ``orientation``)
    for a mirrored matrix or an angle that is not a multiple of 90 degrees.
    """
    matrix = next((np.frombuffer(bytes(data), np.int32) for data in frame.side_data
                   if str(data.type).endswith("DISPLAYMATRIX")), None)
    if matrix is None:
        return 0
    a, b, c, d = (float(value) for value in matrix[[0, 1, 3, 4]])
    if a * d - b * c < 0:
        raise BadInputError(path, "orientation", "the display matrix mirrors the picture; re-encode it "
                                                 "upright (e.g. ffmpeg -i IN -c:a copy OUT)")
    if frame.rotation % 90:
        raise BadInputError(path, "orientation", f"the display matrix turns the picture by {frame.rotation} "
                                                 f"degrees; re-encode it upright")
    return (frame.rotation // 90) % 4


def _to_rgb(frame: av.VideoFrame, max_side: int | None, reformatter: VideoReformatter, path: str) -> np.ndarray:
    """uint8 [H, W, 3] upright (display matrix applied); the reformatter keeps one swscale context
    for all frames of a clip."""
    scale = 1.0 if max_side is None else min(1.0, max_side / max(frame.width, frame.height))
    width, height = round(frame.width * scale), round(frame.height * scale)
    rgb = reformatter.reformat(frame, format="rgb24", width=width, height=height).to_ndarray()
    turns = upright_quarter_turns(path, frame)
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def sample_frames(path: str, num_frames: int, start: float | None = None, end: float | None = None,
                  max_side: int | None = None) -> SampledFrames:
    """Decode ``path`` and return ``num_frames`` frames sampled uniformly over ``[start, end)``.

    ``start`` / ``end`` default to the whole video. ``max_side`` downsizes frames whose longer
    side exceeds it (during the RGB conversion, so it costs nothing extra).
    Raises BadInputError for a file that can not be opened or decoded, has no video stream, or
    has fewer than ``num_frames`` frames in the range.
    """
    with _open(path) as container:
        if not container.streams.video:
            raise BadInputError(path, "no_video", "the file has no video stream")
        stream = container.streams.video[0]
        video_start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
        duration = _duration(container, stream)
        seg_start = video_start if start is None else max(start, video_start)
        if end is None:
            if duration is None:
                raise BadInputError(path, "corrupt", "the video's duration is unknown")
            end = video_start + duration
        if end <= seg_start:
            raise BadInputError(path, "too_short", f"empty time range [{seg_start:.3f}, {end:.3f}) s")
        times = seg_start + (np.arange(num_frames) + 0.5) * (end - seg_start) / num_frames
        if start is not None and start > video_start:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)

        picked: list[np.ndarray | None] = [None] * num_frames
        next_target, frames_in_range = 0, 0
        previous, previous_rgb = None, None
        reformatter = VideoReformatter()
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                # Every pending target shown before this frame's time belongs to the previous frame.
                while previous is not None and next_target < num_frames and times[next_target] < frame.time:
                    previous_rgb = previous_rgb if previous_rgb is not None else _to_rgb(previous, max_side, reformatter, path)
                    picked[next_target] = previous_rgb
                    next_target += 1
                if frame.time >= end:
                    break
                frames_in_range += frame.time >= seg_start
                previous, previous_rgb = frame, None
        except av.error.FFmpegError as err:
            raise BadInputError(path, "corrupt", f"decoding failed: {err}") from err
        if previous is not None:
            for index in range(next_target, num_frames):
                previous_rgb = previous_rgb if previous_rgb is not None else _to_rgb(previous, max_side, reformatter, path)
                picked[index] = previous_rgb
    if frames_in_range < num_frames or any(p is None for p in picked):
        raise BadInputError(path, "too_short", f"{frames_in_range} frames in [{seg_start:.3f}, {end:.3f}) s, "
                                               f"{num_frames} needed")
    return SampledFrames(np.stack(picked), times, video_start)


def stride_indices(num_frames: int, stride: int, available: int) -> np.ndarray:
    """int [num_frames]: ``min(k * stride, available - 1)``, the frame indices the original's
    ``uniform_temporal_subsample(x, num_frames, clip_idx=0, total_clips=1, frame_rate=stride)``
    takes from a clip of ``available`` frames."""
    return np.minimum(np.arange(num_frames) * stride, available - 1)


def frames_at_stride(path: str, num_frames: int, stride: int, start: float | None = None,
                     end: float | None = None, max_side: int | None = None) -> SampledFrames:
    """``num_frames`` frames at indices ``stride_indices`` of the clip ``[start, end)`` (default:
    the whole video), counting from its first frame. ``times`` are the picked frames' times.
    Raises BadInputError for a file that can not be opened or decoded, has no video stream, or
    has no frame in the range."""
    wanted = set(range(0, num_frames * stride, stride))
    last_wanted = (num_frames - 1) * stride
    with _open(path) as container:
        if not container.streams.video:
            raise BadInputError(path, "no_video", "the file has no video stream")
        stream = container.streams.video[0]
        video_start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
        seg_start = video_start if start is None else max(start, video_start)
        if start is not None and start > video_start:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        reformatter = VideoReformatter()
        picked: dict[int, tuple[np.ndarray, float]] = {}
        index, last = -1, None
        try:
            for frame in container.decode(stream):
                if frame.time is None or frame.time < seg_start:
                    continue
                if end is not None and frame.time >= end:
                    break
                index += 1
                last = frame
                if index in wanted:
                    picked[index] = (_to_rgb(frame, max_side, reformatter, path), float(frame.time))
                if index >= last_wanted:
                    break
        except av.error.FFmpegError as err:
            raise BadInputError(path, "corrupt", f"decoding failed: {err}") from err
        if last is None:
            raise BadInputError(path, "too_short", f"no frame in [{seg_start:.3f}, {end}) s")
        if index not in picked:  # the clip ended before the last wanted index: it repeats
            picked[index] = (_to_rgb(last, max_side, reformatter, path), float(last.time))
    chosen = [picked[int(i)] for i in stride_indices(num_frames, stride, index + 1)]
    return SampledFrames(np.stack([rgb for rgb, _ in chosen]), np.array([t for _, t in chosen]), video_start)
