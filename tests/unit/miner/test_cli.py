"""``hcp miner keygen`` through the CLI (register and run are covered in integration)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from typer.testing import CliRunner

from hcp.notary.miner.keys import load_key
from hcp_cli.main import app


def test_keygen_writes_a_private_key_file_and_prints_the_identity(tmp_path: Path,
                                                                   monkeypatch) -> None:
    monkeypatch.setenv("HCP_HOME", str(tmp_path))
    runner = CliRunner()
    res = runner.invoke(app, ["miner", "keygen", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    path = tmp_path / "miner" / "key.json"
    assert out["key_file"] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_key(path)
    assert (key.miner_id, key.public_key_hex) == (out["miner_id"], out["public_key"])
    again = runner.invoke(app, ["miner", "keygen"])
    assert again.exit_code == 2 and "invalid_miner_key" in again.output


def test_run_without_a_key_fails_cleanly(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HCP_HOME", str(tmp_path))
    res = CliRunner().invoke(app, ["miner", "run", "--notary", "http://127.0.0.1:9", "--json"])
    assert res.exit_code == 2
    assert json.loads(res.stdout)["error"] == "invalid_miner_key"
