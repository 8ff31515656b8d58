"""`dualnet data`: the datasets dualnet reads: `list`, `info PATH|NAME`, `fetch NAME`, `convert FOLDER OUT.h5`."""

from __future__ import annotations

import json
import pathlib

import click

import dualnet as dn
from dualnet.data import named
from dualnet.data.folder_cache import default_progress

from .common import folder_options, named_output, overwrite_option, report_written


@click.group()
def data() -> None:
    """Datasets: list the named ones, describe any, fetch one, convert a folder of photos.

    \b
    Examples:
      dualnet data info photos/
      dualnet data convert photos/ photos.h5 --image-size 64,64
    """


@data.command()
@click.argument("source")
@folder_options
@click.option("--json", "as_json", is_flag=True, help="Print the description as one JSON object.")
def info(source, image_size, channels, test_fraction, strict, as_json):
    """Image shape, channels, classes with names and per-class counts, splits, dtype and source of
    SOURCE: a named dataset, a folder of photos, a folder of IDX files or an HDF5 file."""
    d = dn.data.describe(source, image_size=image_size, channels=channels, test_fraction=test_fraction,
                         strict=strict)
    if as_json:
        click.echo(json.dumps(d))
        return
    c, h, w = d["image_shape"]
    click.echo(f"{source}: {c}x{h}x{w} images ({'RGB' if c == 3 else 'gray' if c == 1 else f'{c} channels'}), "
               f"{d['dtype']}, {len(d['classes'])} classes")
    click.echo("splits: " + ", ".join(f"{k} {n:,}" for k, n in d["splits"].items()))
    width = max(5, *(len(n) for n in d["classes"]))
    parts = list(d["counts"])
    click.echo(f"  {'class':<{width}}" + "".join(f"{p:>9}" for p in parts))
    for i, name in enumerate(d["classes"]):
        click.echo(f"  {name:<{width}}" + "".join(f"{d['counts'][p][i]:>9,}" for p in parts))
    if d.get("file") and d["file"] != str(source):
        click.echo(f"read from: {d['file']}")
    if "image_preparation" in d:
        prep = d["image_preparation"]
        click.echo(f"prepared: {prep['size'][0]}x{prep['size'][1]}, {prep['channels']} channel(s), {prep['method']}")


@data.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=pathlib.Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=pathlib.Path))
@folder_options
@click.option("--processes", type=click.IntRange(1), default=None, show_default="one per CPU core",
              help="Worker processes that decode the photos.")
@overwrite_option()
def convert(folder, out, image_size, channels, test_fraction, strict, processes, overwrite):
    """Decode a folder of photos (one subfolder per class, or train/ test/ [val/]) once into an HDF5
    file that `dualnet train --data OUT.h5` reads (uint8, chunked for --stream).

    \b
    Example:
      dualnet data convert photos/ photos.h5 --image-size 64,64
    """
    named_output(out, [folder], "OUT", overwrite)
    options = dn.data.FolderOptions(image_size or dn.data.DEFAULT_IMAGE_SIZE, channels,
                                    dn.data.DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction)
    summary = dn.data.convert_folder(folder, out, options, strict=strict, processes=processes,
                                     progress=default_progress(f"converting {folder}"),
                                     report=lambda line: click.echo(line, err=True))
    h, w = summary["image_size"]
    click.echo(f"{out}: {summary['train']:,} train / {summary['val']:,} val / {summary['test']:,} test "
               f"images, {h}x{w}, {summary['channels']} channel(s), {len(summary['classes'])} classes; "
               f"{summary['skipped']} skipped")
    report_written([out])


@data.command("list")
def list_() -> None:
    """The named datasets: where they are found, their size and licence, or how to get them."""
    for spec in named.NAMED.values():
        folder = next((d for d in named.search_dirs(spec) if all((d / f.name).is_file() for f in spec.files)), None)
        size = f"{spec.download_bytes / 2**20:,.0f} MB"
        where = f"found in {folder}" if folder else f"not here: `dualnet data fetch {spec.name}` ({size}) or " \
            f"{spec.install_hint}"
        click.echo(f"{spec.name:<14} {spec.title}; licence: {spec.licence}; {len(spec.class_names)} classes; {where}")


@data.command()
@click.argument("name", type=click.Choice(list(named.NAMED)))
def fetch(name):
    """Download a named dataset into the user cache, verified (nothing is downloaded when it is there).

    \b
    Example:
      dualnet data fetch fashion-mnist
    """
    spec = named.NAMED[name]
    before = {f.name: _identity(named.cache_root() / spec.name / f.name) for f in spec.files}
    folder = named.fetch(name, report=lambda line: click.echo(line, err=True))
    click.echo(f"{name}: verified files in {folder}")
    # the files this run downloaded (none when the cache already held them all, verified)
    report_written([folder / n for n, was in before.items() if _identity(folder / n) != was])


def _identity(path: pathlib.Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


COMMANDS = [data]
