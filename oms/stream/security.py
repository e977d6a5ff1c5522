"""How oms's Kafka clients connect: plaintext locally, TLS in AWS, from the settings alone."""

from __future__ import annotations

import ssl
from typing import Any

from oms.config import Settings, SettingsError

PROTOCOLS = frozenset({"PLAINTEXT", "SSL"})


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for Kafka, or None when the settings say plaintext."""
    protocol = settings.kafka_security_protocol.upper()
    if protocol not in PROTOCOLS:
        raise SettingsError(
            f"OMS_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol!r}: "
            f"expected one of {', '.join(sorted(PROTOCOLS))}"
        )
    if protocol == "PLAINTEXT":
        return None
    return ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)


def aiokafka_security(settings: Settings) -> dict[str, Any]:
    """Keyword arguments every aiokafka client (producer, consumer, admin) takes."""
    context = kafka_ssl_context(settings)
    if context is None:
        return {"security_protocol": "PLAINTEXT"}
    return {"security_protocol": "SSL", "ssl_context": context}
