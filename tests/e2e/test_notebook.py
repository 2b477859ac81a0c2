"""notebooks/backtest.ipynb runs top to bottom on the real series (so it never rots)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec whose interpreter is this test's Python (the .venv), not a global jupyter's."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "hcp-venv"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "hcp .venv", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return "hcp-venv"


def test_backtest_notebook_executes(kernel_name: str) -> None:
    nb = nbformat.read(ROOT / "notebooks" / "backtest.ipynb", as_version=4)
    client = NotebookClient(nb, kernel_name=kernel_name, timeout=240,
                            resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "| hcp |" in text and "| perfect_foresight |" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # modes vs prices, cumulative profit
    assert not [o for o in outputs if o.get("output_type") == "error"]
