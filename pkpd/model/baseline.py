"""The endogenous baseline of an output (magnesium's MG0), per subject.

An output may declare ``baseline``: an expression of the model's parameters and covariates in the
model files' restricted language (``"MG0"``, ``"MG0*MW_MG/10"``). Exposure AUCs of that output
are then taken above it, by default (the amount of substance the doses added, not the body's own).

The expression was checked against the whitelist when the model loaded (:mod:`pkpd.model.expressions`); here
it is evaluated over each subject's parameter values with numpy, by walking its tree: nothing is
compiled or run.
"""

import ast

import numpy as np
import pandas as pd

from . import expressions

_BINARY = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide, ast.Pow: np.power}
_COMPARE = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
            ast.Eq: np.equal, ast.NotEq: np.not_equal}
_FUNCTIONS = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "pow": np.power, "abs": np.abs}


def evaluate(text: str, values: pd.DataFrame) -> np.ndarray:
    """The expression `text` (already checked) for every row of `values` (a column per name used).

    Examples
    --------
    >>> import pandas as pd
    >>> evaluate("MG0*MW_MG/10", pd.DataFrame({"MG0": [0.7, 0.8], "MW_MG": [24.305, 24.305]})).round(4).tolist()
    [1.7014, 1.9444]
    """
    tree = expressions.parse(text, set(values.columns))
    with np.errstate(all="ignore"), expressions.deep_recursion():
        result = _value(tree, values)
    return np.broadcast_to(np.asarray(result, dtype=float), (len(values),)).copy()


def _value(node, values):
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return values[node.id].to_numpy(dtype=float)
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_value(node.left, values), _value(node.right, values))
    if isinstance(node, ast.UnaryOp):
        operand = _value(node.operand, values)
        if isinstance(node.op, ast.Not):
            return np.logical_not(operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Compare):
        result, left = True, _value(node.left, values)
        for op, comparator in zip(node.ops, node.comparators):
            right = _value(comparator, values)
            result = np.logical_and(result, _COMPARE[type(op)](left, right))
            left = right
        return result
    if isinstance(node, ast.BoolOp):
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        result = _value(node.values[0], values)
        for child in node.values[1:]:
            result = combine(result, _value(child, values))
        return result
    if isinstance(node, ast.IfExp):
        return np.where(_value(node.test, values), _value(node.body, values), _value(node.orelse, values))
    # a call: the whitelist leaves only the functions of expressions.FUNCTIONS
    name, args = node.func.id, [_value(arg, values) for arg in node.args]
    if name == "if_else":
        return np.where(*args)
    if name in ("min", "max"):
        return (np.minimum if name == "min" else np.maximum).reduce(np.broadcast_arrays(*args))
    return _FUNCTIONS[name](*args)


def baseline_values(model, output: str, parameters: pd.DataFrame) -> np.ndarray | None:
    """Each subject's baseline of `output` (None when the output declares none), shape (n_subjects,),
    in the output's unit, from the subjects' parameter and covariate values (``SimulationResult.parameters``)."""
    text = model.outputs[output].baseline
    return evaluate(text, parameters) if text else None
