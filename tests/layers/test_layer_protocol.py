"""What a custom layer's author meets: Parameter from a host array on the layer's device and named
after its attribute, a clear error for a skipped super().__init__(), summary() shown once."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

import dualnet as dn
from dualnet import layers as L


class Scale(L.Layer):
    def __init__(self, features: int):
        super().__init__()
        self.scale = dn.Parameter(np.ones(features, np.float32))
        self.extra = [dn.Parameter(np.zeros(2, np.float32))]


@pytest.mark.parametrize("device", ["cpu", "emu"])
def test_a_parameter_from_a_host_array_lives_on_the_layers_device_and_is_named_by_its_attribute(device):
    with dn.device(device):
        layer = Scale(3)
    assert [name for name, _ in layer.named_parameters()] == ["scale", "extra.0"]
    assert layer.scale.name == "scale" and layer.extra[0].name == "extra.0"
    assert layer.scale.device == layer.device
    np.testing.assert_array_equal(dn.to_numpy(layer.scale.data), np.ones(3, np.float32))


def test_the_old_parameter_call_form_still_works():
    data = dn.to_device(np.ones(4, np.float32), "cpu")
    p = dn.Parameter(data, "w", dn.get_device())
    assert p.name == "w" and p.data is data


def test_a_layer_whose_init_skips_super_init_is_refused_with_the_fix():
    class Forgot(L.Layer):
        def __init__(self):
            self.scale = dn.Parameter(np.ones(2, np.float32))

    class UsesDevice(L.Layer):
        def __init__(self):
            self.where = self.device

    with pytest.raises(dn.UsageError, match=r"Forgot.__init__ did not call super\(\).__init__\(\)"):
        Forgot()
    with pytest.raises(AttributeError, match=r"UsesDevice has no attribute 'device': its __init__ must call "
                                             r"super\(\).__init__\(\)"):
        UsesDevice()


def test_summary_returns_a_value_whose_repr_is_the_table():
    model = dn.models.digits_cnn()
    text = model.summary(file=io.StringIO())
    assert repr(text) == str(text) and "trainable parameters" in repr(text)


@pytest.mark.parametrize("interactive", [True, False])
def test_summary_is_shown_exactly_once_in_a_repl_and_in_a_script(interactive):
    code = "import dualnet as dn\nm = dn.models.digits_cnn()\nm.summary()\n"
    argv = [sys.executable, "-i", "-q"] if interactive else [sys.executable, "-c", code]
    done = subprocess.run(argv, input=code if interactive else None, capture_output=True, text=True, timeout=120)
    assert done.stdout.count("trainable parameters") == 1, done.stdout + done.stderr
