"""dualnet.data.images, PNG: every format and filter decoded (checked against Pillow and against the tiny
encoder in image_files), and rejection of corrupt or hostile files."""

import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from image_files import (
    CHANNELS,
    LUMA,
    chunk,
    expected_gray,
    good_png,
    ihdr,
    npy_bytes,
    png_bytes,
    read_bytes,
    rejected,
    write,
)

from dualnet.data.images import read_image
from dualnet.errors import DataError

# --- PNG decoding -----------------------------------------------------------------------------

FORMATS = [(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (2, 8), (2, 16), (4, 8), (4, 16), (6, 8),
           (6, 16), (3, 1), (3, 2), (3, 4), (3, 8)]


def tolerance(ctype: int, depth: int) -> float:
    """Pillow (the decoder) keeps the high byte of 16-bit colour and gray+alpha samples; every
    other variant, 16-bit gray included, is decoded exactly."""
    return 2 / 255 if depth == 16 and ctype != 0 else 1e-6  # gray (1/255) times alpha (1/255)


@pytest.mark.parametrize("ctype,depth", FORMATS)
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (13, 9)])
def test_png_every_filter_type_round_trips(ctype, depth, shape):
    rng = np.random.default_rng([ctype, depth, *shape])
    maxval = 2**depth - 1
    h, w = shape
    if ctype == 3:
        n = 2**depth
        palette = rng.integers(0, 256, (n, 3))
        alpha = rng.integers(0, 256, n - 1).astype(np.uint8)  # one entry short: it stays opaque
        index = rng.integers(0, n, (h, w, 1))
        data = png_bytes(index, 3, depth, palette=palette, trns=alpha.tobytes())
        rgba = np.concatenate([palette, np.append(alpha, 255)[:, None]], axis=1)[index[..., 0]]
        want = expected_gray(rgba, 255, 6)
    else:
        samples = rng.integers(0, maxval + 1, (h, w, CHANNELS[ctype]))
        data = png_bytes(samples, ctype, depth)
        want = expected_gray(samples, maxval, ctype)
    got = read_bytes(data)
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_allclose(got, want, atol=tolerance(ctype, depth))


@given(st.data())
def test_png_random_filters_round_trip(data):
    ctype, depth = data.draw(st.sampled_from([f for f in FORMATS if f[0] != 3]))
    h = data.draw(st.integers(1, 12))
    w = data.draw(st.integers(1, 12))
    maxval = 2**depth - 1
    flat = data.draw(st.lists(st.integers(0, maxval), min_size=h * w * CHANNELS[ctype],
                              max_size=h * w * CHANNELS[ctype]))
    filters = data.draw(st.lists(st.integers(0, 4), min_size=h, max_size=h))
    samples = np.array(flat).reshape(h, w, CHANNELS[ctype])
    got = read_bytes(png_bytes(samples, ctype, depth, filters=filters.__getitem__))
    np.testing.assert_allclose(got, expected_gray(samples, maxval, ctype), atol=tolerance(ctype, depth))


def test_png_pixel_values_and_luminance():
    rgba = np.array([[[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 255], [255, 255, 255, 0],
                      [255, 255, 255, 51]]])
    got = read_bytes(png_bytes(rgba, 6))
    np.testing.assert_allclose(got, [[0.299, 0.587, 0.114, 0.0, 0.2]], atol=1e-6)


def test_png_gray_transparency_key_becomes_black():
    samples = np.array([[[10], [200], [10]]])
    got = read_bytes(png_bytes(samples, 0, trns=struct.pack(">H", 10)))
    np.testing.assert_allclose(got, [[0, 200 / 255, 0]], atol=1e-6)


def test_png_ancillary_chunks_skipped_and_format_sniffed_without_extension(tmp_path):
    samples = np.arange(12).reshape(3, 4, 1) * 20
    data = png_bytes(samples, 0, extra=chunk(b"tEXt", b"Comment\x00hello"))
    path = write(tmp_path, "digit.dat", data + b"trailing garbage after IEND")
    np.testing.assert_allclose(read_image(path), samples[..., 0] / 255, atol=1e-6)


def smooth_image(rng, shape):
    """Non-negative ints: a slanted ramp per channel plus a little noise (values may exceed 255)."""
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    ramp = x * rng.integers(1, 9) + y * rng.integers(1, 9)
    ramp = ramp.reshape(*ramp.shape, *[1] * (len(shape) - 2)) + np.arange(np.prod(shape[2:]))
    return ramp.reshape(shape) + rng.integers(0, 4, shape)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "P-small", "1", "I;16"])
@pytest.mark.parametrize("seed", range(4))
def test_png_matches_pillow(tmp_path, mode, seed):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng([seed, len(mode)])
    h, w = rng.integers(1, 40, 2)
    channels = {"LA": 2, "RGB": 3, "RGBA": 4}.get(mode, 1)
    img = smooth_image(rng, (h, w, channels) if channels > 1 else (h, w))
    if seed % 2:  # odd seeds: white noise, even: smooth, so Pillow's adaptive filter choice varies
        img = rng.integers(0, 256, img.shape)
    if mode == "I;16":
        im = Image.fromarray((img * 257 % 65536).astype(np.uint16))
    elif mode == "1":
        im = Image.fromarray(img % 2 == 1)
    elif mode.startswith("P"):
        colors = 3 if mode == "P-small" else 200
        im = Image.new("P", (int(w), int(h)))
        im.putdata((img.reshape(-1) % colors).tolist())
        im.putpalette(rng.integers(0, 256, 3 * colors).tolist())
    else:
        im = Image.fromarray(np.mod(img, 256).astype(np.uint8), mode)
    path = tmp_path / "pillow.png"
    im.save(path, transparency=1) if mode.startswith("P") else im.save(path)
    ref = Image.open(path)
    assert ref.mode == im.mode
    if ref.mode == "I;16":
        want = np.asarray(ref, np.float64) / 65535
    elif ref.mode in ("1", "L"):
        want = np.asarray(ref.convert("L"), np.float64) / 255
    else:
        rgba = np.asarray(ref.convert("RGBA"), np.float64) / 255
        want = (rgba[..., :3] @ LUMA) * rgba[..., 3]
    np.testing.assert_allclose(read_image(path), want, atol=1e-6)


@pytest.mark.parametrize("ctype,depth", [f for f in FORMATS if f[0] != 3])
def test_encoder_here_agrees_with_pillow(tmp_path, ctype, depth):
    """Pillow never picks the Average filter itself. This checks the encoder here (all five
    filters) against Pillow, so the round trips above are not the decoder agreeing with itself."""
    Image = pytest.importorskip("PIL.Image")
    samples = smooth_image(np.random.default_rng(depth), (9, 11, CHANNELS[ctype])) % 2**depth
    path = write(tmp_path, "mine.png", png_bytes(samples, ctype, depth))
    decoded, want = np.asarray(Image.open(path)).astype(int), samples
    if depth in (2, 4):  # Pillow scales 2- and 4-bit gray up to 0..255
        decoded //= 255 // (2**depth - 1)
    elif depth == 16 and ctype != 0:  # Pillow keeps the high bytes only, and makes LA RGBA
        want = (samples >> 8)[..., [0, 0, 0, 1]] if ctype == 4 else samples >> 8
    np.testing.assert_array_equal(decoded.reshape(want.shape), want)
    np.testing.assert_allclose(read_image(path), expected_gray(samples, 2**depth - 1, ctype),
                               atol=tolerance(ctype, depth))


# --- corrupt and hostile files ----------------------------------------------------------------

def test_empty_and_missing_files_rejected(tmp_path):
    rejected(tmp_path, b"", "empty.png", "empty")
    with pytest.raises(DataError, match="cannot read"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(DataError, match="cannot read"):
        read_image(tmp_path)


def test_text_file_renamed_png_and_unknown_format_rejected(tmp_path):
    message = rejected(tmp_path, b"hello, I am a text file\n", "text.png", "not a PNG")
    assert "signature" in message
    text = b"hello, I am a text file\n"
    rejected(tmp_path, text, "text.xyz",
             r"unsupported image format \(use PNG, JPEG, BMP, GIF, WebP, PGM/PPM or \.npy\)")
    rejected(tmp_path, b"\xff\xd8\xff\xe0" + bytes(20), "photo.png", "JPEG")
    rejected(tmp_path, b"hello", "text.npy", "not a .npy")


def test_bad_signature_rejected(tmp_path):
    data = good_png()
    rejected(tmp_path, data[:4] + b"\n" + data[5:], "sig.png", "signature")
    rejected(tmp_path, b"\x88" + data[1:], "sig2.png", "signature")
    rejected(tmp_path, data[:5], "sig3.png", "truncated")


def test_truncated_png_rejected_at_every_length(tmp_path):
    data = good_png()
    for cut in range(1, len(data) - 12):  # the last 12 bytes are IEND
        rejected(tmp_path, data[:cut], "cut.png", "truncated|CRC|signature")


def test_bad_crc_rejected(tmp_path):
    data = bytearray(good_png())
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0x40
    rejected(tmp_path, bytes(data), "crc.png", "CRC mismatch in chunk 'IDAT'")
    data = bytearray(good_png())
    data[8 + 8 + 13] ^= 1  # the IHDR CRC itself
    rejected(tmp_path, bytes(data), "crc2.png", "CRC mismatch in chunk 'IHDR'")


ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


@pytest.mark.parametrize("shape", [(7, 9), (1, 1), (3, 17)])
def test_interlaced_png_is_decoded(tmp_path, shape):
    # an Adam7 file laid out here, pass by pass (x0, y0, dx, dy), unfiltered rows
    pixels = (np.arange(np.prod(shape)).reshape(shape) * 7 % 256).astype(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for x0, y0, dx, dy in ADAM7
                   for row in pixels[y0::dy, x0::dx] if row.size)
    data = (b"\x89PNG\r\n\x1a\n" + ihdr(shape[1], shape[0], interlace=1) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))
    np.testing.assert_allclose(read_bytes(data), pixels / 255, atol=1e-6)


def test_interlaced_png_with_too_little_data_is_refused(tmp_path):
    data = png_bytes(np.zeros((4, 4, 1), int), 0, interlace=1)  # rows laid out as if not interlaced
    rejected(tmp_path, data, "adam7.png", "corrupt PNG: image data exceeds|truncated PNG")


@pytest.mark.parametrize("ctype,depth,match", [(0, 3, "bit depth"), (2, 4, "bit depth"),
                                               (5, 8, "colour type")])
def test_invalid_header_rejected(tmp_path, ctype, depth, match):
    data = b"\x89PNG\r\n\x1a\n" + ihdr(4, 4, depth, ctype) + chunk(b"IEND", b"")
    rejected(tmp_path, data, "hdr.png", match)


@pytest.mark.parametrize("width,height", [(100000, 100000), (2**31 - 1, 2**31 - 1), (0, 5)])
def test_absurd_dimensions_rejected_fast_without_allocating(tmp_path, width, height):
    body = zlib.compress(bytes(1000))
    data = b"\x89PNG\r\n\x1a\n" + ihdr(width, height) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    path = write(tmp_path, "huge.png", data)
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(DataError, match="more than|empty image"):
        read_image(path)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 0.5 and peak < 1 << 20


def test_zip_bomb_capped(tmp_path):
    bomb = zlib.compress(bytes(50_000_000), 9)  # ~50 KB inflating to 50 MB for a 10x10 image
    data = b"\x89PNG\r\n\x1a\n" + ihdr(10, 10) + chunk(b"IDAT", bomb) + chunk(b"IEND", b"")
    path = write(tmp_path, "bomb.png", data)
    tracemalloc.start()
    with pytest.raises(DataError, match="exceeds"):
        read_image(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.replace(chunk(b"IEND", b""), b""), "before IEND"),
    (lambda d: d[:33] + chunk(b"IDAT", zlib.compress(bytes(5))) + chunk(b"IEND", b""), "truncated"),
    (lambda d: d[:33] + chunk(b"IDAT", zlib.compress(bytes(20))) + chunk(b"IEND", b""), "exceeds"),
    (lambda d: d[:33] + chunk(b"IDAT", b"not zlib at all") + chunk(b"IEND", b""), "compressed"),
    (lambda d: d[:33] + chunk(b"IDAT", zlib.compress(b"\x07" + bytes(8))) + chunk(b"IEND", b""),
     "filter type 7"),
    (lambda d: d[:33] + chunk(b"IEND", b""), "no IDAT"),
    (lambda d: d[:8] + chunk(b"IDAT", b"") + d[8:], "not IHDR"),
    (lambda d: d[:33] + chunk(b"XYZW", b"") + d[33:], "critical chunk 'XYZW'"),
])
def test_structurally_corrupt_png_rejected(tmp_path, mutate, match):
    rejected(tmp_path, mutate(png_bytes(np.zeros((1, 8, 1), int), 0)), "bad.png", match)


def test_palette_errors_rejected(tmp_path):
    index = np.array([[[0], [3]]])
    rejected(tmp_path, png_bytes(index, 3, palette=[[1, 2, 3]] * 2), "pal.png", "palette index 3")
    rejected(tmp_path, png_bytes(index, 3), "nopal.png", "without a PLTE")


@given(st.data())
def test_mutated_files_raise_only_data_error(data):
    fmt = data.draw(st.sampled_from(["png", "pgm", "npy"]))
    if fmt == "png":
        original = png_bytes(np.arange(30).reshape(5, 6, 1) * 8, 0)
    elif fmt == "pgm":
        original = b"P5\n6 5\n255\n" + bytes(range(30))
    else:
        original = npy_bytes((5, 6), bytes(range(30)))
    buf = bytearray(original)
    for _ in range(data.draw(st.integers(1, 3))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    buf = buf[:data.draw(st.integers(0, len(buf)))]
    try:
        got = read_bytes(bytes(buf), "x." + fmt)
    except DataError:
        return
    assert got.dtype == np.float32 and got.ndim == 2 and got.min() >= 0 and got.max() <= 1
