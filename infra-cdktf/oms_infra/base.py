"""What every stack of an environment shares: its name, its state backend, its providers."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import Fn, LocalBackend, S3Backend, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_eks_cluster import DataAwsEksCluster
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from cdktf_cdktf_provider_kubernetes.provider import KubernetesProvider, KubernetesProviderExec
from constructs import Construct

from oms_infra.profile import Profile

# Local state lives next to the project, outside cdktf.out/ (which a synth may rewrite) and
# outside git (infra-cdktf/.gitignore). The path is relative to cdktf.out/stacks/<stack>/, the
# directory terraform runs in, so the synthesized JSON is the same on every machine.
LOCAL_STATE_DIR = "../../../terraform-state"


class OmsStack(TerraformStack):
    """One stack of one environment, named ``oms-<env>-<part>``, with the AWS provider."""

    def __init__(self, scope: Construct, profile: Profile, part: str) -> None:
        self.stack_name = f"{profile.prefix}-{part}"
        super().__init__(scope, self.stack_name)
        self.profile = profile
        self._backend()
        AwsProvider(
            self,
            "aws",
            region=profile.region,
            default_tags=[
                AwsProviderDefaultTags(
                    tags={
                        "Project": "oms",
                        "Environment": profile.name,
                        "Stack": part,
                        "ManagedBy": "cdktf",
                    }
                )
            ],
        )

    def _backend(self) -> None:
        backend = self.profile.backend
        if backend.kind == "local":
            LocalBackend(self, path=f"{LOCAL_STATE_DIR}/{self.stack_name}.tfstate")
            return
        S3Backend(
            self,
            bucket=backend.bucket,
            key=f"{backend.key_prefix}/{self.stack_name}.tfstate",
            region=backend.region,
            encrypt=True,
            kms_key_id=backend.kms_key_id or None,
        )
        # S3-native locking (Terraform >= 1.10, OpenTofu >= 1.10); CDKTF 0.21 has no property
        self.add_override("terraform.backend.s3.use_lockfile", True)

    def kubernetes_provider(self) -> None:
        """Talk to this environment's EKS cluster with a short-lived token from the AWS CLI."""
        cluster = DataAwsEksCluster(self, "eks-cluster", name=cluster_name(self.profile))
        KubernetesProvider(
            self,
            "kubernetes",
            host=cluster.endpoint,
            cluster_ca_certificate=Fn.base64decode(cluster.certificate_authority.get(0).data),
            exec=[
                KubernetesProviderExec(
                    api_version="client.authentication.k8s.io/v1beta1",
                    command="aws",
                    args=[
                        "eks",
                        "get-token",
                        "--cluster-name",
                        cluster_name(self.profile),
                        "--region",
                        self.profile.region,
                    ],
                )
            ],
        )


def cluster_name(profile: Profile) -> str:
    """The EKS cluster's name; the app stack finds the cluster by it."""
    return f"{profile.prefix}-eks"


@dataclass(frozen=True, slots=True)
class KafkaEndpoint:
    """How clients reach Kafka and prove who they are.

    Both flavours speak SASL over TLS. MSK checks AWS IAM (``AWS_MSK_IAM``): the pods' roles
    carry the access rules, written against ``cluster_arn``. The self-hosted cluster checks
    SCRAM passwords (``SCRAM-SHA-512``) that its user operator keeps in Secrets named after
    each principal in ``users_namespace``, with Kafka ACLs; its CA is a private one.
    """

    bootstrap_servers: str
    ca_secret: tuple[str, str] | None  # (namespace, name) of a Secret with ca.crt, or None
    mechanism: str  # OMS_KAFKA_SASL_MECHANISM: AWS_MSK_IAM or SCRAM-SHA-512
    cluster_arn: str | None = None  # MSK
    users_namespace: str | None = None  # self-hosted: where the user Secrets are
