"""dualnet.data.augment: random crops with zero padding, horizontal flips, and the batch transform."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dualnet import data


@given(st.integers(1, 6), st.integers(0, 4), st.integers(2, 7), st.integers(0, 2**31))
def test_random_crop_matches_pad_then_slice(n, padding, size, seed):
    images = np.random.default_rng(seed).random((n, 2, size, size + 1), dtype=np.float32)
    out = data.random_crop(images, padding, seed)
    corners = np.random.default_rng(seed).integers(0, 2 * padding + 1, size=(n, 2)) if padding else np.zeros((n, 2),
                                                                                                             int)
    padded = np.pad(images, [(0, 0), (0, 0), (padding, padding), (padding, padding)])
    expected = np.stack([padded[i, :, y:y + size, x:x + size + 1] for i, (y, x) in enumerate(corners)])
    assert out.dtype == images.dtype and out.shape == images.shape
    np.testing.assert_array_equal(out, expected)


@given(st.integers(1, 12), st.integers(0, 2**31))
def test_random_flip_mirrors_exactly_the_drawn_images(n, seed):
    images = np.random.default_rng(seed).random((n, 3, 4, 5), dtype=np.float32)
    out = data.random_flip(images, seed)
    flip = np.random.default_rng(seed).random(n) < 0.5
    np.testing.assert_array_equal(out[flip], images[flip][..., ::-1])
    np.testing.assert_array_equal(out[~flip], images[~flip])


def test_augment_batch_is_a_pure_function_of_seed_epoch_step():
    images = np.random.default_rng(0).random((16, 3, 8, 8), dtype=np.float32)
    a = data.augment_batch(images, 1, 2, 3, crop=2, flip=True)
    np.testing.assert_array_equal(a, data.augment_batch(images, 1, 2, 3, crop=2, flip=True))
    assert not np.array_equal(a, data.augment_batch(images, 1, 2, 4, crop=2, flip=True))
    assert data.augment_batch(images, 1, 2, 3) is images


def test_augment_batch_shift_alone_is_the_existing_random_shift():
    images = np.random.default_rng(0).random((8, 1, 6, 6), dtype=np.float32)
    expected = data.random_shift(images, 1, np.random.default_rng([5, 1, 7, 1]))
    np.testing.assert_array_equal(data.augment_batch(images, 5, 1, 7, shift=1), expected)
