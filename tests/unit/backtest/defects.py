"""Defective copies of the real series: a day deleted, hours deleted, a file truncated.

The sources are hcp's packaged copies of the real data (byte for byte the files of the
project's data set); each helper writes a new CSV with exactly one kind of damage and
returns its path, so a test knows precisely what was removed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hcp.economics.market.history import (
    DEFAULT_BTC_DAILY,
    DEFAULT_DIFFICULTY,
    DEFAULT_POWER,
    packaged,
)


def _rows(name: str) -> tuple[str, list[str]]:
    header, *rows = packaged(name).read_text().splitlines()
    return header, rows


def _write(dest: Path, header: str, rows: list[str]) -> Path:
    dest.write_text("\n".join([header, *rows]) + "\n")
    return dest


def _filtered(name: str, dest: Path, keep: Callable[[str], bool]) -> tuple[Path, list[str]]:
    header, rows = _rows(name)
    dropped = [r for r in rows if not keep(r)]
    return _write(dest, header, [r for r in rows if keep(r)]), dropped


def btc_without_day(dest: Path, day: str) -> Path:
    """The BTC daily file with the row of ``day`` (YYYY-MM-DD) deleted."""
    path, dropped = _filtered(DEFAULT_BTC_DAILY, dest, lambda r: not r.startswith(day + ","))
    assert len(dropped) == 1
    return path


def btc_from(dest: Path, first_day: str) -> Path:
    """The BTC daily file starting at ``first_day``: the days before it removed."""
    path, _ = _filtered(DEFAULT_BTC_DAILY, dest, lambda r: r[:10] >= first_day)
    return path


def power_without(dest: Path, prefixes: tuple[str, ...]) -> tuple[Path, list[str]]:
    """The power file without the hours whose ``time_utc`` starts with any prefix."""
    return _filtered(DEFAULT_POWER, dest, lambda r: not r.startswith(prefixes))


def power_blanked(dest: Path, hour: str) -> Path:
    """The power file with the price of one hour (its ``time_utc``) left empty."""
    header, rows = _rows(DEFAULT_POWER)
    out = []
    for r in rows:
        if r.startswith(hour):
            cells = r.split(",")
            cells[2] = ""
            r = ",".join(cells)
        out.append(r)
    return _write(dest, header, out)


def difficulty_through(dest: Path, last_time_prefix: str) -> Path:
    """The difficulty file cut after the epoch whose ``time_utc`` starts with the prefix."""
    header, rows = _rows(DEFAULT_DIFFICULTY)
    cut = next(i for i, r in enumerate(rows) if r.split(",")[3].startswith(last_time_prefix))
    return _write(dest, header, rows[: cut + 1])


def difficulty_epochs() -> list[tuple[str, float]]:
    """(time_utc, difficulty) of every epoch in the full real file."""
    _, rows = _rows(DEFAULT_DIFFICULTY)
    return [(r.split(",")[3], float(r.split(",")[5])) for r in rows]
