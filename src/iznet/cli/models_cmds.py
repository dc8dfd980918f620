"""``iznet models``: the registered embedding networks with their input size, parameters and GFLOPS."""

from __future__ import annotations

import json

import typer

from iznet.cli.app import app


@app.command("models")
def models_cmd(
    pattern: str = typer.Argument(None, help="fnmatch pattern on model names, e.g. 'nn4*'"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    layers: bool = typer.Option(False, "--layers", help="also break each model down per block (Table 1/2 rows)"),
) -> None:
    """List the embedding networks: name, input size, parameters and GFLOPS (multiply-adds per image)."""
    from iznet.errors import ModelError
    from iznet.models import list_models, model_info, model_layers

    names = list_models(pattern)
    if not names:
        raise ModelError(f"no model matches {pattern!r}; known models: {', '.join(list_models())}")
    infos = [model_info(n) for n in names]
    if layers:
        for info in infos:
            info["layers"] = model_layers(info["name"])
    if as_json:
        typer.echo(json.dumps(infos, indent=2))
        return
    typer.echo(f"{'name':<14} {'input':>7} {'params':>12} {'GFLOPS':>8}")
    for i in infos:
        size = f"{i['input_size']}px"
        typer.echo(f"{i['name']:<14} {size:>7} {i['params']:>12,} {i['flops'] / 1e9:>8.3f}")
    typer.echo("GFLOPS = 1e9 multiply-adds of conv and linear layers per image at the input size.")
    for i in infos if layers else []:
        typer.echo(f"\n{i['name']} at {i['input_size']}px")
        typer.echo(f"  {'block':<28} {'params':>12} {'(no BN)':>12} {'MFLOPS':>9}")
        for r in i["layers"]:
            typer.echo(f"  {r['name']:<28} {r['params']:>12,} {r['params_no_norm']:>12,} {r['flops'] / 1e6:>9.1f}")
