"""Pictures: every figure is written as a PNG of the expected size, is not blank, and holds the
expected panels; the CLI commands write their files; a missing matplotlib gives the pip hint."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import dualnet as dn  # noqa: E402
from dualnet import checkpoint, plots  # noqa: E402
from dualnet.errors import DualnetError  # noqa: E402

try:  # the source checkout names the CLI package `cli`, an installed dualnet `dualnet_cli`
    from cli import main as cli_main
    from cli import plot_cmd
except ImportError:  # pragma: no cover
    from dualnet_cli import main as cli_main
    from dualnet_cli import plot_cmd


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two short runs of LeNet-5 on 600 images, saved with their history, and a test slice."""
    folder = tmp_path_factory.mktemp("plots")
    with dn.device("cpu"):
        train = dn.data.load("mnist", "train", limit=600)
        val = dn.data.load("mnist", "val", limit=200)
        test = dn.data.load("mnist", "test", limit=300)
        paths = []
        for seed, epochs in ((0, 2), (1, 1)):
            model = dn.models.get("lenet5", seed=seed)
            history = dn.fit(model, train, val, epochs=epochs, batch_size=64, seed=seed, progress_every=1000)
            paths.append(checkpoint.save(model, folder / f"run{seed}.h5", history=history))
    return dict(folder=folder, paths=paths, model=checkpoint.read(paths[0], device="cpu").model, test=test)


def check_png(path, fig, dpi=100):
    """The file exists, has the figure's pixel size, and is not blank."""
    from matplotlib.image import imread

    assert path.is_file()
    pixels = imread(str(path))
    want_w, want_h = np.round(fig.get_size_inches() * dpi).astype(int)
    assert abs(pixels.shape[0] - want_h) <= 1 and abs(pixels.shape[1] - want_w) <= 1, pixels.shape
    rgb = pixels[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05
    assert len(np.unique((rgb * 255).astype(np.uint8), axis=0)) > 10
    assert not list(path.parent.glob(f".{path.name}.tmp-*"))  # the temporary file was renamed away


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


# --- library ---------------------------------------------------------------------------------


def test_training_curves_of_two_checkpoints(run):
    fig = plots.training_curves(run["paths"], labels=["long", "short"])
    assert len(fig.axes) == 2
    assert [len(ax.lines) for ax in fig.axes] == [4, 4]  # train and val of each run
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0].startswith("long") and legend[1].startswith("short")
    check_png(plots.save_figure(fig, run["folder"] / "curves.png"), fig)


def test_training_curves_accepts_checkpoints_and_histories(run):
    ckpt = checkpoint.read(run["paths"][0], device="cpu")
    fig = plots.training_curves([ckpt, ckpt.history])
    assert [len(ax.lines) for ax in fig.axes] == [4, 4]
    assert "run0" in fig.axes[0].get_legend().get_texts()[0].get_text()
    assert [len(ax.lines) for ax in plots.training_curves(run["paths"][1]).axes] == [2, 2]
    with pytest.raises(DualnetError, match="labels"):
        plots.training_curves(run["paths"], labels=["only one"])
    with pytest.raises(DualnetError, match="no training history"):
        plots.training_curves([[]])


def test_filters_conv1_and_conv2(run):
    fig = plots.filters(run["model"], "conv1")
    assert len(image_axes(fig)) == 6 and len(fig.axes) == 7  # six kernels and a colour bar
    limits = {ax.images[0].get_clim() for ax in image_axes(fig)}
    assert len(limits) == 1 and limits.pop()[0] < 0  # one shared scale, symmetric around 0
    check_png(plots.save_figure(fig, run["folder"] / "filters.png"), fig)
    fig2 = plots.filters(run["model"], 3)  # conv2 by index
    assert len(image_axes(fig2)) == 16 * 6 and len(fig2.axes) == 16 * 6 + 1
    check_png(plots.save_figure(fig2, run["folder"] / "filters2.png"), fig2)


def test_filters_of_a_non_conv_layer_names_the_conv_layers(run):
    with pytest.raises(DualnetError, match=r"not a Conv2d.*conv1, conv2"):
        plots.filters(run["model"], "fc1")
    with pytest.raises(DualnetError, match=r"no layer 'conv9'.*conv1, conv2"):
        plots.filters(run["model"], "conv9")


def test_feature_maps_of_lenet5(run):
    image = run["test"].images[0]
    fig = plots.feature_maps(run["model"], image, label=int(run["test"].labels[0]))
    shapes = [ax.images[0].get_array().shape for ax in image_axes(fig)]
    assert shapes == [(28, 28)] + [(28, 28)] * 6 + [(14, 14)] * 6 + [(10, 10)] * 16 + [(5, 5)] * 16
    titles = [sf.get_suptitle() for sf in fig.subfigs]
    assert titles[0].startswith("input 1×28×28: predicted")
    assert titles[1:] == [t for t in titles[1:] if re.match(r"(conv1 \+ relu1|pool1|conv2 \+ relu2|pool2): ", t)]
    check_png(plots.save_figure(fig, run["folder"] / "maps.png"), fig)
    # an (H, W) image is one channel; a wrong shape says what the model expects
    assert len(image_axes(plots.feature_maps(run["model"], image[0]))) == 45
    with pytest.raises(DualnetError, match="1x28x28"):
        plots.feature_maps(run["model"], np.zeros((32, 32)))


def test_evaluation_figure(run):
    test = run["test"]
    result = dn.evaluate(run["model"], test)
    fig = plots.evaluation_figure(result, test, worst=16)
    axes = fig.axes
    assert len(axes) == 1 + 16
    assert axes[0].get_xlabel() == "predicted" and axes[0].get_ylabel() == "true"
    titles = [ax.get_title() for ax in axes[1:]]
    assert all(re.fullmatch(r"true \d / pred \d \(\d+%\)", t) for t in titles), titles
    # the most confident mistake comes first
    wrong = np.flatnonzero(result["predictions"] != test.labels)
    conf = result["probabilities"][wrong, result["predictions"][wrong]]
    first = wrong[np.argmax(conf)]
    assert titles[0].startswith(f"true {test.labels[first]} / pred {result['predictions'][first]}")
    check_png(plots.save_figure(fig, run["folder"] / "eval.png"), fig)
    assert len(plots.evaluation_figure(result, test, worst=3).axes) == 4
    with pytest.raises(DualnetError, match="300 predictions"):
        plots.evaluation_figure(result, dn.data.load("mnist", "test", limit=10))


def test_save_figure_creates_folder_and_replaces(run, tmp_path):
    fig = plots.filters(run["model"])
    target = tmp_path / "new" / "deeper" / "f.png"
    assert plots.save_figure(fig, target) == target
    target.write_bytes(b"old")
    plots.save_figure(fig, target, dpi=50)
    check_png(target, fig, dpi=50)
    with pytest.raises(DualnetError, match="directory"):
        plots.save_figure(fig, tmp_path)


def test_plots_work_with_parameters_on_the_emulated_device(run):
    if not next(d for d in dn.devices() if d.name == "emu").available:
        pytest.skip("the emu device is unavailable here")
    model = checkpoint.read(run["paths"][0], device="emu").model
    assert len(image_axes(plots.filters(model, "conv1"))) == 6
    assert len(image_axes(plots.feature_maps(model, run["test"].images[1]))) == 45


@pytest.mark.gpu
def test_plots_work_with_parameters_on_the_gpu(run):
    model = checkpoint.read(run["paths"][0], device="gpu").model
    assert len(image_axes(plots.filters(model, "conv2"))) == 96
    assert len(image_axes(plots.feature_maps(model, run["test"].images[1]))) == 45


# --- matplotlib missing ----------------------------------------------------------------------


def test_missing_matplotlib_gives_the_install_hint(run, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    with pytest.raises(DualnetError, match=re.escape("pip install 'dualnet[plot]'")):
        plots.require_matplotlib()
    with pytest.raises(DualnetError, match="matplotlib is not installed"):
        plots.filters(run["model"])
    # through the real entry point: one line on stderr, exit status 1
    monkeypatch.setitem(cli_main.cli.commands, "filters", plot_cmd.filters)
    with pytest.raises(SystemExit) as exc:
        cli_main.main(["filters", str(run["paths"][0])])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == "dualnet: error: matplotlib is not installed; install it with: pip install 'dualnet[plot]'"


def test_import_does_not_need_matplotlib():
    code = ("import sys; sys.modules['matplotlib'] = None; import dualnet.plots as p; "
            "assert not any(m.startswith('matplotlib') and sys.modules[m] for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- CLI -------------------------------------------------------------------------------------


def invoke(command, args):
    from click.testing import CliRunner

    result = CliRunner().invoke(command, [str(a) for a in args])
    return result


def test_cli_plot(run):
    first, second = run["paths"]
    result = invoke(plot_cmd.plot, [first, second, "--label", "a", "--label", "b"])
    assert result.exit_code == 0, result.output
    default = first.with_name("run0.curves.png")
    assert result.output.strip() == f"wrote: {default}" and default.is_file()
    out = run["folder"] / "sub" / "c.png"
    assert invoke(plot_cmd.plot, [first, "-o", out]).exit_code == 0 and out.is_file()
    bad = invoke(plot_cmd.plot, [first, second, "--label", "a"])
    assert bad.exit_code == 2 and "--label" in bad.output


def test_cli_filters(run):
    ckpt = run["paths"][0]
    result = invoke(plot_cmd.filters, [ckpt])
    assert result.exit_code == 0, result.output
    assert ckpt.with_name("run0.filters.png").is_file()
    out = run["folder"] / "conv2.png"
    assert invoke(plot_cmd.filters, [ckpt, "--layer", "conv2", "-o", out]).exit_code == 0 and out.is_file()
    bad = invoke(plot_cmd.filters, [ckpt, "--layer", "fc2"])
    assert bad.exit_code == 1 and isinstance(bad.exception, DualnetError)


def test_cli_featuremaps(run, tmp_path):
    ckpt = run["paths"][0]
    result = invoke(plot_cmd.featuremaps, [ckpt, "--index", 5])
    assert result.exit_code == 0, result.output
    assert ckpt.with_name("run0.featuremaps.png").is_file()
    for args in ([], [tmp_path / "x.npy", "--index", 1]):
        np.save(tmp_path / "x.npy", np.zeros((28, 28), np.float32))
        bad = invoke(plot_cmd.featuremaps, [ckpt, *args])
        assert bad.exit_code == 2 and "exactly one of IMAGE or --index" in bad.output
    bad = invoke(plot_cmd.featuremaps, [ckpt, "--index", 10**6, "--split", "val"])
    assert bad.exit_code == 2 and "10,000 images" in bad.output


def test_cli_featuremaps_of_an_image_file(run, tmp_path):
    pytest.importorskip("dualnet.data.images")
    digit = tmp_path / "digit.npy"
    np.save(digit, run["test"].images[2, 0])
    out = tmp_path / "maps.png"
    result = invoke(plot_cmd.featuremaps, [run["paths"][0], digit, "-o", out])
    assert result.exit_code == 0, result.output
    assert out.is_file()
