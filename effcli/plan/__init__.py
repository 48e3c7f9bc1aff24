"""Recipe -> DAG of stage nodes with content-hashed keys; shared prefixes become shared nodes."""

from effcli.plan.build import build_plan, load_plan
from effcli.plan.dag import CACHE_VERSION, Node, Plan, Variant, node_key

__all__ = [
    "CACHE_VERSION",
    "Node",
    "Plan",
    "Variant",
    "build_plan",
    "load_plan",
    "node_key",
]
