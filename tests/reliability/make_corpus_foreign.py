"""Corpus files that reach outside themselves (family 3: external storage, external links, soft
links to them, virtual datasets): the readers must refuse them from their metadata, never follow
them. make_corpus.py's main writes them with the rest, or alone:

    python tests/reliability/make_corpus_foreign.py
"""

from __future__ import annotations

import sys

import h5py
import numpy as np
from make_corpus import IMAGES, P, ckpt, h5_data

import dualnet as dn

# A path that is on every Linux machine, and one that never exists: the readers must refuse both
# without opening them (tests/reliability/test_foreign_files.py makes a real secret reachable)
OUTSIDE, NOWHERE = "/etc/passwd", "/nonexistent/dualnet-secret.h5"


def external_storage(name, shape, dtype, target=OUTSIDE):
    def edit(f):
        del f[name]
        f.create_dataset(name, shape=shape, dtype=dtype,
                         external=[(target, 0, int(np.prod(shape)) * np.dtype(dtype).itemsize)])
    return edit


def external_link(name, target=NOWHERE):
    def edit(f):
        del f[name]
        f[name] = h5py.ExternalLink(target, "/data")
    return edit


def virtual(name, shape, dtype, source=NOWHERE):
    def edit(f):
        del f[name]
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[...] = h5py.VirtualSource(source, "data", shape=shape)
        f.create_virtual_dataset(name, layout, fillvalue=0)
    return edit


def make_foreign() -> None:
    ckpt("bias-in-etc-passwd", external_storage(P + "fc1.bias", (10,), np.float32))
    ckpt("bias-external-link", external_link(P + "fc1.bias"))
    ckpt("bias-virtual-missing-source", virtual(P + "fc1.bias", (10,), np.float32))

    def soft_to_external(f):
        f["elsewhere"] = h5py.ExternalLink(NOWHERE, "/data")
        del f[P + "fc1.bias"]
        f[P + "fc1.bias"] = h5py.SoftLink("/elsewhere")
    ckpt("bias-soft-link-to-external-link", soft_to_external)
    h5_data("h5-images-in-etc-passwd", edit=lambda f: [external_storage(f"{g}/images", (1, 28, 28), np.uint8)(f)
                                                        for g in ("train", "test")])
    h5_data("h5-images-external-link", edit=lambda f: [external_link(f"{g}/images")(f) for g in ("train", "test")])
    h5_data("h5-images-virtual-missing-source",
            edit=lambda f: [virtual(f"{g}/images", IMAGES.shape, np.uint8)(f) for g in ("train", "test")])


if __name__ == "__main__":
    dn.use_device("cpu")
    make_foreign()
    sys.exit(0)
