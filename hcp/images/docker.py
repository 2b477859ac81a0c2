"""Docker images by CID.

``docker save`` archives are not byte-stable (tar headers, timestamps, the tags inside, and the
format changed in Docker 25), so an image is stored as its content-addressed blobs only, as an
OCI image layout in a UnixFS directory::

    oci-layout                     {"imageLayoutVersion":"1.0.0"}
    index.json                     one manifest, no tags or annotations
    blobs/sha256/<manifest>        an OCI manifest written here from the config and layers
    blobs/sha256/<config>          the image config (its digest is the image ID)
    blobs/sha256/<layer>...        each layer's tar, byte for byte as the archive held it

Everything in it is a function of the image's content, so the same image pushed twice, from
any Docker version, gets the same CID, and a layer two images share is stored once. Names and
tags are metadata beside the CID (``hcp.images.catalog``). Pulling rebuilds a
``docker load``-able archive (Docker's ``manifest.json`` format, which every Engine loads).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from hcp.errors import InvalidImageError
from hcp.images.cids import Cid
from hcp.images.directory import Entry, make_tree
from hcp.images.exporter import BlockGetter, cat, list_directory, resolve_path
from hcp.images.importer import FileImporter
from hcp.images.params import ImportParams
from hcp.jsonsafe import nesting_depth
from hcp.notary.canonical import legacy_bytes

log = logging.getLogger(__name__)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
_SMALL = 4 << 20  # JSON members of an archive kept in memory to read them
_MAX_MEMBERS = 10_000


def canonical_json(obj: Any) -> bytes:
    """The OCI documents' bytes: sorted keys, compact (the platform's legacy canonical form,
    kept for these so that an image's CID never changes)."""
    return legacy_bytes(obj)


class Session(Protocol):
    def put(self, cid: Cid, block: bytes) -> None: ...


@dataclass(frozen=True)
class Blob:
    digest: str  # "sha256:<hex>"
    size: int
    media_type: str
    cid: Cid
    tsize: int


@dataclass(frozen=True)
class StoredImage:
    cid: Cid
    config_digest: str
    layers: tuple[Blob, ...]
    size: int  # bytes of config + layers
    repo_tags: tuple[str, ...]
    keys: frozenset[str] = field(default=frozenset(), repr=False)  # blocks of the directory

    def layer_dicts(self) -> list[dict[str, Any]]:
        return [{"digest": b.digest, "size": b.size, "media_type": b.media_type, "cid": str(b.cid)}
                for b in self.layers]


@dataclass
class _Member:
    cid: Cid
    tsize: int
    size: int
    digest: str
    head: bytes
    keys: set[str]
    small: bytes | None


class _Tracking:
    """A session wrapper that remembers which blocks one file wrote."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.keys: set[str] = set()

    def put(self, cid: Cid, block: bytes) -> None:
        self.keys.add(cid.key)
        self.session.put(cid, block)


def _import_member(stream: BinaryIO, size: int, session: Session, params: ImportParams) -> _Member:
    track = _Tracking(session)
    imp = FileImporter(track.put, params)
    sha = hashlib.sha256()
    head = b""
    small = bytearray() if size <= _SMALL else None
    left = size
    while left > 0:
        piece = stream.read(min(left, 1 << 20))
        if not piece:
            raise InvalidImageError("image archive ends inside a file")
        left -= len(piece)
        if len(head) < 16:
            head += piece[:16 - len(head)]
        sha.update(piece)
        imp.write(piece)
        if small is not None:
            small += piece
    f = imp.finish()
    return _Member(f.cid, f.tsize, size, "sha256:" + sha.hexdigest(), head, track.keys,
                   bytes(small) if small is not None else None)


_MAX_JSON_DEPTH = 64  # OCI and Docker documents nest a few levels


def _json(member: _Member | None, what: str) -> Any:
    if member is None or member.small is None:
        raise InvalidImageError(f"image archive has no readable {what}")
    # The archive is the uploader's: bound its nesting before json.loads recurses (a deep
    # document overflows the C stack where a dependency raised the recursion limit).
    if nesting_depth(member.small, stop_at=_MAX_JSON_DEPTH) > _MAX_JSON_DEPTH:
        raise InvalidImageError(f"image archive's {what} nests deeper than {_MAX_JSON_DEPTH} levels")
    try:
        return json.loads(member.small)
    except (ValueError, RecursionError) as exc:
        raise InvalidImageError(f"image archive's {what} is not JSON") from exc


def ingest_archive(stream: BinaryIO, session: Session, params: ImportParams | None = None) -> StoredImage:
    """Read a ``docker save`` archive (either format) once, streaming: every file is imported as
    it passes (its SHA-256 taken in the same pass), then the image's blobs are assembled into
    the OCI layout directory. Blocks of archive files that are not blobs stay unheld."""
    params = params or ImportParams()
    members: dict[str, _Member] = {}
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for info in tar:
                if len(members) >= _MAX_MEMBERS:
                    raise InvalidImageError("image archive has too many files")
                if not info.isreg():
                    continue
                fobj = tar.extractfile(info)
                assert fobj is not None
                members[info.name.lstrip("./")] = _import_member(fobj, info.size, session, params)
    except tarfile.TarError as exc:
        raise InvalidImageError(f"not a docker image archive: {exc}") from exc
    manifest = _json(members.get("manifest.json"), "manifest.json")
    if not isinstance(manifest, list) or len(manifest) != 1 or not isinstance(manifest[0], dict):
        raise InvalidImageError("an image archive must hold exactly one image")
    entry = manifest[0]
    config = members.get(str(entry.get("Config", "")).lstrip("./"))
    layer_names = entry.get("Layers") or []
    if config is None or not isinstance(layer_names, list):
        raise InvalidImageError("manifest.json names no config or layers present in the archive")
    diff_ids = (_json(config, "image config").get("rootfs") or {}).get("diff_ids") or []
    layers = []
    for i, name in enumerate(layer_names):
        m = members.get(str(name).lstrip("./"))
        if m is None:
            raise InvalidImageError(f"layer {name!r} is missing from the archive")
        gz = m.head[:2] == b"\x1f\x8b"
        if not gz and i < len(diff_ids) and diff_ids[i] != m.digest:
            raise InvalidImageError(f"layer {i} does not match the config's diff_id")
        layers.append(Blob(m.digest, m.size, LAYER_GZIP if gz else LAYER_TAR, m.cid, m.tsize))
    tags = tuple(str(t) for t in entry.get("RepoTags") or ())
    keys = set(config.keys)
    for name in layer_names:
        keys |= members[str(name).lstrip("./")].keys
    return _assemble(config, layers, session, params, tags, keys)


def _assemble(config: _Member, layers: list[Blob], session: Session, params: ImportParams,
              tags: tuple[str, ...], keys: set[str]) -> StoredImage:
    track = _Tracking(session)
    manifest = canonical_json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": b.media_type, "digest": b.digest, "size": b.size} for b in layers],
    })
    mdigest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": mdigest, "size": len(manifest)}]})
    files: dict[str, Entry] = {}
    for path, data in (("oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"})),
                       ("index.json", index), (f"blobs/sha256/{mdigest[7:]}", manifest)):
        imp = FileImporter(track.put, params)
        imp.write(data)
        f = imp.finish()
        files[path] = Entry(f.cid, f.tsize)
    files[f"blobs/sha256/{config.digest[7:]}"] = Entry(config.cid, config.tsize)
    for blob in layers:
        files.setdefault(f"blobs/sha256/{blob.digest[7:]}", Entry(blob.cid, blob.tsize))
    top = make_tree(files, track.put, params.cid_version)
    keys |= track.keys
    return StoredImage(top.cid, config.digest, tuple(layers),
                       config.size + sum(b.size for b in layers), tags, frozenset(keys))


# -- pull: a docker-loadable archive from the directory ------------------------------------

def read_layout(root: Cid, get: BlockGetter) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, config) of the image directory at ``root``, every block verified."""
    try:
        index = json.loads(b"".join(cat(resolve_path(root, "index.json", get), get)))
        mdigest = index["manifests"][0]["digest"]
        manifest = json.loads(b"".join(cat(_blob(root, mdigest, get), get)))
        config = json.loads(b"".join(cat(_blob(root, manifest["config"]["digest"], get), get)))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise InvalidImageError(f"{root} is not an hcp image directory: {exc}", cid=str(root)) from exc
    return manifest, config


def _blob(root: Cid, digest: str, get: BlockGetter) -> Cid:
    if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
        raise InvalidImageError(f"bad blob digest {digest!r}")
    return resolve_path(root, f"blobs/sha256/{digest[7:]}", get)


def _tar_file(name: str, size: int, pieces: Iterable[bytes]) -> Iterator[bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    yield info.tobuf(format=tarfile.USTAR_FORMAT)
    n = 0
    for piece in pieces:
        n += len(piece)
        yield piece
    if n != size:
        raise InvalidImageError(f"{name}: {n} bytes where {size} were announced")
    if size % 512:
        yield b"\0" * (512 - size % 512)


def docker_archive(root: Cid, get: BlockGetter, repo_tags: Iterable[str] = ()) -> Iterator[bytes]:
    """A ``docker load`` archive of the image at ``root``, streamed; each blob's SHA-256 is
    checked against its digest as it passes (on top of every block's CID)."""
    manifest, _config = read_layout(root, get)
    cdigest = manifest["config"]["digest"]
    layers = manifest["layers"]
    names = [f"{d['digest'][7:]}/layer.tar" for d in layers]
    docker_manifest = canonical_json([{"Config": f"{cdigest[7:]}.json",
                                       "RepoTags": list(repo_tags), "Layers": names}])
    yield from _tar_file("manifest.json", len(docker_manifest), [docker_manifest])
    yield from _checked_blob(root, cdigest, manifest["config"]["size"], f"{cdigest[7:]}.json", get)
    for d, name in zip(layers, names):
        yield from _checked_blob(root, d["digest"], d["size"], name, get)
    yield b"\0" * 1024


def _checked_blob(root: Cid, digest: str, size: int, name: str, get: BlockGetter) -> Iterator[bytes]:
    sha = hashlib.sha256()

    def pieces() -> Iterator[bytes]:
        for piece in cat(_blob(root, digest, get), get):
            sha.update(piece)
            yield piece
        if "sha256:" + sha.hexdigest() != digest:
            raise InvalidImageError(f"blob {digest} does not match its digest", cid=str(root))

    yield from _tar_file(name, int(size), pieces())


def archive_file(root: Cid, get: BlockGetter, repo_tags: Iterable[str] = ()) -> io.BufferedReader:
    """``docker_archive`` as a readable file object (for clients that want one)."""
    return io.BufferedReader(IterReader(docker_archive(root, get, repo_tags)), 1 << 20)


class IterReader(io.RawIOBase):
    def __init__(self, it: Iterator[bytes]) -> None:
        self._it = it
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def image_layers(root: Cid, get: BlockGetter) -> list[str]:
    return [link.name for link in list_directory(resolve_path(root, "blobs/sha256", get), get)]
