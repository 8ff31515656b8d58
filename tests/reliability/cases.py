"""The corpus of bad inputs: for each case a command line, its exit code, and what the single
line it prints on stderr must say.

Placeholders in `argv`: {corpus} (the folder of bad files, see make_corpus.py), {tmp} (a fresh
temporary folder), {good} (corpus/good/tiny.h5, a valid resumable checkpoint of a tiny model),
{digit} (corpus/good/digit.png, a valid image).

`names`: the corpus path (relative) that the line must mention: the file at fault. `problem`: a
regular expression the line must match (searched, case-sensitive). Exit codes: 2 for a usage
error (an option's value), 1 for everything else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    code: int
    problem: str
    names: str | None = None


TRAIN = ("train", "--epochs", "1", "--limit", "10", "--validation", "5", "--device", "cpu", "--out", "{tmp}/run.h5")
EVALUATE = ("evaluate", "{good}", "--device", "cpu", "--limit", "10")
CASES: list[Case] = []


def data(name: str, problem: str, command: tuple[str, ...] = TRAIN, names: str | None = None) -> None:
    """A bad data source given to `dualnet train` (default) or `dualnet evaluate` via --data."""
    path = f"data/{name}"
    CASES.append(Case(f"{command[0]}-data-{name}", (*command, "--data", "{corpus}/" + path), 1, problem,
                      names or path))


def checkpoint(name: str, problem: str, how: str = "evaluate", code: int = 1) -> None:
    """A bad checkpoint given to `dualnet evaluate`, `predict`, `train --resume` or `export`."""
    path = f"ckpt/{name}.h5"
    argv = {"evaluate": ("evaluate", "{corpus}/" + path, "--device", "cpu", "--limit", "10"),
            "predict": ("predict", "{corpus}/" + path, "{digit}"),
            "resume": ("train", "--resume", "{corpus}/" + path, "--epochs", "3", "--device", "cpu",
                       "--out", "{tmp}/resumed.h5"),
            "export": ("export", "{corpus}/" + path, "{tmp}/model.onnx", "--verify")}[how]
    CASES.append(Case(f"{how}-ckpt-{name}", argv, code, problem, path))


def image(name: str, problem: str) -> None:
    """A bad image given to `dualnet predict` with a valid checkpoint."""
    path = f"images/{name}"
    CASES.append(Case(f"predict-image-{name}", ("predict", "{good}", "{digit}", "{corpus}/" + path), 1, problem,
                      path))


def usage(id: str, argv: tuple[str, ...], problem: str, code: int = 2) -> None:
    """A bad argument: no bad file involved."""
    CASES.append(Case(f"args-{id}", argv, code, problem))


# --- data: IDX folders (each file at fault sits in the folder named by the case) ----------------
data("idx-wrong-magic", r"wrong magic 0x08030000: not an IDX file")
data("idx-unknown-type-code", r"unknown IDX type code 0x0a")
data("idx-zero-dimensions", r"declares zero dimensions")
data("idx-truncated-header", r"truncated header: 3 dimensions declared")
data("idx-truncated-payload-raw", r"truncated: the header \(shape \(20, 28, 28\)\) promises 15680 payload bytes, "
     r"the file holds 15580")
data("idx-truncated-payload-gz", r"truncated: .* promises 15680 payload bytes, the file holds 15580")
data("idx-truncated-payload-gz", r"truncated: .* promises 15680 payload bytes", command=EVALUATE)
data("idx-trailing-bytes-raw", r"trailing bytes: the header \(shape \(20, 28, 28\)\) promises 15680")
data("idx-header-claims-terabytes", r"header declares shape \(60000, 100000, 100000\) of uint8, .* more than the "
     r"2147483648 bytes accepted")
data("idx-header-claims-2gb-gz", r"truncated: the header \(shape \(2400000, 28, 28\)\) promises 1881600000 "
     r"payload bytes, the file holds 15680")
data("idx-header-claims-2gb-gz", r"truncated: .* promises 1881600000 payload bytes", command=EVALUATE)
data("idx-dims-disagree-with-size-raw", r"train-images-idx3-ubyte: truncated: the header \(shape \(25, 28, 28\)\) "
     r"promises 19600 payload bytes, the file holds 15680")
data("idx-label-count-mismatch", r"holds 20 images but .*labels-idx1-ubyte.gz holds 19 labels")
data("idx-labels-two-dimensional", r"labels have shape \(20, 1\); expected \(N,\)")
data("idx-images-one-dimensional", r"images have shape \(15680,\); expected \(N, H, W\) or \(N, C, H, W\)")
data("idx-empty-images", r"images have shape \(\d+, 1, 0, 28\); expected .* with non-empty images")
data("idx-corrupt-gzip-stream", r"corrupt gzip stream")
data("idx-missing-labels-file", r"no train labels file; looked for train-labels-idx1-ubyte")
data("idx-missing-labels-file", r"no test labels file; looked for t10k-labels-idx1-ubyte", command=EVALUATE)
data("idx-float-pixels-out-of-range", r"float pixels must lie in \[0, 1\] but record 0 does not")
data("idx-float-pixels-nan", r"record 3 holds NaN or infinite pixels", command=EVALUATE)
data("idx-negative-labels", r"label -1 at record 4 is outside \[0, 10\)")
data("idx-float-labels", r"labels have dtype float32; expected integers")
# train builds its model for the data's classes and shape (any count, any size): only --num-classes
# below the labels' range, or a model trained on other data, is refused
data("idx-labels-beyond-ten-classes", r"label 1[0-4] at record \d+ is outside \[0, 10\)",
     command=("train", "--epochs", "1", "--validation", "5", "--device", "cpu", "--out", "{tmp}/run.h5",
              "--num-classes", "10"))
data("idx-labels-beyond-ten-classes", r"the data has 15 classes .*, but the model in .*good/tiny.h5 outputs 10 "
     r"scores", command=EVALUATE)
data("idx-images-32x32", r"images of shape \(1, 32, 32\) do not fit the model in .*good/tiny.h5: fc1: expected "
     r"784 input features", command=EVALUATE)

# --- data: HDF5 files -------------------------------------------------------------------------
data("h5-missing-images.h5", r"missing dataset '/train/images' \(need 'images' and 'labels'\)")
data("h5-missing-labels.h5", r"missing dataset '/test/labels'", command=EVALUATE)
data("h5-images-int32.h5", r"/train/images: images have dtype int32; expected uint8 \(0..255\) or float in \[0, 1\]")
data("h5-images-rank-2.h5", r"/test/images: images have shape \(20, 784\); expected \(N, H, W\)", command=EVALUATE)
data("h5-pixels-nan.h5", r"/train/images: record 2 holds NaN or infinite pixels")
data("h5-pixels-inf.h5", r"/test/images: record 7 holds NaN or infinite pixels", command=EVALUATE)
data("h5-float-pixels-0-to-255.h5", r"float pixels must lie in \[0, 1\]")
data("h5-labels-negative.h5", r"/train/labels: label -2 at record 3 is outside \[0, 10\)")
data("h5-labels-float.h5", r"/test/labels: labels have dtype float64; expected integers", command=EVALUATE)
data("h5-labels-strings.h5", r"/train/labels: labels have dtype \|S5; expected integers")
data("h5-length-mismatch.h5", r"/train/images holds 20 images but /train/labels holds 18 labels")
data("h5-num-classes-attribute-too-small.h5", r"label 3 at record 3 is outside \[0, 3\)")
data("h5-num-classes-attribute-not-int.h5", r"attribute num_classes must be an integer, got 'ten'")
data("h5-labels-beyond-ten-classes.h5", r"the data has 12 classes \(labels 0..11\), but the model in .* "
     r"outputs 10 scores", command=EVALUATE)
data("h5-images-three-channels.h5", r"images of shape \(3, 28, 28\) do not fit the model in .*good/tiny.h5",
     command=EVALUATE)
data("h5-huge-unwritten-datasets.h5", r"/train/images: declares shape \(100000000, 28, 28\) .* but the file stores "
     r"only 0 bytes")
data("h5-huge-unwritten-datasets.h5", r"/test/images: declares shape \(100000000, 28, 28\)", command=EVALUATE)
data("h5-images-is-a-group.h5", r"missing dataset '/test/images'", command=EVALUATE)
data("h5-no-test-group.h5", r"no 'test' group for split 'test'", command=EVALUATE)
data("h5-truncated.h5", r"cannot open as HDF5")
data("h5-not-hdf5.h5", r"cannot open as HDF5", command=EVALUATE)

# --- checkpoints ------------------------------------------------------------------------------
checkpoint("not-hdf5", r"not an HDF5 file")
checkpoint("not-hdf5", r"not an HDF5 file", how="predict")
checkpoint("not-hdf5", r"not an HDF5 file", how="resume")
checkpoint("empty-file", r"not an HDF5 file")
checkpoint("truncated", r"damaged or truncated HDF5 file")
checkpoint("truncated", r"damaged or truncated HDF5 file", how="resume")
checkpoint("data-file-not-checkpoint", r"not a dualnet checkpoint \(root attribute 'format' is None")
checkpoint("missing-model-group", r"missing group 'model'")
checkpoint("missing-parameters-group", r"missing group 'model/parameters'", how="predict")
checkpoint("missing-parameter", r"missing parameter fc1.bias")
checkpoint("extra-parameter", r"unexpected parameters not in the model architecture: fc7.weight")
checkpoint("unknown-layer-type", r"unknown layer type 'Conv3d'; known: ")
checkpoint("unknown-layer-type", r"unknown layer type 'Conv3d'", how="resume")
checkpoint("negative-layer-size", r"Linear: out_features must be a positive int, got -10")
checkpoint("parameter-shape-mismatch", r"parameter fc1.bias has shape \(7,\) in the file but the model needs \(10,\)")
checkpoint("parameter-dtype-mismatch", r"parameter fc1.bias has dtype float64 in the file but the checkpoint's dtype "
           r"is float32", how="predict")
checkpoint("parameter-nan", r"parameter fc1.bias contains 10 non-finite values")
checkpoint("newer-format-version", r"written by a newer dualnet \(format 99\); upgrade dualnet")
checkpoint("newer-format-version", r"written by a newer dualnet", how="resume")
checkpoint("unsupported-dtype-attribute", r"unsupported parameter dtype 'int8'")
checkpoint("config-not-json", r"attribute 'config' of group 'model' is not valid JSON")
checkpoint("huge-layer-unwritten-parameters", r"the architecture in 'config' needs 3,600,060,000 parameters but the "
           r"file stores")
checkpoint("buffer-shape-mismatch", r"buffer bn1.running_mean \(dataset model/buffers/bn1.running_mean\) has "
           r"shape \(7,\) in the file but the model needs \(10,\)")
checkpoint("buffer-shape-mismatch", r"buffer bn1.running_mean .* has shape \(7,\)", how="predict")
checkpoint("buffer-missing", r"missing buffer bn1.running_var \(dataset model/buffers/bn1.running_var\)")
checkpoint("input-shape-huge", r"input_shape \[1, 100000, 100000\] is not 1 to 3 positive sizes", how="predict")
checkpoint("input-shape-not-a-list", r"input_shape '28x28' is not 1 to 3 positive sizes")
checkpoint("input-shape-disagrees-with-layers", r"the layers do not accept the stored input_shape \(1, 32, 32\): fc1: "
           r"expected 784 input features", how="predict")
checkpoint("three-channel-model", r"images of shape \(1, 28, 28\) do not fit the model in .*: fc1: expected 2352")
checkpoint("five-class-model", r"the data has 10 classes \(labels 0..9\), but the model in .* outputs 5 scores "
           r"per image")
checkpoint("unknown-optimizer-type", r"unknown optimizer type 'Lion' \(known: SGD, Adam, AdamW\)", how="resume")
checkpoint("optimizer-negative-lr", r"bad SGD hyperparameters .*lr must be a positive finite number, got -1.0",
           how="resume")
checkpoint("optimizer-buffer-shape", r"optimizer buffer 1/velocity has shape \(3,\) in the file but the model needs "
           r"\(10,\)", how="resume")
checkpoint("history-length-mismatch", r"history columns have different lengths \[2, 5\]")
checkpoint("history-huge-unwritten", r"history 'epoch': declares shape \(100000000,\) .* stores only 0 bytes")
checkpoint("not-from-train", r"was not written by `dualnet train`; it cannot be resumed", how="resume")
checkpoint("train-config-incomplete", r"the stored run is damaged: train_config has no 'data'", how="resume")
checkpoint("train-config-negative-batch-size", r"the stored run is damaged: train_config batch_size=-8: .*must be an "
           r"integer > 0, got -8", how="resume")
checkpoint("train-config-unknown-optimizer", r"the stored run is damaged: train_config optimizer='rmsprop': "
           r".*'rmsprop' is not one of 'sgd'", how="resume")
checkpoint("train-state-epoch-not-int", r"the stored run is damaged: train_state epoch='two' is not an int >= 0",
           how="resume")
checkpoint("train-state-step-beyond-epoch", r"cannot resume at step 1000000 of an epoch of 2 steps: the stored state does not "
           r"match its data", how="resume")

# checkpoints reaching outside themselves: refused before anything is read, naming the link
checkpoint("bias-in-etc-passwd", r"dataset /model/parameters/fc1.bias keeps its data in external files \(HDF5 external "
           r"storage\); refused", how="predict")
checkpoint("bias-in-etc-passwd", r"/model/parameters/fc1.bias keeps its data in external files", how="resume")
checkpoint("bias-in-etc-passwd", r"/model/parameters/fc1.bias keeps its data in external files")
checkpoint("bias-external-link", r"/model/parameters/fc1.bias is an external link to "
           r"/nonexistent/dualnet-secret.h5:/data; links to other files are refused", how="predict")
checkpoint("bias-external-link", r"/model/parameters/fc1.bias is an external link", how="resume")
checkpoint("bias-virtual-missing-source", r"dataset /model/parameters/fc1.bias is a virtual dataset \(its data is "
           r"mapped from other files\); refused")
checkpoint("bias-soft-link-to-external-link", r"/elsewhere is an external link to /nonexistent/dualnet-secret.h5",
           how="predict")
data("h5-images-in-etc-passwd.h5", r"dataset /train/images keeps its data in external files", command=EVALUATE)
data("h5-images-in-etc-passwd.h5", r"dataset /train/images keeps its data in external files")
data("h5-images-external-link.h5", r"/train/images is an external link to /nonexistent/dualnet-secret.h5:/data")
data("h5-images-virtual-missing-source.h5", r"dataset /train/images is a virtual dataset", command=EVALUATE)
CASES.append(Case("featuremaps-ckpt-bias-in-etc-passwd", ("featuremaps", "{corpus}/ckpt/bias-in-etc-passwd.h5",
                                                          "{digit}", "-o", "{tmp}/m.png"), 1,
                  r"/model/parameters/fc1.bias keeps its data in external files", "ckpt/bias-in-etc-passwd.h5"))

# silent wrong models, refusals of valid input, misleading messages
checkpoint("duplicate-layer-names", r"bad model config: two layers are named 'fc1'; layer names must be unique")
checkpoint("duplicate-layer-names", r"two layers are named 'fc1'", how="predict")
checkpoint("layer-name-not-a-string", r"bad model config: layer 1 has name 7; a layer name is a non-empty string",
           how="resume")
data("h5-empty-test-split.h5", r"/test/images: images have shape \(0, 28, 28\); expected .* non-empty|the split is "
     r"empty \(0 images\); nothing to evaluate", command=EVALUATE)
data("h5-five-images.h5", r"the training split is empty \(0 images after holding out --validation 5\)")

# the picture commands read checkpoints and images with the same loaders
CASES.append(Case("plot-ckpt-not-hdf5", ("plot", "{corpus}/ckpt/not-hdf5.h5", "-o", "{tmp}/c.png"), 1,
                  r"not an HDF5 file", "ckpt/not-hdf5.h5"))
CASES.append(Case("filters-ckpt-truncated", ("filters", "{corpus}/ckpt/truncated.h5", "-o", "{tmp}/f.png"), 1,
                  r"damaged or truncated HDF5 file", "ckpt/truncated.h5"))
CASES.append(Case("featuremaps-image-zip-bomb.png", ("featuremaps", "{good}", "{corpus}/images/zip-bomb.png", "-o",
                                                     "{tmp}/m.png"), 1, r"image data exceeds", "images/zip-bomb.png"))

# --- images for predict -----------------------------------------------------------------------
image("empty-file.png", r"empty file, not an image")
image("text-renamed.png", r"not a PNG file: bad signature")
image("truncated.png", r"truncated PNG")
image("bad-crc.png", r"corrupt PNG: CRC mismatch in chunk 'IHDR'")
image("huge-dimensions.png", r"PNG header declares 100000x100000 pixels, more than the 100000000 accepted")
image("interlaced.png", r"truncated PNG: 812 bytes of image data, 28x28 grayscale needs 837")
image("bad-filter-type.png", r"corrupt PNG: unknown filter type 9 in row 0")
image("zip-bomb.png", r"corrupt PNG: image data exceeds the 812 bytes that 28x28 grayscale needs")
image("photo.jpg", r"corrupt JPEG file: its header cannot be decoded")
image("animation.gif", r"corrupt GIF file: its header cannot be decoded")
image("animated-two-frames.gif", r"animated GIF with 2 frames; predict reads one image")
image("one-bit-10000x10000.png", r"PNG header declares 10000x10000 pixels, which need about [\d,]+ MB to decode, "
      r"more than the 256 MB budget")
image("jpeg-header-60000x60000.jpg", r"JPEG image refused as a decompression bomb")
image("negative-sample.pgm", r"corrupt P2: a sample is not a decimal number: '-7' \(samples are unsigned\)")
image("bmp-truncated.bmp", r"corrupt or truncated BMP file")
image("truncated.pgm", r"truncated P5: 28x28 needs 784 bytes of pixels, the file holds 100")
image("maxval-zero.pgm", r"P5 maxval 0 outside 1..65535")
image("zero-width.pgm", r"P5 header declares an empty image \(0x28\)")
image("rgb-three-channels.npy", r"\.npy array of shape \(28, 28, 3\) is not one grayscale image")
image("nan-pixels.npy", r"\.npy image holds NaN or infinite values")
image("int64-pixels.npy", r"unsupported \.npy dtype int64 \(use uint8, or float in \[0, 1\]\)")
image("object-array.npy", r"\.npy holds Python objects .* refused")
image("missing.png", r"missing.png: cannot read: No such file or directory")

# --- arguments --------------------------------------------------------------------------------
usage("epochs-zero", ("train", "--epochs", "0"), r"Invalid value for '--epochs': must be an integer > 0, got 0")
usage("epochs-negative", ("train", "--epochs", "-3"), r"'--epochs': must be an integer > 0, got -3")
usage("epochs-not-a-number", ("train", "--epochs", "ten"), r"'--epochs': 'ten' is not a valid integer")
usage("batch-size-zero", ("train", "--batch-size", "0"), r"'--batch-size': must be an integer > 0, got 0")
usage("lr-zero", ("train", "--lr", "0"), r"'--lr': must be a finite number > 0, got 0.0")
usage("lr-negative", ("train", "--lr", "-0.1"), r"'--lr': must be a finite number > 0, got -0.1")
usage("lr-nan", ("train", "--lr", "nan"), r"'--lr': must be a finite number > 0, got nan")
usage("lr-inf", ("train", "--lr", "inf"), r"'--lr': must be a finite number > 0, got inf")
usage("momentum-one", ("train", "--momentum", "1"), r"'--momentum': 1.0 is not in the range 0.0<=x<1.0")
usage("momentum-nan", ("train", "--momentum", "nan"), r"'--momentum': must be a finite number >= 0, got nan")
usage("weight-decay-negative", ("train", "--weight-decay", "-1e-4"), r"'--weight-decay': must be a finite number >= 0")
usage("weight-decay-inf", ("train", "--weight-decay", "inf"), r"'--weight-decay': must be a finite number >= 0, got inf")
usage("clip-grad-zero", ("train", "--clip-grad", "0"), r"'--clip-grad': must be a finite number > 0, got 0.0")
usage("clip-grad-nan", ("train", "--clip-grad", "nan"), r"'--clip-grad': must be a finite number > 0, got nan")
usage("limit-zero", ("train", "--limit", "0"), r"'--limit': must be an integer > 0, got 0")
usage("validation-negative", ("train", "--validation", "-1"), r"'--validation': -1 is not in the range x>=0")
usage("augment-shift-negative", ("train", "--augment-shift", "-1"), r"'--augment-shift': -1 is not in the range "
      r"0<=x<=8")
usage("seed-negative", ("train", "--seed", "-1"), r"'--seed': -1 is not in the range x>=0")
usage("unknown-model", ("train", "--model", "resnet50"), r"'--model': 'resnet50' is not one of 'lenet5'")
usage("unknown-optimizer", ("train", "--optimizer", "rmsprop"), r"'--optimizer': 'rmsprop' is not one of 'sgd'")
usage("unknown-schedule", ("train", "--schedule", "warmup"), r"'--schedule': 'warmup' is not one of 'none'")
usage("unknown-device", ("train", "--device", "tpu"), r"'--device': unknown device 'tpu': expected 'ref', 'cpu', 'gpu', "
      r"'gpu:N' \(N >= 0\) or 'emu'")
usage("device-bad-index", ("train", "--device", "gpu:first"), r"unknown device 'gpu:first'")
usage("device-index-on-cpu", ("train", "--device", "cpu:1"), r"device 'cpu:1': only 'gpu' takes an index")
usage("device-empty", ("evaluate", "{good}", "--device", ""), r"unknown device ''")
usage("unknown-option", ("train", "--learning-rate", "0.1"), r"No such option '--learning-rate'")
usage("unknown-command", ("frobnicate",), r"No such command 'frobnicate'")
usage("out-is-a-directory", ("train", "--out", "{tmp}"), r"'--out': File '.*' is a directory")
usage("out-under-a-regular-file", (*TRAIN[:-1], "{digit}/runs/run.h5"),
      r"cannot write checkpoint to .*digit.png/runs/run.h5: .*digit.png is a file, not a folder; choose another "
      r"--out", code=1)
usage("resume-epochs-already-done", ("train", "--resume", "{good}", "--epochs", "2", "--device", "cpu", "--out",
                                     "{tmp}/r.h5"), r"has already trained 2 epochs; pass --epochs larger than 2", code=1)
usage("resume-with-different-lr", ("train", "--resume", "{good}", "--epochs", "3", "--lr", "1e6"),
      r"is resumed with its stored settings, but these options differ from them: --lr 1000000.0 \(stored: 0.01\)")
usage("resume-missing-file", ("train", "--resume", "{tmp}/missing.h5"), r"checkpoint .*missing.h5: no such file",
      code=1)
usage("data-missing", (*TRAIN, "--data", "{tmp}/nowhere"), r"nowhere: no such file or directory", code=1)
usage("validation-exceeds-data", ("train", "--validation", "70000", "--limit", "10", "--device", "cpu", "--out",
                                  "{tmp}/v.h5"), r"validation=70000 exceeds the 60000 training records", code=1)
usage("evaluate-limit-zero", ("evaluate", "{good}", "--limit", "0"), r"'--limit': 0 is not in the range x>=1")
usage("evaluate-batch-size-zero", ("evaluate", "{good}", "--batch-size", "0"), r"'--batch-size': 0 is not in the range")
usage("evaluate-unknown-split", ("evaluate", "{good}", "--split", "dev"), r"'--split': 'dev' is not one of 'test'")
usage("evaluate-missing-checkpoint-argument", ("evaluate",), r"Missing argument 'CKPT'")
usage("predict-no-images", ("predict", "{good}"), r"Missing argument 'FILES...'")
usage("predict-top-zero", ("predict", "{good}", "{digit}", "--top", "0"), r"'--top': 0 is not in the range x>=1")
usage("predict-unknown-invert", ("predict", "{good}", "{digit}", "--invert", "maybe"), r"'--invert': 'maybe' is not "
      r"one of 'auto', 'yes', 'no'")
usage("predict-image-is-a-directory", ("predict", "{good}", "{tmp}"), r"'FILES...': File '.*' is a directory")
usage("gradcheck-unknown-layer", ("gradcheck", "--layer", "conv3d"), r"'--layer': 'conv3d' is not one of 'conv2d'")
usage("gradcheck-examples-zero", ("gradcheck", "--examples", "0"), r"'--examples': 0 is not in the range 1<=x<=10000")
usage("gradcheck-rtol-negative", ("gradcheck", "--rtol", "-1"), r"'--rtol': must be a finite number > 0, got -1.0")
usage("gradcheck-rtol-nan", ("gradcheck", "--rtol", "nan"), r"'--rtol': must be a finite number > 0, got nan")
usage("summary-unknown-model", ("summary", "resnet"), r"unknown model 'resnet'; choose one of lenet5")

# --- validated numbers (issue 20): values that pass every structural check but give wrong results -----
# normalizations: finite in float32, std above the floor, mean in range, one value per channel
for how in ("evaluate", "predict", "export"):
    checkpoint("normalization-std-underflows-float32", r"metadata: normalization std must be >= 1e-06 .*got "
               r"\[1e-42\]", how=how)
    checkpoint("normalization-removed", r"the run normalizes its inputs \(train_config normalize=true\) but the "
               r"metadata holds no 'normalization'", how=how)
checkpoint("normalization-removed", r"metadata holds no 'normalization'", how="resume")
checkpoint("normalization-mean-overflows-float32", r"normalization mean must be 1 or 1 finite numbers .*finite in "
           r"float32\), got \[1e\+300\]")
checkpoint("normalization-mean-overflows-float32", r"got \[1e\+300\]", how="predict")
checkpoint("normalization-mean-0-to-255-scale", r"normalization mean must lie in \[-1, 2\] \(inputs lie in "
           r"\[0, 1\]; give the mean in that scale, not 0..255\), got \[33.3\]")
checkpoint("normalization-two-values-one-channel", r"metadata: normalization mean must be 1 or 1 finite numbers")
# batch-norm buffers: a variance below 0 gives NaN scores
checkpoint("buffer-negative-running-var", r"buffer bn1.running_var \(dataset model/buffers/bn1.running_var\) of "
           r"layer bn1 holds -1.0 at index 3 \(1 negative values\); a variance is >= 0")
checkpoint("buffer-negative-running-var", r"bn1.running_var .* holds -1.0 at index 3", how="predict")
# every split against the model, before any training: image shape equal to the training shape
checkpoint("global-pool-16x16-model", r"images of shape \(1, 28, 28\) differ from the \(1, 16, 16\) the model in "
           r".* was built for")
data("h5-test-images-32x32.h5", r":test: images of shape \(1, 32, 32\) do not fit the model")
data("h5-colour-test-images-16x16.h5", r":test: images of shape \(3, 16, 16\) differ from the \(3, 14, 14\) the "
     r"model was built for")
CASES.append(Case("train-stream-data-h5-colour-test-images-16x16.h5",
                  (*TRAIN, "--stream", "--data", "{corpus}/data/h5-colour-test-images-16x16.h5"), 1,
                  r":test: images of shape \(3, 16, 16\) differ from the \(3, 14, 14\)",
                  "data/h5-colour-test-images-16x16.h5"))


# --- sizes before allocation (issue 20): judged from shapes, refused above a documented cap ---------
usage("summary-classes-ten-million", ("summary", "lenet5", "--classes", "10000000"),
      r"--classes: lenet5 with 10,000,000 classes would hold at least 6\.3 GiB of parameters and gradients \(a weight "
      r"of shape 10000000x84\), more than the 1\.0 GiB accepted; give a smaller --classes", code=1)
usage("summary-input-shape-huge", ("summary", "lenet5", "--input-shape", "1,5000,5000"),
      r"--input-shape: lenet5 for 1x5000x5000 inputs would hold at least 22\.3 GiB .*a weight of shape 120x24920064",
      code=1)
CASES.append(Case("export-verify-input-shape-huge", ("export", "{corpus}/ckpt/global-pool-16x16-model.h5",
                                                     "{tmp}/m.onnx", "--verify", "--input-shape", "1,20000,20000"), 1,
                  r"--input-shape: a forward pass of 8 inputs of shape 1x20000x20000 would need 59\.6 GiB of "
                  r"activations, more than the 1\.0 GiB accepted"))
checkpoint("huge-layer-nested-unwritten", r"the architecture in 'config' needs 9,010,850 parameters but the file "
           r"stores")
data("h5-images-1200x1200.h5", r"--model or --data: model lenet5 for the images of shape 1x1200x1200 and 6 classes "
     r"of .*h5-images-1200x1200.h5 would hold at least 1\.3 GiB", command=(*TRAIN, "--model", "lenet5"))


def ids() -> list[str]:
    return [case.id for case in CASES]
