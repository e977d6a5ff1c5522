"""The oms Deployment: what runs in each pod, how it rolls, and how tightly it is locked down.

Each pod runs ``oms topics`` first (an init container: it creates the topics with the partition
counts and replication factor of the ConfigMap, and is idempotent), then ``oms serve``. Both run
as the image's non-root user with a read-only root filesystem, no capabilities and the runtime's
seccomp profile; ``/tmp`` and the working directory are the only writable places.

Rolling. KEDA may hold the Deployment at its maximum, one replica per partition; a surge pod
would own no partition and the rollout would wait on it. So a rollout takes one pod away first
(``maxSurge`` 0, ``maxUnavailable`` 1) and starts its successor, which the group then gives the
freed partitions. Stopping. The pod first sleeps ``PRE_STOP_S`` (the endpoint leaves every
node's routing while it still serves), then gets SIGTERM: ``oms serve`` makes in-flight work
durable and leaves the group within ``SHUTDOWN_TIMEOUT_S`` (``OMS_SHUTDOWN_TIMEOUT_S``, set in
the ConfigMap), and its watchdog exits ``SHUTDOWN_WATCHDOG_S`` later at the latest. The grace
period covers all three with a margin, so Kubernetes never has to SIGKILL a clean stop.

The hop between replicas. A read of an account another replica owns is forwarded to that
replica, signed with ``OMS_INTERNAL_TOKEN`` (the same in every pod: ``INTERNAL_SECRET``), at the
address the owner advertises in the owner map, ``OMS_ADVERTISE_URL``: the pod's own IP from the
downward API (``POD_IP``), expanded by Kubernetes in the variable after it.
"""

from __future__ import annotations

from cdktf import ITerraformDependable, TerraformResourceLifecycle
from cdktf_cdktf_provider_kubernetes import deployment_v1 as k8s
from constructs import Construct

from oms_infra.profile import HTTP_PORT, Profile
from oms_infra.sizing import cpu_request

NAME = "oms"
CONFIG_MAP = "oms-settings"
SECRET = "oms-credentials"
KAFKA_CA_SECRET = "kafka-ca"
KAFKA_CA_DIR = "/etc/oms/kafka-ca"
WORK_DIR = "/var/lib/oms"  # writable: faust keeps its data directory under the working dir
USER_ID = 10001  # the image's `oms` user (Dockerfile)
KAFKA_SECRET = "oms-kafka"  # SCRAM only: OMS_KAFKA_SASL_PASSWORD
INTERNAL_SECRET = "oms-internal"  # OMS_INTERNAL_TOKEN, the one every replica signs its hops with
INTERNAL_TOKEN_KEY = "token"
PRE_STOP_S = 5
SHUTDOWN_TIMEOUT_S = 20  # OMS_SHUTDOWN_TIMEOUT_S (the app's default, written out)
SHUTDOWN_WATCHDOG_S = 5  # the app exits this long after the timeout whatever it is doing
GRACE_MARGIN_S = 5
TERMINATION_GRACE_S = PRE_STOP_S + SHUTDOWN_TIMEOUT_S + SHUTDOWN_WATCHDOG_S + GRACE_MARGIN_S


def oms_deployment(
    scope: Construct,
    profile: Profile,
    *,
    image: str,
    namespace: str,
    labels: dict[str, str],
    with_kafka_ca: bool,
    with_kafka_password: bool,
    depends_on: list[ITerraformDependable],
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
    # the init container talks to Kafka only: the settings, and the Kafka password if any
    init_env_from = [
        k8s.DeploymentV1SpecTemplateSpecInitContainerEnvFrom(
            config_map_ref=k8s.DeploymentV1SpecTemplateSpecInitContainerEnvFromConfigMapRef(
                name=CONFIG_MAP
            )
        )
    ]
    if with_kafka_password:
        env_from.append(
            k8s.DeploymentV1SpecTemplateSpecContainerEnvFrom(
                secret_ref=k8s.DeploymentV1SpecTemplateSpecContainerEnvFromSecretRef(
                    name=KAFKA_SECRET
                )
            )
        )
        init_env_from.append(
            k8s.DeploymentV1SpecTemplateSpecInitContainerEnvFrom(
                secret_ref=k8s.DeploymentV1SpecTemplateSpecInitContainerEnvFromSecretRef(
                    name=KAFKA_SECRET
                )
            )
        )
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
    env = [
        k8s.DeploymentV1SpecTemplateSpecContainerEnv(
            name="OMS_INTERNAL_TOKEN",
            value_from=k8s.DeploymentV1SpecTemplateSpecContainerEnvValueFrom(
                secret_key_ref=k8s.DeploymentV1SpecTemplateSpecContainerEnvValueFromSecretKeyRef(
                    name=INTERNAL_SECRET, key=INTERNAL_TOKEN_KEY
                )
            ),
        ),
        k8s.DeploymentV1SpecTemplateSpecContainerEnv(
            name="POD_IP",
            value_from=k8s.DeploymentV1SpecTemplateSpecContainerEnvValueFrom(
                field_ref=k8s.DeploymentV1SpecTemplateSpecContainerEnvValueFromFieldRef(
                    field_path="status.podIP"
                )
            ),
        ),
        # $(POD_IP) is expanded only from variables defined before this one: keep the order
        k8s.DeploymentV1SpecTemplateSpecContainerEnv(
            name="OMS_ADVERTISE_URL", value=f"http://$(POD_IP):{HTTP_PORT}"
        ),
    ]
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
        env_from=init_env_from,
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
        env=env,
        env_from=env_from,
        volume_mount=mounts,
        security_context=locked_down,
        # no CPU limit: throttling stalls the event loop and heartbeats; the request reserves
        # what app.orders_per_s needs (sizing.cpu_request says how)
        resources=k8s.DeploymentV1SpecTemplateSpecContainerResources(
            requests={"cpu": cpu_request(profile), "memory": app.memory_request},
            limits={"memory": app.memory_limit},
        ),
        lifecycle=k8s.DeploymentV1SpecTemplateSpecContainerLifecycle(
            pre_stop=[
                k8s.DeploymentV1SpecTemplateSpecContainerLifecyclePreStop(
                    exec=k8s.DeploymentV1SpecTemplateSpecContainerLifecyclePreStopExec(
                        command=["sleep", str(PRE_STOP_S)]
                    )
                )
            ]
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
        # /health fails when the engine thread stalls or an actor failed: restart the pod.
        # /ready asks Kafka, MongoDB and Redis (2 s each at most): take it out of the Service
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
                    max_surge="0", max_unavailable="1"
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
                    termination_grace_period_seconds=TERMINATION_GRACE_S,
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
        depends_on=depends_on,
    )
