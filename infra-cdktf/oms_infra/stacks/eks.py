"""EKS: the cluster, its managed node group, its add-ons, the image repository, the IAM roles.

Kubernetes secrets are envelope-encrypted with the ``eks`` key; node volumes are encrypted with
the ``ebs`` key through a launch template (which also requires IMDSv2). The control plane's
logs go to a log group encrypted with the ``logs`` key. The node group runs in the private
subnets; its Auto Scaling group is what the ALB forwards to (see ``edge``), and what the cluster
autoscaler (``autoscaler`` stack) resizes between ``eks.nodes_min`` and ``nodes_max``: its role
is here, given to its service account through EKS Pod Identity. The VPC CNI enforces
Kubernetes NetworkPolicies (the app stack's).

Pods get AWS credentials from EKS Pod Identity only: the instance metadata service answers one
hop, the node itself, so a pod cannot take the node's role.
"""

from __future__ import annotations

import json
from typing import Any

from cdktf import TerraformResourceLifecycle, Token
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.ecr_repository import (
    EcrRepository,
    EcrRepositoryEncryptionConfiguration,
    EcrRepositoryImageScanningConfiguration,
)
from cdktf_cdktf_provider_aws.eks_addon import EksAddon, EksAddonPodIdentityAssociation
from cdktf_cdktf_provider_aws.eks_cluster import (
    EksCluster,
    EksClusterAccessConfig,
    EksClusterEncryptionConfig,
    EksClusterEncryptionConfigProvider,
    EksClusterVpcConfig,
)
from cdktf_cdktf_provider_aws.eks_node_group import (
    EksNodeGroup,
    EksNodeGroupLaunchTemplate,
    EksNodeGroupScalingConfig,
    EksNodeGroupUpdateConfig,
)
from cdktf_cdktf_provider_aws.eks_pod_identity_association import EksPodIdentityAssociation
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.launch_template import (
    LaunchTemplate,
    LaunchTemplateBlockDeviceMappings,
    LaunchTemplateBlockDeviceMappingsEbs,
    LaunchTemplateMetadataOptions,
)
from constructs import Construct

from oms_infra.base import OmsStack, cluster_name
from oms_infra.profile import Profile
from oms_infra.stacks.kms import KmsStack
from oms_infra.stacks.network import NetworkStack

AWS_MANAGED = "arn:aws:iam::aws:policy"
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
)
CLUSTER_LOG_TYPES = ["api", "audit", "authenticator"]
AUTOSCALER_NAMESPACE = "kube-system"
AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"


def autoscaler_policy(cluster: str) -> dict[str, Any]:
    """What the cluster autoscaler needs (its AWS documentation's minimal policy)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadGroupsAndTypes",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:DescribeAutoScalingGroups",
                    "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeLaunchConfigurations",
                    "autoscaling:DescribeScalingActivities",
                    "autoscaling:DescribeTags",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplateVersions",
                    "ec2:GetInstanceTypesFromInstanceRequirements",
                    "eks:DescribeNodegroup",
                ],
                "Resource": "*",
            },
            {
                # EKS tags its managed node groups' Auto Scaling groups with this key
                "Sid": "ResizeOnlyThisClustersGroups",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:SetDesiredCapacity",
                    "autoscaling:TerminateInstanceInAutoScalingGroup",
                ],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster}": "owned"
                    }
                },
            },
        ],
    }


def assume_role_policy(service: str, *, tag_session: bool = False) -> str:
    """A trust policy letting ``service`` assume the role."""
    actions = ["sts:AssumeRole", "sts:TagSession"] if tag_session else ["sts:AssumeRole"]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": actions}
            ],
        }
    )


def kms_use_policy(key_arns: list[str], *, grants: bool = False) -> str:
    """Permission to use the given keys (and, for EBS, to let EC2 hold grants on them)."""
    statements: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:DescribeKey",
                "kms:ListGrants",
            ],
            "Resource": key_arns,
        }
    ]
    if grants:
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["kms:CreateGrant", "kms:RevokeGrant"],
                "Resource": key_arns,
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class EksStack(OmsStack):
    """The cluster the app runs on."""

    def __init__(
        self, scope: Construct, profile: Profile, network: NetworkStack, kms: KmsStack
    ) -> None:
        super().__init__(scope, profile, "eks")
        eks = profile.eks
        name = cluster_name(profile)
        eks_sg = network.security_groups["eks"]
        private = [s.id for s in network.private_subnets]

        cluster_role = IamRole(
            self,
            "cluster-role",
            name=f"{name}-cluster",
            assume_role_policy=assume_role_policy("eks.amazonaws.com", tag_session=True),
        )
        IamRolePolicyAttachment(
            self,
            "cluster-policy",
            role=cluster_role.name,
            policy_arn=f"{AWS_MANAGED}/AmazonEKSClusterPolicy",
        )
        IamRolePolicy(
            self,
            "cluster-kms",
            role=cluster_role.id,
            name="secrets-encryption",
            policy=kms_use_policy([kms.keys["eks"].arn]),
        )
        logs = CloudwatchLogGroup(
            self,
            "cluster-logs",
            name=f"/aws/eks/{name}/cluster",
            retention_in_days=profile.operations.log_retention_days,
            kms_key_id=kms.keys["logs"].arn,
        )
        public = bool(eks.api_public_cidrs)
        self.cluster = EksCluster(
            self,
            "cluster",
            name=name,
            version=eks.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=EksClusterVpcConfig(
                subnet_ids=private,
                security_group_ids=[eks_sg.id],
                endpoint_private_access=True,
                endpoint_public_access=public,
                public_access_cidrs=list(eks.api_public_cidrs) if public else None,
            ),
            encryption_config=EksClusterEncryptionConfig(
                resources=["secrets"],
                provider=EksClusterEncryptionConfigProvider(key_arn=kms.keys["eks"].arn),
            ),
            access_config=EksClusterAccessConfig(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=True
            ),
            enabled_cluster_log_types=CLUSTER_LOG_TYPES,
            depends_on=[logs],
        )

        node_role = IamRole(
            self,
            "node-role",
            name=f"{name}-node",
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
        )
        attachments = [
            IamRolePolicyAttachment(
                self, f"node-{policy}", role=node_role.name, policy_arn=f"{AWS_MANAGED}/{policy}"
            )
            for policy in NODE_POLICIES
        ]
        template = LaunchTemplate(
            self,
            "node-template",
            name_prefix=f"{name}-node-",
            update_default_version=True,
            block_device_mappings=[
                LaunchTemplateBlockDeviceMappings(
                    device_name="/dev/xvda",
                    ebs=LaunchTemplateBlockDeviceMappingsEbs(
                        volume_size=eks.node_disk_gib,
                        volume_type="gp3",
                        encrypted="true",
                        kms_key_id=kms.keys["ebs"].arn,
                        delete_on_termination="true",
                    ),
                )
            ],
            # IMDSv2 only, one hop: the node's own processes (kubelet, and the CNI on the host
            # network) reach it, pods do not, so no pod can act with the node's role
            metadata_options=LaunchTemplateMetadataOptions(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
            ),
            # with its own groups in a launch template, EKS does not add the cluster group:
            # name both so that nodes talk to the control plane and to each other
            vpc_security_group_ids=[
                eks_sg.id,
                self.cluster.vpc_config.cluster_security_group_id,
            ],
        )
        self.node_group = EksNodeGroup(
            self,
            "nodes",
            cluster_name=self.cluster.name,
            node_group_name=f"{name}-nodes",
            node_role_arn=node_role.arn,
            subnet_ids=private,
            ami_type="AL2023_x86_64_STANDARD",
            capacity_type=eks.node_capacity,
            instance_types=list(eks.node_instance_types),
            scaling_config=EksNodeGroupScalingConfig(
                min_size=eks.nodes_min, desired_size=eks.nodes_desired, max_size=eks.nodes_max
            ),
            update_config=EksNodeGroupUpdateConfig(max_unavailable=1),
            launch_template=EksNodeGroupLaunchTemplate(
                id=template.id, version=Token.as_string(template.latest_version)
            ),
            labels={"oms/capacity": eks.node_capacity.lower()},
            depends_on=attachments,
            # a cluster autoscaler (README: add-ons) owns the size between min and max
            lifecycle=TerraformResourceLifecycle(ignore_changes=["scaling_config[0].desired_size"]),
        )
        # the Auto Scaling group behind the managed node group: the ALB's target
        self.node_asg_name = self.node_group.resources.get(0).autoscaling_groups.get(0).name

        self._addons(profile, kms)
        self._autoscaler_identity(profile)

        self.repository = EcrRepository(
            self,
            "repository",
            name=f"{profile.prefix}/oms",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=EcrRepositoryImageScanningConfiguration(scan_on_push=True),
            encryption_configuration=[
                EcrRepositoryEncryptionConfiguration(
                    encryption_type="KMS", kms_key=kms.keys["eks"].arn
                )
            ],
            force_delete=not profile.operations.deletion_protection,
        )

    def _autoscaler_identity(self, profile: Profile) -> None:
        """The cluster autoscaler's role: read Auto Scaling, resize only this cluster's groups."""
        name = cluster_name(profile)
        role = IamRole(
            self,
            "autoscaler-role",
            name=f"{name}-cluster-autoscaler",
            assume_role_policy=assume_role_policy("pods.eks.amazonaws.com", tag_session=True),
        )
        IamRolePolicy(
            self,
            "autoscaler-policy",
            role=role.id,
            name="resize-own-node-groups",
            policy=json.dumps(autoscaler_policy(name)),
        )
        EksPodIdentityAssociation(
            self,
            "autoscaler-identity",
            cluster_name=self.cluster.name,
            namespace=AUTOSCALER_NAMESPACE,
            service_account=AUTOSCALER_SERVICE_ACCOUNT,
            role_arn=role.arn,
        )

    def _addons(self, profile: Profile, kms: KmsStack) -> None:
        """The add-ons EKS manages; the EBS CSI driver gets its role through Pod Identity."""
        for addon in ("kube-proxy", "eks-pod-identity-agent"):
            EksAddon(
                self,
                f"addon-{addon}",
                cluster_name=self.cluster.name,
                addon_name=addon,
                resolve_conflicts_on_update="OVERWRITE",
            )
        EksAddon(
            self,
            "addon-vpc-cni",
            cluster_name=self.cluster.name,
            addon_name="vpc-cni",
            resolve_conflicts_on_update="OVERWRITE",
            # without it the CNI ignores NetworkPolicies: the app's would be decoration
            configuration_values=json.dumps({"enableNetworkPolicy": "true"}),
        )
        EksAddon(
            self,
            "addon-coredns",
            cluster_name=self.cluster.name,
            addon_name="coredns",
            resolve_conflicts_on_update="OVERWRITE",
            depends_on=[self.node_group],  # its pods need nodes to become healthy
        )
        csi_role = IamRole(
            self,
            "ebs-csi-role",
            name=f"{cluster_name(profile)}-ebs-csi",
            assume_role_policy=assume_role_policy("pods.eks.amazonaws.com", tag_session=True),
        )
        IamRolePolicyAttachment(
            self,
            "ebs-csi-policy",
            role=csi_role.name,
            policy_arn=f"{AWS_MANAGED}/service-role/AmazonEBSCSIDriverPolicy",
        )
        IamRolePolicy(
            self,
            "ebs-csi-kms",
            role=csi_role.id,
            name="encrypted-volumes",
            policy=kms_use_policy([kms.keys["ebs"].arn, kms.keys["kafka"].arn], grants=True),
        )
        EksAddon(
            self,
            "addon-aws-ebs-csi-driver",
            cluster_name=self.cluster.name,
            addon_name="aws-ebs-csi-driver",
            resolve_conflicts_on_update="OVERWRITE",
            pod_identity_association=[
                EksAddonPodIdentityAssociation(
                    role_arn=csi_role.arn, service_account="ebs-csi-controller-sa"
                )
            ],
            depends_on=[self.node_group],
        )
