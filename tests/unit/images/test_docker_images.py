"""Images as blob directories: the same image gets one CID from either archive format, shared
layers are stored once, and the rebuilt archive is what ``docker load`` reads."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from hcp.auth.tokens import Role
from hcp.errors import InvalidImageError
from hcp.images.catalog import ImageCatalog
from hcp.images.service import ImageService
from hcp.images.store.embedded import EmbeddedStore
from tests.unit.images.archives import classic_archive, image_parts, oci_archive
from tests.unit.images.http_support import bearer, node


def _svc(store: EmbeddedStore) -> ImageService:
    return ImageService(store, ImageCatalog(store.engine))


def test_same_image_same_cid_from_any_archive(store: EmbeddedStore) -> None:
    config, layers = image_parts()
    svc = _svc(store)
    a, _ = svc.push_archive(io.BytesIO(classic_archive(config, layers, ["app:1"])), "alice")
    b, _ = svc.push_archive(io.BytesIO(classic_archive(config, layers, ["app:2"], mtime=99)), "bob")
    c, _ = svc.push_archive(io.BytesIO(oci_archive(config, layers, ["app:3"])), "carol")
    assert a.cid == b.cid == c.cid
    got = svc.get(str(a.cid))
    assert got.uploader == "alice" and got.tags == ("app:1", "app:2", "app:3") and got.name == "app"
    assert [layer["digest"] for layer in got.layers] == [
        "sha256:" + hashlib.sha256(x).hexdigest() for x in layers]
    assert got.config_digest == "sha256:" + hashlib.sha256(config).hexdigest()


def test_rebuilt_archive_holds_the_blobs_docker_load_expects(store: EmbeddedStore) -> None:
    config, layers = image_parts("y")
    svc = _svc(store)
    img, _ = svc.push_archive(io.BytesIO(classic_archive(config, layers, ["y:1"])), "u")
    store.gc()  # the archive's other files (VERSION, repositories) were never held
    archive = b"".join(svc.archive(str(img.cid)))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert manifest[0]["RepoTags"] == ["y:1"]
        assert tar.extractfile(manifest[0]["Config"]).read() == config  # type: ignore[union-attr]
        assert [tar.extractfile(n).read() for n in manifest[0]["Layers"]] == layers  # type: ignore[union-attr]


def test_layers_shared_by_two_images_are_stored_once(store: EmbeddedStore) -> None:
    config, layers = image_parts("z")
    svc = _svc(store)
    svc.push_archive(io.BytesIO(classic_archive(config, layers, ["z:1"])), "u")
    used = store.stat().used_bytes
    config2 = config.replace(b'"os": "linux"', b'"os": "linux", "variant": "v2"')
    svc.push_archive(io.BytesIO(classic_archive(config2, layers, ["z:2"])), "u")
    # the new config, manifest and folders (and the archive's own small files) only
    assert store.stat().used_bytes - used < 4096 < sum(map(len, layers))


def test_bad_archives_are_typed_refusals(store: EmbeddedStore) -> None:
    svc = _svc(store)
    with pytest.raises(InvalidImageError):
        svc.push_archive(io.BytesIO(b"not a tar at all" * 100), "u")
    config, layers = image_parts()
    with pytest.raises(InvalidImageError, match="diff_id"):
        svc.push_archive(io.BytesIO(classic_archive(config, [layers[1], layers[0]], ["x:1"])), "u")
    # A manifest nested 100,000 deep: a typed refusal, not a recursion that kills the process.
    deep = io.BytesIO()
    with tarfile.open(fileobj=deep, mode="w") as tar:
        body = b"[" * 100_000
        info = tarfile.TarInfo("manifest.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    with pytest.raises(InvalidImageError, match="nests deeper"):
        svc.push_archive(io.BytesIO(deep.getvalue()), "u")


def test_upload_list_get_pin_api(tmp_path: Path, store: EmbeddedStore) -> None:
    client, tokens = node(tmp_path, store)
    config, layers = image_parts("api")
    archive = classic_archive(config, layers, ["api:1"])
    r = client.post("/api/v1/images/upload", headers=bearer(tokens, Role.CUSTOMER, "renter"),
                    params={"tag": "api:latest"}, files={"image": ("img.tar", archive)})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["uploader"] == "renter" and body["received_bytes"] == len(archive)
    assert body["tags"] == ["api:1", "api:latest"] and body["blobs"] == 3
    cid = body["cid"]
    progress = client.post("/api/v1/images/upload", headers={
        **bearer(tokens, Role.PROVIDER), "Accept": "application/x-ndjson"},
        files={"image": ("img.tar", archive)})
    events = [json.loads(x) for x in progress.text.splitlines()]
    assert events[-1]["event"] == "done" and events[-1]["cid"] == cid
    listed = client.get("/api/v1/images", params={"uploader": "renter"},
                        headers=bearer(tokens, Role.MINER)).json()["items"]
    assert [i["cid"] for i in listed] == [cid]
    from multiformats import CID

    other_spelling = CID.decode(cid).set(version=1).encode("base32upper") if cid.startswith("Qm") else cid
    got = client.get(f"/api/v1/images/{cid}", headers=bearer(tokens, Role.CUSTOMER)).json()
    assert got["pinned"] is True and got["size"] == len(config) + sum(map(len, layers))
    assert client.get(f"/api/v1/images/{other_spelling}",
                      headers=bearer(tokens, Role.CUSTOMER)).status_code == 404  # v1 is another CID
    assert client.get("/api/v1/images/nope", headers=bearer(tokens, Role.CUSTOMER)).json()["error"] == "invalid_cid"
    assert client.delete(f"/api/v1/images/{cid}/pin", headers=bearer(tokens, Role.CUSTOMER)).status_code == 403
    assert client.delete(f"/api/v1/images/{cid}/pin", headers=bearer(tokens, Role.PROVIDER)).json()["was_pinned"]
    assert client.post(f"/api/v1/images/{cid}/pin", headers=bearer(tokens, Role.ADMIN)).json()["pinned"]
    assert client.get("/api/v1/images").status_code == 401
