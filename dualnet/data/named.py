"""Named datasets: `--data fashion-mnist` and `--data cifar10` (`dn.data.load("fashion-mnist", "train")`).

Each dataset's files are looked for, in order, in `$DUALNET_DATA/<name>/`, in the user cache
`cache_root()/<name>/` (`$XDG_CACHE_HOME/dualnet/<name>/` or `~/.cache/dualnet/<name>/`) and in the
system folders of the dataset (Debian's `dataset-fashion-mnist` package installs the four IDX files
in `/usr/share/datasets/fashion-mnist`). A file found is verified once per process (published
checksums, see RemoteFile and the data cards in docs/data.md); a wrong file is refused, naming it.
When the files are not found they are downloaded into the user cache from the dataset's mirrors
(`$DUALNET_DATA_MIRRORS`, comma-separated base URLs, replaces the list), with a line saying so on
stderr (`fetch`, `dualnet data fetch NAME`, does it on purpose).

CIFAR-10 is read from its binary distribution (`cifar-10-binary.tar.gz`: records of 1 label byte and
3,072 pixel bytes, red, green, blue planes of 32x32), converted once into `cache_root()/cifar10/cifar10.h5`
(dualnet.data.cifar). The pickled Python distribution is never read.
"""

from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import DataError
from .download import RemoteFile, fetch_file, verify
from .locations import cache_root

__all__ = ["NAMED", "NamedDataset", "fetch", "find_files", "locate", "named_file", "search_dirs"]

MIRRORS_ENV = "DUALNET_DATA_MIRRORS"


@dataclass(frozen=True)
class NamedDataset:
    name: str
    title: str
    licence: str
    homepage: str
    class_names: tuple[str, ...]
    files: tuple[RemoteFile, ...]
    mirrors: tuple[str, ...]
    system_dirs: tuple[str, ...]
    install_hint: str  # how to get the files by hand, besides placing them in the cache

    @property
    def download_bytes(self) -> int:
        return sum(f.size or f.cap for f in self.files)


def _mb(n: int) -> int:
    return n << 20


FASHION_MNIST = NamedDataset(
    "fashion-mnist", "Fashion-MNIST (Zalando Research)", "MIT (Expat)", "https://github.com/zalandoresearch/fashion-mnist",
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    (
        # size and MD5 of the published .gz files (Zalando's README, torchvision's FashionMNIST.resources);
        # SHA-256 and size of their decompressed content, the same in Debian's recompressed copies
        RemoteFile("train-images-idx3-ubyte.gz", None, "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                   "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016, _mb(40)),
        RemoteFile("train-labels-idx1-ubyte.gz", None, "25c81989df183df01b3e8a0aad5dffbe",
                   "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008, _mb(1)),
        RemoteFile("t10k-images-idx3-ubyte.gz", None, "bef4ecab320f06d8554ea6380940ec79",
                   "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016, _mb(10)),
        RemoteFile("t10k-labels-idx1-ubyte.gz", None, "bb300cfdad3c16e7a12a480ee83cd310",
                   "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008, _mb(1)),
    ),
    ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
     "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
     "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"),
    ("/usr/share/datasets/fashion-mnist",),
    "install it (Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist)",
)

CIFAR10 = NamedDataset(
    "cifar10", "CIFAR-10 (Krizhevsky, Nair and Hinton)", "no licence stated; free to use, cite Krizhevsky 2009",
    "https://www.cs.toronto.edu/~kriz/cifar.html",
    ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    # only an MD5 is published (the dataset's page; torchvision uses the same), with the exact size
    (RemoteFile("cifar-10-binary.tar.gz", None, "c32a1d4ab5d03f1284b67883e8d87530", cap=_mb(170)),),
    ("https://www.cs.toronto.edu/~kriz/",),
    (),
    "download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html",
)

NAMED: dict[str, NamedDataset] = {d.name: d for d in (FASHION_MNIST, CIFAR10)}
_verified: dict[tuple[str, int, int], bool] = {}


def search_dirs(spec: NamedDataset) -> list[pathlib.Path]:
    """Where `spec`'s files are looked for, in order."""
    dirs = []
    if os.environ.get("DUALNET_DATA"):
        dirs.append(pathlib.Path(os.environ["DUALNET_DATA"]).expanduser() / spec.name)
    dirs.append(cache_root() / spec.name)
    dirs += [pathlib.Path(d) for d in spec.system_dirs]
    return dirs


def _manual(spec: NamedDataset) -> str:
    return (f"{spec.install_hint}, or put {', '.join(f.name for f in spec.files)} in {cache_root() / spec.name} "
            "(or $DUALNET_DATA/" + spec.name + "); see docs/data.md")


def _checked(path: pathlib.Path, spec_file: RemoteFile) -> None:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _verified:
        return
    problem = verify(path, spec_file)
    if problem is not None:
        raise DataError(f"{path}: {problem}; this is not the published {spec_file.name}: delete or replace it")
    _verified[key] = True


def find_files(spec: NamedDataset) -> pathlib.Path | None:
    """The first search folder that holds every file of `spec` (each verified), or None."""
    for folder in search_dirs(spec):
        if all((folder / f.name).is_file() for f in spec.files):
            for f in spec.files:
                _checked(folder / f.name, f)
            return folder
    return None


def _mirrors(spec: NamedDataset) -> list[str]:
    given = os.environ.get(MIRRORS_ENV)
    return [m.strip() for m in given.split(",") if m.strip()] if given else list(spec.mirrors)


def _spec(name: str) -> NamedDataset:
    if name not in NAMED:
        raise DataError(f"unknown dataset {name!r}; named datasets: {', '.join(NAMED)}")
    return NAMED[name]


def fetch(name: str, report: Callable[[str], None] | None = None, timeout: float | None = None) -> pathlib.Path:
    """Download the files of dataset `name` that the user cache lacks, verified: the folder holding
    them. Raises DownloadError (one line, with the manual route) when a file cannot be had."""
    spec = _spec(name)
    folder = cache_root() / spec.name
    for f in spec.files:
        target = folder / f.name
        if target.is_file() and verify(target, f) is None:
            continue
        if report is not None:
            size = f"{f.size / 2**20:.0f} MB" if f.size else f"up to {f.cap / 2**20:.0f} MB"
            report(f"{spec.name}: downloading {f.name} ({size}) into {folder}")
        fetch_file(f, _mirrors(spec), folder, _manual(spec), timeout)
    return folder


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def locate(name: str, download: bool = True) -> pathlib.Path:
    """The folder holding dataset `name`'s verified files: found locally, else (download) fetched
    into the user cache with a line on stderr saying so."""
    spec = _spec(name)
    found = find_files(spec)
    if found is not None:
        return found
    if not download:
        raise DataError(f"{name}: not found in {', '.join(map(str, search_dirs(spec)))}; run `dualnet data fetch "
                        f"{name}`, or {_manual(spec)}")
    _stderr(f"{name}: not found locally (looked in {', '.join(map(str, search_dirs(spec)))}); downloading it "
            "once into the user cache")
    return fetch(name, report=_stderr)


def named_file(name: str) -> pathlib.Path | None:
    """The HDF5 file a named dataset is read from (CIFAR-10's conversion, made if needed), or None for
    one read from its own files (Fashion-MNIST's IDX files)."""
    if name != "cifar10":
        return None
    from .cifar import cifar10_h5

    return cifar10_h5(locate(name) / CIFAR10.files[0].name, CIFAR10)
