"""``iznet pack``: build a pack file (one-file dataset of JPEG crops) from LFW or an identity folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from iznet.cli.app import app

pack_app = typer.Typer(help="Pack a face dataset into one file of JPEG crops (fast training, easy to carry).",
                       no_args_is_help=True)
app.add_typer(pack_app, name="pack")

# iznet.data.pack.DEFAULT_QUALITY, repeated so `--help` shows it without importing torch (a test keeps them equal).
_DEFAULT_QUALITY = 82
_QUALITY_HELP = f"JPEG quality 1..100 [default: {_DEFAULT_QUALITY}; the LFW pack at 112 px is then under 45 MB]"


def _run(pack_fn, total: int, quality: int | None, **kwargs) -> None:
    from tqdm import tqdm

    if quality is not None:
        kwargs["quality"] = quality

    with tqdm(total=total, unit="img", desc="packing", dynamic_ncols=True) as bar:
        stats = pack_fn(progress=bar.update, **kwargs)
    typer.echo(stats.summary())
    for path, reason in stats.skipped.skipped[:20]:
        typer.echo(f"  skipped {path}: {reason}", err=True)
    if stats.skipped.count > 20:
        typer.echo(f"  ... and {stats.skipped.count - 20} more skipped", err=True)


@pack_app.command("lfw")
def pack_lfw_cmd(
    data: Optional[Path] = typer.Option(None, "--data", help="data root or LFW folder (default: IZNET_DATA, "
                                                             "else ../shared/data)"),
    size: int = typer.Option(112, "--size", help="side of the stored face crops in pixels"),
    out: Optional[Path] = typer.Option(None, "--out", help="pack file to write (default: packs/lfw<SIZE>.pt)"),
    quality: Optional[int] = typer.Option(None, "--quality", min=1, max=100, help=_QUALITY_HELP),
) -> None:
    """Pack all LFW images, cropped with the project's LFW face crop (paths "Name/Name_0001.jpg")."""
    from iznet.data.lfw import LFW, find_lfw
    from iznet.data.pack import pack_lfw

    root = find_lfw(data)
    out = out or Path("packs") / f"lfw{size}.pt"
    total = LFW(root).num_images
    _run(pack_lfw, total, root=root, out=out, size=size, quality=quality)


@pack_app.command("folder")
def pack_folder_cmd(
    root: Path = typer.Argument(..., help="identity folder: ROOT/<person>/<image>"),
    size: int = typer.Option(112, "--size", help="side of the stored images in pixels"),
    out: Path = typer.Option(..., "--out", help="pack file to write"),
    crop: str = typer.Option("none", "--crop", help="none: centre square, resized (for folders of face crops); "
                                                    "face: largest face found by OpenCV's Haar cascade "
                                                    "(images without one are skipped); lfw: the fixed LFW crop"),
    quality: Optional[int] = typer.Option(None, "--quality", min=1, max=100, help=_QUALITY_HELP),
    min_images: int = typer.Option(1, "--min-images", min=1, help="keep only people with this many images"),
) -> None:
    """Pack an identity folder, one sub-folder per person."""
    from iznet.data.datasets import IdentityFolder
    from iznet.data.pack import crop_function, pack_identity_folder

    crop_function(crop)  # reject an unknown choice before scanning
    folder = IdentityFolder(root, min_images=min_images)
    _run(pack_identity_folder, len(folder), folder=folder, out=out, size=size, crop=crop, quality=quality)
