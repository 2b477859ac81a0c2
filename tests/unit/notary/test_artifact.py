"""safe_extract against hostile archives."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcp.errors import ArtifactTooLargeError, InvalidArtifactError
from hcp.notary.artifact import safe_extract


def tar_gz(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def reg(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def test_extracts_regular_files_and_dirs(tmp_path: Path) -> None:
    d = tarfile.TarInfo("sub")
    d.type = tarfile.DIRTYPE
    paths = safe_extract(tar_gz(reg("train.wasm", b"w"), (d, None), reg("sub/h.json", b"{}")),
                         tmp_path, 8, 1000)
    assert {p.relative_to(tmp_path.resolve()).as_posix() for p in paths} == {"train.wasm",
                                                                              "sub/h.json"}
    assert (tmp_path / "sub/h.json").read_bytes() == b"{}"


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "/etc/evil", "..", "a\\..\\b"])
def test_traversal_and_absolute_paths_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidArtifactError):
        safe_extract(tar_gz(reg(name, b"x")), tmp_path / "out", 8, 1000)
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("kind,link", [
    (tarfile.SYMTYPE, "/etc/passwd"),
    (tarfile.SYMTYPE, "../../x"),
    (tarfile.LNKTYPE, "train.wasm"),
    (tarfile.CHRTYPE, ""),
    (tarfile.BLKTYPE, ""),
    (tarfile.FIFOTYPE, ""),
])
def test_links_and_devices_refused(tmp_path: Path, kind: bytes, link: str) -> None:
    with pytest.raises(InvalidArtifactError):
        safe_extract(tar_gz(reg("train.wasm", b"w"), special("x", kind, link)), tmp_path, 8, 1000)
    assert not (tmp_path / "x").exists()


def test_decompression_bomb_stopped_while_streaming(tmp_path: Path) -> None:
    bomb = tar_gz(reg("zeros", bytes(200 << 20)))  # 200 MiB of zeros, ~200 KiB compressed
    assert len(bomb) < 1 << 20
    with pytest.raises(ArtifactTooLargeError):
        safe_extract(bomb, tmp_path, 8, 1 << 20)
    assert sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file()) <= 1 << 20


def test_oversized_metadata_is_stopped_by_the_byte_count(tmp_path: Path) -> None:
    # A tiny file with a 20 MiB PAX header: member sizes look harmless, the stream is not.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as t:
        info, data = reg("train.wasm", b"w")
        info.pax_headers = {"comment": "x" * (20 << 20)}
        t.addfile(info, io.BytesIO(data))
    with pytest.raises(ArtifactTooLargeError):
        safe_extract(buf.getvalue(), tmp_path, 8, 1 << 20)


def test_trailing_padding_counts_toward_the_limit(tmp_path: Path) -> None:
    # 1 MiB of zero blocks decompressed from 1 KiB: refused by the byte count, not parsed on.
    with pytest.raises(ArtifactTooLargeError):
        safe_extract(gzip.compress(bytes(1 << 20)), tmp_path, 8, 1000)


def test_too_many_members(tmp_path: Path) -> None:
    with pytest.raises(ArtifactTooLargeError):
        safe_extract(tar_gz(*[reg(f"f{i}", b"x") for i in range(10)]), tmp_path, 5, 1000)


def test_duplicate_member_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArtifactError):
        safe_extract(tar_gz(reg("a", b"1"), reg("a", b"2")), tmp_path, 8, 1000)


# Explicit ids: a gzip header carries the time, and test ids must be the same in every
# collection (the unit tier is collected by two workers).
@pytest.mark.parametrize("blob", [b"", b"not gzip", gzip.compress(b"not a tar" * 100, mtime=0)],
                         ids=["empty", "not-gzip", "gzip-not-tar"])
def test_not_a_tar_gz(tmp_path: Path, blob: bytes) -> None:
    with pytest.raises(InvalidArtifactError):
        safe_extract(blob, tmp_path, 8, 1000)


@settings(max_examples=40, deadline=None)
@given(name=st.text(alphabet=st.sampled_from(list("ab./\\")), min_size=1, max_size=12))
def test_nothing_is_ever_written_outside_dest(tmp_path_factory: pytest.TempPathFactory,
                                               name: str) -> None:
    root = tmp_path_factory.mktemp("x")
    dest = root / "dest"
    try:
        safe_extract(tar_gz(reg(name, b"x")), dest, 8, 1000)
    except (InvalidArtifactError, ArtifactTooLargeError):
        pass
    outside = [p for p in root.rglob("*") if dest not in p.parents and p != dest]
    assert outside == []
