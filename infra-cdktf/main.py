"""Synthesize every stack of one environment into cdktf.out/ as plain Terraform JSON.

    cd infra-cdktf && ENV=prod ../.venv/bin/python main.py     (what `make synth ENV=prod` runs)

ENV picks the environment (dev, the default; prod; cost) in environments.toml, or in the file
INFRA_CONFIG names. No cdktf CLI is needed: each stack lands in cdktf.out/stacks/<stack>/
cdk.tf.json, which `terraform` (or `tofu`) init/plan/apply directly (README.md).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    """Synthesize the environment ENV names; print each stack's file."""
    started = time.monotonic()
    # jsii prints a banner for Node versions it no longer supports; say so once, not per run
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")
    env = os.environ.get("ENV") or "dev"
    config = Path(os.environ.get("INFRA_CONFIG") or HERE / "environments.toml")

    from oms_infra.profile import ProfileError, load_profile  # noqa: PLC0415  (after sys.path)

    try:
        profile = load_profile(env, config)
    except ProfileError as exc:
        print(f"synth: {exc}", file=sys.stderr)
        return 2
    from oms_infra.app import synth  # noqa: PLC0415  (starts Node: only once the profile is sound)

    # the cdktf CLI (cdktf.json) says where it wants the output; alone, cdktf.out/ here
    outdir = Path(os.environ.get("CDKTF_OUTDIR") or HERE / "cdktf.out")
    for name in synth(profile, outdir):
        print(f"{name}: {outdir / 'stacks' / name / 'cdk.tf.json'}")
    print(f"synth {env}: {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
