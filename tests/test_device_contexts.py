"""On "gpu:N" every allocation and launch of a model happens on device N: proved on a stand-in
CuPy with two GPUs (tests/standins/multi_gpu_cupy.py) that follows CuPy's current-device rules, so that a
machine with no GPU (or one) checks what only two GPUs could show."""

from __future__ import annotations

import numpy as np
import pytest

import dualnet as dn
from dualnet.testing import assert_devices_agree, uniform

cupy_standin = pytest.importorskip("standins.multi_gpu_cupy")


@pytest.fixture
def two_gpus(monkeypatch):
    from dualnet.kernels.emulator import emulator_available

    if not emulator_available()[0]:
        pytest.skip("the stand-in runs kernels in the emulator, which needs g++")
    standin = cupy_standin.install(monkeypatch, count=2)
    yield standin
    dn.use_device("cpu")
    import dualnet.backend as backend

    backend._make_device.cache_clear()


def test_the_standin_follows_cupys_current_device_rule(two_gpus):
    cp = two_gpus.module
    a = cp.zeros(3)
    with cp.cuda.Device(1):
        b = cp.zeros(3)
        assert cp.asarray(a) is a  # CuPy's asarray does not move an array of another GPU
        assert a.copy().device.id == 1
        with pytest.raises(ValueError, match="different from the current device"):
            a + b
    assert (a.device.id, b.device.id) == (0, 1)
    with pytest.raises(TypeError):
        np.asarray(a)


def _lenet_step(standin=None):
    model = dn.models.lenet5(seed=3, dtype=np.float64)
    opt = dn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    crit = dn.losses.SoftmaxCrossEntropy()
    rng = np.random.default_rng(0)
    x = dn.to_device(rng.random((4, 1, 28, 28)))
    y = dn.to_device(rng.integers(0, 10, 4).astype(np.int32))
    return model, opt, crit, x, y


def test_a_model_on_gpu1_allocates_and_launches_only_on_gpu1(two_gpus):
    dn.use_device("gpu:0")  # CuPy's current device stays 0 below, outside dualnet's calls
    with dn.device("gpu:1"):
        model, opt, crit, x, y = _lenet_step()
    assert {p.data.device.id for p in model.parameters()} == {1}
    assert two_gpus.module.cuda.runtime.getDevice() == 0
    two_gpus.allocations.clear()
    two_gpus.launches.clear()
    loss = crit(model(x), y)
    model.backward(crit.backward())
    opt.step()
    assert np.isfinite(loss)
    assert set(two_gpus.allocations) == {1}
    assert two_gpus.launches and {dev for _, dev in two_gpus.launches} == {1}
    assert {p.data.device.id for p in model.parameters()} == {1}


def test_model_to_moves_parameters_and_optimizer_state_between_gpus(two_gpus):
    with dn.device("gpu:0"):
        model, opt, crit, x, y = _lenet_step()
        crit(model(x), y)
        model.backward(crit.backward())
        opt.step()  # momentum buffers now exist on gpu:0
    before = [dn.to_numpy(p.data) for p in model.parameters()]
    model.to("gpu:1")
    for p, b in zip(model.parameters(), before):
        assert p.data.device.id == 1 and p.grad.device.id == 1
        assert all(v.device.id == 1 for v in p.state.values())
        np.testing.assert_array_equal(dn.to_numpy(p.data), b)
    x1, y1 = dn.to_device(x, "gpu:1"), dn.to_device(y, "gpu:1")
    assert x1.device.id == 1 and x1 is not x
    np.testing.assert_array_equal(dn.to_numpy(x1), dn.to_numpy(x))
    crit(model(x1), y1)  # would raise DeviceMismatchError or ValueError if anything stayed on 0


def test_gradcheck_and_fit_and_evaluate_run_on_gpu1(two_gpus):
    with dn.device("gpu:1"):
        conv = dn.layers.Conv2d(2, 3, 3, padding=1, seed=1)
        dn.gradcheck(conv, dn.to_device(uniform((2, 2, 5, 5), 0)))
        logits = dn.to_device(uniform((3, 4), 1) * 5)
        dn.gradcheck(dn.losses.SoftmaxCrossEntropy(), logits, labels=dn.to_device(np.arange(3) % 4))
        train = dn.data.load("mnist", "train", limit=64)
        model = dn.models.lenet5(seed=0)
    dn.use_device("gpu:0")
    two_gpus.allocations.clear()
    history = dn.fit(model, train, None, epochs=1, batch_size=32)
    result = dn.evaluate(model, train)
    assert np.isfinite(history[0]["train_loss"]) and result["n"] == 64
    assert set(two_gpus.allocations) == {1}


def test_devices_agree_between_cpu_and_the_second_gpu(two_gpus):
    x = uniform((2, 3, 6, 6), 0)

    def conv(inp):
        layer = dn.layers.Conv2d(3, 4, 3, seed=0, dtype=np.float64)
        return layer(inp)

    assert_devices_agree(conv, x, devices=("cpu", "gpu:1"))
