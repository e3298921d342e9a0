"""Phone videos: the display matrix is applied when frames are read (prepare and predict), a
mirrored one is refused. The files are made with PyAV's ``set_display_rotation``."""

from pathlib import Path

import av
import numpy as np
import pytest

from mmae_jax.data_prep.media import video
from mmae_jax.data_prep.media.clip import ClipSpec
from mmae_jax.data_prep.media.errors import BadInputError
from media_factory import tone, write_wav

HEIGHT, WIDTH = 32, 64


def coded_frame() -> np.ndarray:
    """[32, 64, 3]: black with a white block in the top-left corner of the coded picture."""
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    frame[: HEIGHT // 2, : WIDTH // 4] = 255
    return frame


def write_rotated(path: Path, degrees: int, hflip: bool = False, num: int = 12) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.set_display_rotation(degrees, hflip=hflip)
        for _ in range(num):
            for packet in stream.encode(av.VideoFrame.from_ndarray(coded_frame(), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def bright_corner(frame: np.ndarray) -> str:
    """Which quarter of ``frame`` [H, W, 3] holds the white block."""
    h, w = frame.shape[0] // 2, frame.shape[1] // 2
    quarters = {"top-left": frame[:h, :w], "top-right": frame[:h, w:], "bottom-left": frame[h:, :w],
                "bottom-right": frame[h:, w:]}
    return max(quarters, key=lambda name: quarters[name].mean())


@pytest.mark.parametrize("degrees, corner", [(0, "top-left"), (-90, "top-right"), (90, "bottom-left"),
                                             (180, "bottom-right")])
def test_frames_are_read_upright(tmp_path, degrees, corner):
    path = write_rotated(tmp_path / "phone.mp4", degrees)
    for sampled in (video.sample_frames(str(path), 4), video.frames_at_stride(str(path), 4, 2)):
        expected_shape = (HEIGHT, WIDTH) if degrees in (0, 180) else (WIDTH, HEIGHT)
        assert sampled.frames.shape[1:3] == expected_shape
        assert bright_corner(sampled.frames[0]) == corner


def test_a_mirrored_display_matrix_is_refused(tmp_path):
    path = write_rotated(tmp_path / "mirror.mp4", 90, hflip=True)
    with pytest.raises(BadInputError, match="mirrors") as caught:
        video.sample_frames(str(path), 4)
    assert caught.value.kind == "orientation"


def test_predict_reads_a_portrait_phone_clip_upright(tmp_path):
    from mmae_jax.infer.media import ClipReader

    path = write_rotated(tmp_path / "phone.mp4", -90, num=24)
    wav = write_wav(tmp_path / "phone.wav", tone(440.0, 2.0, 16000), 16000)
    spec = ClipSpec(num_frames=4, image_size=32, framing="whole_frame", window_seconds=0.25)
    arrays = ClipReader(spec)(path, wav)
    assert bright_corner(arrays.faces[0]) == "top-right"
