"""The public gradient check finds planted errors and says where."""

from __future__ import annotations

import numpy as np
import pytest

import dualnet as dn
from dualnet import layers as L
from dualnet.testing import uniform


class WrongBiasLinear(L.Linear):
    """A Linear whose bias gradient is off by a factor: gradcheck must catch it."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.bias.grad *= 1.01
        return dx


class WrongInputConv(L.Conv2d):
    def backward(self, dy):
        dx = super().backward(dy)
        dx.reshape(-1)[3] += 1e-3
        return dx


def test_gradcheck_catches_a_wrong_parameter_gradient():
    with pytest.raises(dn.GradcheckError, match=r"gradient of bias is wrong at index \(\d+,\)"):
        dn.gradcheck(WrongBiasLinear(5, 4, seed=0), uniform((3, 5), 0))


def test_gradcheck_catches_one_wrong_input_element_and_names_it():
    with pytest.raises(dn.GradcheckError) as info:
        dn.gradcheck(WrongInputConv(2, 3, 3, seed=0), uniform((1, 2, 5, 5), 0))
    assert "gradient of input is wrong at index (0, 0, 0, 3)" in str(info.value)


def test_gradcheck_report_lists_every_tensor_and_leaves_layer_untouched():
    layer = L.Conv2d(2, 3, 3, seed=0)
    before = layer.weight.data.copy()
    report = dn.gradcheck(layer, uniform((2, 2, 30, 30), 0))
    assert [r.name for r in report.results] == ["input", "weight", "bias"]
    assert report.results[0].method == "directions" and report.results[2].method == "full"
    assert report.passed and layer.weight.data.dtype == np.float32
    np.testing.assert_array_equal(layer.weight.data, before)
