"""Settings come from OMS_* variables, with defaults that point at the local servers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.config import Settings, SettingsError


def test_from_env_without_variables_then_points_at_the_local_servers() -> None:
    settings = Settings.from_env({})

    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.redis_url.startswith("redis://127.0.0.1:")
    assert settings.mongo_url.startswith("mongodb://127.0.0.1:")
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert settings.symbols == ("BTC-USD", "ETH-USD", "SOL-USD")


def test_from_env_with_variables_then_parses_each_type() -> None:
    settings = Settings.from_env(
        {
            "OMS_HTTP_PORT": "9000",
            "OMS_ORDERS_PARTITIONS": "12",
            "OMS_SYMBOLS": "BTC-USD, ETH-USD",
            "OMS_SIMULATED_FEED": "false",
            "OMS_FEE_RATE": "0.0025",
            "OMS_KAFKA_SESSION_TIMEOUT_S": "6.5",
        }
    )

    assert settings.http_port == 9000
    assert settings.orders_partitions == 12
    assert settings.symbols == ("BTC-USD", "ETH-USD")
    assert settings.simulated_feed is False
    assert settings.fee_rate == Decimal("0.0025")
    assert settings.kafka_session_timeout_s == 6.5


@pytest.mark.parametrize(
    ("name", "value"),
    [("OMS_HTTP_PORT", "eighty"), ("OMS_SIMULATED_FEED", "maybe"), ("OMS_FEE_RATE", "lots")],
)
def test_from_env_with_a_bad_value_then_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})
