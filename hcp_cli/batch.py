"""``hcp batch embed`` (a data set in, Parquet out, on Ray tasks) and ``hcp cluster
start|stop|status`` (a Ray head for ``ray job submit`` beside everything else on the machine)."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from hcp.config import Settings, prepare_home
from hcp.errors import HcpError
from hcp.inference.minilm import MODEL_NAME
from hcp_cli.common import fail

batch_app = typer.Typer(help="Batch work (run it with `ray job submit`, docs/batch.md).",
                        no_args_is_help=True)
cluster_app = typer.Typer(help="A Ray head for batch jobs: free loopback ports, token auth.",
                          no_args_is_help=True)


@batch_app.command("embed")
def embed(
    input_path: Annotated[Path, typer.Option("--input", help="Texts: .txt, .jsonl, .csv or .parquet.")],
    output: Annotated[Path | None, typer.Option(
        help="Parquet file to write (default: HCP_HOME/batch/<input name>.embeddings.parquet).")] = None,
    model: Annotated[str, typer.Option(help="Embedding model.")] = MODEL_NAME,
    batch_size: Annotated[int, typer.Option(min=1, max=256, help="Texts per Ray task.")] = 64,
    in_flight: Annotated[int | None, typer.Option(min=1, help="Tasks at once (default: the CPUs).")] = None,
    ray_tasks: Annotated[bool, typer.Option("--ray/--no-ray", help="Batches as Ray tasks.")] = True,
) -> None:
    """Embed every text of a data set; print one JSON line saying what was written where."""
    from actors.batch import embed_file

    s = Settings()
    if output is None:
        prepare_home(s)
        output = s.home / "batch" / f"{input_path.stem}.embeddings.parquet"
    try:
        written = embed_file(s, input_path, output.resolve(), model, batch_size, in_flight, ray_tasks)
    except HcpError as exc:
        fail(exc)
    typer.echo(json.dumps(asdict(written)))


@cluster_app.command("start")
def cluster_start(
    num_cpus: Annotated[int | None, typer.Option(min=1, help="CPUs the head offers.")] = None,
) -> None:
    """Start the head; print the environment that `ray job submit` needs to reach it."""
    from hcp.batch.head import start_head

    s = Settings()
    prepare_home(s)
    try:
        rec = start_head(s.home, ray_bin=_ray_bin(), num_cpus=num_cpus)
    except HcpError as exc:
        fail(exc)
    for k, v in rec.client_env().items():
        typer.echo(f"export {k}={shlex.quote(v)}")


@cluster_app.command("stop")
def cluster_stop() -> None:
    """Stop this HCP_HOME's head and everything it started (jobs included), nothing else."""
    from hcp.batch.head import stop_head

    try:
        n = stop_head(Settings().home)
    except HcpError as exc:
        fail(exc)
    typer.echo(f"stopped ({n} processes)")


@cluster_app.command("status")
def cluster_status() -> None:
    from hcp.batch.head import head_status

    typer.echo(json.dumps(head_status(Settings().home)))


def _ray_bin() -> str:
    import shutil
    import sys

    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")
