"""Facts about URLs that both sides need, without importing the HTTP stack."""

from __future__ import annotations

import ipaddress
import urllib.parse


def is_loopback(url: str) -> bool:
    """The URL's host is this machine: ``localhost``, a ``*.localhost`` name (RFC 6761) or a
    loopback address. Compression saves nothing there and costs CPU."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
