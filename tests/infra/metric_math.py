"""Evaluate a synthesized template's CloudWatch metric math at one instant, to check what an alarm
or a scaling policy would see for given metric values.

Covers what the stack's expressions use: numbers, `+ - * /`, comparisons, `AND`, `IF(c, a, b)`
and `FILL(m, value)`. A missing metric is NaN and so is any result computed from one, as
CloudWatch drops such a data point; dividing by zero drops it too.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

NAN = math.nan

_ARITHMETIC: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: lambda a, b: NAN if b == 0 else a / b,
}
_COMPARISON: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def evaluate(queries: list[dict[str, Any]], values: Mapping[str, float | None]) -> float:
    """The value of the query returning data, with `values` for the metrics by query id
    (absent or None: missing)."""
    by_id = {query["Id"]: query for query in queries}

    def value_of(query_id: str) -> float:
        query = by_id[query_id]
        if "Expression" not in query:
            given = values.get(query_id)
            return NAN if given is None else float(given)
        tree = ast.parse(query["Expression"].replace(" AND ", " and "), mode="eval")
        return _evaluate(tree.body, value_of)

    (returned,) = [query["Id"] for query in queries if query.get("ReturnData", True)]
    return value_of(returned)


def _evaluate(node: ast.expr, value_of: Callable[[str], float]) -> float:
    def sub(child: ast.expr) -> float:
        return _evaluate(child, value_of)

    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name):
        return value_of(node.id)
    if isinstance(node, ast.BinOp):
        left, right = sub(node.left), sub(node.right)
        return _ARITHMETIC[type(node.op)](left, right)
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, right = sub(node.left), sub(node.comparators[0])
        if math.isnan(left) or math.isnan(right):
            return NAN
        return float(_COMPARISON[type(node.ops[0])](left, right))
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        operands = [sub(v) for v in node.values]
        return NAN if any(map(math.isnan, operands)) else float(all(operands))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id == "IF":
            condition, if_true, if_false = node.args
            test = sub(condition)
            return NAN if math.isnan(test) else sub(if_true if test else if_false)
        if node.func.id == "FILL":
            series, fill = node.args
            current = sub(series)
            return sub(fill) if math.isnan(current) else current
    raise ValueError(f"not metric math this evaluator knows: {ast.dump(node)}")
