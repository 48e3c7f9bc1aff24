"""The Pareto frontier over results CSVs: best quality per footprint. Never imports TensorFlow.

`--where` constraints (constraints.py) filter rows before the front (pareto.py) is computed
(query.py); plot.py draws it and is the only module that imports matplotlib.
"""

from effcli.frontier.constraints import Constraint, NoMatch, apply_constraints, parse_constraint
from effcli.frontier.load import find_results, load_results
from effcli.frontier.pareto import pareto_front, pareto_mask
from effcli.frontier.query import Frontier, compute_frontier
from effcli.frontier.table import format_value, frontier_table

__all__ = [
    "Constraint",
    "Frontier",
    "NoMatch",
    "apply_constraints",
    "compute_frontier",
    "find_results",
    "format_value",
    "frontier_table",
    "load_results",
    "pareto_front",
    "pareto_mask",
    "parse_constraint",
]
