"""``hcp agent``: the provider agent as a standalone daemon, for a third-party provider.

    hcp agent run --api https://hcp.example --token "$PROVIDER_TOKEN" \\
        --slot OFFER_ID=gpu-0:0        # offer OFFER_ID sells CUDA device 0, named gpu-0

It runs renters' containers for the provider's offers on this host's Docker Engine, pulls
images by CID from the platform's gateway (every block verified), streams logs and samples
to the platform and closes jobs through its HTTP API. SIGTERM or Ctrl-C stops the agent and
leaves containers running; the next start adopts them (``reconcile``).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from hcp.config import Settings, prepare_home
from hcp.errors import HcpError, ValidationError
from hcp.logging_setup import configure_for

agent_app = typer.Typer(help="The provider agent: run renters' containers on this host's GPUs.",
                        no_args_is_help=True, add_completion=False)
console = Console(soft_wrap=not sys.stdout.isatty(), width=None if sys.stdout.isatty() else 160)


def parse_slot(text: str) -> dict[str, object]:
    """``OFFER_ID=GPU_ID[:DEVICE_INDEX][@MODEL]`` → a slot setting."""
    offer, sep, rest = text.partition("=")
    if not sep or not offer or not rest:
        raise ValidationError(f"a slot is OFFER_ID=GPU_ID[:DEVICE][@MODEL], not {text!r}")
    rest, _, model = rest.partition("@")
    gpu, _, device = rest.partition(":")
    slot: dict[str, object] = {"offer_id": offer, "gpu_id": gpu}
    if device:
        if not device.isdigit():
            raise ValidationError(f"device index {device!r} is not a number")
        slot["device_index"] = int(device)
    if model:
        slot["gpu_model"] = model
    return slot


def _settings(api: str | None, token: str | None, slot: list[str] | None, agent_id: str | None,
              poll: float | None) -> Settings:
    s = Settings()
    update: dict[str, object] = {}
    if api:
        update["api_url"] = api
    if token:
        update["token"] = token
    if slot:
        update["slots"] = [parse_slot(x) for x in slot]
    if agent_id:
        update["agent_id"] = agent_id
    if poll:
        update["poll_seconds"] = poll
    # The daemon's requests are counted by the platform's limiter: batch log writes a little.
    update.setdefault("log_flush_seconds", max(s.agent.log_flush_seconds, 0.25))
    agent = type(s.agent).model_validate({**s.agent.model_dump(), **update})
    s = s.model_copy(update={"agent": agent})
    configure_for(s)
    prepare_home(s)
    return s


def _fail(exc: HcpError) -> None:
    console.print(f"[red]error[/] {exc.code}: {escape(str(exc))}", highlight=False)
    raise typer.Exit(code=2)


@agent_app.command()
def run(
    api: Annotated[str | None, typer.Option(help="Platform API URL (HCP_AGENT__API_URL).")] = None,
    token: Annotated[str | None, typer.Option(help="Provider token (HCP_AGENT__TOKEN); prefer the "
                                                   "variable: options show in `ps`.")] = None,
    slot: Annotated[list[str] | None, typer.Option(help="OFFER_ID=GPU_ID[:DEVICE][@MODEL], "
                                                        "repeatable (HCP_AGENT__SLOTS).")] = None,
    agent_id: Annotated[str | None, typer.Option(help="Names this agent on its containers.")] = None,
    poll: Annotated[float | None, typer.Option(help="Seconds between steps.")] = None,
    once: Annotated[bool, typer.Option(help="One reconcile and one step, then exit.")] = False,
) -> None:
    """Run the agent until SIGTERM/Ctrl-C (containers keep running and are adopted next time)."""
    from hcp.agent.build import http_agent

    try:
        settings = _settings(api, token, slot, agent_id, poll)
        agent = http_agent(settings)
    except HcpError as exc:
        _fail(exc)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    console.print(f"hcp agent [cyan]{escape(agent.identity.agent_id)}[/] for provider "
                  f"{escape(agent.identity.provider)}: {len(agent.slots)} GPU(s), "
                  f"platform {escape(settings.agent.api_url or '')}", highlight=False)
    try:
        if once:
            report = agent.step()
            print(json.dumps({"accepted": report.accepted, "adopted": report.adopted,
                              "settled": [[j, r.value] for j, r in report.settled],
                              "failed": [[j, r.value] for j, r in report.failed]}))
        else:
            link = None
            if settings.oracle.enabled:
                from hcp.agent.build import http_oracle_link

                # Heartbeats and challenge answers in their own thread: a slow Docker call
                # must not make a live provider look dead.
                link = threading.Thread(target=http_oracle_link(settings, agent).run,
                                        args=(stop,), name="agent-oracle", daemon=True)
                link.start()
            agent.run(stop)
            if link is not None:
                link.join(timeout=10)
    finally:
        agent.close()


@agent_app.command()
def selftest(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Build the tiny offline image and run it locked down, as a job would run: checks the
    Engine, the limits, the seccomp profile and the GPU mode (real or simulated) of this host."""
    import docker

    from hcp.agent.docker_engine import DockerEngine
    from hcp.agent.tinyimage import build_tiny_image

    settings = Settings()
    try:
        engine = DockerEngine.from_env(settings.agent)
    except HcpError as exc:
        _fail(exc)
    caps = engine.capabilities()
    ref = "hcp-agent-selftest:latest"
    build_tiny_image(engine.client, ref)
    probe = ("while read k v; do case $k in Seccomp:|NoNewPrivs:|CapEff:) echo $k $v;; esac; "
             "done < /proc/self/status")
    try:
        out = engine.client.containers.run(
            ref, ["/bin/sh", "-c", probe], remove=True, network_mode="none", read_only=True,
            cap_drop=["ALL"], security_opt=["no-new-privileges:true"], pids_limit=64,
            mem_limit=64 << 20).decode()
    except docker.errors.DockerException as exc:
        console.print(f"[red]selftest failed[/]: {escape(str(exc))}")
        raise typer.Exit(code=1) from None
    status = dict(line.split(" ", 1) for line in out.strip().splitlines())
    result = {"nvidia_runtime": caps.nvidia, "disk_quota": caps.disk_quota, "cpus": caps.cpus,
              "gpu": "nvidia" if caps.nvidia else "simulated", "seccomp": status.get("Seccomp:"),
              "no_new_privs": status.get("NoNewPrivs:"), "capabilities": status.get("CapEff:")}
    ok = result["seccomp"] == "2" and result["no_new_privs"] == "1" and set(
        str(result["capabilities"])) <= {"0"}
    result["ok"] = ok
    if as_json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            console.print(f"{k:>15}: {v}")
    if not ok:
        raise typer.Exit(code=1)
