"""Runs `python -m consentmw demo` the way the README does, for the tests that talk to it over HTTP."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

URL = re.compile(rb"open\s+(http://127\.0\.0\.1:\d+/)")


class DemoServer:
    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.process = process

    def stop(self) -> int:
        """Ctrl+C, as a person would; the exit status (uvicorn dies of the signal it caught)."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(15)


@contextmanager
def demo_server(cwd: Path, *args: str, startup: float = 30) -> Iterator[DemoServer]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONSENTMW_", "DJANGO_"))}
    command = [sys.executable, "-m", "consentmw", "demo", "--port", "0", "--log-level", "warning", *args]
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + startup
        output, url = b"", None
        while url is None and (left := deadline - time.monotonic()) > 0 and select.select([process.stdout], [], [], left)[0]:
            chunk = os.read(process.stdout.fileno(), 4096)  # unbuffered: select sees the pipe, not Python's buffer
            if not chunk:
                break
            output += chunk
            if m := URL.search(output):
                url = m.group(1).decode()
        if url is None:
            process.kill()
            raise AssertionError(f"the demo printed no URL: {output.decode()} {process.stderr.read().decode()}")
        yield DemoServer(url, process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        process.stdout.close()
        process.stderr.close()
