"""The step tally: the device tally (the GPU code path) adds up what the host tally does and names
the first step and parameter whose gradient turned non-finite."""

from __future__ import annotations

import math

import numpy as np
from parts import tiny_data, tiny_model

import dualnet as dn
from dualnet.train.tally import DeviceTally, HostTally, make_tally


def _setup(device):
    model = tiny_model().to(device)
    opt = dn.optim.SGD(model.parameters(), lr=0.1)
    return model, opt


def test_the_gpu_code_path_with_one_flat_buffer_gets_the_device_tally():
    for device, kind in (("cpu", HostTally), ("emu", DeviceTally)):
        model, opt = _setup(device)
        assert type(make_tally(model.device, model, opt, 4, 0.0, 0)) is kind
    model, opt = _setup("emu")
    assert type(make_tally(model.device, model, opt, 4, math.nan, 0)) is HostTally  # a resumed nan sum stays exact


def test_the_device_tally_adds_up_as_the_host_tally_and_names_the_first_bad_gradient():
    data = tiny_data(12)
    tallies = {}
    for device in ("cpu", "emu"):
        model, opt = _setup(device)
        crit = dn.losses.SoftmaxCrossEntropy(device=model.device)
        tally = make_tally(model.device, model, opt, 2, 1.5, 2)
        for step in range(3):  # more steps than the cap: a flush in between
            x = dn.to_device(data.images[step * 4:(step + 1) * 4], device)
            y = dn.to_device(data.labels[step * 4:(step + 1) * 4].astype(np.int32), device)
            model.zero_grad()
            logits = model(x)
            loss = crit.forward(logits, y, sync=False)
            model.backward(crit.backward())
            if step == 2:  # the last step: its gradient is still there when the tally is read
                model.layers[1].bias.grad[2] = np.nan
            tally.add(loss, logits, y, 4, step + 10)
        tallies[device] = tally
    host, dev = tallies["cpu"], tallies["emu"]
    loss_sum, correct = dev.totals()
    assert correct == host.totals()[1] and math.isclose(loss_sum, host.totals()[0], rel_tol=1e-6)
    assert dev.divergence() == (12, "fc1.bias") and host.divergence() is None
    assert dev.parameters_finite()  # the parameters themselves are finite
