"""Media code: frame/window alignment, face framing, audio features, bad clips."""

from __future__ import annotations

import os

import cv2
import matplotlib
import numpy as np
import pytest

import media_factory as mf
from mmae_jax.data_prep.media import audio, faces, video
from mmae_jax.data_prep.media.clip import ClipSource, ClipSpec, process_clip
from mmae_jax.data_prep.media.errors import BadInputError

pytestmark = pytest.mark.xdist_group("data_prep_media")

SWITCH = 1.0  # seconds: image and tone change here


def _switching_clip(path, audio_in_container: bool):
    """2 s at 30 fps: dark frames and a 400 Hz tone before SWITCH, bright frames and 2400 Hz after."""
    times = np.arange(60) / 30
    frames = mf.plain_frames(60, 48, 48, np.where(times < SWITCH, 30, 220))
    t = np.arange(int(2 * 48000)) / 48000
    sound = mf.tone(np.where(t < SWITCH, 400.0, 2400.0), 2.0, 48000)
    mf.write_video(path, frames, 30, sound if audio_in_container else None)
    if not audio_in_container:
        mf.write_wav(path.with_suffix(".wav"), mf.tone(np.where(t[::3] < SWITCH, 400.0, 2400.0), 2.0, 16000), 16000)
    return path


@pytest.mark.parametrize("audio_in_container", [True, False])
def test_frames_and_windows_change_at_the_same_index(tmp_path, audio_in_container):
    path = _switching_clip(tmp_path / "switch.mp4", audio_in_container)
    spec = ClipSpec(num_frames=8, image_size=16, framing="whole_frame", window_seconds=0.1)
    source = ClipSource(str(path), None if audio_in_container else str(path.with_suffix(".wav")))
    arrays = process_clip(source, spec)

    brightness = arrays.faces.reshape(8, -1).mean(axis=1)
    first_bright = int(np.argmax(brightness > 125))
    loudest_bin = arrays.spectrogram.mean(axis=2).argmax(axis=1)      # [T]
    first_high = int(np.argmax(loudest_bin > loudest_bin[0] + 10))
    times = (np.arange(8) + 0.5) * 2.0 / 8
    assert first_bright == int(np.argmax(times > SWITCH)) == first_high
    assert brightness[:first_bright].max() < 60 and brightness[first_bright:].min() > 190


def test_sampled_times_are_segment_centres(tmp_path):
    path = mf.write_video(tmp_path / "c.mp4", mf.plain_frames(30, 32, 32, np.arange(30) * 8), 30)
    sampled = video.sample_frames(str(path), 5)
    np.testing.assert_allclose(sampled.times, (np.arange(5) + 0.5) * 1.0 / 5)
    # frame k shows grey level 8k: the frame on screen at time t is floor(30 t)
    expected = np.floor(sampled.times * 30) * 8
    np.testing.assert_allclose(sampled.frames.reshape(5, -1).mean(axis=1), expected, atol=4)


def test_range_of_a_longer_video_is_cut(tmp_path):
    path = mf.write_video(tmp_path / "d.avi", mf.plain_frames(90, 32, 32, np.arange(90) * 2), 30)
    sampled = video.sample_frames(str(path), 4, start=1.0, end=2.0)
    np.testing.assert_allclose(sampled.times, 1.0 + (np.arange(4) + 0.5) / 4)
    np.testing.assert_allclose(sampled.frames.reshape(4, -1).mean(axis=1), np.floor(sampled.times * 30) * 2, atol=4)


def test_too_short_and_corrupt_videos_raise_with_the_file_name(tmp_path):
    short = mf.write_video(tmp_path / "short.mp4", mf.plain_frames(3, 32, 32), 30, mf.tone(300, 0.1))
    with pytest.raises(BadInputError, match="short.mp4") as info:
        video.sample_frames(str(short), 8)
    assert info.value.kind == "too_short"
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(os.urandom(2000))
    with pytest.raises(BadInputError, match="broken.mp4") as info:
        video.sample_frames(str(broken), 8)
    assert info.value.kind == "corrupt"


def test_haar_finds_a_real_face_and_crops_around_it():
    photo = cv2.cvtColor(cv2.imread(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")),
                         cv2.COLOR_BGR2RGB)                                   # face near (266, 216)
    canvas = np.zeros((720, 1280, 3), np.uint8)
    canvas[60:660, 500:1012] = photo
    frames = np.stack([canvas] * 4)
    framed = faces.face_crops(frames, faces.HaarFaceDetector(), 64, margin=0.0)
    assert framed.face_found
    boxes = faces.HaarFaceDetector()(canvas)
    x, y, w, h = boxes[np.argmax(boxes[:, 2] * boxes[:, 3])]
    assert abs(x + w / 2 - (500 + 266)) < 30 and abs(y + h / 2 - (60 + 216)) < 40
    direct = faces.square_crop(canvas, x + w / 2, y + h / 2, max(w, h), 64)
    assert np.abs(framed.images[0].astype(int) - direct).mean() < 2


def test_no_face_falls_back_to_a_centre_crop():
    frames = np.zeros((4, 40, 80, 3), np.uint8)
    frames[:, :, 20:60] = 200  # the centre square is bright, the sides dark
    framed = faces.face_crops(frames, faces.HaarFaceDetector(), 16)
    assert not framed.face_found
    assert framed.images.min() == 200


def test_smoothing_fills_missing_detections():
    track = faces.smooth_track({0: np.array([10.0, 10, 20]), 4: np.array([50.0, 10, 20])}, 5, window=1)
    np.testing.assert_allclose(track[:, 0], [10, 20, 30, 40, 50])


def test_windows_are_zero_padded_and_centred():
    wave = audio.Waveform(np.arange(1, 101, dtype=np.float32), 100, 0.0)
    windows = audio.cut_windows(wave, np.array([0.0, 0.5, 1.0]), 0.1)
    np.testing.assert_array_equal(windows[0], [0, 0, 0, 0, 0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(windows[1], np.arange(46, 56))
    np.testing.assert_array_equal(windows[2][5:], 0)
    with pytest.raises(BadInputError, match="audio covers"):
        audio.cut_windows(wave, np.array([3.0]), 0.1, source="x.wav")


def test_feature_shapes_match_the_spec_including_the_stride_typo():
    windows = np.random.default_rng(0).normal(size=(2, 8000)).astype(np.float32)
    for spec in (ClipSpec(num_frames=2), ClipSpec(num_frames=2, features="mfcc"),
                 ClipSpec(num_frames=2, features="mfcc", mfcc_stride=0.0001)):
        features = (audio.logmel(windows) if spec.features == "logmel"
                    else audio.mfcc_paper(windows, spec.mfcc_stride))
        assert features.shape == spec.spectrogram_shape() and features.dtype == np.float32
    assert ClipSpec(features="mfcc", mfcc_stride=0.0001).spectrogram_shape()[2] == 3800


def test_logmel_puts_a_tone_in_the_right_band():
    windows = mf.tone(1000.0, 0.5, 16000)[None]
    peak_bin = audio.logmel(windows).mean(axis=2)[0].argmax()
    import librosa
    centres = librosa.mel_frequencies(128 + 2, fmin=20.0, fmax=8000.0)[1:-1]
    assert abs(centres[peak_bin] - 1000) < 60
