"""How oms's Kafka clients connect: plaintext locally, TLS in AWS, from the settings alone.

In AWS the brokers also want to know who the client is (SASL over TLS): SCRAM with a username
and password on the self-hosted cluster, AWS IAM on MSK, where the pod's own AWS identity signs
a short-lived token and IAM policies are the access control lists.
"""

from __future__ import annotations

import asyncio
import importlib
import ssl
import time
from collections.abc import Callable
from typing import Any

from aiokafka.abc import AbstractTokenProvider

from oms.config import Settings, SettingsError

PROTOCOLS = frozenset({"PLAINTEXT", "SSL", "SASL_SSL"})
SCRAM_MECHANISMS = frozenset({"SCRAM-SHA-256", "SCRAM-SHA-512"})
MSK_IAM = "AWS_MSK_IAM"
MECHANISMS = SCRAM_MECHANISMS | {MSK_IAM}
# MSK's token signer (PyPI: aws-msk-iam-sasl-signer-python), imported only when MSK IAM is
# used; the package's __init__ does not import this module, so it is named in full
MSK_SIGNER_MODULE = "aws_msk_iam_sasl_signer.MSKAuthTokenProvider"
# a token lives 15 minutes; take a new one this long before it expires
TOKEN_REFRESH_MARGIN_S = 60.0

Signer = Callable[[str], tuple[str, int]]  # region -> (token, expiry in ms since the epoch)


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for Kafka, or None when the settings say plaintext."""
    if _protocol(settings) == "PLAINTEXT":
        return None
    return ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)


def aiokafka_security(settings: Settings) -> dict[str, Any]:
    """Keyword arguments every aiokafka client (producer, consumer, admin) takes."""
    protocol = _protocol(settings)
    mechanism = settings.kafka_sasl_mechanism.upper()
    if mechanism and protocol != "SASL_SSL":
        # a mechanism the protocol ignores would connect without the identity it names
        raise SettingsError(
            f"OMS_KAFKA_SASL_MECHANISM={settings.kafka_sasl_mechanism!r} needs "
            f"OMS_KAFKA_SECURITY_PROTOCOL=SASL_SSL, not {settings.kafka_security_protocol!r}"
        )
    context = kafka_ssl_context(settings)
    if context is None:
        return {"security_protocol": "PLAINTEXT"}
    if protocol == "SSL":
        return {"security_protocol": "SSL", "ssl_context": context}
    return {"security_protocol": "SASL_SSL", "ssl_context": context, **_sasl(settings)}


def _protocol(settings: Settings) -> str:
    protocol = settings.kafka_security_protocol.upper()
    if protocol not in PROTOCOLS:
        raise SettingsError(
            f"OMS_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol!r}: "
            f"expected one of {', '.join(sorted(PROTOCOLS))}"
        )
    return protocol


def _sasl(settings: Settings) -> dict[str, Any]:
    """The SASL half of the options, for SASL_SSL."""
    mechanism = settings.kafka_sasl_mechanism.upper()
    if mechanism in SCRAM_MECHANISMS:
        if not (settings.kafka_sasl_username and settings.kafka_sasl_password):
            raise SettingsError(
                f"OMS_KAFKA_SASL_MECHANISM={mechanism} needs OMS_KAFKA_SASL_USERNAME and "
                "OMS_KAFKA_SASL_PASSWORD"
            )
        return {
            "sasl_mechanism": mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password,
        }
    if mechanism == MSK_IAM:
        if not settings.kafka_aws_region:
            raise SettingsError(f"OMS_KAFKA_SASL_MECHANISM={MSK_IAM} needs OMS_KAFKA_AWS_REGION")
        provider = MskIamTokenProvider(settings.kafka_aws_region, load_msk_signer())
        return {"sasl_mechanism": "OAUTHBEARER", "sasl_oauth_token_provider": provider}
    raise SettingsError(
        f"OMS_KAFKA_SASL_MECHANISM={settings.kafka_sasl_mechanism!r}: with SASL_SSL expected "
        f"one of {', '.join(sorted(MECHANISMS))}"
    )


def load_msk_signer() -> Signer:
    """MSK's token signer, or a SettingsError naming the package to install."""
    try:
        module = importlib.import_module(MSK_SIGNER_MODULE)
    except ImportError as exc:
        raise SettingsError(
            f"OMS_KAFKA_SASL_MECHANISM={MSK_IAM} needs the aws-msk-iam-sasl-signer-python "
            "package, which is not installed"
        ) from exc
    signer: Signer = module.generate_auth_token
    return signer


# aiokafka is untyped (mypy sees its base class as Any); it checks isinstance at connect time
class MskIamTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """OAUTHBEARER tokens for MSK IAM, signed with the process's AWS credentials.

    Signing resolves credentials (an HTTP call to the EKS Pod Identity agent when they are
    stale), so it runs off the event loop; one token serves every connection until a minute
    before it expires.
    """

    def __init__(
        self, region: str, signer: Signer, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._region = region
        self._signer = signer
        self._clock = clock
        self._token = ""
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """A token that is valid for at least another ``TOKEN_REFRESH_MARGIN_S``."""
        async with self._lock:
            if self._clock() + TOKEN_REFRESH_MARGIN_S >= self._expires_at:
                loop = asyncio.get_running_loop()
                token, expiry_ms = await loop.run_in_executor(None, self._signer, self._region)
                self._token, self._expires_at = token, expiry_ms / 1000
            return self._token
