"""``docker save`` archives made in tests: Docker's classic layout and Docker 25's OCI layout
of the same image (different bytes, different tar headers)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile


def _tar(files: dict[str, bytes], mtime: int = 0) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), mtime
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def image_parts(seed: str = "x") -> tuple[bytes, list[bytes]]:
    layers = [_tar({"etc/hello": f"hello {seed}\n".encode()}), _tar({"bin/tool": seed.encode() * 50_000})]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [
                             "sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]}}).encode()
    return config, layers


def classic_archive(config: bytes, layers: list[bytes], tags: list[str], mtime: int = 0) -> bytes:
    cid = hashlib.sha256(config).hexdigest()
    files = {f"{cid}.json": config}
    names = []
    for i, layer in enumerate(layers):
        d = hashlib.sha256(f"{i}{cid}".encode()).hexdigest()
        files[f"{d}/layer.tar"] = layer
        files[f"{d}/VERSION"] = b"1.0"
        names.append(f"{d}/layer.tar")
    files["manifest.json"] = json.dumps([{"Config": f"{cid}.json", "RepoTags": tags, "Layers": names}]).encode()
    files["repositories"] = b"{}"
    return _tar(files, mtime)


def oci_archive(config: bytes, layers: list[bytes], tags: list[str]) -> bytes:
    def h(b: bytes) -> str:
        return hashlib.sha256(b).hexdigest()

    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": "sha256:" + h(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": "sha256:" + h(x), "size": len(x)} for x in layers]},
                          indent=2).encode()
    files = {f"blobs/sha256/{h(x)}": x for x in layers}
    files[f"blobs/sha256/{h(config)}"] = config
    files[f"blobs/sha256/{h(manifest)}"] = manifest
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + h(manifest),
         "size": len(manifest), "annotations": {"io.containerd.image.name": tags[0]}}]}).encode()
    files["manifest.json"] = json.dumps([{"Config": f"blobs/sha256/{h(config)}", "RepoTags": tags,
                                          "Layers": [f"blobs/sha256/{h(x)}" for x in layers]}]).encode()
    files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    return _tar(files, 1_700_000_000)
