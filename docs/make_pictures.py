"""Regenerate the README pictures in docs/: curves, filters, feature maps, evaluation.

    PYTHONPATH=. python docs/make_pictures.py                  # a short CPU run (~2 minutes)
    PYTHONPATH=. python docs/make_pictures.py --ckpt runs/lenet5.h5   # pictures of a finished run

Without --ckpt it trains LeNet-5 with `dualnet train`'s recipe (SGD with Nesterov momentum 0.9,
lr 0.02, cosine schedule, 1-pixel random shifts) on the first --limit training images for
--epochs epochs, validating on 2,000 images; the evaluation uses the whole 10,000-image test set.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import dualnet as dn
from dualnet import checkpoint, plots

DOCS = pathlib.Path(__file__).resolve().parent


def train(path: pathlib.Path, epochs: int, limit: int, seed: int) -> None:
    train_set = dn.data.load("mnist", "train", limit=limit)
    val_set = dn.data.load("mnist", "val", limit=2000)
    model = dn.models.get("lenet5", seed=seed)
    opt = dn.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, nesterov=True)
    t0 = time.perf_counter()

    class Report:
        def on_epoch(self, state, record, model, optimizer):
            print(f"epoch {record['epoch']}: train {record['train_acc']:.2%}, val {record['val_acc']:.2%} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    history = dn.fit(model, train_set, val_set, epochs=epochs, batch_size=64, optimizer=opt, schedule="cosine",
                     seed=seed, augment_shift=1, callbacks=[Report()])
    checkpoint.save(model, path, history=history, note=f"docs/make_pictures.py: {limit} images, {epochs} epochs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", type=pathlib.Path, help="use this checkpoint instead of training one")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=10000, help="training images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--index", type=int, default=0, help="test image shown in featuremaps.png")
    parser.add_argument("--out", type=pathlib.Path, default=DOCS)
    args = parser.parse_args()
    dn.use_device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.ckpt
        if ckpt is None:
            ckpt = pathlib.Path(tmp) / "lenet5.h5"
            train(ckpt, args.epochs, args.limit, args.seed)
        run = checkpoint.read(ckpt, device="cpu")
        test = dn.data.load("mnist", "test")
        result = dn.evaluate(run.model, test)
        print(f"test accuracy {result['accuracy']:.2%}", file=sys.stderr)
        label = f"LeNet-5, {args.limit:,} images" if args.ckpt is None else None
        figures = {
            "curves.png": plots.training_curves([run], labels=[label] if label else None),
            "filters.png": plots.filters(run.model, "conv1"),
            "featuremaps.png": plots.feature_maps(run.model, test.images[args.index],
                                                  label=int(test.labels[args.index])),
            "evaluation.png": plots.evaluation_figure(result, test, worst=16),
        }
        for name, fig in figures.items():
            path = plots.save_figure(fig, args.out / name)
            print(f"{path} ({path.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
