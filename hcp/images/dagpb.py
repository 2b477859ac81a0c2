"""The dag-pb and UnixFS codecs, on Google's ``protobuf`` runtime.

The schemas are the spec's (PBNode/PBLink, and UnixFS ``Data`` as Kubo's ``unixfs.proto``:
proto2, so ``blocksizes`` is not packed and presence of every optional field is kept). They are
declared here as descriptors, so no generated module or ``protoc`` is needed.

What protobuf does not do is dag-pb's canonical order: a PBNode's ``Links`` (field 2) come
*before* its ``Data`` (field 1), while protobuf writes fields in number order. Serialized
protobuf messages concatenate as a merge, so the canonical bytes are the links-only message
followed by the data-only message. A leaf's framing around its chunk is written by
``leaf_prefix`` so the chunk itself is never copied before it is hashed.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from hcp.errors import InvalidBlockError
from hcp.images.cids import Cid, varint

_F = descriptor_pb2.FieldDescriptorProto


def _file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(name="hcp_images_dagpb.proto", package="hcp.images",
                                            syntax="proto2")

    def field(msg, name: str, number: int, ftype: int, label: int = _F.LABEL_OPTIONAL,
              type_name: str | None = None) -> None:
        f = msg.field.add(name=name, number=number, type=ftype, label=label)
        if type_name:
            f.type_name = type_name

    link = fd.message_type.add(name="PBLink")
    field(link, "Hash", 1, _F.TYPE_BYTES)
    field(link, "Name", 2, _F.TYPE_STRING)
    field(link, "Tsize", 3, _F.TYPE_UINT64)
    node = fd.message_type.add(name="PBNode")
    field(node, "Links", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".hcp.images.PBLink")
    field(node, "Data", 1, _F.TYPE_BYTES)
    ts = fd.message_type.add(name="IPFSTimestamp")
    field(ts, "seconds", 1, _F.TYPE_INT64, _F.LABEL_REQUIRED)
    field(ts, "nanos", 2, _F.TYPE_FIXED32)
    data = fd.message_type.add(name="Data")
    dtype = data.enum_type.add(name="DataType")
    for i, n in enumerate(("Raw", "Directory", "File", "Metadata", "Symlink", "HAMTShard")):
        dtype.value.add(name=n, number=i)
    field(data, "Type", 1, _F.TYPE_ENUM, _F.LABEL_REQUIRED, ".hcp.images.Data.DataType")
    field(data, "Data", 2, _F.TYPE_BYTES)
    field(data, "filesize", 3, _F.TYPE_UINT64)
    field(data, "blocksizes", 4, _F.TYPE_UINT64, _F.LABEL_REPEATED)
    field(data, "hashType", 5, _F.TYPE_UINT64)
    field(data, "fanout", 6, _F.TYPE_UINT64)
    field(data, "mode", 7, _F.TYPE_UINT32)
    field(data, "mtime", 8, _F.TYPE_MESSAGE, type_name=".hcp.images.IPFSTimestamp")
    return fd


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_file())
PBLink = message_factory.GetMessageClass(_pool.FindMessageTypeByName("hcp.images.PBLink"))
PBNode = message_factory.GetMessageClass(_pool.FindMessageTypeByName("hcp.images.PBNode"))
UnixfsData = message_factory.GetMessageClass(_pool.FindMessageTypeByName("hcp.images.Data"))


class NodeType(enum.IntEnum):
    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


@dataclass(frozen=True, slots=True)
class Link:
    cid: Cid
    name: str
    tsize: int


@dataclass(frozen=True, slots=True)
class Node:
    """A decoded dag-pb node: its links in encoded order, and its Data bytes (or None)."""

    links: tuple[Link, ...]
    data: bytes | None


@dataclass(frozen=True, slots=True)
class Unixfs:
    type: NodeType
    data: bytes | None
    filesize: int | None
    blocksizes: tuple[int, ...]


def encode_node(links: Sequence[Link], data: bytes | None) -> bytes:
    """Canonical dag-pb: every link (Hash, Name, Tsize: Kubo writes an empty Name too), then
    Data if there is any."""
    head = PBNode()
    for link in links:
        head.Links.add(Hash=link.cid.binary, Name=link.name, Tsize=link.tsize)
    out = head.SerializeToString()
    if data is not None:
        out += PBNode(Data=data).SerializeToString()
    return out


def decode_node(block: bytes | memoryview) -> Node:
    msg = PBNode()
    try:
        msg.ParseFromString(bytes(block))
        links = tuple(Link(Cid(bytes(pl.Hash)), pl.Name, pl.Tsize) for pl in msg.Links)
    except (DecodeError, ValueError) as exc:
        raise InvalidBlockError(f"not a dag-pb node: {exc}") from exc
    for link in links:
        if not link.cid.binary:
            raise InvalidBlockError("dag-pb link without a Hash")
    return Node(links, bytes(msg.Data) if msg.HasField("Data") else None)


def encode_unixfs(kind: NodeType, data: bytes | None = None, filesize: int | None = None,
                  blocksizes: Sequence[int] = ()) -> bytes:
    msg = UnixfsData(Type=int(kind))
    if data is not None:
        msg.Data = data
    if filesize is not None:
        msg.filesize = filesize
    msg.blocksizes.extend(blocksizes)
    return msg.SerializeToString()


def decode_unixfs(data: bytes | None) -> Unixfs:
    if data is None:
        raise InvalidBlockError("dag-pb node without UnixFS data")
    msg = UnixfsData()
    try:
        msg.ParseFromString(data)
        kind = NodeType(msg.Type)
    except (DecodeError, ValueError) as exc:
        raise InvalidBlockError(f"not UnixFS data: {exc}") from exc
    return Unixfs(kind, bytes(msg.Data) if msg.HasField("Data") else None,
                  msg.filesize if msg.HasField("filesize") else None, tuple(msg.blocksizes))


def leaf_prefix(chunk_len: int) -> tuple[bytes, bytes]:
    """The bytes before and after a chunk in a UnixFS file leaf (``Type=File, Data=chunk,
    filesize=len``) wrapped in a PBNode: ``prefix + chunk + suffix`` equals
    ``encode_node([], encode_unixfs(FILE, chunk, len))``, which the tests check."""
    suffix = b"\x18" + varint(chunk_len)
    inner_len = 2 + 1 + len(varint(chunk_len)) + chunk_len + len(suffix)
    prefix = b"\x0a" + varint(inner_len) + b"\x08\x02\x12" + varint(chunk_len)
    return prefix, suffix
