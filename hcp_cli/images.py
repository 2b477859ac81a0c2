"""``hcp images push|pull|ls|serve``: Docker images by CID on this node's block store."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hcp.config import Settings
from hcp.errors import HcpError
from hcp.logging_setup import configure_for

images_app = typer.Typer(help="Docker images by IPFS CID: push, pull, list, serve this node.",
                         no_args_is_help=True, add_completion=False)
console = Console(soft_wrap=not sys.stdout.isatty(), width=None if sys.stdout.isatty() else 160)

_JSON = typer.Option("--json", help="Print JSON.")


def _service(settings: Settings):  # type: ignore[no-untyped-def]
    from hcp.images.catalog import ImageCatalog
    from hcp.images.service import ImageService
    from hcp.images.store.embedded import EmbeddedStore

    store = EmbeddedStore.from_settings(settings)
    return ImageService(store, ImageCatalog(store.engine))


def _settings() -> Settings:
    s = Settings()
    configure_for(s)
    return s


def _fail(exc: HcpError, as_json: bool) -> None:
    if as_json:
        print(json.dumps(exc.to_dict(), default=str))
    else:
        console.print(f"[red]error[/] {exc.code}: {escape(str(exc))}", highlight=False)
    raise typer.Exit(code=2)


@images_app.command()
def push(
    image: Annotated[str, typer.Argument(help="Image in the local Docker Engine (name:tag or ID).")],
    uploader: Annotated[str, typer.Option(help="Recorded as the image's uploader.")] = "local",
    tag: Annotated[list[str] | None, typer.Option(help="Extra tags to record.")] = None,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Store a local image's blobs as a UnixFS directory; print its CID (the same image always
    gets the same CID)."""
    from hcp.images.engine import push_from_engine

    try:
        stored, info = push_from_engine(_service(_settings()), image, uploader, tags=tag)
    except HcpError as exc:
        _fail(exc, as_json)
    if as_json:
        print(json.dumps(info.to_dict()))
    else:
        console.print(f"{info.cid}  {escape(info.name)}  {info.size} bytes, {len(stored.layers)} layers")


@images_app.command()
def pull(
    cid: Annotated[str, typer.Argument(help="Image CID.")],
    peer: Annotated[list[str] | None, typer.Option(help="Gateway URL to fetch from (repeatable); "
                                                        "default HCP_IMAGES__PEERS.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag the loaded image (repeatable).")] = None,
    load: Annotated[bool, typer.Option("--load/--no-load", help="docker load it.")] = True,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Fetch the image's blocks from peers (every block verified), pin it, and docker load it."""
    from hcp.images.cids import normalize
    from hcp.images.engine import load_into_engine
    from hcp.images.fetcher import GatewayFetcher

    settings = _settings()
    try:
        svc = _service(settings)
        peers = peer or settings.images.peers
        fetcher = GatewayFetcher(peers, settings.images.fetch_timeout_seconds,
                                 settings.images.fetch_parallelism) if peers else None
        report = svc.pull(normalize(cid), fetcher, pinned_by="local")
        image_id = load_into_engine(svc, normalize(cid), tags=tag) if load else None
    except HcpError as exc:
        _fail(exc, as_json)
    out = {"cid": normalize(cid), "image_id": image_id,
           "fetched_blocks": report.fetched if report else 0,
           "fetched_bytes": report.fetched_bytes if report else 0,
           "by_peer": report.by_peer if report else {}, "bad_peers": report.bad_peers if report else []}
    if as_json:
        print(json.dumps(out))
    else:
        console.print(f"{out['cid']} → {image_id or 'not loaded'} ({out['fetched_blocks']} blocks fetched)")


@images_app.command("ls")
def list_images(as_json: Annotated[bool, _JSON] = False) -> None:
    """Images recorded on this node, most used first."""
    try:
        items = _service(_settings()).list(limit=500)
    except HcpError as exc:
        _fail(exc, as_json)
    if as_json:
        print(json.dumps([i.to_dict() for i in items]))
        return
    table = Table("CID", "name", "tags", "size", "layers", "uses")
    for i in items:
        table.add_row(i.cid, escape(i.name), escape(", ".join(i.tags)), str(i.size),
                      str(len(i.layers)), str(i.uses))
    console.print(table)


@images_app.command()
def serve(host: str = "127.0.0.1", port: int = 5001) -> None:
    """Serve this node's Kubo RPC subset, trustless gateway and image API (uvicorn)."""
    from serve_apps.edge import serve_standalone
    from serve_apps.images.app import create_app

    settings = _settings()
    serve_standalone(create_app(settings), settings, host, port)
