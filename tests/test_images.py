"""Tests for dualnet.images: PNG/PGM/.npy reading (checked against Pillow and against a tiny
encoder written here), resizing, inversion, and rejection of corrupt or hostile files."""

import struct
import tempfile
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dualnet import images
from dualnet.errors import DataError
from dualnet.images import load_images, prepare, read_image

LUMA = np.array([0.299, 0.587, 0.114])
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


# --- a tiny PNG encoder, independent of the decoder (filters are applied row by row here) ------

def chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def ihdr(width, height, depth=8, ctype=0, interlace=0) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, interlace))


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def filter_row(row, prior, ftype, bpp):
    """Encode one row (bytes as int array) with PNG filter ftype given the unfiltered prior row."""
    left = np.concatenate([np.zeros(bpp, int), row[:-bpp]])
    upleft = np.concatenate([np.zeros(bpp, int), prior[:-bpp]])
    predictor = [0, left, prior, (left + prior) // 2, paeth(left, prior, upleft)][ftype]
    return (row - predictor) % 256


def raw_rows(samples, depth):
    """(H, W, C) integer samples -> list of unfiltered row bytes (as int arrays)."""
    if depth == 16:
        return [np.frombuffer(r.astype(">u2").tobytes(), np.uint8).astype(int) for r in samples]
    if depth == 8:
        return [r.reshape(-1).astype(int) for r in samples]
    bits = (samples[..., 0][..., None] >> np.arange(depth - 1, -1, -1)) & 1  # (H, W, depth)
    return [np.packbits(b.reshape(-1).astype(np.uint8)).astype(int) for b in bits]


def png_bytes(samples, ctype, depth=8, filters=lambda y: y % 5, palette=None, trns=None,
              extra=b"", interlace=0):
    """PNG of samples (H, W, C) with row y filtered by filters(y)."""
    samples = np.asarray(samples)
    h, w, _ = samples.shape
    bpp = max(1, CHANNELS[ctype] * depth // 8)
    prior = None
    body = bytearray()
    for y, row in enumerate(raw_rows(samples, depth)):
        prior = np.zeros_like(row) if prior is None else prior
        ftype = filters(y)
        body.append(ftype)
        body += bytes(filter_row(row, prior, ftype, bpp).astype(np.uint8))
        prior = row
    out = b"\x89PNG\r\n\x1a\n" + ihdr(w, h, depth, ctype, interlace) + extra
    if palette is not None:
        out += chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
    if trns is not None:
        out += chunk(b"tRNS", trns)
    data = zlib.compress(bytes(body))
    return out + chunk(b"IDAT", data[:5]) + chunk(b"IDAT", data[5:]) + chunk(b"IEND", b"")


def expected_gray(samples, maxval, ctype):
    px = samples / maxval
    gray = px[..., :3] @ LUMA if ctype in (2, 6) else px[..., 0]
    return gray * px[..., -1] if ctype in (4, 6) else gray


def write(tmp_path, name, data) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_bytes(data: bytes, name="image.png"):
    with tempfile.TemporaryDirectory() as tmp:
        return read_image(write(Path(tmp), name, data))


def rejected(tmp_path, data, name="bad.png", match=""):
    path = write(tmp_path, name, data)
    with pytest.raises(DataError, match=match) as info:
        read_image(path)
    assert str(path) in str(info.value)
    return str(info.value)


# --- PNG decoding -----------------------------------------------------------------------------

FORMATS = [(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (2, 8), (2, 16), (4, 8), (4, 16), (6, 8),
           (6, 16), (3, 1), (3, 2), (3, 4), (3, 8)]


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
    np.testing.assert_allclose(got, want, atol=1e-6)


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
    np.testing.assert_allclose(got, expected_gray(samples, maxval, ctype), atol=1e-6)


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
                               atol=1e-6)


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


def npy_bytes(shape, payload, descr="|u1"):
    """A version 1.0 .npy file written by hand, so the header can lie about the payload."""
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload


def test_npy_truncated_and_huge_header_rejected(tmp_path):
    np.save(tmp_path / "ok.npy", np.zeros((30, 30), np.uint8))
    data = (tmp_path / "ok.npy").read_bytes()
    rejected(tmp_path, data[:-100], "short.npy", "truncated")
    rejected(tmp_path, data[:20], "cut.npy", "header")
    rejected(tmp_path, npy_bytes((99999, 99999), bytes(900)), "huge.npy", "more than")


# --- corrupt and hostile files ----------------------------------------------------------------

def good_png():
    return png_bytes(np.arange(64).reshape(8, 8, 1) * 4, 0)


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
    rejected(tmp_path, text, "text.xyz", r"unsupported image format \(use PNG, PGM or \.npy\)")
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


def test_interlaced_rejected(tmp_path):
    data = png_bytes(np.zeros((4, 4, 1), int), 0, interlace=1)
    rejected(tmp_path, data, "adam7.png",
             "interlaced PNG not supported; re-save without interlacing")


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
