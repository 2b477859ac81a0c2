"""Reading a batch's texts (every format, bad rows refused alone) and writing its Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hcp.batch.embeddings import Reject, TextRow, chunks, embed_all, read_texts, write_parquet
from hcp.errors import ValidationError


def _hash_embed(texts: list[str]) -> np.ndarray:
    """A deterministic stand-in for the model: 8 dims from each text's bytes (unit tests only)."""
    out = np.array([[sum(t.encode()[i::8]) + 1 for i in range(8)] for t in texts], dtype=np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_jsonl_rows_with_bad_ones_refused_alone(tmp_path: Path) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text('{"id": "a", "text": "first"}\n\n{"text": "no id"}\nnot json\n[1]\n'
                 '{"id": "a", "text": "dup"}\n{"id": "b", "text": "   "}\n{"id": "c", "text": 3}\n'
                 + json.dumps({"id": "d", "text": "x" * 9000}) + "\n")
    got = read_texts(f)
    assert got.rows == [TextRow("a", "first"), TextRow("2", "no id")]
    assert [(r.line, r.reason.split()[0]) for r in got.rejects] == [
        (3, "not"), (4, "not"), (5, "duplicate"), (6, "empty"), (7, "empty"), (8, "longer")]


def test_txt_csv_and_parquet_inputs(tmp_path: Path) -> None:
    txt = tmp_path / "in.txt"
    txt.write_text("one\n\ntwo\n")
    assert [r.text for r in read_texts(txt).rows] == ["one", "two"]
    csv = tmp_path / "in.csv"
    csv.write_text('id,text\nk1,"a, quoted"\n,second\n')
    assert read_texts(csv).rows == [TextRow("k1", "a, quoted"), TextRow("2", "second")]
    pqf = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": ["p", None, "q"]}), pqf)
    got = read_texts(pqf)
    assert [r.text for r in got.rows] == ["p", "q"] and [r.line for r in got.rejects] == [2]
    (tmp_path / "no-text.csv").write_text("id,body\n1,x\n")
    with pytest.raises(ValidationError, match="'text' column"):
        read_texts(tmp_path / "no-text.csv")
    (tmp_path / "in.xml").write_text("<a/>")
    with pytest.raises(ValidationError, match="unsupported"):
        read_texts(tmp_path / "in.xml")
    with pytest.raises(ValidationError, match="cannot read"):
        read_texts(tmp_path / "missing.txt")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ValidationError, match="Parquet"):
        read_texts(tmp_path / "bad.parquet")
    (tmp_path / "big.txt").write_text("x\n" * 11)
    with pytest.raises(ValidationError, match="rows"):
        read_texts(tmp_path / "big.txt", max_rows=10)


def test_parquet_output_is_ordered_normalised_and_atomic(tmp_path: Path) -> None:
    rows = [TextRow(str(i), f"text number {i}") for i in range(10)]
    assert [len(c) for c in chunks(rows, 4)] == [4, 4, 2]
    vectors = embed_all(rows, _hash_embed, batch_size=3)
    out = tmp_path / "deep" / "out.parquet"
    w = write_parquet(out, rows, vectors, "hash-8", [Reject(11, "empty or not a string")])
    assert (w.rows, w.rejected, w.dimensions) == (10, 1, 8)
    t = pq.read_table(out)
    assert t.column("id").to_pylist() == [r.id for r in rows]
    assert t.schema.metadata[b"model"] == b"hash-8" and t.schema.metadata[b"dimensions"] == b"8"
    got = np.array(t.column("embedding").to_pylist(), dtype=np.float32)
    assert np.allclose(got, _hash_embed([r.text for r in rows]))  # batching kept the order
    assert json.loads(Path(w.rejects_file or "").read_text()) == {"line": 11, "reason": "empty or not a string"}
    assert not list(out.parent.glob(".*partial"))
    with pytest.raises(ValueError):
        write_parquet(out, rows, vectors[:3], "hash-8")
    with pytest.raises(ValidationError):
        chunks(rows, 0)
