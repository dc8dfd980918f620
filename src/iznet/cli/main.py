"""Entry point of the ``iznet`` command.

Each verb lives in its own module under ``iznet.cli`` and registers itself on :data:`iznet.cli.app.app`.
Errors that iznet raises on purpose (:class:`iznet.errors.IznetError`) become a one-line message and
exit status 2, never a traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys

from iznet.cli.app import app
from iznet.errors import IznetError

# Command modules, in the order their verbs appear in ``iznet --help``.
COMMAND_MODULES = [
    "iznet.cli.label_cmds",
    "iznet.cli.gallery_cmds",
    "iznet.cli.fit_cmds",
    "iznet.cli.cluster_cmds",
    "iznet.cli.detect_cmds",
    "iznet.cli.train_cmds",
    "iznet.cli.eval_cmds",
    "iznet.cli.analyze_cmds",
    "iznet.cli.models_cmds",
    "iznet.cli.export_cmds",
    "iznet.cli.data_cmds",
    "iznet.cli.serve_cmds",
]


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:  # a verb not built yet is simply absent
            if e.name != name:
                raise


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    _register()
    try:
        app(args=argv, prog_name="iznet")
    except IznetError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
