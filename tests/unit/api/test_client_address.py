"""The client's address: X-Forwarded-For believed only from a trusted proxy, from the right."""

from __future__ import annotations

from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from oms.api.client_address import client_address
from oms.api.health import SETTINGS_KEY
from oms.config import Settings

ALB = "10.0.1.7"


def _request(peer: str, forwarded: str | None, proxies: str = "10.0.0.0/16") -> web.Request:
    app = web.Application()
    app[SETTINGS_KEY] = Settings.from_env({"OMS_TRUSTED_PROXIES": proxies})
    transport = mock.Mock()
    transport.get_extra_info.return_value = (peer, 40000)
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    return make_mocked_request("GET", "/api/instruments", headers=headers, app=app,
                               transport=transport)  # fmt: skip


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "expected"),
    [
        (ALB, "203.0.113.9", "10.0.0.0/16", "203.0.113.9"),  # behind the ALB: the client
        (ALB, "1.2.3.4, 203.0.113.9", "10.0.0.0/16", "203.0.113.9"),  # left part is a claim
        (ALB, "203.0.113.9, 10.0.2.2", "10.0.0.0/16", "203.0.113.9"),  # two proxies in a row
        ("198.51.100.3", "203.0.113.9", "10.0.0.0/16", "198.51.100.3"),  # not a proxy: ignored
        (ALB, "203.0.113.9", "", ALB),  # no proxies trusted: the peer
        (ALB, None, "10.0.0.0/16", ALB),  # a proxy that forwarded nothing
        (ALB, "not-an-address", "10.0.0.0/16", ALB),  # garbage: the proxy itself
    ],
)
def test_client_address_when_forwarded_then_believed_only_from_trusted_proxies(
    peer: str, forwarded: str | None, proxies: str, expected: str
) -> None:
    # Act
    address = client_address(_request(peer, forwarded, proxies))

    # Assert
    assert address == expected
