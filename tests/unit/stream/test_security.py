"""Kafka clients connect in plaintext locally and over TLS when the settings say SSL."""

from __future__ import annotations

import ssl

import pytest

from oms.config import Settings, SettingsError
from oms.stream.security import aiokafka_security


def test_security_when_settings_are_default_then_plaintext() -> None:
    assert aiokafka_security(Settings()) == {"security_protocol": "PLAINTEXT"}


def test_security_when_ssl_has_no_ca_file_then_tls_with_the_system_cas() -> None:
    options = aiokafka_security(Settings(kafka_security_protocol="SSL"))

    assert options["security_protocol"] == "SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].verify_mode is ssl.CERT_REQUIRED


def test_security_when_the_protocol_is_unknown_then_refused_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="OMS_KAFKA_SECURITY_PROTOCOL") as refused:
        aiokafka_security(Settings(kafka_security_protocol="SASL_SSL"))

    assert refused.value.code == "INVALID_SETTING"
