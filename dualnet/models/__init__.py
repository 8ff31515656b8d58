"""Model zoo: LeNet-5, the other networks of the seeds, and CIFAR-style ResNets, built by name.

Every builder takes `input_shape=(C, H, W)` and `num_classes` (feature sizes follow from the
shape), `seed` (initial weights drawn from it, identical on every device) and `dtype`, and records
how it was built in `model.spec` ({"name", "kwargs"}: `get(spec["name"], **spec["kwargs"])`
rebuilds it). `in_channels=` is still accepted as an alias of the shape's C. A model that cannot
take an input raises ValueError naming the layer, the shape it would get and the models that fit.
"""

# ruff: noqa: I001  (the import order is the registration order, which names() and the CLI's list follow)
from .building import CIFAR_SHAPE, DIGITS_SHAPE, MNIST_SHAPE, MODELS, describe, fitting_models, get, names
from .zoo import (digits_cnn, digits_net, fashion_cnn, lenet5, lenet5_bn, lenet5_classic, lenet5_separable, mlp,
                  theano_lenet, tutorial_net, unet_mini)
from .resnets import resnet8, resnet20

__all__ = ["lenet5", "lenet5_classic", "theano_lenet", "tutorial_net", "mlp", "lenet5_separable", "lenet5_bn",
           "digits_net", "digits_cnn", "resnet8", "resnet20", "unet_mini", "fashion_cnn", "get", "names", "describe",
           "fitting_models", "MODELS", "MNIST_SHAPE", "DIGITS_SHAPE", "CIFAR_SHAPE"]
