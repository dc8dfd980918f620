"""``iznet export``: write an embedder or detector as a self-describing ONNX file.

Only parsing and printing here; the work is done by :func:`iznet.export.onnx_export.export_model`.
See ``docs/system.md`` ("ONNX export").
"""

from __future__ import annotations

from pathlib import Path

import typer

from iznet.cli.app import app

FORMATS = ("onnx",)


@app.command("export")
def export_cmd(
    model: str = typer.Argument(..., help="'default-embedder', 'default-detector', a checkpoint file (embedder or "
                                          "detector) or a run folder (model.pt / best.pt)"),
    fmt: str = typer.Option("onnx", "--format", "-f", help="output format (only 'onnx')"),
    out: Path = typer.Option(..., "--out", "-o", help="the file to write, e.g. embedder.onnx"),
    opset: int = typer.Option(17, "--opset", min=13, help="ONNX opset"),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="compare onnxruntime with PyTorch on random "
                                                                   "inputs (refuses to write a file that differs)"),
) -> None:
    """Export a model to ONNX: the embedder with its preprocessing contract and flip TTA inside, or the detector's
    raw network (decoding and NMS stay in iznet). Metadata in the file says what it is, so
    `iznet label --runtime onnx -e FILE.onnx` needs nothing else.
    """
    from iznet.export.onnx_export import export_model

    if fmt.strip().lower() not in FORMATS:
        raise typer.BadParameter(f"{fmt!r}: only {', '.join(FORMATS)} is supported", param_hint="--format")
    report = export_model(model, out, opset=opset, verify=verify)
    for line in report.summary():
        typer.echo(line)
