from __future__ import annotations

from consentmw.core.errors import ConfigError
from consentmw.core.store.base import (
    DEFAULT_TIMEOUT,
    ConsentLog,
    ConsentRecord,
    ConsentStore,
    LogStats,
    RefusedRecord,
    StoreError,
    truncate_ip,
)
from consentmw.core.store.memory import MemoryStore
from consentmw.core.store.sqlite import SQLiteStore

__all__ = [
    "DEFAULT_STORE",
    "ConsentLog",
    "ConsentRecord",
    "ConsentStore",
    "LogStats",
    "MemoryStore",
    "RefusedRecord",
    "SQLiteStore",
    "StoreError",
    "open_store",
    "truncate_ip",
]

# An embedded file next to the app: proof of consent works out of the box, with nothing to run.
DEFAULT_STORE = "sqlite:///consent.db"


def open_store(store: str | ConsentStore | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> ConsentStore:
    """A consent log from a URL or a store object.

    ``sqlite:///relative.db``, ``sqlite:////absolute/path.db``, ``postgresql://user:pw@host/db``
    or ``memory://`` (lost on restart: for tests). ``None`` means ``sqlite:///consent.db``.
    """
    if store is None:
        store = DEFAULT_STORE
    if not isinstance(store, str):
        if not callable(getattr(store, "record", None)):
            raise ConfigError(f"store={store!r} is neither a URL nor an object with an async record() method")
        return store
    scheme, sep, rest = store.partition("://")
    scheme = scheme.lower()
    if sep and scheme == "memory":
        return MemoryStore()
    if sep and scheme == "sqlite":
        path = rest[1:] if rest.startswith("/") else ""
        if not path or path.startswith(":memory:"):
            raise ConfigError(
                f"store={store!r}: give the file as 'sqlite:///relative.db' or 'sqlite:////absolute/path.db'"
                " ('memory://' keeps the log in memory)"
            )
        return SQLiteStore(path, timeout=timeout)
    if sep and (scheme in {"postgres", "postgresql"} or scheme.startswith("postgresql+")):
        from consentmw.core.store.postgres import PostgresStore

        return PostgresStore(store, timeout=timeout)
    raise ConfigError(
        f"unknown consent store {store!r}; use 'sqlite:///PATH', 'postgresql://USER@HOST/DB' or 'memory://'"
    )
