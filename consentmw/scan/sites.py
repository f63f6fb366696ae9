"""First or third party: two hosts are of the same site when they share a registrable domain
(the Public Suffix List's "eTLD+1"), as browsers decide for SameSite cookies."""

from __future__ import annotations

import ipaddress
from functools import cache
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList


@cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the copy shipped in the package: no download at run time


def site_of(host: str) -> str:
    """The registrable domain of ``host`` (lowercase, ASCII as browsers send it); an IP address,
    a single label such as ``localhost`` or a bare public suffix is its own site."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _suffixes().privatesuffix(host) or host
    return host


def host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def is_web_url(url: str) -> bool:
    return url.startswith(("http://", "https://", "ws://", "wss://"))
