"""The Pareto frontier over results CSVs: best quality per footprint. Never imports TensorFlow."""

from effcli.frontier.load import find_results, load_results
from effcli.frontier.pareto import pareto_front, pareto_mask
from effcli.frontier.table import format_value, frontier_table

__all__ = [
    "find_results",
    "format_value",
    "frontier_table",
    "load_results",
    "pareto_front",
    "pareto_mask",
]
