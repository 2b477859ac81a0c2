"""Batch embedding: a data set of texts in, a Parquet file of vectors out (pure: no Ray).

Inputs: ``.txt`` (one text per line), ``.jsonl`` (objects with ``text`` and optionally ``id``),
``.csv`` (a ``text`` column, optionally ``id``) or ``.parquet`` (the same columns). A row whose
text is empty, not a string or longer than the model takes is refused alone: it is written to
``<output>.rejects.jsonl`` with its reason and the others are embedded. The output is written to a
temporary file and renamed into place, so a stopped or failed job never leaves half a file where
the docs say the result lands.

Output columns: ``id`` (string), ``text``, ``embedding`` (list of float32, L2-normalised),
``model``; the file's metadata names the model and its dimensions.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hcp.errors import ValidationError
from hcp.inference.base import DEFAULT_MAX_TEXT_CHARS

log = logging.getLogger(__name__)

MAX_ROWS = 1_000_000
MAX_INPUT_BYTES = 2 * 1024**3
FORMATS = (".txt", ".jsonl", ".csv", ".parquet")


@dataclass(frozen=True)
class TextRow:
    id: str
    text: str


@dataclass(frozen=True)
class Reject:
    line: int      # 1-based row number in the input
    reason: str


@dataclass(frozen=True)
class Loaded:
    rows: list[TextRow]
    rejects: list[Reject]


def read_texts(path: Path, max_chars: int = DEFAULT_MAX_TEXT_CHARS, max_rows: int = MAX_ROWS) -> Loaded:
    """The input's rows (ids default to the row number), bad rows set aside with a reason."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValidationError(f"unsupported input {suffix or 'without a suffix'}; use one of {FORMATS}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ValidationError(f"cannot read the input: {exc.strerror}") from None
    if size > MAX_INPUT_BYTES:
        raise ValidationError(f"input over {MAX_INPUT_BYTES} bytes", size=size, limit=MAX_INPUT_BYTES)
    rows: list[TextRow] = []
    rejects: list[Reject] = []
    seen: set[str] = set()
    for n, (rid, text, problem) in enumerate(_records(path, suffix), start=1):
        if n > max_rows:
            raise ValidationError(f"input over {max_rows} rows", limit=max_rows)
        rid = str(n) if rid is None else rid
        if problem is None:
            problem = _check(rid, text, max_chars, seen)
        if problem is not None:
            rejects.append(Reject(n, problem))
            continue
        seen.add(rid)
        rows.append(TextRow(rid, text))  # type: ignore[arg-type]
    return Loaded(rows, rejects)


def _check(rid: str, text: object, max_chars: int, seen: set[str]) -> str | None:
    if not isinstance(text, str) or not text.strip():
        return "empty or not a string"
    if len(text) > max_chars:
        return f"longer than {max_chars} characters"
    if len(rid) > 256:
        return "id longer than 256 characters"
    if rid in seen:
        return f"duplicate id {rid[:64]!r}"
    return None


Record = tuple[str | None, object, str | None]


def _records(path: Path, suffix: str) -> Iterable[Record]:
    if suffix == ".txt":
        with path.open(encoding="utf-8", errors="strict") as fh:
            try:
                for line in fh:
                    if line.strip():
                        yield None, line.rstrip("\n"), None
            except UnicodeDecodeError:
                raise ValidationError("the input is not UTF-8 text") from None
    elif suffix == ".jsonl":
        with path.open("rb") as fh:
            for raw in fh:
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw)
                except ValueError:
                    yield None, None, "not a JSON object"
                    continue
                if not isinstance(obj, dict):
                    yield None, None, "not a JSON object"
                    continue
                yield _id(obj.get("id")), obj.get("text"), None
    elif suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or "text" not in reader.fieldnames:
                raise ValidationError("a CSV input needs a 'text' column")
            for rec in reader:
                yield _id(rec.get("id")), rec.get("text"), None
    else:
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise ValidationError(f"not a readable Parquet file: {type(exc).__name__}") from None
        if "text" not in table.column_names:
            raise ValidationError("a Parquet input needs a 'text' column")
        ids = table.column("id").to_pylist() if "id" in table.column_names else [None] * table.num_rows
        for rid, text in zip(ids, table.column("text").to_pylist(), strict=True):
            yield _id(rid), text, None


def _id(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def chunks(rows: Sequence[TextRow], size: int) -> list[list[TextRow]]:
    if size < 1:
        raise ValidationError("batch size must be positive")
    return [list(rows[i:i + size]) for i in range(0, len(rows), size)]


Embed = Callable[[list[str]], np.ndarray]


def embed_all(rows: Sequence[TextRow], embed: Embed, batch_size: int) -> np.ndarray:
    """Vectors of every row, in order, in batches the model takes (the in-process path)."""
    parts = [np.asarray(embed([r.text for r in c]), dtype=np.float32) for c in chunks(rows, batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


@dataclass(frozen=True)
class Written:
    output: str
    rows: int
    rejected: int
    dimensions: int
    model: str
    rejects_file: str | None


def write_parquet(output: Path, rows: Sequence[TextRow], vectors: np.ndarray, model: str,
                  rejects: Sequence[Reject] = ()) -> Written:
    if len(rows) != len(vectors):
        raise ValueError("one vector per row")
    dims = int(vectors.shape[1]) if len(rows) else 0
    output.parent.mkdir(parents=True, exist_ok=True)
    flat = pa.array(np.asarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    table = pa.table({
        "id": pa.array([r.id for r in rows], type=pa.string()),
        "text": pa.array([r.text for r in rows], type=pa.string()),
        "embedding": pa.FixedSizeListArray.from_arrays(flat, dims) if dims else
        pa.array([], type=pa.list_(pa.float32())),
        "model": pa.array([model] * len(rows), type=pa.string()),
    }).replace_schema_metadata({"model": model, "dimensions": str(dims)})
    tmp = output.with_name(f".{output.name}.partial")
    pq.write_table(table, tmp)
    os.replace(tmp, output)
    rejects_file = None
    if rejects:
        rej = output.with_name(output.name + ".rejects.jsonl")
        rej.write_text("".join(json.dumps({"line": r.line, "reason": r.reason}) + "\n" for r in rejects))
        rejects_file = str(rej)
    log.info("wrote %d embeddings (%d dims) to %s; %d rows rejected", len(rows), dims, output,
             len(rejects))
    return Written(str(output), len(rows), len(rejects), dims, model, rejects_file)
