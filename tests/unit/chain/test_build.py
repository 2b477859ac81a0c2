"""The committed artifacts are what the sources compile to."""

from __future__ import annotations

import json

from contracts import build
from hcp.marketplace.chain.artifacts import ARTIFACTS_DIR, CONTRACT_NAMES


def test_source_hash_of_artifacts_matches_the_sources() -> None:
    digest = build.source_hash(build.standard_input())
    for name in CONTRACT_NAMES:
        art = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())
        assert art["sourceHash"] == digest, f"{name}: run python -m contracts.build"


def test_recompiling_gives_the_committed_bytecode() -> None:
    fresh = build.compile_all()
    assert set(fresh) == set(CONTRACT_NAMES)
    assert build.stale(fresh) == []
    for name, art in fresh.items():
        # the init code carries the runtime, which ends with solc's CBOR metadata (… 0x0033)
        assert art["deployedBytecode"][2:] in art["bytecode"], name
        assert art["deployedBytecode"].endswith("0033"), name


def test_stale_artifacts_are_detected() -> None:
    art = json.loads((ARTIFACTS_DIR / "GPUToken.json").read_text())
    art["bytecode"] = art["bytecode"][:-2] + ("00" if not art["bytecode"].endswith("00") else "01")
    assert build.stale({"GPUToken": art}) == ["GPUToken"]
