"""``hcp images push`` on one node, ``hcp images pull`` on another through its gateway, with
the real Docker Engine at both ends and tiny images built offline (``FROM scratch``)."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from typer.testing import CliRunner

from hcp.config import Settings
from hcp.images.catalog import ImageCatalog
from hcp.images.service import ImageService
from hcp.images.store.embedded import EmbeddedStore
from hcp_cli.main import app as cli
from serve_apps.images.app import create_app
from serve_apps.images.routes import ImagesDeps
from tests.integration.images.node_server import serve

SECRET = "k" * 40


def _context(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


@pytest.fixture
def images() -> Iterator[tuple[str, str, docker.DockerClient]]:
    client = docker.from_env()
    tag = uuid.uuid4().hex[:10]
    base, child = f"hcp-test-base:{tag}", f"hcp-test-child:{tag}"
    client.images.build(fileobj=_context({
        "Dockerfile": b"FROM scratch\nCOPY a /a\nCOPY b /b\n",
        "a": b"layer one\n" * 1000, "b": bytes(range(256)) * 4000}), custom_context=True, tag=base, rm=True)
    client.images.build(fileobj=_context({
        "Dockerfile": f"FROM {base}\nCOPY c /c\n".encode(), "c": b"child layer\n"}),
        custom_context=True, tag=child, rm=True)
    try:
        yield base, child, client
    finally:
        for ref in (child, base):
            try:
                client.images.remove(ref, force=True)
            except docker.errors.ImageNotFound:
                pass


def _run(env: dict[str, str], *args: str) -> dict:
    result = CliRunner().invoke(cli, ["images", *args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def test_push_then_pull_on_another_node(tmp_path: Path, images) -> None:  # type: ignore[no-untyped-def]
    base, child, client = images
    env_a = {"HCP_HOME": str(tmp_path / "a"), "HCP_JWT_SECRET": SECRET}
    env_b = {"HCP_HOME": str(tmp_path / "b"), "HCP_JWT_SECRET": SECRET}
    first = _run(env_a, "push", child)
    again = _run(env_a, "push", child)
    assert first["cid"] == again["cid"] and first["cid"].startswith("Qm")
    assert len(first["layers"]) == 3 and child in first["tags"]
    pushed_base = _run(env_a, "push", base)
    shared = {layer["digest"] for layer in pushed_base["layers"]} & {l["digest"] for l in first["layers"]}
    assert len(shared) == 2  # the base's layers, stored once for both images
    image_id = client.images.get(child).id

    settings_a = Settings(home=tmp_path / "a", jwt_secret=SECRET)
    store_a = EmbeddedStore.from_settings(settings_a)
    deps = ImagesDeps(store_a, ImageService(store_a, ImageCatalog(store_a.engine)),
                      __import__("hcp.auth.tokens", fromlist=["TokenService"]).TokenService(SECRET))
    client.images.remove(child, force=True)
    with serve(create_app(settings_a, deps)) as url:
        pulled = _run(env_b, "pull", first["cid"], "--peer", url, "--tag", child)
    assert pulled["image_id"] == image_id and pulled["fetched_blocks"] > 0
    loaded = client.images.get(child)
    assert loaded.id == image_id
    assert loaded.attrs["RootFS"]["Layers"] == [l["digest"] for l in first["layers"]]
    # node B now holds the image pinned: a second pull needs no peer at all
    assert _run(env_b, "pull", first["cid"], "--no-load")["fetched_blocks"] == 0
