"""LeNet-5 and the other networks of the seeds, the digits nets, unet-mini and fashion-cnn."""

from __future__ import annotations

from ..layers import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    GlobalAvgPool2d,
    Layer,
    MaxPool2d,
    ReLU,
    Residual,
    Sequential,
    Tanh,
    Upsample,
)
from .building import DIGITS_SHAPE, MNIST_SHAPE, Build, _builder


@_builder("lenet5", MNIST_SHAPE)
def lenet5(b: Build) -> Sequential:
    """LeNet-5 with ReLU and max pooling (61,706 parameters on 28x28 MNIST).

    conv 1->6 5x5 pad 2, ReLU, maxpool 2; conv 6->16 5x5, ReLU, maxpool 2; flatten 400;
    linear 120, ReLU; linear 84, ReLU; linear 10."""
    s, dtype = b.s, b.dtype
    feats, out = b.chain(Conv2d(b.shape[0], 6, 5, padding=2, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2),
                         Conv2d(6, 16, 5, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2))
    return b.model(*b.classifier(feats, out, (120, 84, b.k)))


@_builder("lenet5-classic", MNIST_SHAPE)
def lenet5_classic(b: Build) -> Sequential:
    """LeNet-5 as LeCun et al. 1998 (tanh, average pooling), without the RBF output layer."""
    s, dtype = b.s, b.dtype
    feats, out = b.chain(Conv2d(b.shape[0], 6, 5, padding=2, init="glorot", dtype=dtype, seed=s()), Tanh(),
                         AvgPool2d(2),
                         Conv2d(6, 16, 5, init="glorot", dtype=dtype, seed=s()), Tanh(), AvgPool2d(2))
    return b.model(*b.classifier(feats, out, (120, 84, b.k), Tanh, "glorot"))


@_builder("theano-lenet", MNIST_SHAPE)
def theano_lenet(b: Build) -> Sequential:
    """The Theano tutorial's LeNet: 20 and 50 5x5 filters, max-pool then tanh, 500 tanh units.

    Each convolution is max-pooled, then tanh; the classifier is softmax over 10."""
    s, dtype = b.s, b.dtype
    feats, out = b.chain(Conv2d(b.shape[0], 20, 5, init="glorot", dtype=dtype, seed=s()), MaxPool2d(2), Tanh(),
                         Conv2d(20, 50, 5, init="glorot", dtype=dtype, seed=s()), MaxPool2d(2), Tanh())
    return b.model(*b.classifier(feats, out, (500, b.k), Tanh, "glorot"))


@_builder("tutorial-net", MNIST_SHAPE)
def tutorial_net(b: Build) -> Sequential:
    """The PyTorch beginners' tutorial net (3x3 kernels) sized for 28x28 inputs."""
    s, dtype = b.s, b.dtype
    feats, out = b.chain(Conv2d(b.shape[0], 6, 3, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2),
                         Conv2d(6, 16, 3, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2))
    return b.model(*b.classifier(feats, out, (120, 84, b.k)))


@_builder("mlp", MNIST_SHAPE)
def mlp(b: Build) -> Sequential:
    """The seeds' fully connected baseline: 784-300-50-10 with ReLU."""
    return b.model(*b.classifier([], b.shape, (300, 50, b.k)))


@_builder("lenet5-separable", MNIST_SHAPE)
def lenet5_separable(b: Build) -> Sequential:
    """LeNet-5 with a depthwise-separable second convolution (5x5 depthwise, 1x1 pointwise).

    The depthwise conv has groups=6; the pointwise conv maps 6->16: the Xception/MobileNet
    factorisation of the seeds' section on convolution types."""
    s, dtype = b.s, b.dtype
    feats, out = b.chain(Conv2d(b.shape[0], 6, 5, padding=2, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2),
                         Conv2d(6, 6, 5, groups=6, dtype=dtype, seed=s()),
                         Conv2d(6, 16, 1, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2))
    return b.model(*b.classifier(feats, out, (120, 84, b.k)))


@_builder("lenet5-bn", MNIST_SHAPE)
def lenet5_bn(b: Build) -> Sequential:
    """LeNet-5 with BatchNorm2d after each convolution (whose bias the norm makes redundant).

    conv 6 5x5 pad 2, BN, ReLU, maxpool 2; conv 16 5x5, BN, ReLU, maxpool 2; linear 120, 84, 10."""
    s, dtype = b.s, b.dtype
    feats, out = b.chain(Conv2d(b.shape[0], 6, 5, padding=2, bias=False, dtype=dtype, seed=s()),
                         BatchNorm2d(6, dtype=dtype), ReLU(), MaxPool2d(2),
                         Conv2d(6, 16, 5, bias=False, dtype=dtype, seed=s()), BatchNorm2d(16, dtype=dtype), ReLU(),
                         MaxPool2d(2))
    return b.model(*b.classifier(feats, out, (120, 84, b.k)))


@_builder("digits-net", DIGITS_SHAPE)
def digits_net(b: Build) -> Sequential:
    """The from-scratch seed's net for 8x8 digits: one 3x3 filter, ReLU, linear 10, ReLU, linear 10.

    conv 1->1 3x3 (no padding, stride 1), ReLU; flatten 36; linear 10 hidden units, ReLU; linear 10
    (the seed's ConvClassifier(img_size=(8, 8), hidden_dim=10, out_dim=10))."""
    feats, out = b.chain(Conv2d(b.shape[0], 1, 3, dtype=b.dtype, seed=b.s()), ReLU())
    return b.model(*b.classifier(feats, out, (10, b.k)))


@_builder("digits-cnn", DIGITS_SHAPE)
def digits_cnn(b: Build) -> Sequential:
    """A small CNN for 8x8 digits (`--data digits`' default): two 3x3 convs, one pool, linear 64.

    conv 1->16 3x3 pad 1, ReLU, maxpool 2; conv 16->32 3x3 pad 1, ReLU; flatten 512; linear 64,
    ReLU; linear 10 (for 8x8 inputs)."""
    s, dtype = b.s, b.dtype
    feats, out = b.chain(Conv2d(b.shape[0], 16, 3, padding=1, dtype=dtype, seed=s()), ReLU(),
                         MaxPool2d(2), Conv2d(16, 32, 3, padding=1, dtype=dtype, seed=s()), ReLU())
    return b.model(*b.classifier(feats, out, (64, b.k)))


# --- an encoder-decoder (U-Net style, skips by addition) ---------------------------------------


@_builder("unet-mini", MNIST_SHAPE)
def unet_mini(b: Build) -> Sequential:
    """A two-level U-Net-style encoder-decoder, skips by addition, with per-pixel class scores averaged.

    conv 3x3 'same'-BN-ReLU (8); then at full size x + up(...): maxpool 2, conv-BN-ReLU (16), and at
    half size x + ConvTranspose2d(32 -> 16, 2, stride 2) of maxpool 2, conv-BN-ReLU (32); a 1x1 conv
    (16 -> 8) and Upsample x2 (nearest) back to full size; ReLU, 1x1 conv to the classes, global
    average pooling. H and W must be multiples of 4 (28x28, 8x8, 32x32)."""
    s, dtype, w = b.s, b.dtype, 8

    def block(cin: int, cout: int) -> list[Layer]:
        return [Conv2d(cin, cout, 3, padding="same", bias=False, dtype=dtype, seed=s()), BatchNorm2d(cout, dtype=dtype),
                ReLU()]

    inner = Residual(Sequential(MaxPool2d(2), *block(2 * w, 4 * w),
                                ConvTranspose2d(4 * w, 2 * w, 2, stride=2, dtype=dtype, seed=s())))
    outer = Residual(Sequential(MaxPool2d(2), *block(w, 2 * w), inner, Conv2d(2 * w, w, 1, dtype=dtype, seed=s()),
                                Upsample(scale_factor=2)))
    layers, _ = b.chain(*block(b.shape[0], w), outer, ReLU(), Conv2d(w, b.k, 1, dtype=dtype, seed=s()),
                        GlobalAvgPool2d())
    return b.model(*layers)


@_builder("fashion-cnn", MNIST_SHAPE)
def fashion_cnn(b: Build) -> Sequential:
    """Three convolutions with batch norm and pooling (Zalando's benchmark table puts such nets at
    92.5-93.4%): conv 32 3x3 pad 1, BN, ReLU, maxpool 2; conv 64 3x3 pad 1, BN, ReLU; conv 64 3x3
    pad 1, BN, ReLU, maxpool 2; flatten 3136; linear 128, ReLU; linear 10 (for 28x28 inputs;
    458,730 parameters). The two-convolution 16/32 version of this net reached 91.66% test accuracy
    in the fashion recipe, 32/64 91.73%, this one 92.75% (docs/data.md, Recipes)."""
    s, dtype = b.s, b.dtype
    feats, out = b.chain(Conv2d(b.shape[0], 32, 3, padding=1, bias=False, dtype=dtype, seed=s()),
                         BatchNorm2d(32, dtype=dtype), ReLU(), MaxPool2d(2),
                         Conv2d(32, 64, 3, padding=1, bias=False, dtype=dtype, seed=s()),
                         BatchNorm2d(64, dtype=dtype), ReLU(),
                         Conv2d(64, 64, 3, padding=1, bias=False, dtype=dtype, seed=s()),
                         BatchNorm2d(64, dtype=dtype), ReLU(), MaxPool2d(2))
    return b.model(*b.classifier(feats, out, (128, b.k)))
