"""The face crop: a whole-pixel box drawn like torchvision's RandomResizedCrop, resized bilinearly.

The resize is checked against OpenCV's bilinear resize of the same box (float input, so no
fixed-point rounding on OpenCV's side), an implementation that shares no code with TF's.
"""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from mmae_jax.data import augment

SCALE, RATIO = (0.6, 1.0), (0.75, 4 / 3)


@pytest.mark.parametrize("height,width", [(224, 224), (40, 64)])
def test_crop_box_stays_inside_and_draws_area_and_aspect_in_range(height, width):
    boxes = np.array([[int(v) for v in augment.crop_box(tf.constant([7, i], tf.int64), height, width,
                                                        SCALE, RATIO)] for i in range(300)])
    top, left, box_height, box_width = boxes.T
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + box_height <= height).all() and (left + box_width <= width).all()
    unclipped = (box_height < height) & (box_width < width)
    area = box_height * box_width / (height * width)
    aspect = box_width / box_height
    # whole pixels: sides are within half a pixel of the drawn real-valued box
    slack = 1 / min(height, width) * 2.1
    assert (area[unclipped] >= SCALE[0] - slack).all() and (area <= SCALE[1] + 1e-9).all()
    assert (aspect[unclipped] >= RATIO[0] * (1 - slack)).all()
    assert (aspect[unclipped] <= RATIO[1] * (1 + slack)).all()
    # positions and sizes vary (the draw is used, not a fixed box)
    assert len({tuple(b) for b in boxes}) > 150
    assert top.max() > 0 and left.max() > 0


def test_random_resized_crop_is_the_bilinear_resize_of_the_drawn_box():
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (3, 40, 64, 3), np.uint8)
    seed = tf.constant([3, 4], tf.int64)
    top, left, box_height, box_width = (int(v) for v in augment.crop_box(seed, 40, 64, SCALE, RATIO))
    cropped = augment.random_resized_crop(tf.constant(faces), seed, 32, SCALE, RATIO).numpy()
    assert cropped.shape == (3, 32, 32, 3) and cropped.dtype == np.float32
    box = faces[:, top:top + box_height, left:left + box_width].astype(np.float32)
    reference = np.stack([cv2.resize(frame, (32, 32), interpolation=cv2.INTER_LINEAR) for frame in box])
    np.testing.assert_allclose(cropped, reference, atol=1e-3)


def test_flip_mirrors_every_frame_of_the_same_crop():
    faces = tf.constant(np.random.default_rng(1).integers(0, 256, (2, 40, 48, 3), np.uint8))
    crop_seed = tf.constant([1, 2], tf.int64)
    plain = augment.random_resized_crop(faces, crop_seed, 32, SCALE, RATIO).numpy()
    outcomes = []
    for draw in range(8):
        flip_seed = tf.constant([0, draw], tf.int64)
        flipped = augment.random_resized_crop(faces, crop_seed, 32, SCALE, RATIO,
                                              flip_seed=flip_seed).numpy()
        mirrored = bool(augment._flip_drawn(flip_seed))
        np.testing.assert_allclose(flipped, plain[:, :, ::-1] if mirrored else plain, atol=1e-3)
        outcomes.append(mirrored)
    assert any(outcomes) and not all(outcomes)
