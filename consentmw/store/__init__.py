from __future__ import annotations

from consentmw.errors import ConfigError
from consentmw.store.base import ConsentRecord, ConsentStore, StoreError, truncate_ip
from consentmw.store.memory import MemoryStore

__all__ = ["ConsentRecord", "ConsentStore", "MemoryStore", "StoreError", "open_store", "truncate_ip"]


def open_store(store: str | ConsentStore | None) -> ConsentStore:
    """A consent log from a URL ("sqlite:///path", "postgresql://...", "memory://") or a store object."""
    if store is None:
        store = "memory://"
    if not isinstance(store, str):
        return store
    if store == "memory://":
        return MemoryStore()
    raise ConfigError(f"unknown consent store {store!r}; use 'sqlite:///PATH', 'postgresql://...' or 'memory://'")
