"""Compile the contracts with the npm ``solc`` (0.8.20) and write ``artifacts/<Name>.json``.

Run as ``python -m contracts.build`` (``--check`` compares instead of writing). The compiler
input (sources + fixed settings) is hashed into ``sourceHash`` so a test can tell stale
artifacts from the sources without recompiling, and recompiling must give identical bytecode.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
ARTIFACTS = HERE / "artifacts"
REPO = HERE.parent
SOLC_VERSION = "0.8.20"
CONTRACTS = ("GPUToken", "ResourceRegistry", "ReputationSystem", "PaymentEscrow", "Marketplace")
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "shanghai",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


class BuildError(RuntimeError):
    pass


def standard_input() -> dict[str, Any]:
    sources = {p.name: {"content": p.read_text()} for p in sorted(SRC.glob("*.sol"))}
    return {"language": "Solidity", "sources": sources, "settings": SETTINGS}


def source_hash(std_input: dict[str, Any]) -> str:
    canonical = json.dumps({"solc": SOLC_VERSION, "input": std_input}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


# solcjs's CLI exits before a large stdout is flushed to a pipe, so node runs the compiler
# and writes the output document to a file itself.
_NODE_COMPILE = """
const fs = require('fs');
const solc = require(process.argv[1] + '/node_modules/solc');
const input = fs.readFileSync(process.argv[2], 'utf8');
fs.writeFileSync(process.argv[3], solc.compile(input));
process.stdout.write(solc.version());
"""


def _node() -> str:
    if not (REPO / "node_modules" / "solc").exists():
        raise BuildError("the npm solc package is missing: run `npm ci` in the repository root")
    found = shutil.which("node")
    if not found:
        raise BuildError("node is not installed")
    return found


def compile_with(extra: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Compile the sources plus ``extra`` (file name -> Solidity text, e.g. a test's attacker
    contract importing ``./PaymentEscrow.sol``); {contract name: {abi, bytecode}} of every file."""
    std_input = standard_input()
    std_input["sources"].update({name: {"content": text} for name, text in extra.items()})
    out = _solc(std_input)
    return {cname: {"abi": c["abi"], "bytecode": "0x" + c["evm"]["bytecode"]["object"]}
            for contracts in out["contracts"].values() for cname, c in contracts.items()}


def _solc(std_input: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hcp-solc-") as tmp:
        inp, outp = Path(tmp) / "in.json", Path(tmp) / "out.json"
        inp.write_text(json.dumps(std_input))
        proc = subprocess.run([_node(), "-e", _NODE_COMPILE, str(REPO), str(inp), str(outp)],
                              capture_output=True, text=True, check=False, cwd=REPO)
        if proc.returncode != 0:
            raise BuildError(f"solc failed ({proc.returncode}): {proc.stderr.strip()}")
        out = json.loads(outp.read_text())
    if not proc.stdout.startswith(SOLC_VERSION + "+"):
        raise BuildError(f"solc {SOLC_VERSION} expected, found {proc.stdout.strip()!r}")
    for w in out.get("errors", []):
        if w.get("severity") != "error":
            log.warning("solc: %s", w.get("formattedMessage", w.get("message", "")).strip())
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise BuildError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    return out


def compile_all() -> dict[str, dict[str, Any]]:
    """Artifacts by contract name, compiled now from the sources."""
    std_input = standard_input()
    out = _solc(std_input)
    digest = source_hash(std_input)
    artifacts: dict[str, dict[str, Any]] = {}
    for name in CONTRACTS:
        c = out["contracts"][f"{name}.sol"][name]
        artifacts[name] = {
            "contractName": name,
            "abi": c["abi"],
            "bytecode": "0x" + c["evm"]["bytecode"]["object"],
            "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
            "sourceHash": digest,
            "compiler": f"solc {SOLC_VERSION}",
            "settings": {k: v for k, v in SETTINGS.items() if k != "outputSelection"},
        }
    return artifacts


def write(artifacts: dict[str, dict[str, Any]]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for name, art in artifacts.items():
        (ARTIFACTS / f"{name}.json").write_text(json.dumps(art, indent=1, sort_keys=True) + "\n")


def stale(artifacts: dict[str, dict[str, Any]]) -> list[str]:
    """Names whose committed artifact differs from ``artifacts``."""
    bad = []
    for name, art in artifacts.items():
        path = ARTIFACTS / f"{name}.json"
        if not path.exists() or json.loads(path.read_text()) != art:
            bad.append(name)
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the artifacts are stale")
    args = parser.parse_args(argv)
    artifacts = compile_all()
    if args.check:
        bad = stale(artifacts)
        if bad:
            print(f"stale artifacts: {', '.join(bad)} (run python -m contracts.build)", file=sys.stderr)
            return 1
        print("artifacts match the sources")
        return 0
    write(artifacts)
    print(f"wrote {len(artifacts)} artifacts to {ARTIFACTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
