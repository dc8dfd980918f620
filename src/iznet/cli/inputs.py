"""Photo arguments of the CLI: files, folders (searched recursively) and glob patterns."""

from __future__ import annotations

from pathlib import Path

_GLOB_CHARS = set("*?[")


def expand_inputs(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files from PHOTO / FOLDER / GLOB arguments (folders recursively), and the arguments that
    named nothing usable, with the reason."""
    import glob

    from iznet.data.images import IMAGE_EXTENSIONS, list_images

    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    for arg in inputs:
        p = Path(arg).expanduser()
        if p.is_dir():
            found = list_images(p)
            if not found:
                problems.append((arg, "folder holds no images"))
            files.extend(found)
        elif p.exists():
            files.append(p)  # any file: an unreadable one is reported when it is read
        elif _GLOB_CHARS & set(arg):
            found = sorted(Path(m) for m in glob.glob(str(p), recursive=True)
                           if Path(m).is_file() and Path(m).suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                problems.append((arg, "pattern matches no image"))
            files.extend(found)
        else:
            problems.append((arg, "file does not exist"))
    return list(dict.fromkeys(files)), problems


def option_value(build, *args, hint: str | None = None, **kwargs):
    """``build(*args, **kwargs)`` (e.g. :class:`iznet.loading.DetectorOptions`), with a bad value reported as a
    usage error (exit status 2, naming ``hint``) instead of a failure of the command."""
    import typer

    from iznet.errors import ModelError

    try:
        return build(*args, **kwargs)
    except ModelError as e:
        raise typer.BadParameter(str(e), param_hint=hint) from None
