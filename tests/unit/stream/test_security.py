"""Kafka clients connect in plaintext locally, over TLS when the settings say SSL, and prove who
they are (SCRAM or MSK IAM) when they say SASL_SSL."""

from __future__ import annotations

import ssl
import sys
import types
from dataclasses import replace

import pytest

from oms.config import Settings, SettingsError
from oms.stream.security import MskIamTokenProvider, aiokafka_security

SCRAM = replace(
    Settings(),
    kafka_security_protocol="SASL_SSL",
    kafka_sasl_mechanism="SCRAM-SHA-512",
    kafka_sasl_username="oms",
    kafka_sasl_password="s3cret",
)
MSK_IAM = replace(
    Settings(),
    kafka_security_protocol="SASL_SSL",
    kafka_sasl_mechanism="AWS_MSK_IAM",
    kafka_aws_region="us-east-1",
)


SIGNER_MODULE = "aws_msk_iam_sasl_signer.MSKAuthTokenProvider"


class FakeSigner:
    """Stands in for the signer module's generate_auth_token: counts its tokens."""

    calls: list[str] = []

    @classmethod
    def generate_auth_token(cls, region: str) -> tuple[str, int]:
        cls.calls.append(region)
        return f"token-{len(cls.calls)}", 1_000_000 * 1000  # expires at t = 1,000,000 s


def test_default_settings_then_plaintext() -> None:
    assert aiokafka_security(Settings()) == {"security_protocol": "PLAINTEXT"}


def test_ssl_without_a_ca_file_then_tls_with_the_system_cas() -> None:
    options = aiokafka_security(replace(Settings(), kafka_security_protocol="SSL"))

    assert options["security_protocol"] == "SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].verify_mode is ssl.CERT_REQUIRED


def test_an_unknown_protocol_is_refused_with_the_variable_named() -> None:
    with pytest.raises(SettingsError, match="OMS_KAFKA_SECURITY_PROTOCOL") as raised:
        aiokafka_security(replace(Settings(), kafka_security_protocol="SASL_PLAINTEXT"))
    assert raised.value.code == "INVALID_SETTING"


def test_connect_when_scram_then_sasl_over_verified_tls_with_the_credentials() -> None:
    options = aiokafka_security(SCRAM)

    assert options["security_protocol"] == "SASL_SSL"
    assert options["ssl_context"].verify_mode is ssl.CERT_REQUIRED
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "oms"
    assert options["sasl_plain_password"] == "s3cret"


def test_connect_when_scram_without_a_password_then_refused_naming_it() -> None:
    with pytest.raises(SettingsError, match="OMS_KAFKA_SASL_PASSWORD") as raised:
        aiokafka_security(replace(SCRAM, kafka_sasl_password=""))
    assert raised.value.code == "INVALID_SETTING"


def test_connect_when_a_mechanism_without_sasl_ssl_then_refused() -> None:
    with pytest.raises(SettingsError, match="needs OMS_KAFKA_SECURITY_PROTOCOL=SASL_SSL"):
        aiokafka_security(replace(SCRAM, kafka_security_protocol="SSL"))


def test_connect_when_sasl_ssl_without_a_mechanism_then_refused_naming_the_choices() -> None:
    with pytest.raises(SettingsError, match="AWS_MSK_IAM, SCRAM-SHA-256, SCRAM-SHA-512"):
        aiokafka_security(replace(SCRAM, kafka_sasl_mechanism=""))


def test_connect_when_msk_iam_without_a_region_then_refused_naming_it() -> None:
    with pytest.raises(SettingsError, match="OMS_KAFKA_AWS_REGION"):
        aiokafka_security(replace(MSK_IAM, kafka_aws_region=""))


def test_connect_when_msk_iam_without_the_signer_package_then_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, SIGNER_MODULE, None)  # import fails

    with pytest.raises(SettingsError, match="aws-msk-iam-sasl-signer-python") as raised:
        aiokafka_security(MSK_IAM)
    assert raised.value.code == "INVALID_SETTING"


async def test_connect_when_msk_iam_then_oauthbearer_with_tokens_signed_for_the_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = types.ModuleType(SIGNER_MODULE)
    signer.generate_auth_token = FakeSigner.generate_auth_token  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, SIGNER_MODULE, signer)
    FakeSigner.calls = []

    options = aiokafka_security(MSK_IAM)
    token = await options["sasl_oauth_token_provider"].token()

    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "OAUTHBEARER"
    assert token == "token-1"
    assert FakeSigner.calls == ["us-east-1"]


async def test_token_when_the_last_one_is_fresh_then_reused_and_renewed_near_expiry() -> None:
    FakeSigner.calls = []
    now = [999_000.0]
    provider = MskIamTokenProvider(
        "eu-west-1", FakeSigner.generate_auth_token, clock=lambda: now[0]
    )

    first = await provider.token()
    again = await provider.token()
    now[0] = 1_000_000.0 - 30  # inside the last minute of the token's life
    renewed = await provider.token()

    assert (first, again, renewed) == ("token-1", "token-1", "token-2")
    assert FakeSigner.calls == ["eu-west-1", "eu-west-1"]
