"""Sizes before allocation (issue 20): weights drawn in their own dtype, parameter and activation
bytes judged from shapes, refused above documented caps before anything large is allocated."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import dualnet as dn
from dualnet import init, sizes
from dualnet.layers import Conv2d, Flatten, Linear, ReLU, Residual, Sequential


@pytest.mark.parametrize("name", sorted(init.INITIALIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_weights_drawn_block_by_block_hold_the_bits_of_a_float64_draw_cast_to_their_dtype(name, dtype, monkeypatch):
    monkeypatch.setattr(init, "DRAW_BLOCK", 7)  # blocks that cut rows and the last one short
    bound = {"he": np.sqrt(6 / 5), "glorot": np.sqrt(6 / 12), "lecun": np.sqrt(1 / 5)}[name]
    for shape in [(1,), (7,), (3, 10), (4, 3, 2, 2)]:
        got = init.initialize(name, shape, 5, 7, np.random.default_rng(11), dtype)
        want = np.random.default_rng(11).uniform(-bound, bound, size=shape).astype(dtype)
        assert got.dtype == dtype and got.shape == shape
        assert got.tobytes() == want.tobytes()


def test_a_float32_weight_is_drawn_without_a_float64_copy_of_it():
    tracemalloc.start()
    try:
        w = init.initialize("he", (1000, 2000), 2000, 1000, np.random.default_rng(0), np.float32)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert w.nbytes == 8_000_000
    assert peak < 1.25 * w.nbytes  # casting a float64 draw peaks at 3x (16 MB + 8 MB)


def test_a_model_over_the_parameter_cap_is_refused_before_its_weights_are_drawn():
    tracemalloc.start()
    try:
        with pytest.raises(sizes.SizeLimitError, match=r"^--classes: lenet5 with 10,000,000 classes would hold at "
                                                       r"least 6\.3 GiB of parameters and gradients \(a weight of "
                                                       r"shape 10000000x84\), more than the 1\.0 GiB accepted; give "
                                                       r"a smaller --classes$"):
            sizes.build_within(lambda: dn.models.get("lenet5", num_classes=10**7), "lenet5 with 10,000,000 classes",
                               "--classes")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**24  # nothing near the weight's 3.4 GB was allocated
    model = sizes.build_within(lambda: dn.models.get("lenet5"), "lenet5", "--classes")  # within the cap
    assert model.num_parameters() == 61_706


def test_the_budget_counts_layers_nested_in_containers_and_ends_with_its_block():
    def nested() -> Sequential:
        return Sequential(Residual(Sequential(Linear(8192, 8192, seed=0), ReLU())), Linear(8192, 2, seed=1))

    with pytest.raises(sizes.SizeLimitError, match=r"a weight of shape 8192x8192"), \
            init.parameter_budget(2**20, lambda total, shape: sizes.SizeLimitError(f"a weight of shape "
                                                                                      f"{'x'.join(map(str, shape))}")):
        nested()
    assert Linear(4, 4).weight.shape == (4, 4)  # no budget outside the block


def test_activation_values_count_every_layer_output_nested_containers_included(monkeypatch):
    body = Sequential(Conv2d(2, 2, 3, padding=1, seed=0), ReLU())
    model = Sequential(Residual(body), Flatten(), Linear(2 * 5 * 5, 3, seed=0), input_shape=(2, 5, 5))
    # the block's output, its body (a Sequential's output and its two layers'), flatten, linear
    assert sizes.activation_values(model, (2, 5, 5)) == 3 + 50 + (50 + 50 + 50) + 50 + 3
    assert sizes.check_activations(model, (2, 5, 5), 4, np.float32, "--input-shape") == (256 + 50) * 4 * 4
    assert sizes.check_activations(model, (2, 6, 6), 4, np.float32, "--input-shape") == 0  # not its shape
    monkeypatch.setattr(sizes, "MAX_ACTIVATION_BYTES", 2**20)
    with pytest.raises(sizes.SizeLimitError, match=r"^--input-shape: a forward pass of 8192 inputs of shape 2x5x5 "
                                                   r"would need 9\.6 MiB of activations, more than the 1\.0 MiB "
                                                   r"accepted; give a smaller --input-shape$"):
        sizes.check_activations(model, (2, 5, 5), 8192, np.float32, "--input-shape")


def test_the_out_of_memory_hint_names_the_options_that_set_the_size():
    from dualnet_cli.main import _memory_hint

    assert "--input-shape and --classes" in _memory_hint(["summary", "lenet5", "--classes", "5"])
    assert "--input-shape" in _memory_hint(["export", "run.h5", "run.onnx", "--verify"])
    assert "--batch-size" in _memory_hint(["train", "--epochs", "1"])
