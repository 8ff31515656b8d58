"""dualnet.data.images, other formats and preparation: PGM/PPM and .npy reading, resizing, inversion,
load_images and the size bounds."""

import numpy as np
import pytest
from image_files import expected_gray, good_png, npy_bytes, png_bytes, rejected, write

from dualnet.data import images
from dualnet.data.images import load_images, prepare, read_image
from dualnet.errors import DataError

# --- PGM / PPM --------------------------------------------------------------------------------

@pytest.mark.parametrize("maxval", [1, 15, 255, 1000, 65535])
@pytest.mark.parametrize("kind", ["P2", "P5", "P3", "P6"])
def test_pnm_round_trip(tmp_path, kind, maxval):
    rng = np.random.default_rng(maxval)
    channels = 3 if kind in ("P3", "P6") else 1
    samples = rng.integers(0, maxval + 1, (6, 9, channels))
    header = f"{kind}\n# a comment line\n9 # width\n6\n{maxval}".encode()
    if kind in ("P2", "P3"):
        lines = [" ".join(map(str, row.reshape(-1))) for row in samples]
        data = header + b"\n" + "\n".join(lines).encode() + b"\n"
    else:
        dtype = ">u2" if maxval > 255 else "u1"
        data = header + b"\n" + samples.astype(dtype).tobytes()
    got = read_image(write(tmp_path, "img.pgm", data))
    np.testing.assert_allclose(got, expected_gray(samples, maxval, 2 if channels == 3 else 0),
                               atol=1e-6)


@pytest.mark.parametrize("data,match", [
    (b"P5\n4 4\n255\n" + bytes(10), "truncated"),
    (b"P2\n2 2\n255\n1 2 3\n", "truncated"),
    (b"P2\n2 1\n255\n1 x\n", "not a decimal"),
    (b"P5\n2 1\n100\n\x00\xff", "exceeds maxval"),
    (b"P5\n2 1\n0\n\x00\x00", "maxval"),
    (b"P5\n2\n", "header"),
    (b"P1\n2 1\n0 1\n", "not supported"),
    (b"P5\n100000 100000\n255\n", "more than"),
])
def test_pnm_corrupt_rejected(tmp_path, data, match):
    rejected(tmp_path, data, "bad.pgm", match)


# --- .npy -------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 7), (1, 5, 7), (5, 7, 1)])
def test_npy_uint8(tmp_path, shape):
    arr = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    np.save(tmp_path / "a.npy", arr)
    got = read_image(tmp_path / "a.npy")
    assert got.dtype == np.float32 and got.shape == (5, 7)
    np.testing.assert_allclose(got, arr.reshape(5, 7) / 255, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_npy_float_in_unit_range_or_0_255(tmp_path, dtype):
    arr = np.random.default_rng(1).random((4, 6)).astype(dtype)
    np.save(tmp_path / "unit.npy", arr)
    np.testing.assert_allclose(read_image(tmp_path / "unit.npy"), arr, atol=1e-6)
    np.save(tmp_path / "wide.npy", (arr * 255).astype(dtype))
    np.testing.assert_allclose(read_image(tmp_path / "wide.npy"), arr, atol=2e-3)
    np.save(tmp_path / "fortran.npy", np.asfortranarray(arr.astype(np.float64)))
    np.testing.assert_allclose(read_image(tmp_path / "fortran.npy"), arr, atol=1e-6)


@pytest.mark.parametrize("array,match", [
    (np.array([[None, 1]], dtype=object), "Python objects"),
    (np.zeros((3, 3), np.int32), "dtype int32"),
    (np.zeros((2, 3, 3), np.uint8), "shape"),
    (np.zeros((3, 3, 3), np.uint8), "shape"),
    (np.zeros((1, 1, 3, 3), np.uint8), "shape"),
    (np.zeros((0, 3), np.uint8), "empty"),
    (np.array([[0.5, np.nan]]), "NaN"),
    (np.array([[-0.5, 0.5]]), "span"),
    (np.array([[1000.0, 0.5]]), "span"),
])
def test_npy_bad_content_rejected(tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array, allow_pickle=True)
    with pytest.raises(DataError, match=match) as info:
        read_image(tmp_path / "bad.npy")
    assert "bad.npy" in str(info.value)


def test_npy_truncated_and_huge_header_rejected(tmp_path):
    np.save(tmp_path / "ok.npy", np.zeros((30, 30), np.uint8))
    data = (tmp_path / "ok.npy").read_bytes()
    rejected(tmp_path, data[:-100], "short.npy", "truncated")
    rejected(tmp_path, data[:20], "cut.npy", "header")
    rejected(tmp_path, npy_bytes((99999, 99999), bytes(900)), "huge.npy", "more than")



# --- prepare / load_images --------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(28, 28), (56, 56), (100, 37), (7, 9), (1, 1), (300, 20)])
@pytest.mark.parametrize("size", [(28, 28), (16, 40)])
def test_resize_constant_stays_constant(shape, size):
    out = prepare(np.full(shape, 0.3), size=size, invert="no")
    assert out.shape == (1, *size) and out.dtype == np.float32
    np.testing.assert_allclose(out, 0.3, atol=1e-6)


def test_shrink_by_area_averaging_is_exact_for_block_images():
    small = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    big = np.kron(small, np.ones((2, 2), np.float32))
    np.testing.assert_array_equal(prepare(big, invert="no")[0], small)
    quarter = prepare(big, size=(14, 14), invert="no")[0]
    want = small.reshape(14, 2, 14, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(quarter, want, atol=1e-6)


def test_enlarge_is_bilinear():
    ramp = np.linspace(0, 1, 10)[None, :].repeat(4, axis=0)
    out = prepare(ramp, size=(4, 19), invert="no")[0]
    # pixel centres: out x -> in (x + 0.5) * 10 / 19 - 0.5, clamped at both ends
    src = np.clip((np.arange(19) + 0.5) * 10 / 19 - 0.5, 0, 9)
    np.testing.assert_allclose(out, np.broadcast_to(src / 9, (4, 19)), atol=1e-6)


def test_invert_auto_yes_no():
    light = np.ones((28, 28))
    light[8:20, 12:16] = 0.1  # a dark stroke on white paper
    np.testing.assert_allclose(prepare(light)[0], 1 - light, atol=1e-6)
    np.testing.assert_allclose(prepare(1 - light)[0], 1 - light, atol=1e-6)  # MNIST-like: kept
    np.testing.assert_allclose(prepare(1 - light, invert="yes")[0], light, atol=1e-6)
    np.testing.assert_allclose(prepare(light, invert="no")[0], light, atol=1e-6)
    u8 = (light * 255).astype(np.uint8)
    np.testing.assert_allclose(prepare(u8)[0], 1 - u8 / 255, atol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    ({"size": (0, 28)}, "size"), ({"size": (28,)}, "size"), ({"size": (2.5, 3)}, "size"),
    ({"invert": "maybe"}, "invert"),
])
def test_prepare_bad_arguments(kwargs, match):
    with pytest.raises(DataError, match=match):
        prepare(np.zeros((5, 5)), **kwargs)


@pytest.mark.parametrize("image", [np.zeros((2, 3, 3)), np.zeros(5), np.full((3, 3), 2.0),
                                   np.zeros((3, 3), np.int64), np.zeros((0, 4))])
def test_prepare_bad_image(image):
    with pytest.raises(DataError):
        prepare(image)


def test_load_images_stacks_and_names_bad_file(tmp_path):
    write(tmp_path, "a.png", png_bytes(np.full((56, 56, 1), 255), 0))
    write(tmp_path, "b.pgm", b"P5\n10 10\n255\n" + bytes(100))
    np.save(tmp_path / "c.npy", np.full((28, 28), 0.25))
    paths = [tmp_path / "a.png", str(tmp_path / "b.pgm"), tmp_path / "c.npy"]
    out = load_images(paths, invert="no")
    assert out.shape == (3, 1, 28, 28) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0, 0, 0], [1.0, 0.0, 0.25], atol=1e-6)
    assert load_images(tmp_path / "a.png", size=(8, 8)).shape == (1, 1, 8, 8)
    assert load_images([]).shape == (0, 1, 28, 28)
    write(tmp_path, "d.png", b"garbage")
    with pytest.raises(DataError, match="d.png"):
        load_images(paths + [tmp_path / "d.png"])


def test_max_pixels_is_the_bound():
    assert images.MAX_PIXELS == 10**8


def test_oversized_file_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 100)
    rejected(tmp_path, good_png() + bytes(200), "big.png", "larger than 100 bytes")
