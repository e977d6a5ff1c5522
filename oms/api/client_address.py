"""The client's address: the peer's, or, behind a proxy the settings trust, the one it saw.

In AWS every request reaches a pod from the load balancer, so the peer address is the ALB's:
rate limits per address would put every client in one bucket, and the audit would say every
change came from the ALB. The ALB appends the address it saw to ``X-Forwarded-For``. That
header is anyone's to write, so it is believed only from a peer in ``OMS_TRUSTED_PROXIES``, and
only from the right: the client is the right-most hop that is not itself a trusted proxy (what
a client put further left is its own claim, and a client could forge it).
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from aiohttp import web

from oms.api.health import SETTINGS_KEY

Network = IPv4Network | IPv6Network


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in proxies)


def client_address(request: web.Request) -> str | None:
    """The address of the client behind ``request`` (see the module's docstring)."""
    peer = request.remote
    settings = request.app.get(SETTINGS_KEY)
    proxies = () if settings is None else settings.trusted_proxies
    if not proxies or peer is None or not _trusted(peer, proxies):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getall("X-Forwarded-For", ())
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ip_address(hop))
            except ValueError:  # not an address: the proxy's own report is all there is
                return peer
    return peer
