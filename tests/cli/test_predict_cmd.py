"""`dualnet predict` on real images: an off-centre digit on a large light canvas, a colour model
on an RGB JPEG, the top-k table, the hint, --show-input and --json."""

from __future__ import annotations

import json
import pathlib

import h5py
import numpy as np
import pytest
from cli_helpers import run_main
from click.testing import CliRunner
from PIL import Image

import dualnet as dn
from dualnet.data import prepare
from dualnet_cli.main import cli

CORPUS = pathlib.Path(__file__).resolve().parents[1] / "reliability" / "corpus"


@pytest.fixture(scope="module")
def digit_model(tmp_path_factory):
    """LeNet-5 after ~190 steps on 6,000 MNIST images (about 2 s), and a test '2' it reads right."""
    model = dn.models.get("lenet5")
    train = dn.data.load("mnist", "all-train", limit=6000)
    dn.fit(model, train, None, epochs=1, batch_size=32, optimizer=dn.optim.SGD(model.parameters(), lr=0.05,
                                                                                 momentum=0.9))
    path = tmp_path_factory.mktemp("predict") / "lenet5.h5"
    dn.save(model, path)
    test = dn.data.load("mnist", "test", limit=300)
    model.eval()
    prepared = np.stack([prepare.digit_input(img[0]) for img in test.images])
    probs = model(prepared)
    twos = [i for i in range(len(test)) if test.labels[i] == 2 and probs[i].argmax() == 2]
    assert twos, "the quickly trained model reads no '2' of the first 300 test images"
    return path, test.images[twos[0], 0]


def _off_centre_canvas(digit: np.ndarray) -> np.ndarray:
    """The digit dark on a light 600x400 canvas, twice its size, near the top right corner."""
    canvas = np.full((400, 600), 0.9)
    canvas[40:96, 450:506] = 0.9 - 0.8 * np.kron(digit, np.ones((2, 2)))
    return (canvas * 255).round().astype(np.uint8)


def test_predict_reads_an_off_centre_dark_digit_on_a_large_light_canvas(digit_model, tmp_path):
    ckpt, digit = digit_model
    png = tmp_path / "off-centre.png"
    Image.fromarray(_off_centre_canvas(digit)).save(png)
    shown = tmp_path / "seen.png"
    result = CliRunner().invoke(cli, ["predict", str(ckpt), str(png), "--json", "--show-input", str(shown)])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["class"] == 2, row
    seen = np.asarray(Image.open(shown))
    assert seen.shape[0] >= 112 and seen.shape[0] % 28 == 0  # the 28x28 input, enlarged
    # what the model saw is the MNIST digit again: light on dark, centred
    small = seen[::seen.shape[0] // 28, ::seen.shape[0] // 28] / 255.0
    cy, cx = prepare.centre_of_mass(small)
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1 and small[0].max() == 0


def test_predict_prints_the_top_k_table_and_a_hint_when_unsure(digit_model, tmp_path):
    ckpt, _ = digit_model
    noise = (np.random.default_rng(0).uniform(0, 1, (60, 60)) * 255).astype(np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    result = CliRunner().invoke(cli, ["predict", str(ckpt), str(tmp_path / "noise.png"), "--top", "4", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    probs = [t["probability"] for t in row["top"]]
    assert len(probs) == 4 and probs == sorted(probs, reverse=True)
    assert probs[0] < 0.5 and "may not show any of the model's classes" in row["hint"]  # noise: no digit
    text = CliRunner().invoke(cli, ["predict", str(ckpt), str(tmp_path / "noise.png"), "--top", "4"]).output
    lines = text.splitlines()
    assert lines[1].split() == ["rank", "class", "probability"] and len(lines) >= 6
    assert [line.split()[0] for line in lines[2:6]] == ["1", "2", "3", "4"]
    assert lines[6].startswith("  hint: the top probability is only")


def test_the_hint_comes_exactly_below_half():
    from dualnet.inference import hint

    assert hint(0.49, 1) is not None and "handwritten digit" in hint(0.49, 1)
    assert hint(0.2, 3) is not None and "one object" in hint(0.2, 3)
    assert hint(0.5, 1) is None and hint(0.99, 3) is None


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory):
    """An untrained resnet8 for 3x32x32 with a per-channel normalization and class names."""
    path = tmp_path_factory.mktemp("colour") / "resnet8.h5"
    names = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    dn.save(dn.models.get("resnet8", input_shape=(3, 32, 32)), path,
            normalization={"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]}, class_names=names)
    return path, names


def test_a_colour_model_predicts_an_rgb_jpeg(colour_model, tmp_path):
    ckpt, names = colour_model
    rgb = np.zeros((300, 420, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[50:250, 100:300, 2] = 255
    Image.fromarray(rgb).save(tmp_path / "photo.jpg", quality=90)
    shown = tmp_path / "seen.png"
    result = CliRunner().invoke(cli, ["predict", str(ckpt), str(tmp_path / "photo.jpg"), "--top", "10", "--json",
                                      "--show-input", str(shown)])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert sum(t["probability"] for t in row["top"]) == pytest.approx(1.0)
    assert row["name"] == names[row["class"]] and {t["name"] for t in row["top"]} == set(names)
    seen = np.asarray(Image.open(shown))
    assert seen.ndim == 3 and seen.shape[2] == 3 and seen.shape[0] >= 112
    # the model got the normalized input: the same logits as feeding it by hand
    model = dn.load(ckpt)
    model.eval()
    x = dn.data.normalize(prepare.load_inputs([tmp_path / "photo.jpg"], (3, 32, 32)), model.metadata["normalization"])
    expected = np.exp(model(x)[0].astype(np.float64))
    assert row["top"][0]["probability"] == pytest.approx(expected.max() / expected.sum(), rel=1e-5)
    text = CliRunner().invoke(cli, ["predict", str(ckpt), str(tmp_path / "photo.jpg")]).output
    assert text.splitlines()[0].startswith(f"{tmp_path / 'photo.jpg'}: {row['name']}")


def test_invert_is_refused_for_a_colour_model(colour_model, tmp_path):
    ckpt, _ = colour_model
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    result = CliRunner().invoke(cli, ["predict", str(ckpt), str(tmp_path / "a.png"), "--invert", "yes"])
    assert result.exit_code == 2 and "--invert yes applies to digit (1-channel) models" in result.output


def test_a_colour_model_takes_a_grayscale_image_as_three_equal_channels(tmp_path):
    """The corpus's 3x28x28 checkpoint, once refused by predict, now reads the corpus digit."""
    result = CliRunner().invoke(cli, ["predict", str(CORPUS / "ckpt" / "three-channel-model.h5"),
                                      str(CORPUS / "good" / "digit.png"), "--json"])
    assert result.exit_code == 0, result.output
    assert sum(t["probability"] for t in json.loads(result.output)["top"]) <= 1 + 1e-9


def test_predict_refuses_a_checkpoint_whose_normalization_has_the_wrong_channel_count(colour_model, tmp_path,
                                                                                     capsys):
    ckpt, _ = colour_model
    model = dn.load(ckpt)
    bad = tmp_path / "bad-norm.h5"
    dn.save(model, bad)
    # dn.save itself refuses to write such a file (it would not load back): edit one, as damage would
    with h5py.File(bad, "r+") as f:
        metadata = json.loads(f.attrs["metadata"])
        metadata["normalization"] = {"mean": [0.5, 0.5], "std": [0.2, 0.2]}
        f.attrs["metadata"] = json.dumps(metadata)
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(tmp_path / "photo.png")
    code, _, err = run_main(["predict", str(bad), str(tmp_path / "photo.png")], capsys)
    assert code == 1
    assert err.startswith(f"dualnet: error: {bad}: metadata: normalization mean must be 1 or 3 finite numbers")
    assert len(err.strip().splitlines()) == 1


def test_featuremaps_title_says_what_predict_says_of_the_same_off_centre_digit(digit_model, tmp_path):
    """One preparation for both: the old squash-to-size path made featuremaps see a speck."""
    pytest.importorskip("matplotlib")
    from dualnet import inference, plots

    ckpt, digit = digit_model
    png = tmp_path / "off-centre.png"
    Image.fromarray(_off_centre_canvas(digit)).save(png)
    answer = json.loads(CliRunner().invoke(cli, ["predict", str(ckpt), str(png), "--json"]).output)
    model = dn.load(ckpt)
    fig = plots.feature_maps(model, inference.prepare_inputs(model, png)[0])
    title = fig.subfigs[0].get_suptitle()
    assert title.endswith(f": predicted {answer['name']} ({answer['top'][0]['probability']:.1%})"), title
    out = tmp_path / "maps.png"
    result = CliRunner().invoke(cli, ["featuremaps", str(ckpt), str(png), "-o", str(out)])
    assert result.exit_code == 0 and out.exists(), result.output


def test_a_blank_image_gets_no_ink_found_instead_of_a_class(digit_model, tmp_path):
    ckpt, _ = digit_model
    Image.fromarray(np.full((60, 80), 230, np.uint8)).save(tmp_path / "blank.png")
    text = CliRunner().invoke(cli, ["predict", str(ckpt), str(tmp_path / "blank.png")]).output
    assert text.splitlines() == [f"{tmp_path / 'blank.png'}: no ink found: the image is blank once its background "
                                 "is taken away; a digit model needs a digit drawn on a plain background"]
    row = json.loads(CliRunner().invoke(cli, ["predict", str(ckpt), str(tmp_path / "blank.png"), "--json"]).output)
    assert row["class"] is None and row["top"] == [] and row["hint"].startswith("no ink found")
