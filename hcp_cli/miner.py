"""``hcp miner keygen|register|run``: a miner's side of the ML-Chain v6 protocol."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hcp.config import Settings
from hcp.errors import HcpError
from hcp.logging_setup import configure_for

miner_app = typer.Typer(help="Mine the notary's task: keys, registration, search and submit.",
                        no_args_is_help=True, add_completion=False)
console = Console(soft_wrap=not sys.stdout.isatty(), width=None if sys.stdout.isatty() else 160)

_KEY_HELP = "Miner key file (default: HCP_HOME/miner/key.json)."
_NOTARY_HELP = "Notary base URL, e.g. http://127.0.0.1:8000."


def _settings() -> Settings:
    s = Settings()
    configure_for(s)
    return s


def _key_path(settings: Settings, key: Path | None) -> Path:
    return key if key is not None else settings.home / "miner" / "key.json"


def _fail(exc: HcpError, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(exc.to_dict(), default=str))
    else:
        console.print(f"[red]error[/] {exc.code}: {escape(str(exc))}", highlight=False)
    raise typer.Exit(code=2)


@miner_app.command()
def keygen(
    out: Annotated[Path | None, typer.Option("--out", help=_KEY_HELP)] = None,
    miner_id: Annotated[str | None, typer.Option(help="Use this UUID, not a new one.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing key file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an Ed25519 key pair and miner id; the key file gets mode 0600."""
    from hcp.notary.miner.keys import MinerKey

    path = _key_path(_settings(), out)
    try:
        key = MinerKey.generate(miner_id)
        key.save(path, overwrite=force)
    except ValueError as exc:
        console.print(f"[red]error[/] invalid_miner_id: {escape(str(exc))}")
        raise typer.Exit(code=2) from exc
    except HcpError as exc:
        _fail(exc, as_json)
    if as_json:
        print(json.dumps({"miner_id": key.miner_id, "public_key": key.public_key_hex,
                          "key_file": str(path)}))
        return
    console.print(f"miner id   [cyan]{key.miner_id}[/]")
    console.print(f"public key [cyan]{key.public_key_hex}[/]")
    console.print(f"key file   {path} (mode 0600)")


@miner_app.command()
def register(
    notary: Annotated[str, typer.Option(envvar="HCP_NOTARY_URL", help=_NOTARY_HELP)],
    key: Annotated[Path | None, typer.Option(help=_KEY_HELP)] = None,
    stake: Annotated[int, typer.Option(min=0, help="Stake, in the ledger's smallest unit.")] = 1000,
    token: Annotated[str | None, typer.Option(envvar="HCP_TOKEN", help="Admin token.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Register this miner's public key and stake with the notary (an admin's token)."""
    from hcp.notary.miner.client import NotaryClient
    from hcp.notary.miner.keys import load_key

    settings = _settings()
    try:
        k = load_key(_key_path(settings, key))
        client = NotaryClient(notary, token=token)
        body = client.register_miner(k.miner_id, k.public_key_hex, stake)
    except HcpError as exc:
        _fail(exc, as_json)
    if as_json:
        print(json.dumps(body, default=str))
        return
    console.print(f"[green]registered[/] {k.miner_id} with stake {body.get('stake', stake)}")


def _sandbox(kind: str):  # type: ignore[no-untyped-def]
    if kind == "wasm":
        from hcp.notary.sandbox.wasm import WasmtimeSandbox

        return WasmtimeSandbox()
    if kind == "docker":
        from hcp.notary.sandbox.docker import DockerSandbox

        return DockerSandbox()
    raise typer.BadParameter("sandbox must be wasm or docker")


@miner_app.command()
def run(
    notary: Annotated[str, typer.Option(envvar="HCP_NOTARY_URL", help=_NOTARY_HELP)],
    key: Annotated[Path | None, typer.Option(help=_KEY_HELP)] = None,
    trials: Annotated[int, typer.Option(min=1, max=500, help="Search trials.")] = 20,
    seed: Annotated[int, typer.Option(help="Search seed (repeatable).")] = 0,
    engine: Annotated[str, typer.Option(help="optuna (seeded TPE) or random.")] = "optuna",
    sandbox: Annotated[str, typer.Option(help="Local sandbox: wasm or docker.")] = "wasm",
    wasm: Annotated[Path | None, typer.Option(help="train.wasm (default: reference).")] = None,
    dataset: Annotated[Path | None, typer.Option(help="Local copy of the task dataset.")] = None,
    max_attempts: Annotated[int, typer.Option(min=1, help="Submit attempts on 429/503.")] = 5,
    submit_below_threshold: Annotated[bool, typer.Option(help="Submit below threshold.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Fetch the task, search hyperparameters, score locally, sign, submit, report."""
    from hcp.notary.miner.client import NotaryClient, RetryPolicy
    from hcp.notary.miner.keys import load_key
    from hcp.notary.miner.round import RoundConfig, run_round
    from hcp.notary.miner.search import Trial

    settings = _settings()
    cfg = RoundConfig(trials=trials, seed=seed, engine=engine,
                      fuel=settings.notary.sandbox_fuel,
                      memory_bytes=settings.notary.sandbox_memory_bytes,
                      max_stdout_bytes=settings.notary.sandbox_max_stdout_bytes,
                      wasm_path=wasm, dataset_path=dataset,
                      submit_below_threshold=submit_below_threshold)

    def on_trial(t: Trial) -> None:
        if not as_json:
            console.print(f"  trial {t.number:3d}  {t.outcome.value:<8} "
                          f"{'' if t.score is None else f'{t.score:.6f}'}", highlight=False)

    def on_stage(s: str) -> None:
        if not as_json:
            console.print(f"[bold]·[/] {s}")

    try:
        k = load_key(_key_path(settings, key))
        client = NotaryClient(notary, retry=RetryPolicy(max_attempts=max_attempts))
        report = run_round(client, k, _sandbox(sandbox), cfg, on_trial, on_stage)
    except HcpError as exc:
        _fail(exc, as_json)
    if as_json:
        print(json.dumps(report.to_dict(), default=str))
    else:
        t = Table(title=f"round for task {report.task.get('task_id')}")
        t.add_column("field")
        t.add_column("value")
        t.add_row("best params", json.dumps(report.search.get("best_params")))
        t.add_row("local score", str(report.local_score))
        t.add_row("artifact", str(report.artifact_hash))
        t.add_row("answer", f"{report.status_code} after {report.attempts} attempt(s)")
        t.add_row("response", escape(json.dumps(report.response, default=str)))
        console.print(t)
        console.print("[green]verified[/]" if report.verified
                      else f"[red]not verified[/]: {report.response.get('error')}")
    raise typer.Exit(code=0 if report.verified else 1)
