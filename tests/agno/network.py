"""Loopback only: the agno tests must reach nothing but this machine's test servers.

agno sends telemetry to its API unless told not to, and a model class could call a provider. The
tests turn telemetry off (`telemetry=False`, AGNO_TELEMETRY=false) and, to prove nothing else
leaves the machine, refuse every connection to an address that is not loopback (or a Unix socket).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

TELEMETRY_OFF = {"AGNO_TELEMETRY": "false", "AGNO_MONITOR": "false"}


class NetworkRefused(ConnectionRefusedError):
    """A test tried to connect to an address off this machine."""


def check_address(address: Any) -> None:
    if isinstance(address, (str, bytes)):  # a Unix socket path
        return
    host = address[0]
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise NetworkRefused(f"the agno tests may only connect to loopback; refused {address!r}")


def guarded(connect: Callable[..., Any]) -> Callable[..., Any]:
    def connect_to_loopback(self: socket.socket, address: Any) -> Any:
        check_address(address)
        return connect(self, address)

    return connect_to_loopback


def loopback_only() -> list[tuple[Any, str, Any]]:
    """The (object, attribute, guarded replacement) triples that refuse non-loopback connections."""
    return [
        (socket.socket, name, guarded(getattr(socket.socket, name))) for name in ("connect", "connect_ex")
    ]


def refuse_network_for_this_process() -> None:
    """For a test's child process: telemetry off and loopback only, for its whole life."""
    import os

    os.environ.update(TELEMETRY_OFF)
    for target, name, replacement in loopback_only():
        setattr(target, name, replacement)
