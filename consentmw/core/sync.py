"""Sync callers (WSGI servers, Django's sync path) and the async consent log.

The stores are written once, for asyncio. A sync request hands the consent API's coroutine to one
event loop that the core owns, running in a daemon thread, and waits for its answer: the store keeps
one loop (its pool, its writer tasks), however many server threads post at once, and the API's own
deadline (store_timeout, then 503) holds as it does on the async path.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "consentmw") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """The coroutine's result, run on the loop thread; TimeoutError after `timeout` seconds."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop())
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"consentmw: no answer within {timeout} s") from None

    @property
    def started(self) -> bool:
        return self._loop is not None and self._pid == os.getpid()

    def loop(self) -> asyncio.AbstractEventLoop:
        # A server that forks after loading the app (gunicorn --preload) leaves the thread behind in
        # the parent: each process starts its own, on first use.
        loop = self._loop
        if loop is not None and self._pid == os.getpid():
            return loop
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                threading.Thread(target=run_until_stopped, args=(self._loop,), name=self.name, daemon=True).start()
            return self._loop

    def stop(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None and self._pid == os.getpid():
            loop.call_soon_threadsafe(loop.stop)


def run_until_stopped(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()
