"""The `parkgate` command.

    parkgate sandbox [--host H] [--port P] [--facilities N] [--seed S] [--log-level L] [--log-format text|json]
    parkgate serve --config FILE [--host H] [--port P] [--workers N] [--subgraph] [--log-level L] [--log-format json|text]
    parkgate schema [--check FILE] [--subgraph] print the SDL (or check a committed copy; or the subgraph's)
    parkgate schema --diff REF                 what changed since a release, a file or a git revision
    parkgate --version
    parkgate clients create|list|show|update|usage|rotate|revoke --config FILE …
    parkgate audit --config FILE
    parkgate plans --config FILE
    parkgate probe --config FILE --system ID [--json]   does a vendor system speak its standard?

`serve` and `sandbox` are composition roots: they build the runtime, take the schema assembled in
resolvers/schema.py and hand both to the app (gateway/app.py, `create_app`).
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from starlette.types import ASGIApp

from gateway.cli_clients import audit, clients_app, plans
from gateway.observability.logs import LogFormat, LogLevel, configure_logging

app = typer.Typer(add_completion=False, no_args_is_help=True, help="parkgate: one GraphQL API over a parking operation's systems.")
app.add_typer(clients_app, name="clients")
app.command("audit")(audit)
app.command("plans")(plans)


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly, so uvicorn turns on TCP_NODELAY: without it every small answer waits ~40 ms (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # one of the workers of `serve --workers N` (gateway/workers.py)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    return sock


def run(asgi: ASGIApp, sock: socket.socket) -> None:
    # The access log costs ~40 % of throughput here; the app logs each request once itself
    # (gateway/observability/request_log.py). log_config=None: uvicorn's lines go through our handler.
    config = uvicorn.Config(asgi, access_log=False, log_config=None, log_level=logging.getLogger().level,
                            ws="websockets-sansio", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


LogLevelOption = Annotated[LogLevel | None, typer.Option(
    "--log-level", help="DEBUG, INFO (one line per request), WARNING or ERROR.", case_sensitive=False)]
LogFormatOption = Annotated[LogFormat | None, typer.Option(
    "--log-format", help="json (one object per line, for log shippers) or text (for people).")]


def reachable_host(host: str) -> str:
    """Where this process can reach itself (a wildcard bind is reached on loopback)."""
    if host in ("0.0.0.0", "", "*"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 8000,
    keys_file: Annotated[Path | None, typer.Option("--keys-file", help="Write the demo clients' keys here as JSON.")] = None,
    subgraph: Annotated[bool, typer.Option("--subgraph", help="Serve the schema as a Federation v2 subgraph, for a router.")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Processes: the sandbox runs in one (its state is in memory).")] = 1,
    facilities: Annotated[int, typer.Option(min=1, max=20_000, help="Garages in the simulated world (6: the "
                                            "sandbox's own; any other number is generated).")] = 6,
    seed: Annotated[int, typer.Option(help="Seed of the simulated world: the same seed, the same world.")] = 7,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Run the gateway with its six simulated vendor systems (or a world of --facilities N garages), on in-memory defaults (no Redis needed)."""
    from adapters.simulated.generate import generate_world
    from gateway.sandbox import build_sandbox

    if workers > 1:
        # Each worker would hold a world, clients and events of its own: a reservation made through one
        # would not exist on the next connection. Several workers share state only through Redis.
        typer.echo("error: the sandbox runs in one process (its vendors, clients and events live in memory); "
                   "for several workers run `parkgate serve --workers N` on a Redis store", err=True)
        raise typer.Exit(2)
    configure_logging(log_level or LogLevel.INFO, log_format or LogFormat.TEXT)
    sock = bind(host, port)
    port = sock.getsockname()[1]
    base_url = f"http://{reachable_host(host)}:{port}"
    asgi, box = build_sandbox(base_url, keys_file=keys_file, subgraph=subgraph,
                              world=generate_world(facilities, seed))
    typer.echo(f"parkgate sandbox on {base_url}" + (" (Federation v2 subgraph)" if subgraph else ""))
    typer.echo(f"  GraphiQL     {base_url}/graphql")
    typer.echo(f"  board        {base_url}/board   (sign in with a key, e.g. the dashboard demo client's)")
    typer.echo(f"  console      {base_url}/admin   (sign in with the admin demo client's key)")
    typer.echo(f"  health       {base_url}/healthz")
    typer.echo(f"  control API  {base_url}/sandbox/systems")
    for system in box.systems_listing():
        typer.echo(f"  {system['kind'].lower():<11}  {system['id']:<14} {system['dialect']:<12} {system['base_url']}")
    typer.echo(f"  demo clients' keys: {keys_file}" if keys_file else "  demo clients' keys: pass --keys-file FILE to get them")
    run(asgi, sock)


@app.command()
def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="The YAML configuration file.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    subgraph: Annotated[bool, typer.Option("--subgraph", help="Serve the schema as a Federation v2 subgraph, "
                                                              "for a router (as `server.subgraph: true`).")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Processes on the port, the kernel spreading connections "
                                                        "over them (Linux); more than one needs the Redis store.")] = 1,
    worker_index: Annotated[int | None, typer.Option(hidden=True, help="Set by the supervisor of --workers.")] = None,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Run the gateway against the real systems described in a configuration file."""
    from gateway.app import create_app
    from gateway.config import ConfigError, load_config
    from gateway.runtime import Runtime
    from resolvers.subgraph import served_schema

    configure_logging(log_level or LogLevel.INFO, log_format or LogFormat.JSON)
    try:
        settings = load_config(config)
    except ConfigError as exc:
        typer.echo(f"error: configuration is not usable: {exc}", err=True)
        raise typer.Exit(2) from None
    logged = settings.observability.logging  # the file's choice, unless the command line made one
    level, fmt = log_level or LogLevel(logged.level), log_format or LogFormat(logged.format)
    configure_logging(level, fmt)
    subgraph = subgraph or settings.server.subgraph
    if workers > 1:
        supervise(settings.store.backend, config, host, port, workers, subgraph=subgraph,
                  logging=["--log-level", level.value, "--log-format", fmt.value])
        return
    schema = served_schema(subgraph, settings.server.subgraph_scopes)
    sock = bind(host, port, reuse_port=worker_index is not None)
    if worker_index is None:
        typer.echo(f"parkgate on http://{reachable_host(host)}:{sock.getsockname()[1]}/graphql "
                   f"({len(settings.systems)} systems, {len(settings.facilities)} facilities"
                   f"{', Federation v2 subgraph' if subgraph else ''})")
        run(create_app(Runtime.from_config(settings), schema), sock)
        return
    from gateway.events.redis_bus import replica_id_of
    from gateway.workers import WorkerHeader, exit_with_parent

    exit_with_parent()
    # A replica of its own on the event bus: every worker reads every event, each keeps its own place.
    replica = f"{replica_id_of(settings)}/worker-{worker_index}"
    settings = settings.model_copy(update={"events": settings.events.model_copy(update={"replica_id": replica})})
    run(WorkerHeader(create_app(Runtime.from_config(settings), schema), worker_index), sock)


def supervise(store: str, config: Path, host: str, port: int, workers: int, *, subgraph: bool,
              logging: list[str]) -> None:
    """`serve --workers N` (N > 1): the supervisor of gateway/workers.py."""
    from gateway.workers import Supervisor, reuse_port_supported

    if store != "redis":
        typer.echo(f"error: --workers {workers} needs `store.backend: redis`: on the in-memory store each worker "
                   "would keep clients, quotas and events of its own (docs/deployment.md, \"Every core\")", err=True)
        raise typer.Exit(2)
    if not reuse_port_supported():
        typer.echo("error: --workers needs Linux (SO_REUSEPORT spreading connections); run one process per port "
                   "behind a load balancer instead", err=True)
        raise typer.Exit(2)
    # Taken here and held, never listened on: the port stays ours while workers come and go, and port 0
    # becomes one port every worker binds.
    held = bind(host, port, reuse_port=True)
    port = held.getsockname()[1]
    typer.echo(f"parkgate on http://{reachable_host(host)}:{port}/graphql ({workers} workers"
               f"{', Federation v2 subgraph' if subgraph else ''})")
    command = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--host", host, "--port", str(port),
               *(["--subgraph"] if subgraph else []), *logging]
    status = Supervisor(workers, command).run()
    held.close()
    raise typer.Exit(status)


@app.command()
def probe(
    config: Annotated[Path, typer.Option("--config", "-c", help="The YAML configuration file.")],
    system: Annotated[str, typer.Option("--system", "-s", help="The id of the system to probe, as configured.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Read one configured vendor system as the gateway would and check every answer against the
    standard it claims (gateway/probe.py). Exit 1 when something does not conform."""
    import json

    from gateway.config import ConfigError, load_config
    from gateway.probe import run_probe

    try:
        report = run_probe(load_config(config), system)
    except (ConfigError, KeyError) as exc:
        typer.echo(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(report.as_json(), indent=2) if as_json else "\n".join(report.lines()))
    raise typer.Exit(0 if report.conforms else 1)


@app.command()
def schema(
    check: Annotated[Path | None, typer.Option(help="Compare with this file instead of printing; exit 1 when stale.")] = None,
    diff: Annotated[str | None, typer.Option(
        "--diff", metavar="REF",
        help="Print what changed since REF: a released version (0.1.0), `latest`, an SDL file, or a git revision "
             "(its schema.graphql); exit 1 when something breaks.")] = None,
    subgraph: Annotated[bool, typer.Option("--subgraph", help="Print the Federation v2 subgraph SDL instead.")] = False,
) -> None:
    """Print the public GraphQL schema (SDL), as committed in schema.graphql."""
    from resolvers.schema import sdl
    from resolvers.subgraph import build_subgraph

    text = build_subgraph().sdl if subgraph else sdl()
    if diff is not None:
        print_diff(diff, text)
        return
    if check is None:
        sys.stdout.write(text)
        return
    if not check.exists() or check.read_text(encoding="utf-8") != text:
        typer.echo(f"{check} is stale: regenerate it with `parkgate schema > {check}`", err=True)
        raise typer.Exit(1)
    typer.echo(f"{check} is current")


def print_diff(ref: str, current: str) -> None:
    """`parkgate schema --diff REF`: every change from REF's schema to this code's, breaking first."""
    from gateway.contract import Severity, schema_at, schema_changes

    try:
        label, before = schema_at(ref)
        changes = schema_changes(before, current)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"Changes from {label} to the schema of this code:")
    for change in changes:
        typer.echo(change.line())
    counts = {severity: sum(1 for c in changes if c.severity is severity) for severity in Severity}
    typer.echo(", ".join(f"{n} {severity.value.lower()}" for severity, n in counts.items()) if changes else "no changes")
    if counts[Severity.BREAKING]:
        raise typer.Exit(1)


def show_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"parkgate {version('parkgate')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=show_version, is_eager=True,
                                          help="Print parkgate's version (docs/versioning.md) and exit.")] = False,
) -> None:
    """parkgate: one GraphQL API over a parking operation's systems."""
