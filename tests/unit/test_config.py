"""Settings come from OMS_* variables, with defaults that point at the local servers."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

import pytest
from pydantic import ValidationError

from oms.config import Settings, SettingsError


def test_from_env_when_no_variable_is_set_then_points_at_the_local_servers() -> None:
    settings = Settings.from_env({})

    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.redis_url.startswith("redis://127.0.0.1:")
    assert settings.mongo_url.startswith("mongodb://127.0.0.1:")
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert settings.symbols == ("BTC-USD", "ETH-USD", "SOL-USD")
    assert settings == Settings()


def test_from_env_when_variables_are_set_then_parses_each_type() -> None:
    settings = Settings.from_env(
        {
            "OMS_HTTP_PORT": "9000",
            "OMS_ORDERS_PARTITIONS": "12",
            "OMS_SYMBOLS": "BTC-USD, ETH-USD",
            "OMS_SIMULATED_FEED": "false",
            "OMS_FEE_RATE": "0.0025",
            "OMS_KAFKA_SESSION_TIMEOUT_S": "6.5",
            "OMS_MONGO_DATABASE": "oms_test",
        }
    )

    assert settings.http_port == 9000
    assert settings.orders_partitions == 12
    assert settings.symbols == ("BTC-USD", "ETH-USD")
    assert settings.simulated_feed is False
    assert settings.fee_rate == Decimal("0.0025")
    assert isinstance(settings.fee_rate, Decimal)
    assert settings.kafka_session_timeout_s == 6.5
    assert settings.mongo_database == "oms_test"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("true", True),
        ("yes", True),
        ("on", True),
        ("TRUE", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("off", False),
        ("Off", False),
    ],
)
def test_from_env_when_a_bool_is_spelt_any_accepted_way_then_reads_it(
    text: str, expected: bool
) -> None:
    settings = Settings.from_env({"OMS_SIMULATED_FEED": text})

    assert settings.simulated_feed is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BTC-USD,ETH-USD", ("BTC-USD", "ETH-USD")),
        (" BTC-USD , ETH-USD ,", ("BTC-USD", "ETH-USD")),
        ("SOL-USD", ("SOL-USD",)),
        ("", ()),
    ],
)
def test_from_env_when_a_tuple_is_comma_separated_then_splits_and_trims_it(
    text: str, expected: tuple[str, ...]
) -> None:
    settings = Settings.from_env({"OMS_SYMBOLS": text})

    assert settings.symbols == expected


def test_from_env_when_a_decimal_is_given_then_keeps_its_exact_digits() -> None:
    settings = Settings.from_env({"OMS_FEE_RATE": "0.00015"})

    assert settings.fee_rate == Decimal("0.00015")
    assert str(settings.fee_rate) == "0.00015"


def test_from_env_when_an_unknown_oms_variable_is_set_then_ignores_it() -> None:
    settings = Settings.from_env({"OMS_NO_SUCH_SETTING": "x", "OMS_HTTP_PORT": "9001"})

    assert settings.http_port == 9001
    assert not hasattr(settings, "no_such_setting")


def test_from_env_when_a_variable_is_in_lower_case_then_ignores_it() -> None:
    settings = Settings.from_env({"oms_http_port": "9001"})

    assert settings.http_port == 8080


@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [
        ("OMS_HTTP_PORT", "eighty", "int"),
        ("OMS_HTTP_PORT", "1e3", "int"),
        ("OMS_KAFKA_SESSION_TIMEOUT_S", "soon", "float"),
        ("OMS_SIMULATED_FEED", "maybe", "bool"),
        ("OMS_FEE_RATE", "lots", "Decimal"),
        ("OMS_FEE_RATE", "NaN", "Decimal"),
    ],
)
def test_from_env_when_a_value_is_bad_then_names_the_variable_its_text_and_type(
    name: str, value: str, kind: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({name: value})

    assert raised.value.code == "INVALID_SETTING"
    assert str(raised.value).startswith(f"{name}={value!r} is not a valid {kind} (")


def test_from_env_when_several_values_are_bad_then_names_each_variable() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"OMS_HTTP_PORT": "x", "OMS_FEE_RATE": "y", "OMS_LOG_LEVEL": "DEBUG"})

    assert raised.value.code == "INVALID_SETTING"
    assert "OMS_HTTP_PORT='x'" in str(raised.value)
    assert "OMS_FEE_RATE='y'" in str(raised.value)
    assert "OMS_LOG_LEVEL" not in str(raised.value)


class ChoiceSettings(Settings):
    """Settings with a field of fixed choices (a log format, say): a ``Literal``."""

    mode: Literal["json", "text"] = "text"


def test_from_env_when_a_choice_is_not_listed_then_names_the_variable_and_the_choices() -> None:
    chosen = ChoiceSettings.from_env({"OMS_MODE": "json"})

    with pytest.raises(SettingsError) as raised:
        ChoiceSettings.from_env({"OMS_MODE": "xml"})

    assert chosen.mode == "json"
    assert raised.value.code == "INVALID_SETTING"
    assert str(raised.value).startswith("OMS_MODE='xml' is not one of json, text (")


def test_from_env_when_given_no_mapping_then_reads_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMS_HTTP_PORT", "9002")

    settings = Settings.from_env()

    assert settings.http_port == 9002


def test_construct_when_the_environment_has_variables_then_uses_only_keywords_and_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMS_HTTP_PORT", "9003")

    settings = Settings(simulated_feed=False)

    assert settings.http_port == 8080
    assert settings.simulated_feed is False


def test_construct_when_a_keyword_is_misspelt_then_refuses_it() -> None:
    with pytest.raises(ValidationError, match="extra_forbidden"):
        Settings(http_prot=9000)  # type: ignore[call-arg]


def test_assign_when_settings_exist_then_refuses_the_change() -> None:
    settings = Settings()

    with pytest.raises(ValidationError, match="frozen_instance"):
        settings.http_port = 9000  # type: ignore[misc]

    assert settings.http_port == 8080


def test_replace_when_fields_change_then_returns_a_checked_copy() -> None:
    settings = Settings(http_port=9000)

    changed = settings.replace(http_port=9004, symbols=("ETH-USD",), fee_rate=Decimal("0.002"))

    assert (changed.http_port, changed.symbols, changed.fee_rate) == (
        9004,
        ("ETH-USD",),
        Decimal("0.002"),
    )
    assert changed.kafka_bootstrap == settings.kafka_bootstrap
    assert settings.http_port == 9000


@pytest.mark.parametrize(
    ("changes", "error"), [({"http_prot": 1}, "extra_forbidden"), ({"http_port": "x"}, "int")]
)
def test_replace_when_a_name_or_value_is_wrong_then_refuses_it(
    changes: dict[str, object], error: str
) -> None:
    with pytest.raises(ValidationError, match=error):
        Settings().replace(**changes)


def test_from_env_when_market_data_symbols_are_pairs_then_maps_ours_to_the_exchanges() -> None:
    settings = Settings.from_env(
        {
            "OMS_MARKET_DATA": "exchange",
            "OMS_MARKET_DATA_SYMBOLS": " BTC-USD=btcusdt , ETH-USD=ETHUSDT,",
            "OMS_MARKET_DATA_STALE_S": "2.5",
        }
    )

    assert settings.market_data == "exchange"
    assert dict(settings.market_data_symbols) == {"BTC-USD": "BTCUSDT", "ETH-USD": "ETHUSDT"}
    assert settings.market_data_stale_s == 2.5
    assert hash(settings)  # every setting stays hashable


@pytest.mark.parametrize("text", ["BTC-USD", "BTC-USD=", "=BTCUSDT"])
def test_from_env_when_a_market_data_symbol_is_not_a_pair_then_names_the_variable(
    text: str,
) -> None:
    with pytest.raises(SettingsError, match="OMS_MARKET_DATA_SYMBOLS") as raised:
        Settings.from_env({"OMS_MARKET_DATA_SYMBOLS": text})

    assert raised.value.code == "INVALID_SETTING"
    assert "OUR-SYMBOL=EXCHANGESYMBOL" in str(raised.value)


def test_from_env_when_market_data_source_unknown_then_names_the_choices() -> None:
    with pytest.raises(SettingsError, match="one of simulated, exchange"):
        Settings.from_env({"OMS_MARKET_DATA": "live"})


def test_from_env_when_speed_levers_are_set_then_reads_each_and_refuses_a_bad_one() -> None:
    settings = Settings.from_env({
        "OMS_EVENT_LOOP": "asyncio",
        "OMS_ORDERS_LINGER_MS": "2",
        "OMS_STORE_LINGER_S": "0",
        "OMS_STORE_PROJECT_LINGER_S": "0.2",
    })  # fmt: skip

    assert (
        settings.event_loop,
        settings.orders_linger_ms,
        settings.store_linger_s,
        settings.store_project_linger_s,
    ) == ("asyncio", 2, 0.0, 0.2)
    assert Settings.from_env({}).store_project_linger_s == 0.05
    with pytest.raises(SettingsError, match="OMS_STORE_PROJECT_LINGER_S"):
        Settings.from_env({"OMS_STORE_PROJECT_LINGER_S": "-1"})
    with pytest.raises(SettingsError, match="OMS_ENGINE_DRAIN_EVERY"):
        Settings.from_env({"OMS_ENGINE_DRAIN_EVERY": "0"})


def test_from_env_when_no_venue_is_set_then_simulated() -> None:
    settings = Settings.from_env({})

    assert settings.venue == "simulated"


def test_venue_credentials_when_set_in_env_then_read_and_never_in_repr() -> None:
    settings = Settings.from_env(
        {
            "OMS_VENUE": "ccxt",
            "OMS_VENUE_EXCHANGE": "binance",
            "OMS_VENUE_API_KEY": "the-key",
            "OMS_VENUE_API_SECRET": "the-secret",
            "OMS_VENUE_SANDBOX": "1",
            "OMS_VENUE_URL": "http://127.0.0.1:9000",
        }
    )

    assert settings.venue_credentials() == ("the-key", "the-secret")
    assert settings.venue_sandbox
    assert "the-secret" not in repr(settings)
    assert "the-key" not in repr(settings)


def test_venue_credentials_when_a_secrets_file_is_set_then_it_wins(tmp_path: Path) -> None:
    secrets = tmp_path / "venue.json"
    secrets.write_text('{"api_key": "file-key", "api_secret": "file-secret"}')
    settings = Settings.from_env(
        {
            "OMS_VENUE": "ccxt",
            "OMS_VENUE_API_KEY": "env-key",
            "OMS_VENUE_SECRETS_FILE": str(secrets),
        }
    )

    assert settings.venue_credentials() == ("file-key", "file-secret")


def test_venue_credentials_when_missing_then_settings_error() -> None:
    settings = Settings.from_env({"OMS_VENUE": "ccxt"})

    with pytest.raises(SettingsError) as error:
        settings.venue_credentials()

    assert error.value.code == "INVALID_SETTING"
    assert "OMS_VENUE_API_KEY" in str(error.value)


def test_from_env_when_venue_is_unknown_then_settings_error() -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"OMS_VENUE": "nyse"})

    assert "OMS_VENUE=" in str(error.value)


def test_advertised_url_when_set_or_not_then_names_where_the_other_replicas_reach_this_one() -> (
    None
):
    # Arrange
    explicit = Settings(advertise_url="http://10.0.3.7:8080/")
    listener = Settings(http_host="127.0.0.1", http_port=9100)
    everywhere = Settings(http_host="0.0.0.0", http_port=9100)

    # Act
    urls = [s.advertised_url() for s in (explicit, listener, everywhere)]

    # Assert
    assert urls[:2] == ["http://10.0.3.7:8080", "http://127.0.0.1:9100"]
    assert urls[2].startswith("http://")
    assert urls[2].endswith(":9100")
    assert "0.0.0.0" not in urls[2]
