"""Servers for the tests that talk HTTP: `python -m consentmw demo` the way the README runs it, an app
under gunicorn or uvicorn in a subprocess, and an ASGI app under uvicorn in a thread of the test."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

URL = re.compile(rb"open\s+(http://127\.0\.0\.1:\d+/)")


class DemoServer:
    def __init__(self, url: str, process: subprocess.Popen[bytes], printed: str) -> None:
        self.url = url
        self.process = process
        self.printed = printed  # what it printed up to its URL
    def stop(self) -> int:
        """Ctrl+C, as a person would; the exit status (uvicorn dies of the signal it caught)."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(15)


@contextmanager
def demo_server(cwd: Path, *args: str, startup: float = 30, sigint: object = signal.SIG_DFL) -> Iterator[DemoServer]:
    """``sigint``: how the demo process begins with Ctrl+C, SIG_IGN as a background job of a
    shell without job control (a CI script's ``cmd &``) begins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONSENTMW_", "DJANGO_"))}
    command = [sys.executable, "-m", "consentmw", "demo", "--port", "0", "--log-level", "warning", *args]
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, sigint)
    )
    try:
        deadline = time.monotonic() + startup
        output, url = b"", None
        while (url is None or b"Ctrl+C" not in output) and (left := deadline - time.monotonic()) > 0 and select.select([process.stdout], [], [], left)[0]:
            chunk = os.read(process.stdout.fileno(), 4096)  # unbuffered: select sees the pipe, not Python's buffer
            if not chunk:
                break
            output += chunk
            if m := URL.search(output):
                url = m.group(1).decode()
        if url is None:
            process.kill()
            raise AssertionError(f"the demo printed no URL: {output.decode()} {process.stderr.read().decode()}")
        yield DemoServer(url, process, output.decode())
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        process.stdout.close()
        process.stderr.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def app_server(server: str, app: str, port: int, log: Path, env: dict[str, str], *, threads: int = 8) -> Iterator[str]:
    """Serves `app` ("module:attribute", from the repository root) with gunicorn (WSGI, threads) or
    uvicorn (ASGI) on 127.0.0.1:port until the block ends; its output goes to `log`."""
    root = Path(__file__).resolve().parents[1]
    if server == "gunicorn":
        args = ["gunicorn", "--worker-class", "gthread", "--threads", str(threads), "--workers", "1", "--bind", f"127.0.0.1:{port}", "--chdir", str(root)]
    else:
        args = ["uvicorn", "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off", "--app-dir", str(root)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("CONSENTMW_", "DJANGO_"))}
    environment.update(env)
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", *args, "--log-level", "warning", app], cwd=root, env=environment, stdout=output, stderr=output)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(url + "/_consent/policy", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise AssertionError(f"{server} did not serve {app}: {log.read_text()}") from None
                    time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(10)


@contextmanager
def serve(app: object) -> Iterator[int]:
    """An ASGI app under uvicorn on 127.0.0.1, in a thread of the test; yields its port."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test site did not start")
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
