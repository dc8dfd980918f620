"""``iznet serve``: the web page and HTTP API (``docs/web.md``).

Only parsing here; the app is built by :func:`iznet.serve.app.create_app` and run by uvicorn.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Optional

import typer

from iznet.cli.app import app
from iznet.cli.gallery_cmds import DETECTOR_HELP, EMBEDDER_HELP, GALLERY_HELP
from iznet.cli.inputs import option_value


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (loopback by default: only this "
                                                         "machine can connect)"),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="port to listen on"),
    gallery: Optional[Path] = typer.Option(None, "--gallery", "-g", help=GALLERY_HELP),
    embedder: Optional[str] = typer.Option(None, "--embedder", "-e", help=EMBEDDER_HELP),
    detector: Optional[str] = typer.Option(None, "--detector", "-d", help=DETECTOR_HELP),
    threshold: Optional[str] = typer.Option(None, "--threshold", "-t", help="unknown-face distance, 'stored' "
                                                                            "(default) or 'none'"),
    max_upload_mb: float = typer.Option(16.0, "--max-upload-mb", min=0.01, help="largest request body, MiB"),
    max_megapixels: float = typer.Option(40.0, "--max-megapixels", min=0.01, help="largest photo, megapixels"),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level"),
    token: Optional[str] = typer.Option(None, "--token", envvar="IZNET_TOKEN",
                                        help="requests that change the gallery must carry this token "
                                             "(Authorization: Bearer TOKEN); for a service beyond loopback"),
) -> None:
    """Serve the page (drop in a photo, see who is in it; enrol and manage people) and the HTTP API."""
    try:
        import uvicorn

        from iznet.serve.app import create_app
        from iznet.serve.service import ServeSettings
    except ImportError as e:
        typer.echo(f"error: the web service needs the 'serve' extra (pip install 'iznet[serve]'): {e}", err=True)
        raise typer.Exit(2) from None
    from iznet.loading import parse_threshold

    settings = ServeSettings(
        gallery=gallery, embedder=embedder, detector=detector, threshold=option_value(parse_threshold, threshold, hint="--threshold"),
        max_upload_bytes=int(max_upload_mb * 2**20), max_pixels=int(max_megapixels * 1e6), token=token or None,
    )
    if not is_loopback(host):
        if token:
            typer.echo(f"listening on {host}: changes to the gallery need the token; anyone who can reach this "
                       f"machine on port {port} can still see who is enrolled and label photos", err=True)
        else:
            typer.echo(f"warning: listening on {host}: anyone who can reach this machine on port {port} can see, "
                       "add and remove the people of this gallery; pass --token (or IZNET_TOKEN) so that changes "
                       "need it, or use --host 127.0.0.1", err=True)
    application = create_app(settings)
    svc = application.state.service
    typer.echo(f"gallery {svc.gallery.path} ({len(svc.gallery)} people); embedder {svc.pipeline.tag};"
               f" detector {svc.detector_name}", err=True)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"open http://{shown}:{port}/ (Ctrl+C to stop)", err=True)
    uvicorn.run(application, host=host, port=port, log_level=log_level)
