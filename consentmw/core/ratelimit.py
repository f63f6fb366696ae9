"""A token bucket per client for consent posts: each post writes a record to the consent log, so a
client that posts in a loop would fill it. Memory is bounded: the buckets of the clients heard from
least recently are dropped first (a dropped client starts again with a full bucket)."""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


def client_key(address: str) -> str:
    """The bucket of a client address: an IPv6 client holds its whole /64 (one host is given one),
    so it is counted by that prefix, not by each of its addresses."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return address[:100]  # a Unix socket's path, a name a test client gives
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class RateLimit:
    """At most `per_minute` posts a minute per client, up to `per_minute` of them at once."""

    def __init__(self, per_minute: int, *, max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self.max_clients = max_clients
        self.clock = clock
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)
        self.lock = threading.Lock()  # Django may answer posts on several threads

    def take(self, address: str) -> float:
        """0 when the client may post now (a token is spent), else the seconds until it may."""
        key = client_key(address)
        now = self.clock()
        with self.lock:
            tokens, then = self.buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self.buckets[key] = (tokens, now)
            while len(self.buckets) > self.max_clients:
                self.buckets.popitem(last=False)
        return wait


def retry_after(wait: float) -> int:
    """Whole seconds for a Retry-After header, never 0 while the client must wait."""
    return max(1, math.ceil(wait))
