"""Network: the VPC, its three tiers of subnets, the way out, the endpoints, the security groups.

Tiers, one subnet per zone each:
- public (/24): the ALB and the NAT gateway or instance; the only tier routed to the internet
  gateway;
- private (/19, room for pod addresses from the VPC CNI): EKS nodes and pods, out through NAT;
- data (/24): MSK, ElastiCache, DocumentDB; no route out of the VPC at all.

Every security group and every rule lives here, so that who may talk to whom reads in one place.
Ingress is exactly what the design lists; data stores have no egress rules (answers to allowed
connections need none).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.data_aws_ssm_parameter import DataAwsSsmParameter
from cdktf_cdktf_provider_aws.eip import Eip
from cdktf_cdktf_provider_aws.instance import (
    Instance,
    InstanceMetadataOptions,
    InstanceRootBlockDevice,
)
from cdktf_cdktf_provider_aws.internet_gateway import InternetGateway
from cdktf_cdktf_provider_aws.nat_gateway import NatGateway
from cdktf_cdktf_provider_aws.route import Route
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from cdktf_cdktf_provider_aws.vpc_endpoint import VpcEndpoint
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import (
    VpcSecurityGroupIngressRule,
)
from constructs import Construct

from oms_infra.base import OmsStack
from oms_infra.profile import Profile
from oms_infra.stacks.kms import KmsStack

ANYWHERE = "0.0.0.0/0"
KAFKA_IAM_PORT = 9098  # MSK's port for IAM-authenticated clients over TLS: the only one open
REDIS_PORT = 6379
DOCUMENTDB_PORT = 27017

# The NAT instance forwards and masquerades; nothing else runs on it.
NAT_USER_DATA = """#!/bin/bash
set -euo pipefail
dnf install -y iptables-services
echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-nat.conf
sysctl --system
iface=$(ip route show default | awk '{print $5; exit}')
iptables -t nat -A POSTROUTING -o "$iface" -j MASQUERADE
iptables -F FORWARD
service iptables save
systemctl enable --now iptables
"""


@dataclass(frozen=True, slots=True)
class SubnetPlan:
    """The CIDR of each tier's subnet in each zone, carved from the VPC's range."""

    public: tuple[str, ...]
    private: tuple[str, ...]
    data: tuple[str, ...]


def plan_subnets(vpc_cidr: str, zones: int) -> SubnetPlan:
    """Split the VPC into eighths: public /24s from the first, private eighths, data /24s last."""
    vpc = ipaddress.IPv4Network(vpc_cidr)
    eighths = list(vpc.subnets(prefixlen_diff=3))
    small = vpc.prefixlen + 8  # a /24 in a /16

    def carve(block: ipaddress.IPv4Network) -> list[str]:
        return [str(n) for n in block.subnets(new_prefix=small)][:zones]

    return SubnetPlan(
        public=tuple(carve(eighths[0])),
        private=tuple(str(n) for n in eighths[1 : 1 + zones]),
        data=tuple(carve(eighths[-1])),
    )


class NetworkStack(OmsStack):
    """VPC, subnets, routes, NAT, endpoints and every security group of the environment."""

    def __init__(self, scope: Construct, profile: Profile, kms: KmsStack) -> None:
        super().__init__(scope, profile, "network")
        net = profile.network
        zones = net.availability_zones
        plan = plan_subnets(net.vpc_cidr, len(zones))
        name = profile.prefix

        self.vpc = Vpc(
            self,
            "vpc",
            cidr_block=net.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": name},
        )
        igw = InternetGateway(self, "igw", vpc_id=self.vpc.id, tags={"Name": name})

        def subnets(tier: str, cidrs: tuple[str, ...], role: dict[str, str]) -> list[Subnet]:
            return [
                Subnet(
                    self,
                    f"{tier}-{zone}",
                    vpc_id=self.vpc.id,
                    availability_zone=zone,
                    cidr_block=cidr,
                    map_public_ip_on_launch=False,
                    tags={"Name": f"{name}-{tier}-{zone}", "Tier": tier, **role},
                )
                for zone, cidr in zip(zones, cidrs, strict=True)
            ]

        self.public_subnets = subnets("public", plan.public, {"kubernetes.io/role/elb": "1"})
        self.private_subnets = subnets(
            "private", plan.private, {"kubernetes.io/role/internal-elb": "1"}
        )
        self.data_subnets = subnets("data", plan.data, {})

        public_rt = RouteTable(
            self, "public-rt", vpc_id=self.vpc.id, tags={"Name": f"{name}-public"}
        )
        Route(
            self,
            "public-default",
            route_table_id=public_rt.id,
            destination_cidr_block=ANYWHERE,
            gateway_id=igw.id,
        )
        for subnet, zone in zip(self.public_subnets, zones, strict=True):
            RouteTableAssociation(
                self, f"public-rta-{zone}", subnet_id=subnet.id, route_table_id=public_rt.id
            )

        self.security_groups = self._security_groups(profile, plan)
        self.private_route_tables = self._private_routes(profile, kms, zones, igw)

        data_rt = RouteTable(self, "data-rt", vpc_id=self.vpc.id, tags={"Name": f"{name}-data"})
        for subnet, zone in zip(self.data_subnets, zones, strict=True):
            RouteTableAssociation(
                self, f"data-rta-{zone}", subnet_id=subnet.id, route_table_id=data_rt.id
            )

        VpcEndpoint(
            self,
            "s3-endpoint",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{profile.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in self.private_route_tables],
            tags={"Name": f"{name}-s3"},
        )
        if net.interface_endpoints:
            for service in ("ecr.api", "ecr.dkr"):
                VpcEndpoint(
                    self,
                    f"{service.replace('.', '-')}-endpoint",
                    vpc_id=self.vpc.id,
                    service_name=f"com.amazonaws.{profile.region}.{service}",
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[s.id for s in self.private_subnets],
                    security_group_ids=[self.security_groups["endpoints"].id],
                    tags={"Name": f"{name}-{service}"},
                )

    def _private_routes(
        self, profile: Profile, kms: KmsStack, zones: tuple[str, ...], igw: InternetGateway
    ) -> list[RouteTable]:
        """A route table per zone whose default route leaves through the profile's NAT."""
        name = profile.prefix
        mode = profile.network.nat
        tables: list[RouteTable] = []
        targets: list[dict[str, str]] = []
        if mode == "instance":
            ami = DataAwsSsmParameter(
                self,
                "nat-ami",
                name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
            )
            nat = Instance(
                self,
                "nat-instance",
                ami=ami.value,
                instance_type=profile.network.nat_instance_type,
                subnet_id=self.public_subnets[0].id,
                associate_public_ip_address=True,
                source_dest_check=False,
                vpc_security_group_ids=[self.security_groups["nat"].id],
                user_data=NAT_USER_DATA,
                user_data_replace_on_change=True,
                metadata_options=InstanceMetadataOptions(http_tokens="required"),
                root_block_device=InstanceRootBlockDevice(
                    encrypted=True, kms_key_id=kms.keys["ebs"].arn, volume_type="gp3"
                ),
                tags={"Name": f"{name}-nat"},
                depends_on=[igw],
            )
            targets = [{"network_interface_id": nat.primary_network_interface_id}] * len(zones)
        else:
            per_zone = mode == "gateway-per-az"
            gateways = []
            for i, zone in enumerate(zones if per_zone else zones[:1]):
                eip = Eip(
                    self, f"nat-eip-{zone}", domain="vpc", tags={"Name": f"{name}-nat-{zone}"}
                )
                gateways.append(
                    NatGateway(
                        self,
                        f"nat-{zone}",
                        allocation_id=eip.id,
                        subnet_id=self.public_subnets[i].id,
                        tags={"Name": f"{name}-nat-{zone}"},
                        depends_on=[igw],
                    )
                )
            targets = [
                {"nat_gateway_id": gateways[i if per_zone else 0].id} for i in range(len(zones))
            ]
        for zone, subnet, target in zip(zones, self.private_subnets, targets, strict=True):
            table = RouteTable(
                self,
                f"private-rt-{zone}",
                vpc_id=self.vpc.id,
                tags={"Name": f"{name}-private-{zone}"},
            )
            Route(
                self,
                f"private-default-{zone}",
                route_table_id=table.id,
                destination_cidr_block=ANYWHERE,
                **target,
            )
            RouteTableAssociation(
                self, f"private-rta-{zone}", subnet_id=subnet.id, route_table_id=table.id
            )
            tables.append(table)
        return tables

    def _security_groups(self, profile: Profile, plan: SubnetPlan) -> dict[str, SecurityGroup]:
        """The groups and their rules; each rule a resource of its own, with a description."""
        name = profile.prefix
        purposes = {
            "alb": "the public load balancer",
            "eks": "the EKS control plane, nodes and pods",
            "redis": "ElastiCache Redis",
            "documentdb": "DocumentDB",
        }
        if profile.kafka.mode == "msk":
            purposes["msk"] = "the MSK brokers"
        if profile.network.interface_endpoints:
            purposes["endpoints"] = "the ECR interface endpoints"
        if profile.network.nat == "instance":
            purposes["nat"] = "the NAT instance"
        groups = {
            key: SecurityGroup(
                self,
                f"{key}-sg",
                name=f"{name}-{key}",
                description=f"oms {profile.name}: {what}",
                vpc_id=self.vpc.id,
                tags={"Name": f"{name}-{key}"},
            )
            for key, what in purposes.items()
        }

        def allow(
            group: str,
            rule: str,
            ports: tuple[int, int] | None,
            *,
            source: str | None = None,
            cidr: str | None = None,
        ) -> None:
            VpcSecurityGroupIngressRule(
                self,
                f"{group}-in-{rule}",
                security_group_id=groups[group].id,
                description=rule,
                ip_protocol="tcp" if ports else "-1",
                from_port=ports[0] if ports else None,
                to_port=ports[1] if ports else None,
                referenced_security_group_id=groups[source].id if source else None,
                cidr_ipv4=cidr,
            )

        def send(
            group: str,
            rule: str,
            ports: tuple[int, int] | None,
            *,
            target: str | None = None,
            cidr: str | None = None,
        ) -> None:
            VpcSecurityGroupEgressRule(
                self,
                f"{group}-out-{rule}",
                security_group_id=groups[group].id,
                description=rule,
                ip_protocol="tcp" if ports else "-1",
                from_port=ports[0] if ports else None,
                to_port=ports[1] if ports else None,
                referenced_security_group_id=groups[target].id if target else None,
                cidr_ipv4=cidr,
            )

        node_port = (profile.app.node_port, profile.app.node_port)
        allow("alb", "http-from-internet", (80, 80), cidr=ANYWHERE)
        allow("alb", "https-from-internet", (443, 443), cidr=ANYWHERE)
        send("alb", "to-app-node-port", node_port, target="eks")
        allow("eks", "app-from-alb", node_port, source="alb")
        allow("eks", "all-within-cluster", None, source="eks")
        # Nodes pull images, call AWS APIs and reach every store: egress stays open here and
        # each store's group decides who gets in.
        send("eks", "all-out", None, cidr=ANYWHERE)
        if "msk" in groups:
            allow("msk", "kafka-iam-from-eks", (KAFKA_IAM_PORT, KAFKA_IAM_PORT), source="eks")
        allow("redis", "redis-from-eks", (REDIS_PORT, REDIS_PORT), source="eks")
        allow("documentdb", "mongo-from-eks", (DOCUMENTDB_PORT, DOCUMENTDB_PORT), source="eks")
        if "endpoints" in groups:
            allow("endpoints", "https-from-eks", (443, 443), source="eks")
        if "nat" in groups:
            for zone, cidr in zip(profile.network.availability_zones, plan.private, strict=True):
                allow("nat", f"http-from-private-{zone}", (80, 80), cidr=cidr)
                allow("nat", f"https-from-private-{zone}", (443, 443), cidr=cidr)
            send("nat", "http-out", (80, 80), cidr=ANYWHERE)
            send("nat", "https-out", (443, 443), cidr=ANYWHERE)
        return groups
