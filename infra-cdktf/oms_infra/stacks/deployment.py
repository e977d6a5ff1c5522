"""The oms Deployment: what runs in each pod, and how tightly it is locked down.

Each pod runs ``oms topics`` first (an init container: it creates the topics with the partition
counts and replication factor of the ConfigMap, and is idempotent), then ``oms serve``. Both run
as the image's non-root user with a read-only root filesystem, no capabilities and the runtime's
seccomp profile; ``/tmp`` and the working directory are the only writable places.
"""

from __future__ import annotations

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_kubernetes import deployment_v1 as k8s
from constructs import Construct

from oms_infra.profile import HTTP_PORT, Profile

NAME = "oms"
CONFIG_MAP = "oms-settings"
SECRET = "oms-credentials"
KAFKA_CA_SECRET = "kafka-ca"
KAFKA_CA_DIR = "/etc/oms/kafka-ca"
WORK_DIR = "/var/lib/oms"  # writable: faust keeps its data directory under the working dir
USER_ID = 10001  # the image's `oms` user (Dockerfile)


def oms_deployment(
    scope: Construct,
    profile: Profile,
    *,
    image: str,
    namespace: str,
    labels: dict[str, str],
    with_kafka_ca: bool,
) -> k8s.DeploymentV1:
    """The Deployment: init container ``oms topics``, container ``oms serve``, locked down."""
    app = profile.app
    env_from = [
        k8s.DeploymentV1SpecTemplateSpecContainerEnvFrom(
            config_map_ref=k8s.DeploymentV1SpecTemplateSpecContainerEnvFromConfigMapRef(
                name=CONFIG_MAP
            )
        ),
        k8s.DeploymentV1SpecTemplateSpecContainerEnvFrom(
            secret_ref=k8s.DeploymentV1SpecTemplateSpecContainerEnvFromSecretRef(name=SECRET)
        ),
    ]
    mounts = [
        k8s.DeploymentV1SpecTemplateSpecContainerVolumeMount(name="tmp", mount_path="/tmp"),
        k8s.DeploymentV1SpecTemplateSpecContainerVolumeMount(name="work", mount_path=WORK_DIR),
    ]
    volumes = [
        k8s.DeploymentV1SpecTemplateSpecVolume(
            name="tmp", empty_dir=k8s.DeploymentV1SpecTemplateSpecVolumeEmptyDir()
        ),
        k8s.DeploymentV1SpecTemplateSpecVolume(
            name="work", empty_dir=k8s.DeploymentV1SpecTemplateSpecVolumeEmptyDir()
        ),
    ]
    if with_kafka_ca:
        mounts.append(
            k8s.DeploymentV1SpecTemplateSpecContainerVolumeMount(
                name="kafka-ca", mount_path=KAFKA_CA_DIR, read_only=True
            )
        )
        volumes.append(
            k8s.DeploymentV1SpecTemplateSpecVolume(
                name="kafka-ca",
                secret=k8s.DeploymentV1SpecTemplateSpecVolumeSecret(secret_name=KAFKA_CA_SECRET),
            )
        )
    locked_down = k8s.DeploymentV1SpecTemplateSpecContainerSecurityContext(
        run_as_non_root=True,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=k8s.DeploymentV1SpecTemplateSpecContainerSecurityContextCapabilities(
            drop=["ALL"]
        ),
    )
    # `oms topics` creates the topics (partitions and replication factor from the
    # ConfigMap) before `oms serve` starts its agents; it is idempotent
    topics = k8s.DeploymentV1SpecTemplateSpecInitContainer(
        name="topics",
        image=image,
        args=["topics"],
        env_from=[
            k8s.DeploymentV1SpecTemplateSpecInitContainerEnvFrom(
                config_map_ref=k8s.DeploymentV1SpecTemplateSpecInitContainerEnvFromConfigMapRef(
                    name=CONFIG_MAP
                )
            )
        ],
        working_dir=WORK_DIR,
        volume_mount=[
            k8s.DeploymentV1SpecTemplateSpecInitContainerVolumeMount(
                name=m.name, mount_path=m.mount_path, read_only=m.read_only
            )
            for m in mounts
        ],
        security_context=k8s.DeploymentV1SpecTemplateSpecInitContainerSecurityContext(
            run_as_non_root=True,
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            capabilities=k8s.DeploymentV1SpecTemplateSpecInitContainerSecurityContextCapabilities(
                drop=["ALL"]
            ),
        ),
    )
    container = k8s.DeploymentV1SpecTemplateSpecContainer(
        name=NAME,
        image=image,
        args=["serve"],
        working_dir=WORK_DIR,
        port=[k8s.DeploymentV1SpecTemplateSpecContainerPort(name="http", container_port=HTTP_PORT)],
        env_from=env_from,
        volume_mount=mounts,
        security_context=locked_down,
        # no CPU limit: throttling stalls the event loop and heartbeats; requests reserve
        resources=k8s.DeploymentV1SpecTemplateSpecContainerResources(
            requests={"cpu": app.cpu_request, "memory": app.memory_request},
            limits={"memory": app.memory_limit},
        ),
        startup_probe=k8s.DeploymentV1SpecTemplateSpecContainerStartupProbe(
            http_get=k8s.DeploymentV1SpecTemplateSpecContainerStartupProbeHttpGet(
                path="/health", port="http"
            ),
            period_seconds=2,
            failure_threshold=60,
        ),
        liveness_probe=k8s.DeploymentV1SpecTemplateSpecContainerLivenessProbe(
            http_get=k8s.DeploymentV1SpecTemplateSpecContainerLivenessProbeHttpGet(
                path="/health", port="http"
            ),
            period_seconds=10,
            timeout_seconds=2,
            failure_threshold=3,
        ),
        # /ready asks Kafka, MongoDB and Redis (2 s each at most)
        readiness_probe=k8s.DeploymentV1SpecTemplateSpecContainerReadinessProbe(
            http_get=k8s.DeploymentV1SpecTemplateSpecContainerReadinessProbeHttpGet(
                path="/ready", port="http"
            ),
            period_seconds=10,
            timeout_seconds=7,
            failure_threshold=3,
        ),
    )
    return k8s.DeploymentV1(
        scope,
        "deployment",
        metadata=k8s.DeploymentV1Metadata(name=NAME, namespace=namespace, labels=labels),
        spec=k8s.DeploymentV1Spec(
            replicas=str(app.min_replicas),
            selector=k8s.DeploymentV1SpecSelector(match_labels=labels),
            strategy=k8s.DeploymentV1SpecStrategy(
                type="RollingUpdate",
                rolling_update=k8s.DeploymentV1SpecStrategyRollingUpdate(
                    max_surge="1", max_unavailable="0"
                ),
            ),
            template=k8s.DeploymentV1SpecTemplate(
                metadata=k8s.DeploymentV1SpecTemplateMetadata(labels=labels),
                spec=k8s.DeploymentV1SpecTemplateSpec(
                    service_account_name=NAME,
                    automount_service_account_token=False,
                    security_context=k8s.DeploymentV1SpecTemplateSpecSecurityContext(
                        run_as_non_root=True,
                        run_as_user=str(USER_ID),
                        run_as_group=str(USER_ID),
                        fs_group=str(USER_ID),
                        seccomp_profile=k8s.DeploymentV1SpecTemplateSpecSecurityContextSeccompProfile(
                            type="RuntimeDefault"
                        ),
                    ),
                    init_container=[topics],
                    container=[container],
                    volume=volumes,
                    termination_grace_period_seconds=30,
                    topology_spread_constraint=[
                        k8s.DeploymentV1SpecTemplateSpecTopologySpreadConstraint(
                            max_skew=1,
                            topology_key="topology.kubernetes.io/zone",
                            when_unsatisfiable="ScheduleAnyway",
                            label_selector=[
                                k8s.DeploymentV1SpecTemplateSpecTopologySpreadConstraintLabelSelector(
                                    match_labels=labels
                                )
                            ],
                        )
                    ],
                ),
            ),
        ),
        # KEDA owns the replica count once it runs
        lifecycle=TerraformResourceLifecycle(ignore_changes=["spec[0].replicas"]),
    )
