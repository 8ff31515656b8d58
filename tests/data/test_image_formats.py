"""dualnet.data.images, other formats: PGM/PPM and .npy reading, every format through the one
preparation, and the size bounds."""

import numpy as np
import pytest
from image_files import expected_gray, good_png, npy_bytes, png_bytes, rejected, write

from dualnet.data import images, prepare
from dualnet.data.images import read_image
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



# --- the one preparation: prepare.load_inputs over every format ----------------------------------

def test_load_inputs_reads_every_format_and_names_a_bad_file(tmp_path):
    bar = np.zeros((40, 40))
    bar[8:32, 18:22] = 1.0  # a light stroke on black, as MNIST
    write(tmp_path, "a.png", png_bytes((bar[..., None] * 255).astype(int), 0))
    write(tmp_path, "b.pgm", b"P5\n40 40\n255\n" + (bar * 255).astype(np.uint8).tobytes())
    np.save(tmp_path / "c.npy", bar)
    paths = [tmp_path / "a.png", str(tmp_path / "b.pgm"), tmp_path / "c.npy"]
    out = prepare.load_inputs(paths, (1, 28, 28))
    assert out.shape == (3, 1, 28, 28) and out.dtype == np.float32
    np.testing.assert_allclose(out[1:], np.broadcast_to(out[0], (2, 1, 28, 28)), atol=1e-6)
    assert prepare.load_inputs([], (1, 28, 28)).shape == (0, 1, 28, 28)
    write(tmp_path, "d.png", b"garbage")
    with pytest.raises(DataError, match="d.png"):
        prepare.load_inputs(paths + [tmp_path / "d.png"], (1, 28, 28))


def test_max_pixels_is_the_bound():
    assert images.MAX_PIXELS == 10**8


def test_oversized_file_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 100)
    rejected(tmp_path, good_png() + bytes(200), "big.png", "larger than 100 bytes")


def test_one_list_of_image_formats_in_the_help_texts_and_the_documents():
    """The list comes from the decoders' table; every place that states it states that one."""
    import pathlib

    from click.testing import CliRunner

    from dualnet.data.image_decode import FORMATS, FORMATS_TEXT
    from dualnet_cli.main import cli

    assert FORMATS_TEXT == "PNG, JPEG, BMP, GIF, WebP, PGM/PPM or .npy" and len(FORMATS) == 7
    for command in ("predict", "featuremaps"):
        text = " ".join(CliRunner().invoke(cli, [command, "--help"]).output.split())
        assert FORMATS_TEXT in text, command
    root = pathlib.Path(__file__).resolve().parents[2]
    for doc in ("README.md", "docs/reliability.md"):
        text = " ".join((root / doc).read_text().split())
        assert FORMATS_TEXT in text, doc
