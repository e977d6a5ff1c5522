"""Assemble and synthesize every stack of one environment."""

from __future__ import annotations

from pathlib import Path

from cdktf import App

from oms_infra.base import OmsStack
from oms_infra.profile import Profile
from oms_infra.stacks.alarms import AlarmsStack
from oms_infra.stacks.app import AppStack
from oms_infra.stacks.autoscaler import AutoscalerStack
from oms_infra.stacks.documentdb import DocumentDbStack
from oms_infra.stacks.edge import EdgeStack
from oms_infra.stacks.eks import EksStack
from oms_infra.stacks.kafka_selfhosted import SelfHostedKafkaStack
from oms_infra.stacks.kms import KmsStack
from oms_infra.stacks.logs import LogsStack
from oms_infra.stacks.msk import MskStack
from oms_infra.stacks.network import NetworkStack
from oms_infra.stacks.redis import RedisStack


def build(profile: Profile, outdir: Path) -> tuple[App, list[OmsStack]]:
    """Every stack of ``profile``'s environment, wired together, in dependency order."""
    app = App(outdir=str(outdir))
    kms = KmsStack(app, profile)
    network = NetworkStack(app, profile, kms)
    logs = LogsStack(app, profile, network)
    eks = EksStack(app, profile, network, kms)
    autoscaler = AutoscalerStack(app, profile, eks)
    kafka: MskStack | SelfHostedKafkaStack
    if profile.kafka.mode == "msk":
        kafka = MskStack(app, profile, network, kms)
    else:
        kafka = SelfHostedKafkaStack(app, profile, eks, kms)
    redis = RedisStack(app, profile, network, kms)
    documentdb = DocumentDbStack(app, profile, network, kms)
    edge = EdgeStack(app, profile, network, eks, kms, logs=logs)
    oms = AppStack(app, profile, eks=eks, kafka=kafka.endpoint, redis=redis, documentdb=documentdb)
    oms.add_dependency(kafka)  # the topics and the trigger need brokers, even self-hosted ones
    alarms = AlarmsStack(
        app,
        profile,
        kms=kms,
        edge=edge,
        redis=redis,
        documentdb=documentdb,
        msk=kafka if isinstance(kafka, MskStack) else None,
    )
    stacks = [kms, network, logs, eks, autoscaler, kafka, redis, documentdb, edge, oms, alarms]
    return app, stacks


def synth(profile: Profile, outdir: Path) -> list[str]:
    """Write the environment's stacks to ``outdir/stacks/<name>/cdk.tf.json``; their names."""
    app, stacks = build(profile, outdir)
    app.synth()
    return [stack.stack_name for stack in stacks]
