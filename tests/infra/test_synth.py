"""Every environment synthesizes every stack, and the Terraform JSON is well formed."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.synthesis import ENVIRONMENTS, Synth, profile_of

pytestmark = pytest.mark.infra

PARTS = (
    "kms",
    "network",
    "logs",
    "eks",
    "autoscaler",
    "redis",
    "documentdb",
    "edge",
    "app",
    "alarms",
)
INTERPOLATION = re.compile(r"\$\{(.*?)\}")
REFERENCE = re.compile(r"(?<![\w.-])(data\.)?((?:aws|kubernetes)_[a-z0-9_]+)\.([A-Za-z0-9_-]+)")


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []


def test_every_stack_of_the_environment_is_synthesized(env: Synth) -> None:
    kafka = "msk" if env.profile.kafka.mode == "msk" else "kafka"
    expected = {f"{env.profile.prefix}-{part}" for part in (*PARTS, kafka)}
    assert set(env.manifest["stacks"]) == expected
    assert set(env.stacks) == expected


def test_each_file_is_json_terraform_reads(env: Synth) -> None:
    for name, entry in env.manifest["stacks"].items():
        text = (env.outdir / entry["synthesizedStackPath"]).read_text()
        document = json.loads(text)
        assert set(document) <= {"//", "data", "output", "provider", "resource", "terraform"}
        assert document["terraform"]["required_providers"]["aws"]["version"], name
        assert document["provider"]["aws"][0]["region"] == env.profile.region
        assert document["resource"], f"{name} creates nothing"


def test_every_reference_names_something_the_stack_declares(env: Synth) -> None:
    for name, document in env.stacks.items():
        declared = {
            (False, kind, ident)
            for kind, items in document.get("resource", {}).items()
            for ident in items
        } | {
            (True, kind, ident)
            for kind, items in document.get("data", {}).items()
            for ident in items
        }
        for text in _strings(document):
            for expression in INTERPOLATION.findall(text):
                for data, kind, ident in REFERENCE.findall(expression):
                    assert (bool(data), kind, ident) in declared, f"{name}: {expression}"


def test_every_cross_stack_reference_is_an_output_of_the_other_stack(env: Synth) -> None:
    for name, document in env.stacks.items():
        for text in _strings(document.get("resource", {})) + _strings(document.get("data", {})):
            if "terraform_remote_state" not in text:
                continue
            resolved = env.resolve(name.removeprefix(f"{env.profile.prefix}-"), text)
            assert "terraform_remote_state" not in resolved, f"{name}: {text}"


def test_dependencies_in_the_manifest_are_stacks_of_the_same_environment(env: Synth) -> None:
    for name, entry in env.manifest["stacks"].items():
        for dependency in entry["dependencies"]:
            assert dependency in env.stacks, f"{name} depends on unknown {dependency}"
        assert name not in entry["dependencies"]


LOCAL_STATE_ENVIRONMENTS = [e for e in ENVIRONMENTS if profile_of(e).backend.kind == "local"]


@pytest.mark.parametrize("environment", LOCAL_STATE_ENVIRONMENTS)
def test_local_state_stays_outside_cdktf_out_and_git(
    environment: str, synthesized: dict[str, Synth]
) -> None:
    env = synthesized[environment]
    for name, document in env.stacks.items():
        path = document["terraform"]["backend"]["local"]["path"]
        assert path == f"../../../terraform-state/{name}.tfstate"


def test_s3_state_is_encrypted_and_locked(synthesized: dict[str, Synth]) -> None:
    prod = synthesized["prod"]
    for name, document in prod.stacks.items():
        backend = document["terraform"]["backend"]["s3"]
        assert backend["encrypt"] is True
        assert backend["use_lockfile"] is True
        assert backend["key"] == f"oms/prod/{name}.tfstate"


def test_no_plain_secret_is_in_the_synthesized_json(env: Synth) -> None:
    text = json.dumps(env.stacks)
    assert not re.search(r'"(master_password|auth_token)": "(?!\$\{)', text)
    assert "BEGIN" not in text  # no key material
