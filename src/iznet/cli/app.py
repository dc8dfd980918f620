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
