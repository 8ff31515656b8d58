"""N training steps of ResNet-8 or ResNet-20 at batch 64, dualnet "cpu" or PyTorch's CPU build: a whole
process for an outside timer that alternates two commands and reads their CPU seconds.

Both train the same architecture (conv-BN-ReLU stem, three stages of residual blocks, global
average pooling, linear; dn.models' resnet8/resnet20) with SGD (momentum 0.9, lr 0.05) on the same
seeded 3x32x32 images, float32, with the given thread count. Nothing is printed: the timer measures
the process. Run with 0 steps to measure each side's start-up alone (PyTorch's import is seconds).

Usage (benchmarks/RESULTS.md, "ResNet CPU layout"), each command timed as a whole process, in turn:
    OPENBLAS_NUM_THREADS=1 /usr/bin/time -v python benchmarks/resnet_steps.py torch resnet8 120 1
    OPENBLAS_NUM_THREADS=1 /usr/bin/time -v python benchmarks/resnet_steps.py dualnet resnet8 120 1
"""

from __future__ import annotations

import argparse

import numpy as np
from peer_runs import torch_resnet


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
