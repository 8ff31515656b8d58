"""Conv2d padding ("same", "valid", int, pair, explicit asymmetric) and pooling options (ceil_mode,
count_include_pad, MaxPool2d's dilation): shapes, gradients and float64 agreement with PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch_reference import assert_same, copy_parameters, dualnet_run, torch_run

import dualnet as dn
from dualnet import layers as L
from dualnet.ops.geometry import out_size
from dualnet.testing import tie_free, uniform


@st.composite
def conv_paddings(draw):
    """(Conv2d kwargs, input shape): any padding spec; "same" at stride 1."""
    spec = draw(st.sampled_from(["same", "valid", "int", "pair", "four"]))
    kh, kw, dh, dw = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = 1 if spec == "same" else draw(st.integers(1, 3))
    padding = {"same": "same", "valid": "valid", "int": draw(st.integers(0, 2)),
               "pair": (draw(st.integers(0, 2)), draw(st.integers(0, 2))),
               "four": tuple(draw(st.integers(0, 3)) for _ in range(4))}[spec]
    groups = draw(st.sampled_from([1, 2]))
    h = draw(st.integers((kh - 1) * dh + 1, (kh - 1) * dh + 6))
    w = draw(st.integers((kw - 1) * dw + 1, (kw - 1) * dw + 6))
    return (dict(in_channels=2 * groups, out_channels=2 * groups, kernel_size=(kh, kw), stride=stride,
                 padding=padding, dilation=(dh, dw), groups=groups), (draw(st.integers(1, 2)), 2 * groups, h, w))


def _torch_conv(torch, kwargs):
    padding = kwargs["padding"]
    four = isinstance(padding, tuple) and len(padding) == 4
    conv = torch.nn.Conv2d(**{**kwargs, "padding": 0 if four else padding}).double()
    return (torch.nn.Sequential(torch.nn.ZeroPad2d(padding), conv) if four else conv), conv


@given(conv_paddings())
def test_same_padding_keeps_the_size_and_explicit_padding_gives_the_floor_formula(case):
    kwargs, shape = case
    layer = L.Conv2d(**kwargs)
    out = layer.output_shape(shape[1:])
    if kwargs["padding"] == "same":
        assert out[1:] == shape[2:]
    left, right, top, bottom = layer.pads
    (kh, kw), (dh, dw), s = kwargs["kernel_size"], kwargs["dilation"], kwargs["stride"]
    assert out[1:] == (out_size(shape[2], kh, s, top, dh, p_end=bottom),
                       out_size(shape[3], kw, s, left, dw, p_end=right))


def test_same_padding_puts_the_odd_extra_at_the_end_and_refuses_strides():
    assert L.Conv2d(1, 1, 4, padding="same").pads == (1, 2, 1, 2)
    assert L.Conv2d(1, 1, (3, 2), padding="same", dilation=(1, 3)).pads == (1, 2, 1, 1)
    with pytest.raises(ValueError, match="Conv2d: padding='same' needs stride 1"):
        L.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="Conv2d: padding must be 'same', 'valid'"):
        L.Conv2d(1, 1, 3, padding="full")


@pytest.mark.parametrize("padding", ["same", (0, 2, 1, 0)])
def test_conv_padding_gradcheck_and_config_round_trip(padding):
    layer = L.Conv2d(2, 3, (3, 2), padding=padding, seed=1)
    dn.gradcheck(layer, uniform((2, 2, 5, 4), 2))
    again = L.build_layer({"type": "Conv2d", "config": layer.config()})
    assert again.pads == layer.pads and again.config() == layer.config()


@pytest.mark.parametrize("dev", ["ref", "cpu", "emu"])
@settings(max_examples=10)
@given(conv_paddings(), st.integers(0, 2**16))
def test_conv_padding_matches_pytorch(dev, case, seed):
    torch = pytest.importorskip("torch")
    kwargs, shape = case
    layer = L.Conv2d(**kwargs, seed=seed).astype(np.float64)
    module, conv = _torch_conv(torch, kwargs)
    copy_parameters(layer, conv)
    x = uniform(shape, seed)
    dy = uniform((shape[0], *layer.output_shape(shape[1:])), seed + 1)
    assert_same(dualnet_run(dev, layer, x, dy), torch_run(module, x, dy))


@st.composite
def pool_options(draw, kind=None):
    """(layer class, kwargs, input shape) with ceil_mode, count_include_pad and dilation drawn."""
    kind = kind or draw(st.sampled_from([L.MaxPool2d, L.AvgPool2d]))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if kind is L.MaxPool2d else (1, 1)
    span = [(a - 1) * b + 1 for a, b in zip(k, d)]
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    kwargs = dict(kernel_size=k, stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), padding=p,
                  ceil_mode=draw(st.booleans()))
    if kind is L.MaxPool2d:
        kwargs["dilation"] = d
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
    h = draw(st.integers(max(1, span[0] - 2 * p[0]), span[0] + 6))
    w = draw(st.integers(max(1, span[1] - 2 * p[1]), span[1] + 6))
    return kind, kwargs, (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)


def test_ceil_mode_follows_pytorchs_rule_for_the_last_window():
    # 5 wide, kernel 2, stride 2: ceil adds the window that starts at column 4 (inside the input)
    assert L.MaxPool2d(2, ceil_mode=True).output_shape((1, 5, 5)) == (1, 3, 3)
    # 4 wide, kernel 2, stride 2, padding 1: floor gives 3; ceil would add a window starting at 5,
    # past the input and its leading pad, so it is dropped
    assert L.MaxPool2d(2, 2, 1, ceil_mode=True).output_shape((1, 4, 4)) == (1, 3, 3)
    assert L.AvgPool2d(3, 2, ceil_mode=True).output_shape((1, 6, 6)) == (1, 3, 3)


def test_avgpool_divisors_count_padding_only_when_asked():
    x = np.ones((1, 1, 3, 3))
    np.testing.assert_allclose(L.AvgPool2d(3, 1, 1, count_include_pad=False)(x), np.ones((1, 1, 3, 3)))
    np.testing.assert_allclose(L.AvgPool2d(3, 1, 1)(x)[0, 0, 0, 0], 4 / 9)
    # a ceil_mode window reaching past the padded input divides by its part inside it only
    np.testing.assert_allclose(L.AvgPool2d(2, 2, ceil_mode=True)(x)[0, 0, :, 1], [1.0, 1.0])


@pytest.mark.parametrize("kind", [L.MaxPool2d, L.AvgPool2d])
@settings(max_examples=6)
@given(st.data())
def test_pooling_options_gradcheck(kind, data):
    cls, kwargs, shape = data.draw(pool_options(kind))
    dn.gradcheck(cls(**kwargs), tie_free(shape, 3))


def _padding_only_windows(layer, h, w):
    """Whether some window of `layer` on an h x w input holds padding alone (dilated max pooling)."""
    g = layer.geometry(h, w)

    def empty(size, k, s, p, d, out):
        taps = np.arange(k)[None, :] * d + (np.arange(out) * s - p)[:, None]
        return (((taps >= 0) & (taps < size)).sum(axis=1) == 0).any()

    return empty(h, g.kh, g.sh, g.ph, g.dh, g.out_h) or empty(w, g.kw, g.sw, g.pw, g.dw, g.out_w)


def test_a_dilated_max_window_of_padding_alone_is_minus_infinity_and_passes_no_gradient():
    layer = L.MaxPool2d((2, 1), 1, (1, 0), dilation=(3, 1))  # window 0 reads rows -1 and 2 of 2
    x = uniform((1, 1, 2, 1), 0)
    y = layer(x)
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == -np.inf
    np.testing.assert_array_equal(layer.backward(np.ones_like(y)), 0)


@pytest.mark.parametrize("dev", ["ref", "cpu", "emu"])
@settings(max_examples=15)
@given(pool_options(), st.integers(0, 2**16))
def test_pooling_options_match_pytorch(dev, case, seed):
    torch = pytest.importorskip("torch")
    cls, kwargs, shape = case
    layer = cls(**kwargs)
    # PyTorch 2.13 aborts the process on a max window of padding alone (covered just above)
    assume(not _padding_only_windows(layer, *shape[2:]))
    module = getattr(torch.nn, cls.__name__)(**kwargs)
    x = tie_free(shape, seed)
    dy = uniform((shape[0], *layer.output_shape(shape[1:])), seed + 1)
    assert_same(dualnet_run(dev, layer, x, dy), torch_run(module, x, dy))
