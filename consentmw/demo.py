"""``consentmw demo``: serves one of the example sites with an embedded SQLite log: the ASGI ones
(Starlette, FastAPI) with uvicorn, the WSGI ones (Django with its native middleware, Flask) with a
threaded WSGI server from the standard library.

The examples ship inside the wheel as ``consentmw.examples``; in a source checkout they are the
top-level ``examples/`` package beside ``consentmw/``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import secrets
import shlex
import signal
import socket
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from consentmw.core.errors import ConfigError, install_command
from consentmw.core.store import DEFAULT_STORE

# site -> (module below the examples package, app attribute, what it needs besides consentmw, interface)
SITES = {
    "fastapi": ("fastapi_site.app", "app", "fastapi", "asgi"),
    "starlette": ("starlette_site.app", "app", "starlette", "asgi"),
    "django": ("django_site.wsgi", "application", "django", "wsgi"),
    "flask": ("flask_site.app", "app", "flask", "wsgi"),
}
SOURCE_CHECKOUT = Path(__file__).resolve().parent.parent


def examples_package() -> str:
    """The importable name of the examples: packaged in the wheel, or the checkout's examples/."""
    try:
        importlib.import_module("consentmw.examples")
        return "consentmw.examples"
    except ModuleNotFoundError:
        pass
    if (SOURCE_CHECKOUT / "examples" / "__init__.py").is_file():
        if str(SOURCE_CHECKOUT) not in sys.path:
            sys.path.insert(0, str(SOURCE_CHECKOUT))
        return "examples"
    raise ConfigError(
        "the example sites are not installed: this consentmw was installed without them. Install consentmw"
        " from its source checkout (pip install PATH/TO/CHECKOUT) or from a wheel built there (pip wheel"
        " --no-deps -w dist PATH/TO/CHECKOUT), or run the demo in the checkout: bash scripts/demo.sh"
    )


def load_site(site: str) -> ModuleType:
    module, _, requirement, _ = SITES[site]
    package = examples_package()
    try:
        return importlib.import_module(f"{package}.{module}")
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != requirement:
            raise
        raise ConfigError(
            f"the {site} example needs {requirement}, which is not installed: pip install {requirement}"
            f" (every example's packages: {install_command('demo')})"
        ) from None


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY on accepted sockets only when the listening
    # socket says it is TCP; without it a response sent in two writes waits 40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another with --port") from None
    # Listening now, so the URL printed next accepts connections while uvicorn is still starting.
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def demo(args: argparse.Namespace) -> int:
    interface = SITES[args.site][3]
    try:
        import uvicorn
    except ModuleNotFoundError:
        uvicorn = None
        if interface == "asgi":
            print(f"consentmw demo needs uvicorn: {install_command('demo')}", file=sys.stderr)
            return 1
    # The example modules read these when they build their app. A fresh key per run is enough for a
    # demo (choices are forgotten when it stops); a real site sets a fixed CONSENTMW_SECRET_KEY.
    os.environ.setdefault("CONSENTMW_SECRET_KEY", secrets.token_urlsafe(32))
    os.environ["CONSENTMW_STORE"] = args.store
    try:
        module = load_site(args.site)
        sock = listening_socket(args.host, args.port)
    except ConfigError as exc:
        print(f"consentmw demo: {exc}", file=sys.stderr)
        return 1
    app: Any = getattr(module, SITES[args.site][1])
    url = url_of(sock)
    print(f"consentmw demo: the {args.site} example site ({module.__name__}), policy {module.POLICY.id!r}")
    print(f"  open          {url}")
    print(f"  consent log   {args.store}")
    # The interpreter this demo runs in: after scripts/demo.sh that is .venv's, not the system's.
    print(f"  read the log  {shlex.quote(sys.executable)} -m consentmw log stats --store {shlex.quote(args.store)}")
    print("  stop          Ctrl+C", flush=True)
    if interface == "wsgi":
        serve_wsgi(app, sock, quiet=args.log_level not in ("info", "debug"))
        return 0
    config = uvicorn.Config(app, log_level=args.log_level)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def serve_wsgi(app: Any, sock: socket.socket, *, quiet: bool) -> None:
    """The standard library's WSGI server, one thread per connection: enough for a demo (a site
    runs gunicorn, uWSGI or mod_wsgi)."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Handler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            if not quiet:
                super().log_message(format, *args)

    server = Server(sock.getsockname()[:2], Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.server_bind = lambda: None  # type: ignore[method-assign]
    host, port = sock.getsockname()[:2]
    server.server_name, server.server_port = host, port
    server.setup_environ()
    server.set_app(app)
    # Started in the background by a shell without job control, a process begins with Ctrl+C
    # (SIGINT) ignored, and Python keeps it so: the demo says Ctrl+C stops it, as uvicorn's does.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def register(subparsers: Any) -> None:
    """Add `consentmw demo` to the main parser's subcommands."""
    p = subparsers.add_parser("demo", help="serve an example site (Starlette, FastAPI, Django or Flask) with consentmw")
    p.add_argument("--site", choices=sorted(SITES), default="fastapi", help="which example (default: fastapi)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on; 0 picks a free one (default: 8000)")
    p.add_argument(
        "--store",
        default=os.environ.get("CONSENTMW_STORE", DEFAULT_STORE),
        help=f"the consent log (default: $CONSENTMW_STORE, else {DEFAULT_STORE}, a SQLite file here)",
    )
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.set_defaults(func=demo)
