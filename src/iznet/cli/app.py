"""The typer application every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="iznet",
    help="IZ*Net: detect faces in photos and name the people in them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from iznet.version import __version__

        typer.echo(f"iznet {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """IZ*Net: detect faces in photos and name the people in them."""
