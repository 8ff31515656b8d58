"""Device "emu" arrays behave like CuPy's where a host leak would hide: implicit conversion and
host operands raise TypeError, explicit moves work, and every public helper runs on them."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import dualnet as dn
from dualnet.emu_array import EMU, IMPLICIT_CONVERSION, EmuArray
from dualnet.testing import assert_devices_agree, uniform


@pytest.fixture
def a():
    return dn.to_device(np.arange(6.0).reshape(2, 3), "emu")


@pytest.mark.parametrize("convert", [np.asarray, np.array, lambda v: v.__array__(), np.ascontiguousarray,
                                     lambda v: np.float64(v), lambda v: np.concatenate([v, v])])
def test_implicit_conversion_of_an_emu_array_raises_type_error(a, convert):
    with pytest.raises(TypeError):
        convert(a)


def test_implicit_conversion_message_is_cupys(a):
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(a)
    assert "Please use `.get()`" in IMPLICIT_CONVERSION


@pytest.mark.parametrize("mix", [lambda d, h: d + h, lambda d, h: h * d, lambda d, h: EMU.add(d, h),
                                 lambda d, h: EMU.where(d > 0, d, h), lambda d, h: d.__setitem__(0, h[0]),
                                 lambda d, h: d.__iadd__(h), lambda d, h: EMU.matmul(d, h.T),
                                 lambda d, h: np.maximum(d, h)])
def test_mixing_a_host_array_into_an_emu_op_raises_type_error(a, mix):
    with pytest.raises(TypeError):
        mix(a, np.ones((2, 3)))


def test_explicit_moves_and_scalars_work_as_on_cupy(a):
    host = dn.to_numpy(a)
    assert type(host) is np.ndarray and host.tolist() == [[0, 1, 2], [3, 4, 5]]
    host[0, 0] = 99.0  # a host copy: the device array is untouched
    assert float(a[0, 0]) == 0.0
    assert type(dn.to_device(a, "cpu")) is np.ndarray and a.get().sum() == 15
    total = a.sum()
    assert isinstance(total, EmuArray) and total.shape == ()  # CuPy: 0-d device arrays
    assert float(total) == 15.0 and int(total) == 15 and bool(total > 1) and total.item() == 15.0
    assert float(np.float32(2) * a.max()) == 10.0 and float(2 * a.max() + 1.5) == 11.5
    assert dn.to_device(a, "emu") is a
    assert pickle.loads(pickle.dumps(a)).tolist() == a.tolist()
    assert dn.to_numpy(a[np.array([1, 0])]).tolist() == [[3, 4, 5], [0, 1, 2]]  # host index arrays pass
    with pytest.raises(TypeError):
        f"{total:.3f}"  # a 0-d device array has no format spec, on CuPy either


def test_xp_asarray_copies_host_data_to_the_device():
    host = np.ones(3)
    dev = EMU.asarray(host)
    host[:] = 5.0
    assert dn.to_numpy(dev).tolist() == [1.0, 1.0, 1.0]


def test_emu_arrays_live_on_device_emu_and_do_not_mix_with_host_inputs():
    with dn.device("emu"):
        conv = dn.layers.Conv2d(1, 2, 3)
    with pytest.raises(dn.DeviceMismatchError, match="emu"):
        conv(np.zeros((1, 1, 5, 5), np.float32))


class LeakyReLU(dn.layers.Layer):
    """A user's layer that computes on the host: np.where on its input (a leak on a GPU)."""

    def forward(self, x):
        self._cache = x
        return np.where(x > 0, x, 0)

    def backward(self, dy, need_input_grad=True):
        return dy * (self._cache > 0)


def test_a_leaking_user_layer_fails_on_emu_and_works_on_cpu():
    x = uniform((2, 3), 0)
    with dn.device("cpu"):
        assert LeakyReLU()(dn.to_device(x)).shape == (2, 3)
    with dn.device("emu"):
        with pytest.raises(TypeError, match="numpy.where"):
            LeakyReLU()(dn.to_device(x))
        with pytest.raises(TypeError):
            assert_devices_agree(lambda v: LeakyReLU()(v), x, devices=("cpu", "emu"))


def test_gradcheck_of_a_loss_on_emu_moves_arrays_explicitly():
    with dn.device("emu"):
        logits = dn.to_device(uniform((3, 4), 0) * 5)
        labels = dn.to_device(np.arange(3) % 4)
        report = dn.gradcheck(dn.losses.SoftmaxCrossEntropy(), logits, labels=labels)
        big = dn.to_device(uniform((40, 10), 1))  # > full_limit: random directions
        dn.gradcheck(dn.losses.SoftmaxCrossEntropy(), big, labels=dn.to_device(np.arange(40) % 10))
    assert report.passed


def test_public_helpers_run_on_emu_arrays(tmp_path):
    train = dn.data.load("mnist", "train", limit=64)
    with dn.device("emu"):
        model = dn.models.lenet5(seed=0)
    history = dn.fit(model, train, train, epochs=1, batch_size=32)
    result = dn.evaluate(model, train)
    assert np.isfinite(history[0]["train_loss"]) and result["n"] == 64
    assert type(result["probabilities"]) is np.ndarray
    path = tmp_path / "emu.h5"
    dn.save(model, path)
    loaded = dn.load(path)
    loaded = loaded[0] if isinstance(loaded, tuple) else loaded
    for (_, p), (_, q) in zip(model.named_parameters(), loaded.named_parameters()):
        np.testing.assert_array_equal(dn.to_numpy(p.data), dn.to_numpy(q.data))
    x = uniform((2, 1, 28, 28), 0).astype(np.float32)

    def logits(v):
        return dn.models.lenet5(seed=1)(v)

    out = assert_devices_agree(logits, x, devices=("ref", "cpu", "emu"))
    assert all(type(o[0]) is np.ndarray for o in out)
