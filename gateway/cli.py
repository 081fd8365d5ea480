"""The `parkgate` command.

    parkgate sandbox [--host H] [--port P] [--log-level L] [--log-format text|json]
    parkgate serve --config FILE [--host H] [--port P] [--log-level L] [--log-format json|text]
    parkgate schema [--check FILE]             print the SDL (or check a committed copy)
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


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly, so uvicorn turns on TCP_NODELAY: without it every small answer waits ~40 ms (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Run the gateway with five simulated vendor systems, on in-memory defaults (no Redis needed)."""
    from gateway.sandbox import build_sandbox

    configure_logging(log_level or LogLevel.INFO, log_format or LogFormat.TEXT)
    sock = bind(host, port)
    port = sock.getsockname()[1]
    base_url = f"http://{reachable_host(host)}:{port}"
    asgi, box = build_sandbox(base_url, keys_file=keys_file)
    typer.echo(f"parkgate sandbox on {base_url}")
    typer.echo(f"  GraphiQL     {base_url}/graphql")
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
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Run the gateway against the real systems described in a configuration file."""
    from gateway.app import create_app
    from gateway.config import ConfigError, load_config
    from gateway.runtime import Runtime
    from resolvers.schema import schema as product_schema

    configure_logging(log_level or LogLevel.INFO, log_format or LogFormat.JSON)
    try:
        settings = load_config(config)
    except ConfigError as exc:
        typer.echo(f"error: configuration is not usable: {exc}", err=True)
        raise typer.Exit(2) from None
    logged = settings.observability.logging  # the file's choice, unless the command line made one
    configure_logging(log_level or LogLevel(logged.level), log_format or LogFormat(logged.format))
    sock = bind(host, port)
    typer.echo(f"parkgate on http://{reachable_host(host)}:{sock.getsockname()[1]}/graphql "
               f"({len(settings.systems)} systems, {len(settings.facilities)} facilities)")
    run(create_app(Runtime.from_config(settings), product_schema), sock)


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
) -> None:
    """Print the public GraphQL schema (SDL), as committed in schema.graphql."""
    from resolvers.schema import sdl

    text = sdl()
    if check is None:
        sys.stdout.write(text)
        return
    if not check.exists() or check.read_text(encoding="utf-8") != text:
        typer.echo(f"{check} is stale: regenerate it with `parkgate schema > {check}`", err=True)
        raise typer.Exit(1)
    typer.echo(f"{check} is current")
