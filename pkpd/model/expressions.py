"""The restricted expression language of model files.

An expression is parsed by Python's :mod:`ast` in ``eval`` mode and accepted
only if every node is on a whitelist: numbers, names the model declares,
``+ - * / **``, unary minus, comparisons, ``and``/``or``/``not``, the
conditional ``a if condition else b`` (also spelt ``if_else(condition, a, b)``)
and the functions ``exp log sqrt pow min max abs``. Attribute access,
subscripts, lambdas, comprehensions, strings and any other call are refused,
so a model file can never run arbitrary Python.

Accepted expressions are rewritten into Numba-compilable Python source with
every model name prefixed (``CL`` -> ``v_CL``) so that no model name can
collide with Python's.  :func:`derivative` differentiates an expression
symbolically; the engine uses it to decide whether a model's equations are
linear in the compartment amounts (the exact fast path) and to build the
Jacobian of stiff solvers.

Trees are walked recursively (here, by :func:`ast.unparse` and by Python's
compiler), so an expression may nest at most ``MAX_DEPTH`` levels (a sum of
about that many terms); the walks run inside :func:`deep_recursion`, which
lifts Python's recursion limit for the depth that allows.
"""

import ast
import contextlib
import copy
import math
import sys
import threading

from .._errors import ExpressionError

FUNCTIONS = {"exp": 1, "log": 1, "sqrt": 1, "pow": 2, "min": None, "max": None,
             "abs": 1, "if_else": 3}
_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
_COMPARE = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
PREFIX = "v_"
MAX_DEPTH = 1000
# Python frames per level of the deepest walk (ast.unparse of a derivative, which nests
# up to about 3 levels per level of its expression), with a margin
_FRAMES_PER_LEVEL = 16
_recursion = {"lock": threading.RLock(), "entered": 0}


@contextlib.contextmanager
def deep_recursion():
    """Lift Python's recursion limit while expression trees up to MAX_DEPTH levels are
    walked (restored on exit; nested and concurrent uses share one lift)."""
    with _recursion["lock"]:
        limit = sys.getrecursionlimit()
        _recursion["entered"] += 1
        if _recursion["entered"] == 1:
            sys.setrecursionlimit(max(limit, 1000 + _FRAMES_PER_LEVEL * MAX_DEPTH))
        try:
            yield
        finally:
            _recursion["entered"] -= 1
            if _recursion["entered"] == 0:
                sys.setrecursionlimit(limit)


def depth(node):
    """Nesting depth of an expression tree (1 for a name or a number), without recursion."""
    deepest = 0
    pending = [(node, 1)]
    while pending:
        node, level = pending.pop()
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr))
    return deepest


def parse(text, allowed_names):
    """Parse and check one expression.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"CL/V*CENT"``.
    allowed_names : collection of str
        Names the expression may use at this place of the model file.

    Returns
    -------
    ast.expr
        The checked tree (the body of the ``Expression`` node).

    Raises
    ------
    ExpressionError
        With a message naming the offending construct or name.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ExpressionError("must be an expression in a string or a number", value=text, got=repr(text))
    text = str(text)
    try:
        with _recursion["lock"]:   # not while another thread lifts the limit: the C parser's depth stays bounded
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ExpressionError(f"is not a valid expression ({error.msg}): {text!r}", value=text, got=None) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"is nested too deeply (the limit is {MAX_DEPTH} levels, "
                              f"e.g. a sum of about {MAX_DEPTH} terms): {text[:60]!r}...", value=text,
                              got=None) from None
    levels = depth(tree.body)
    if levels > MAX_DEPTH:
        raise ExpressionError(f"is nested too deeply: {levels} levels (the limit is {MAX_DEPTH}, "
                              f"e.g. a sum of about {MAX_DEPTH} terms): {text[:60]!r}...", value=text, got=None)
    with deep_recursion():
        _check(tree.body, set(allowed_names), text)
    return tree.body


def _check(node, allowed, text):
    def fail(what):
        raise ExpressionError(f"{what} is not allowed in {text!r}", value=text, got=None)

    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            fail(f"the constant {node.value!r}")
        try:
            value = float(node.value)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            shown = ast.get_source_segment(text.strip(), node) or ast.unparse(node)
            shown = shown if len(shown) <= 24 else f"{shown[:12]}...({len(shown)} digits)"
            raise ExpressionError(f"the number {shown} is not a finite double (largest 1.8e308) in {text!r}",
                                  value=text, got=None)
        return
    if isinstance(node, ast.Name):
        if node.id not in allowed:
            raise ExpressionError(f"unknown name {node.id!r} in {text!r}", value=text, got=None)
        return
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.BitXor):
            fail("'^' (write powers as a**b or pow(a, b))")
        if not isinstance(node.op, _BINARY):
            fail(f"the operator {type(node.op).__name__}")
        _check(node.left, allowed, text)
        _check(node.right, allowed, text)
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
            fail(f"the operator {type(node.op).__name__}")
        _check(node.operand, allowed, text)
        return
    if isinstance(node, ast.Compare):
        if not all(isinstance(op, _COMPARE) for op in node.ops):
            fail("this comparison")
        for child in [node.left, *node.comparators]:
            _check(child, allowed, text)
        return
    if isinstance(node, ast.BoolOp):
        for child in node.values:
            _check(child, allowed, text)
        return
    if isinstance(node, ast.IfExp):
        for child in (node.test, node.body, node.orelse):
            _check(child, allowed, text)
        return
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            fail(f"calling {name!r} (functions: {', '.join(sorted(FUNCTIONS))})")
        if node.keywords:
            fail("a keyword argument")
        arity = FUNCTIONS[node.func.id]
        if arity is not None and len(node.args) != arity:
            raise ExpressionError(f"{node.func.id}() takes {arity} argument(s); got {len(node.args)} in {text!r}",
                                  value=text, got=None)
        if arity is None and len(node.args) < 2:
            raise ExpressionError(f"{node.func.id}() needs at least 2 arguments in {text!r}", value=text, got=None)
        for child in node.args:
            _check(child, allowed, text)
        return
    if isinstance(node, ast.Attribute):
        fail("attribute access")
    fail(f"a {type(node).__name__} node")


def names(node):
    """The set of model names an expression uses."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} - set(FUNCTIONS)


class _ToNumba(ast.NodeTransformer):
    def visit_Name(self, node):
        return ast.copy_location(ast.Name(id=PREFIX + node.id, ctx=ast.Load()), node)

    def visit_Constant(self, node):
        return ast.copy_location(ast.Constant(value=float(node.value)), node)

    def visit_Call(self, node):
        name = node.func.id
        if name in ("min", "max") and len(node.args) > 2:   # max(a, b, c) = max(max(a, b), c): two at a time
            return self.visit_Call(_call(name, _call(name, *node.args[:-1]), node.args[-1]))
        args = [self.visit(a) for a in node.args]   # (each node once: the transformer renames in place)
        if name == "if_else":
            return ast.IfExp(test=args[0], body=args[1], orelse=args[2])
        if name == "pow":
            return ast.BinOp(left=args[0], op=ast.Pow(), right=args[1])
        if name in ("exp", "log", "sqrt"):
            func = ast.Attribute(value=ast.Name(id="math", ctx=ast.Load()), attr=name, ctx=ast.Load())
            return ast.Call(func=func, args=args, keywords=[])
        return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=args, keywords=[])


def to_source(node):
    """Numba-compilable source for a checked expression (names prefixed with ``v_``).

    Raises ExpressionError when Python cannot compile it: a derivative of a long product
    of amounts nests more parentheses than Python's parser takes (200)."""
    with deep_recursion():
        # re-parse first: derivative trees share sub-trees, which a transformer would rename twice
        try:
            tree = ast.parse(ast.unparse(node), mode="eval").body
        except (SyntaxError, RecursionError, MemoryError):
            raise ExpressionError("is nested too deeply for Python to compile (more than 200 levels of "
                                  "parentheses)") from None
        tree = _ToNumba().visit(tree)
        return ast.unparse(ast.fix_missing_locations(tree))


class _Substitute(ast.NodeTransformer):
    def __init__(self, values):
        self.values = values

    def visit_Name(self, node):
        if node.id in self.values:
            return ast.copy_location(ast.Constant(value=float(self.values[node.id])), node)
        return node


def _is_zero(node):
    return isinstance(node, ast.Constant) and node.value == 0


class _Fold(ast.NodeTransformer):
    """Fold what a zero makes trivial: 0*x, x*0, 0/x -> 0; x+0, 0+x, x-0 -> x; -0 -> 0."""

    def visit_BinOp(self, node):
        self.generic_visit(node)
        left, right = node.left, node.right
        if isinstance(node.op, ast.Mult) and (_is_zero(left) or _is_zero(right)):
            return ast.Constant(value=0.0)
        if isinstance(node.op, ast.Div) and _is_zero(left):
            return ast.Constant(value=0.0)
        if isinstance(node.op, ast.Add) and _is_zero(left):
            return right
        if isinstance(node.op, (ast.Add, ast.Sub)) and _is_zero(right):
            return left
        return node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.USub) and _is_zero(node.operand):
            return ast.Constant(value=0.0)
        return node


def substitute(node, values):
    """The expression with names replaced by constants and zero terms folded away."""
    with deep_recursion():
        tree = ast.parse(ast.unparse(node), mode="eval").body
        tree = _Substitute(values).visit(tree)
        return ast.fix_missing_locations(_Fold().visit(tree))


# --- symbolic differentiation -------------------------------------------------
# None stands for an exact zero; _ONE for an exact one. The constructors below
# simplify with them so that d(KA*DEPOT)/dDEPOT is plainly KA, which is what
# the linearity test relies on.

def _const(value):
    return ast.Constant(value=value)


def _is_one(node):
    return isinstance(node, ast.Constant) and node.value == 1


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return ast.BinOp(left=a, op=ast.Add(), right=b)


def _neg(a):
    if a is None:
        return None
    return ast.UnaryOp(op=ast.USub(), operand=a)


def _sub(a, b):
    return _add(a, _neg(b))


def _mul(a, b):
    if a is None or b is None:
        return None
    if _is_one(a):
        return b
    if _is_one(b):
        return a
    return ast.BinOp(left=a, op=ast.Mult(), right=b)


def _div(a, b):
    if a is None:
        return None
    if _is_one(b):
        return a
    return ast.BinOp(left=a, op=ast.Div(), right=b)


def _call(name, *args):
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


class NotDifferentiable(ValueError):
    """Raised for constructs whose derivative is not defined symbolically here."""


def derivative(node, variable, known=None):
    """d(node)/d(variable) as an expression tree, or None when identically zero.

    Parameters
    ----------
    node : ast.expr
        A checked expression.
    variable : str
        The name to differentiate by.
    known : dict of str to ast.expr, optional
        Derivatives of intermediate names (chain rule through derived variables).
    """
    with deep_recursion():
        return _derivative(node, variable, known or {})


def _derivative(node, variable, known):
    def d(n):
        return _derivative(n, variable, known)

    if isinstance(node, ast.Constant):
        return None
    if isinstance(node, ast.Name):
        if node.id == variable:
            return _const(1.0)
        return copy.deepcopy(known.get(node.id))
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            return _neg(d(node.operand))
        if isinstance(node.op, ast.UAdd):
            return d(node.operand)
        return None  # `not` is piecewise constant
    if isinstance(node, ast.BinOp):
        u, v = node.left, node.right
        du, dv = d(u), d(v)
        if isinstance(node.op, ast.Add):
            return _add(du, dv)
        if isinstance(node.op, ast.Sub):
            return _sub(du, dv)
        if isinstance(node.op, ast.Mult):
            return _add(_mul(du, v), _mul(u, dv))
        if isinstance(node.op, ast.Div):
            if dv is None:
                return _div(du, v)
            return _div(_sub(_mul(du, v), _mul(u, dv)), ast.BinOp(left=v, op=ast.Pow(), right=_const(2.0)))
        if isinstance(node.op, ast.Pow):
            if dv is None:  # u**c: c*u**(c-1)*du
                exponent = ast.BinOp(left=v, op=ast.Sub(), right=_const(1.0))
                return _mul(_mul(v, ast.BinOp(left=u, op=ast.Pow(), right=exponent)), du)
            # u**v = exp(v*log(u))
            inner = _add(_mul(dv, _call("log", u)), _mul(v, _div(du, u)))
            return _mul(node, inner)
    if isinstance(node, ast.IfExp):
        body, orelse = d(node.body), d(node.orelse)
        if body is None and orelse is None:
            return None
        return ast.IfExp(test=node.test, body=body or _const(0.0), orelse=orelse or _const(0.0))
    if isinstance(node, (ast.Compare, ast.BoolOp)):
        return None
    if isinstance(node, ast.Call):
        name, args = node.func.id, node.args
        if name == "if_else":
            return d(ast.IfExp(test=args[0], body=args[1], orelse=args[2]))
        if name == "pow":
            return d(ast.BinOp(left=args[0], op=ast.Pow(), right=args[1]))
        if name == "exp":
            return _mul(node, d(args[0]))
        if name == "log":
            return _div(d(args[0]), args[0])
        if name == "sqrt":
            return _div(d(args[0]), _mul(_const(2.0), node))
        if name == "abs":
            da = d(args[0])
            if da is None:
                return None
            test = ast.Compare(left=args[0], ops=[ast.GtE()], comparators=[_const(0.0)])
            return ast.IfExp(test=test, body=da, orelse=_neg(da))
        if name in ("min", "max"):
            # piecewise: derivative of the argument that is selected
            if all(d(a) is None for a in args):
                return None
            if len(args) > 2:   # max(a, b, c) = max(max(a, b), c)
                return d(_call(name, _call(name, *args[:-1]), args[-1]))
            a, b = args
            op = ast.LtE() if name == "min" else ast.GtE()
            test = ast.Compare(left=a, ops=[op], comparators=[b])
            return ast.IfExp(test=test, body=d(a) or _const(0.0), orelse=d(b) or _const(0.0))
    raise NotDifferentiable(ast.unparse(node))
