"""N training steps of ResNet-8 or ResNet-20 at batch 64, dualnet "cpu" or PyTorch's CPU build: a whole
process for an outside timer that alternates two commands and reads their CPU seconds (farm-bench).

Both train the same architecture (conv-BN-ReLU stem, three stages of residual blocks, global
average pooling, linear; dn.models' resnet8/resnet20) with SGD (momentum 0.9, lr 0.05) on the same
seeded 3x32x32 images, float32, with the given thread count. Nothing is printed: the timer measures
the process. Run with 0 steps to measure each side's start-up alone (PyTorch's import is seconds).

Usage (benchmarks/RESULTS.md, "ResNet CPU layout"):
    OPENBLAS_NUM_THREADS=1 farm-bench -n 5 --vs "python benchmarks/resnet_steps.py torch resnet8 120 1" \\
        -- python benchmarks/resnet_steps.py dualnet resnet8 120 1
"""

from __future__ import annotations

import argparse

import numpy as np


def torch_resnet(nn, blocks: int):
    """dn.models' resnet8 (blocks=1) or resnet20 (blocks=3) in torch.nn."""

    class Residual(nn.Module):
        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

    def block(cin, cout, stride):
        body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                    if stride != 1 or cin != cout else None)
        return Residual(body, shortcut)

    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for stage, cout in enumerate((16, 32, 64)):
        for i in range(blocks):
            layers += [block(cin, cout, 2 if stage > 0 and i == 0 else 1), nn.ReLU()]
            cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("framework", choices=("dualnet", "torch"))
    parser.add_argument("model", choices=("resnet8", "resnet20"))
    parser.add_argument("steps", type=int, help="training steps of batch 64 (0: start-up alone)")
    parser.add_argument("threads", type=int, help="torch threads (dualnet: set OPENBLAS_NUM_THREADS)")
    args = parser.parse_args()
    gen = np.random.default_rng(0)
    images = gen.random((args.steps, 64, 3, 32, 32), dtype=np.float32)
    labels = gen.integers(0, 10, (args.steps, 64))
    if args.framework == "torch":
        import torch
        from torch import nn

        torch.set_num_threads(args.threads)
        net = torch_resnet(nn, 1 if args.model == "resnet8" else 3)
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        loss = nn.CrossEntropyLoss()
        for i in range(args.steps):
            opt.zero_grad()
            loss(net(torch.from_numpy(images[i])), torch.from_numpy(labels[i])).backward()
            opt.step()
        return
    import dualnet as dn

    dn.use_device("cpu")
    model = dn.models.get(args.model)
    crit = dn.losses.SoftmaxCrossEntropy()
    sgd = dn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for i in range(args.steps):
        crit(model(images[i]), labels[i])
        model.zero_grad()
        model.backward(crit.backward(), need_input_grad=False)
        sgd.step()


if __name__ == "__main__":
    main()
