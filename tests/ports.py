"""Free TCP ports for the servers the tests start, chosen below the kernel's ephemeral range.

A port the kernel picks (``bind(0)``) comes from the ephemeral range (32768-60999 on Linux), the
same range every outgoing connection takes its local port from: between the probe and the
server's own bind, a client's connection could take it ("address already in use": the fault
suite's private FerretDB once failed to start so in CI). Below that range only listeners bind.
"""

from __future__ import annotations

import random
import socket

HOST = "127.0.0.1"
LOWEST, HIGHEST = 20_000, 32_000  # below Linux's ephemeral range, above the well-known ports


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(pair: bool = False) -> int:
    """A TCP port nothing is bound to on 127.0.0.1 now (with ``pair``, the next one too)."""
    for _ in range(200):
        port = random.randint(LOWEST, HIGHEST - 1)
        if _bindable(port) and (not pair or _bindable(port + 1)):
            return port
    raise RuntimeError("no free port below the ephemeral range")
