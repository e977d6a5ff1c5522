"""Synthesize an environment, read the Terraform JSON back, follow references between stacks.

Starting jsii and loading the provider assemblies costs most of the time; after that one
environment synthesizes in a second or two. So the session synthesizes dev, prod and cost once
(``conftest``), and the tests read the files the synth wrote, as Terraform would.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra-cdktf"
ENVIRONMENTS_FILE = INFRA / "environments.toml"
ENVIRONMENTS = ("dev", "prod", "cost")

sys.path.insert(0, str(INFRA))
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")

from oms_infra.profile import Profile, load_profile  # noqa: E402  (needs the path above)

# prod serves HTTPS only and refuses to synthesize without a certificate: the tests give it one
TEST_CERTIFICATE = (
    "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
)
TEST_OVERRIDES: dict[str, dict[str, Any]] = {"prod": {"edge.certificate_arn": TEST_CERTIFICATE}}

REMOTE_OUTPUT = re.compile(r"data\.terraform_remote_state\.([\w-]+)\.outputs\.([\w-]+)")


@dataclass
class Synth:
    """One environment as synthesized: its profile and each stack's Terraform JSON."""

    profile: Profile
    outdir: Path
    manifest: dict[str, Any]
    stacks: dict[str, dict[str, Any]]  # by stack name, oms-dev-network

    def stack(self, part: str) -> dict[str, Any]:
        """The JSON of stack ``oms-<env>-<part>``."""
        return self.stacks[f"{self.profile.prefix}-{part}"]

    def resources(self, part: str, kind: str) -> dict[str, dict[str, Any]]:
        """The resources of one type in one stack, by their construct id."""
        return dict(self.stack(part).get("resource", {}).get(kind, {}))

    def resource(self, part: str, kind: str, name: str) -> dict[str, Any]:
        """One resource; fails the test with the ids that exist if it is not there."""
        found = self.resources(part, kind)
        assert name in found, f"{kind}.{name} not in {part}: {sorted(found)}"
        return found[name]

    def resolve(self, part: str, value: str) -> str:
        """Follow each cross-stack reference to the expression the producing stack outputs."""
        remote_states = self.stack(part).get("data", {}).get("terraform_remote_state", {})

        def produced(match: re.Match[str]) -> str:
            remote, output = match.groups()
            producer = self._producer(remote_states[remote])
            expression: str = self.stacks[producer]["output"][output]["value"]
            return expression.removeprefix("${").removesuffix("}")

        return REMOTE_OUTPUT.sub(produced, value)

    def _producer(self, state: dict[str, Any]) -> str:
        config = state["config"]
        where = config.get("path") or config.get("key")
        return Path(where).name.removesuffix(".tfstate")


def profile_of(env: str) -> Profile:
    """The checked-in profile of environment ``env`` (prod with ``TEST_CERTIFICATE``)."""
    return load_profile(env, ENVIRONMENTS_FILE, TEST_OVERRIDES.get(env))


def synthesize(profile: Profile, outdir: Path) -> Synth:
    """Synthesize ``profile`` into ``outdir`` and load what it wrote."""
    from oms_infra.app import synth  # noqa: PLC0415  (starts Node: only when a test needs it)

    synth(profile, outdir)
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = {
        name: json.loads((outdir / entry["synthesizedStackPath"]).read_text())
        for name, entry in manifest["stacks"].items()
    }
    return Synth(profile, outdir, manifest, stacks)
