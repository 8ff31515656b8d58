"""DLPack: dn.from_dlpack shares writable same-side memory, copies read-only and cross-device
sources, keeps dtype and shape; dualnet parameters export to PyTorch as shared views."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dualnet as dn
from dualnet.backend import _cupy_status


class Producer:
    """A minimal DLPack producer over a NumPy array, as another framework would be.

    `read_only` shows only in `flags.writeable` (the capsule itself stays writable); `legacy`
    answers with the pre-1.0 capsule, which cannot say whether the memory may be written."""

    def __init__(self, array, read_only=False, device=(1, 0), legacy=False):
        self.array, self.device, self.legacy = array, device, legacy
        self.flags = type("Flags", (), {"writeable": not read_only})()

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        if self.legacy or max_version is None:
            return self.array.__dlpack__()
        return self.array.__dlpack__(max_version=max_version)

    def __dlpack_device__(self):
        return self.device


@given(hnp.arrays(st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_]),
                  hnp.array_shapes(min_dims=0, max_dims=4, max_side=5)),
       st.sampled_from(["contiguous", "transposed", "strided"]))
def test_from_dlpack_keeps_values_dtype_and_shape_of_any_host_array(array, layout):
    if layout == "transposed":
        array = array.T
    elif layout == "strided" and array.ndim:
        array = array[::2]
    out = dn.from_dlpack(array)
    assert out.dtype == array.dtype and out.shape == array.shape
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("device", ["cpu", "ref"])
def test_from_dlpack_shares_a_writable_host_array(device):
    source = np.arange(6.0).reshape(2, 3)
    out = dn.from_dlpack(Producer(source), device=device)
    out[1, 2] = -7.0
    assert source[1, 2] == -7.0 and np.shares_memory(out, source)


@pytest.mark.parametrize("make", [
    pytest.param(lambda a: (a.setflags(write=False), a)[1], id="read-only numpy array"),
    pytest.param(lambda a: Producer(a, read_only=True), id="producer flagged read-only"),
    pytest.param(lambda a: Producer(a, legacy=True), id="legacy capsule (writability unknown)"),
])
def test_from_dlpack_copies_a_read_only_source_and_gives_a_writable_array(make):
    base = np.arange(4.0)
    source = make(base)
    out = dn.from_dlpack(source)
    assert out.flags.writeable and not np.shares_memory(out, base)
    out[0] = 99.0
    assert base[0] == 0.0


def test_from_dlpack_refuses_a_non_producer_naming_its_type():
    with pytest.raises(TypeError, match="list is not a DLPack producer"):
        dn.from_dlpack([1.0, 2.0])


def test_from_dlpack_refuses_memory_of_an_unsupported_device_type():
    with pytest.raises(TypeError, match="DLPack device type 10"):
        dn.from_dlpack(Producer(np.zeros(2), device=(10, 0)))


def test_from_dlpack_of_a_cuda_producer_without_cupy_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(TypeError, match=r"needs CuPy; install it with `pip install dualnet\[gpu\]`"):
        dn.from_dlpack(Producer(np.zeros(2), device=(2, 0)))


@pytest.mark.skipif(_cupy_status(0)[0], reason="a GPU is usable here")
def test_from_dlpack_onto_an_unusable_gpu_raises_device_unavailable():
    with pytest.raises(dn.DeviceUnavailableError, match="gpu:0"):
        dn.from_dlpack(np.zeros(3), device="gpu")


def test_from_dlpack_onto_emu_gives_what_to_device_gives():
    if not next(d for d in dn.devices() if d.name == "emu").available:
        pytest.skip("the emulator is unavailable here")
    source = np.arange(5, dtype=np.float32)
    out = dn.from_dlpack(source, device="emu")
    want = dn.to_device(source, "emu")
    assert type(out) is type(want)
    np.testing.assert_array_equal(dn.to_numpy(out), source)


def test_from_dlpack_uses_the_current_device_when_none_is_given():
    with dn.device("ref"):
        out = dn.from_dlpack(np.ones(2, np.float32))
    assert isinstance(out, np.ndarray)


@pytest.mark.gpu
def test_from_dlpack_of_a_cupy_array_shares_on_its_gpu_and_copies_to_the_host():
    import cupy

    source = cupy.arange(6, dtype=cupy.float32)
    shared = dn.from_dlpack(source, device="gpu:0")
    shared[0] = 5.0
    assert float(source[0]) == 5.0
    host = dn.from_dlpack(source, device="cpu")
    assert isinstance(host, np.ndarray) and host[0] == 5.0


# --- PyTorch ------------------------------------------------------------------------------------


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def test_torch_tensor_arrives_in_dualnet_sharing_its_memory(torch):
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    a = dn.from_dlpack(t)
    assert isinstance(a, np.ndarray) and a.dtype == np.float32 and a.shape == (3, 4)
    a[2, 3] = -1.0
    assert t[2, 3].item() == -1.0


def test_torch_from_dlpack_of_a_parameter_is_a_shared_view(torch):
    layer = dn.layers.Linear(4, 3, seed=0)
    view = torch.from_dlpack(layer.weight.data)
    view[0, 0] = 123.0
    assert layer.weight.data[0, 0] == 123.0
    layer.weight.data -= 1.0  # in place: the view sees dualnet's update
    assert view[0, 0].item() == 122.0


def test_weights_round_trip_through_torch_and_compute_the_same_linear_map(torch):
    layer = dn.layers.Linear(5, 2, seed=1)
    x = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    w = torch.from_dlpack(layer.weight.data)
    b = torch.from_dlpack(layer.bias.data)
    want = torch.nn.functional.linear(torch.from_dlpack(x), w, b).numpy()
    back = dn.layers.Linear(5, 2, seed=2)
    back.weight.data = dn.from_dlpack(w.clone())
    back.bias.data = dn.from_dlpack(b.clone())
    back.eval()
    np.testing.assert_allclose(back(x), want, rtol=1e-6, atol=1e-6)


def test_a_non_contiguous_torch_tensor_keeps_its_values(torch):
    t = torch.arange(24, dtype=torch.float64).reshape(2, 3, 4).permute(2, 0, 1)
    np.testing.assert_array_equal(dn.from_dlpack(t), t.numpy())
