"""Corpus files whose numbers pass every structural check but would give silent wrong results
(issue 20, validated numbers from files): normalizations that overflow or underflow float32, a
normalizing run stored without its normalization, a batch norm with a negative variance, test
images of another size than the model was trained on; and files whose sizes, judged from shapes,
would allocate too much (sizes before allocation). make_corpus.py's main writes them with the
rest, or alone:

    python tests/reliability/make_corpus_validated.py
"""

from __future__ import annotations

import sys

import numpy as np
from make_corpus import IMAGES, LABELS, N, P, ckpt, config_edit, h5_data, metadata_edit, replace
from make_corpus_buffers import B, bn_model

import dualnet as dn
from dualnet.layers import Conv2d, Flatten, GlobalAvgPool2d, Linear, ReLU, Residual, Sequential


def normalization(mean: list, std: list):
    return metadata_edit(lambda m: m.update(normalization={"mean": mean, "std": std}))


def global_pool_model() -> dn.Sequential:
    """Conv + global average pooling + Linear, built for 1x16x16: its layers take any image size."""
    model = dn.Sequential(Conv2d(1, 2, 3, seed=0), ReLU(), GlobalAvgPool2d(), Linear(2, 10, seed=0),
                          input_shape=(1, 16, 16))
    for p in model.parameters():
        p.data = np.round(p.data * 16) / 16
    return model


def make_validated() -> None:
    ckpt("normalization-std-underflows-float32", normalization([0.1307], [1e-42]))
    ckpt("normalization-mean-overflows-float32", normalization([1e300], [0.3081]))
    ckpt("normalization-mean-0-to-255-scale", normalization([33.3], [78.6]))
    ckpt("normalization-two-values-one-channel", normalization([0.1, 0.2], [0.3, 0.3]))
    ckpt("normalization-removed", metadata_edit(lambda m: m["train_config"].update(normalize=True)))
    ckpt("buffer-negative-running-var",
         replace(B + "bn1.running_var", np.array([1, 1, 1, -1, 1, 1, 1, 1, 1, 1], np.float32)), model=bn_model())
    ckpt("global-pool-16x16-model", model=global_pool_model())
    # valid training data whose test split has another image size than its training split
    bigger = np.zeros((N, 32, 32), np.uint8)
    bigger[:, 2:30, 2:30] = IMAGES
    h5_data("h5-test-images-32x32", edit=lambda f: (f["test"].__delitem__("images"),
                                                     f["test"].create_dataset("images", data=bigger,
                                                                              compression="gzip")))
    colour = np.repeat(IMAGES[:, None, ::2, ::2], 3, axis=1)  # 3x14x14 training images
    h5_data("h5-colour-test-images-16x16", images=colour, labels=LABELS,
            edit=lambda f: (f["test"].__delitem__("images"),
                            f["test"].create_dataset("images", data=np.zeros((N, 3, 16, 16), np.uint8))))


def make_sizes() -> None:
    # a Linear of 3000x3000 nested in a Residual, declared by the config, its parameters never written
    model = Sequential(Flatten(), Linear(784, 10, seed=0), Residual(Sequential(Linear(10, 10, seed=1))),
                       input_shape=(1, 28, 28))
    for p in model.parameters():
        p.data = np.round(p.data * 16) / 16

    def huge_nested(f):
        config_edit(lambda c: c["layers"][2]["config"]["body"]["config"]["layers"][0]["config"].update(
            in_features=3000, out_features=3000))(f)
        for name, shape in (("res1.body.fc1.weight", (3000, 3000)), ("res1.body.fc1.bias", (3000,))):
            del f[P + name]
            f.create_dataset(P + name, shape=shape, dtype=np.float32, chunks=(64,) * len(shape))
    ckpt("huge-layer-nested-unwritten", huge_nested, model=model)
    # valid images so large that lenet5's first Linear would hold 1.3 GiB of parameters and gradients
    h5_data("h5-images-1200x1200", images=np.zeros((6, 1200, 1200), np.uint8), labels=LABELS[:6])


if __name__ == "__main__":
    dn.use_device("cpu")
    make_validated()
    make_sizes()
    sys.exit(0)
