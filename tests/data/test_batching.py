"""dualnet.data.batching: epoch order, batches and random-shift augmentation."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dualnet import data
from dualnet.errors import DataError


@pytest.fixture(scope="module")
def mnist_test():
    return data.load_mnist("test")


# Batches ------------------------------------------------------------------------------------


def index_dataset(n):
    """A dataset whose label is the record index, and whose one pixel repeats it."""
    return data.Dataset(np.arange(n, dtype=np.float64).reshape(n, 1, 1, 1) / max(n, 1),
                        np.arange(n), num_classes=max(n, 1))


@given(n=st.integers(0, 60), batch_size=st.integers(1, 70), seed=st.integers(0, 2**32),
       epoch=st.integers(0, 5), drop_last=st.booleans(), shuffle=st.booleans())
def test_batches_cover_each_index_once(n, batch_size, seed, epoch, drop_last, shuffle):
    ds = index_dataset(n)
    got = list(data.batches(ds, batch_size, shuffle=shuffle, seed=seed, epoch=epoch,
                            drop_last=drop_last))
    seen = np.concatenate([labels for _, labels in got]) if got else np.zeros(0, int)
    for images, labels in got:
        np.testing.assert_array_equal(images[:, 0, 0, 0], ds.images[labels, 0, 0, 0])
        assert len(labels) == batch_size or (not drop_last and labels is got[-1][1])
    if drop_last:
        assert len(seen) == n - n % batch_size and len(set(seen.tolist())) == len(seen)
    else:
        assert sorted(seen.tolist()) == list(range(n))
    if not shuffle:
        assert seen.tolist() == list(range(len(seen)))


def test_batches_reproducible_and_differ_across_epochs():
    ds = index_dataset(100)

    def order(**kw):
        return np.concatenate([y for _, y in data.batches(ds, 16, **kw)]).tolist()

    assert order(seed=3, epoch=1) == order(seed=3, epoch=1)
    assert order(seed=3, epoch=1) != order(seed=3, epoch=2)
    assert order(seed=3, epoch=1) != order(seed=4, epoch=1)
    assert order(seed=3, epoch=1) != list(range(100))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "8", None])
def test_batches_rejects_bad_batch_size(bad):
    with pytest.raises(DataError, match="batch_size"):
        data.batches(index_dataset(4), bad)


# Shifts -------------------------------------------------------------------------------------


def shift_reference(images, shifts):
    """Per-image loop: content moves down by dy and right by dx; vacated pixels are zero."""
    out = np.zeros_like(images)
    h, w = images.shape[-2:]
    for i, (dy, dx) in enumerate(shifts):
        for y in range(h):
            for x in range(w):
                if 0 <= y - dy < h and 0 <= x - dx < w:
                    out[i, ..., y, x] = images[i, ..., y - dy, x - dx]
    return out


image_batches = hnp.arrays(np.float32, st.tuples(st.integers(0, 5), st.integers(1, 2),
                                                 st.integers(1, 6), st.integers(1, 6)),
                           elements=st.floats(0, 1, width=32))


@given(images=image_batches, max_shift=st.integers(0, 7), seed=st.integers(0, 2**32))
def test_random_shift_matches_loop_reference(images, max_shift, seed):
    got = data.random_shift(images, max_shift, np.random.default_rng(seed))
    shifts = np.random.default_rng(seed).integers(-max_shift, max_shift + 1, (len(images), 2))
    if max_shift == 0:
        shifts = np.zeros((len(images), 2), int)
    assert got.dtype == images.dtype and got is not images
    np.testing.assert_array_equal(got, shift_reference(images, shifts))


@given(images=image_batches, data_=st.data())
def test_shift_images_matches_loop_reference(images, data_):
    shifts = data_.draw(hnp.arrays(np.int64, (len(images), 2), elements=st.integers(-8, 8)))
    np.testing.assert_array_equal(data.shift_images(images, shifts),
                                  shift_reference(images, shifts))
    # Three-dimensional (N, H, W) batches take the same path.
    np.testing.assert_array_equal(data.shift_images(images[:, 0], shifts),
                                  shift_reference(images[:, 0], shifts))


def test_zero_shift_is_identity(mnist_test):
    images = mnist_test.images[:50]
    out = data.random_shift(images, 0, np.random.default_rng(0))
    assert out is not images
    np.testing.assert_array_equal(out, images)


def test_shift_keeps_pixel_mass_away_from_borders():
    k = 3
    rng = np.random.default_rng(5)
    images = np.zeros((200, 1, 16, 16), np.float32)
    # Integer-valued pixels keep float32 sums exact whatever the summation order.
    images[:, :, k:-k, k:-k] = rng.integers(0, 256, (200, 1, 16 - 2 * k, 16 - 2 * k))
    out = data.random_shift(images, k, rng)
    np.testing.assert_array_equal(out.sum(axis=(1, 2, 3)), images.sum(axis=(1, 2, 3)))
    assert not np.array_equal(out, images)


def test_shifts_are_independent_and_cover_the_range():
    k, n = 2, 3000
    images = np.zeros((n, 1, 9, 9), np.float32)
    images[:, 0, 4, 4] = 1
    out = data.random_shift(images, k, np.random.default_rng(11))
    positions = np.argwhere(out[:, 0] == 1)
    assert len(positions) == n and np.array_equal(positions[:, 0], np.arange(n))
    dy, dx = positions[:, 1] - 4, positions[:, 2] - 4
    assert dy.min() == dx.min() == -k and dy.max() == dx.max() == k
    pairs = set(zip(dy.tolist(), dx.tolist()))
    assert len(pairs) == (2 * k + 1) ** 2
