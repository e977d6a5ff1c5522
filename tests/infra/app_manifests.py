"""The app's synthesized Kubernetes objects, read by the infra tests."""

from __future__ import annotations

from typing import Any

from oms.config import Settings
from tests.infra.synthesis import Synth

SETTING_NAMES = {f"OMS_{name.upper()}" for name in Settings.model_fields}


def config_map(env: Synth) -> dict[str, str]:
    """The app's ConfigMap data."""
    return dict(env.resource("app", "kubernetes_config_map_v1", "settings")["data"])


def scaled_object(env: Synth) -> dict[str, Any]:
    """The KEDA ScaledObject manifest."""
    return dict(env.resource("app", "kubernetes_manifest", "scaled-object")["manifest"])


def pod(env: Synth) -> dict[str, Any]:
    """The Deployment's pod spec."""
    deployment = env.resource("app", "kubernetes_deployment_v1", "deployment")
    return dict(deployment["spec"]["template"]["spec"])


def app_labels(env: Synth) -> dict[str, str]:
    """The labels the Deployment's pods carry (and its Service and policies select on)."""
    deployment = env.resource("app", "kubernetes_deployment_v1", "deployment")
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


def container(env: Synth) -> dict[str, Any]:
    """The app container of the pod."""
    (main,) = pod(env)["container"]
    return dict(main)
