"""``arc-atlas ui``: serve the local web app on the database every other command uses.

The command checks everything it can before it says where to go: the bind
(a non-loopback ``--host`` needs a token), the port (bound here, so "in use"
is one line, not a traceback from the server) and the database (opened here,
so an unreachable one is the usual ``Error:`` line); ``--dry-run`` stops
there. Ctrl-C stops the server and exits 0.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from atlas.cli.export_cmd import reader_config
from atlas.errors import UsageError

__all__ = ["register"]

TOKEN_VARIABLE = "ATLAS_UI_TOKEN"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def _port(text: str) -> int:
    """``--port``: a TCP port, 1 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: give a number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range: give 1 to 65535")
    return port


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a port in use or a foreign address is a UsageError.

    Binding here rather than in uvicorn turns its failures into one clear line,
    and leaves no moment between a check and the bind for another process.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise UsageError(f"--host {host} cannot be resolved ({exc.strerror}).") from None
    except UnicodeError:  # a name the IDNA codec refuses: a label over 63 characters, ...
        raise UsageError(f"--host {host[:80]} is not a valid host name.") from None
    sock = socket.socket(family, kind, proto)
    # As uvicorn does: a restart may reuse a port whose old connections linger in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is in use: pass --port.") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise UsageError(
                f"--host {host} is not an address of this machine: pass one of its "
                "addresses, or 127.0.0.1."
            ) from None
        if exc.errno == errno.EACCES:
            raise UsageError(
                f"port {port} on {host} needs privileges: pass --port 1024 or above."
            ) from None
        raise
    return sock


def _url(host: str, port: int, token: str | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def _ui(args: argparse.Namespace) -> int:
    # Imported here: every other command would pay for loading the web stack.
    import uvicorn

    from atlas.storage import Database
    from atlas.ui import UISettings, check_bind, create_app

    token = args.token if args.token is not None else os.environ.get(TOKEN_VARIABLE)
    token = token or None
    if not args.host.strip():
        raise UsageError("--host is empty: give an address such as 127.0.0.1.")
    check_bind(args.host, token)
    settings = UISettings(
        database_url=args.database_url,
        config_path=args.config,
        reviewer=args.reviewer,
        host=args.host,
        port=args.port,
        token=token,
    )
    sock = _listen(args.host, args.port)
    try:
        database = Database.open(args.database_url, config=reader_config(args.config))
        try:
            app = create_app(settings, database=database)
            config = uvicorn.Config(
                app, host=args.host, port=args.port, log_level="warning", lifespan="on"
            )
            print(f"arc-atlas ui: {_url(args.host, args.port, token)}", flush=True)
            if args.dry_run:
                print(
                    f"database {database.settings.display_url}; dry run: all set, not serving.",
                    file=sys.stderr,
                )
                return 0
            print(f"database {database.settings.display_url}; Ctrl-C to stop", file=sys.stderr)
            try:
                uvicorn.Server(config).run(sockets=[sock])
            except KeyboardInterrupt:
                # uvicorn stops on Ctrl-C, then raises it again for us: a normal end.
                print("arc-atlas ui: stopped.", file=sys.stderr)
        finally:
            database.close()
    finally:
        sock.close()
    return 0


def register(
    commands: Any, add_connection_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add the ``ui`` command."""
    parser = commands.add_parser(
        "ui",
        help="browse, inspect and review sessions in a local web app",
        description="Serve a web app to browse sessions, review them and see insights, on "
        "the same database as every other command (the embedded one by default). It prints "
        "the URL to open; Ctrl-C stops it.",
    )
    add_connection_options(parser)
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        metavar="HOST",
        help=f"address to listen on (default {DEFAULT_HOST}; any other than a loopback "
        "address needs a token)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        metavar="PORT",
        help=f"port to listen on, 1 to 65535 (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--reviewer", metavar="NAME", help="who is reviewing (default: the OS user)"
    )
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help=f"require this token on every request (default: {TOKEN_VARIABLE}; prefer the "
        "variable, since other users can see command lines)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check the host, the port and the database, print the URL, and exit without serving",
    )
    parser.set_defaults(handler=_ui)
