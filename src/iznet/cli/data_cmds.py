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


data_app = typer.Typer(help="Build the training collection from many identity folders (docs/data.md).",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


def _parse_source(text: str):
    from iznet.data.collection import SourceSpec
    from iznet.errors import DataError

    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise DataError(f"bad --source {text!r}: use NAME=DIR or NAME=DIR:named")
    named = rest.endswith(":named")
    return SourceSpec(name.strip(), Path(rest[: -len(":named")] if named else rest), named)


def _list_file(path: Path, option: str, hint: str) -> list[str]:
    """The non-blank lines of a list file that do not start with '#', stripped; a clear error when it is missing."""
    from iznet.errors import DataError

    if not path.is_file():
        raise DataError(f"{option} {path}: no such file ({hint})")
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


@data_app.command("build")
def data_build_cmd(
    source: list[str] = typer.Option(..., "--source", help="NAME=DIR (DIR/<person>/<image>, optional "
                                     "DIR/people.csv); NAME=DIR:named when folder names are full names, so the "
                                     "same person in two sources is merged. Repeat for each source."),
    out: Path = typer.Option(..., "--out", help="output folder: packs, collection.json, identities.csv"),
    teacher: Optional[Path] = typer.Option(None, "--teacher", help="YuNet .onnx that gives boxes and landmarks "
                                           "[default: ../shared/models/face_detection_yunet_*.onnx]"),
    exclude_lfw: bool = typer.Option(False, "--exclude-lfw", help="drop every person whose name is an LFW "
                                     "name (for a model to be scored on LFW)"),
    exclude: list[Path] = typer.Option([], "--exclude", help="text file of names to drop, one per line "
                                       "(e.g. an evaluation set's people); repeatable"),
    exclude_keys: list[Path] = typer.Option([], "--exclude-keys", help="text file of identity keys to drop "
                                            "(source/folder, e.g. fiw/F0696_MID1: evaluation people found by face "
                                            "with scripts/overlap_check.py), one per line; repeatable"),
    exclude_one_edit: bool = typer.Option(False, "--exclude-one-edit", help="also drop named identities one "
                                          "letter from an excluded name of 8+ letters (misspellings)"),
    data: Optional[Path] = typer.Option(None, "--data", help="data root holding lfw/ (for --exclude-lfw)"),
    held_out: float = typer.Option(0.1, "--held-out", help="share of each source's groups (a family, a person) "
                                   "held out for evaluation"),
    size: int = typer.Option(112, "--size", help="side of the packed faces"),
    crops: str = typer.Option("aligned,box", "--crops", help="aligned (five-point template), box (1.3x box crop)"),
    quality: int = typer.Option(90, "--quality", min=1, max=100, help="JPEG quality of the packs"),
) -> None:
    """Detect, align, deduplicate and split identity folders into the collection's packs."""
    from tqdm import tqdm

    from iznet.data.collection import BuildConfig, build_collection
    from iznet.detect.teachers import YuNetDetector
    from iznet.errors import DataError

    sources = [_parse_source(s) for s in source]
    for s in sources:
        if not s.root.is_dir():
            raise DataError(f"source {s.name!r}: {s.root} is not a folder")
    if teacher is None:
        from iznet.data.paths import shared_data_root

        shared = shared_data_root()
        found = sorted((shared.parent / "models").glob("face_detection_yunet*.onnx")) if shared else []
        if not found:
            raise DataError("no YuNet model found next to ../shared/data; pass --teacher PATH.onnx")
        teacher = found[-1]
    names: list[str] = []
    where: dict[str, str] = {}
    if exclude_lfw:
        from iznet.data.lfw import find_lfw

        lfw_root = find_lfw(data)
        lfw_names = sorted(p.name for p in (lfw_root / "images").iterdir() if p.is_dir())
        names += lfw_names
        where["lfw"] = f"{lfw_root}/images ({len(lfw_names)} names)"
    for f in exclude:
        got = _list_file(f, "--exclude", "one name per line")
        names += got
        where[str(f)] = f"{len(got)} names"
    keys: list[str] = []
    for f in exclude_keys:  # a key may be followed by "# who it is"
        got = [k for k in (line.split("#")[0].strip() for line in
                           _list_file(f, "--exclude-keys", "one identity key per line, e.g. fiw/F0696_MID1")) if k]
        keys += got
        where[str(f)] = f"{len(got)} identity keys"
    cfg = BuildConfig(size=size, held_out_share=held_out, quality=quality,
                      crops=tuple(c.strip() for c in crops.split(",") if c.strip()),
                      exclude_names=names, exclude_sources=where, exclude_keys=keys,
                      exclude_one_edit=exclude_one_edit)
    bars: dict = {}

    def progress(stage: str, k: int, total: int) -> None:
        if stage not in bars:
            for b in bars.values():
                b.close()
            bars[stage] = tqdm(total=total, unit="img", desc=stage, dynamic_ncols=True, mininterval=5)
        bars[stage].update(k)

    report = build_collection(sources, out, cfg, lambda: YuNetDetector(teacher, score_threshold=0.3), progress)
    for b in bars.values():
        b.close()
    c = report["counts"]
    for name, s in c["per_source"].items():
        skipped = sum(c["skipped"][name].values())
        typer.echo(f"{name}: {s['kept']} of {s['scanned']} images kept, {s['identities']} identities "
                   f"({s['identities_2plus']} with 2+), {s['held_out_identities']} held out; skipped {skipped}: "
                   + ", ".join(f"{v} {k}" for k, v in sorted(c['skipped'][name].items(), key=lambda kv: -kv[1])))
    typer.echo(f"duplicates dropped: {c['duplicates_within_identity_dropped']} within an identity, "
               f"{c['duplicates_across_identities_dropped']} shared by two identities; "
               f"{len(c['merged_identities'])} identities merged across sources")
    for part in ("train", "held_out"):
        p = c[part]
        typer.echo(f"{part}: {p['images']} images, {p['identities']} identities ({p['identities_2plus']} with 2+, "
                   f"{p['singletons']} singletons; {p['women']} women, {p['men']} men where known)")
    for name, p in report["packs"].items():
        typer.echo(f"  {out / name}: {p['images']} images, {p['identities']} identities, {p['megabytes']} MB")
