"""The infrastructure of oms as CDKTF stacks: AWS (VPC, KMS, EKS, Kafka, Redis, DocumentDB, edge)
and the app on Kubernetes with KEDA.

Importing this package first makes the provider bindings cheap to import (see ``bindings``).
"""

from oms_infra import bindings

bindings.install()
