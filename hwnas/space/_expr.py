"""A tiny, safe expression language for constraints between parameters (``rank < width``).

Safe means bounded as well as side-effect free: an expression is at most :data:`MAX_CHARS` characters nested at
most :data:`MAX_DEPTH` deep, and no step of its evaluation may build an integer beyond :data:`MAX_INT_BITS`
bits or a string or tuple longer than :data:`MAX_LENGTH` (``9 ** 9 ** 9`` or ``'a' * 10 ** 10`` would
otherwise run for minutes in C, deaf to signals). The sizes are checked before the step that would exceed
them. Such a step, a float overflow or a call like ``min(())`` raises :class:`ExprError`; a ``TypeError`` or
``ZeroDivisionError`` means the values at hand do not satisfy the expression.
"""

from __future__ import annotations

import ast
import operator
from typing import Any, Mapping

#: Bounds of an expression's text and nesting (a constraint is a line, not a program).
MAX_CHARS = 1000
MAX_DEPTH = 32
#: Bounds of the values an evaluation may build.
MAX_INT_BITS = 4096
MAX_LENGTH = 1000

_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_CMPOPS = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_FUNCS = {"min": min, "max": max, "abs": abs, "len": len, "sum": sum}
_CONSTANTS = (bool, int, float, str, type(None))


class ExprError(ValueError):
    """The expression is not in the allowed language, or cannot be evaluated within its bounds."""


def parse(text: str) -> ast.Expression:
    """Parse and check that only allowed syntax is used; raise :class:`ExprError` otherwise."""
    if len(text) > MAX_CHARS:
        raise ExprError(f"an expression may be at most {MAX_CHARS} characters long, got {len(text)}")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as exc:  # the parser's own nesting limits
        raise ExprError(f"syntax error in {text!r}: {getattr(exc, 'msg', 'nested too deeply')}") from None
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExprError(f"an expression may be nested at most {MAX_DEPTH} levels deep")
        ok = isinstance(
            node,
            (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.BinOp,
             ast.Compare, ast.Name, ast.Load, ast.Constant, ast.Call, ast.Tuple, ast.List,
             *_BINOPS, *_CMPOPS),
        )
        if not ok:
            raise ExprError(f"{type(node).__name__} is not allowed in {text!r}")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _FUNCS):
            raise ExprError(f"only the functions {sorted(_FUNCS)} may be called in {text!r}")
        if isinstance(node, ast.Constant) and not isinstance(node.value, _CONSTANTS):
            raise ExprError(f"the constant {node.value!r} is not allowed in {text!r} (numbers, strings, True, "
                            "False, None)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return tree


def names(tree: ast.Expression) -> set[str]:
    """Parameter names an expression refers to (function names excluded)."""
    funcs = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - funcs


def expression_names(text: str) -> set[str]:
    """The parameter names a constraint expression refers to (:class:`ExprError` if it is not allowed)."""
    return names(parse(text))


def evaluate(tree: ast.Expression, env: Mapping[str, Any]) -> Any:
    """Evaluate a parsed expression against parameter values (see the module docstring for what it raises)."""
    try:
        return _eval(tree.body, env)
    except ExprError:
        raise
    except OverflowError as exc:  # 2.0 ** 10000
        raise ExprError(f"a number too large: {exc.args[-1]}") from None
    except ValueError as exc:  # min(()): the expression's fault, not the values'
        raise ExprError(str(exc)) from None


def _eval(node: ast.AST, env: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_eval(e, env) for e in node.elts)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, env)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, env) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, env), _eval(node.right, env)
        _check_size(type(node.op), left, right)
        return _bounded(_BINOPS[type(node.op)](left, right))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, env)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return _bounded(_FUNCS[node.func.id](*(_eval(a, env) for a in node.args)))
    raise ExprError(f"cannot evaluate {type(node).__name__}")


def _check_size(op: type, left: Any, right: Any) -> None:
    """ExprError before a ``**`` or ``*`` whose result would exceed the bounds; TypeError for ``%`` on a string
    (it would format, and ``'%9999999999d' % 1`` is as large as it likes)."""
    if op is ast.Pow and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
        if (abs(left).bit_length() - 1) * right >= MAX_INT_BITS:  # the result has more bits than that
            raise ExprError(f"a power beyond {MAX_INT_BITS} bits")
    elif op is ast.Mult and isinstance(left, int) and isinstance(right, int):
        if abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS + 1:
            raise ExprError(f"a product beyond {MAX_INT_BITS} bits")
    elif op is ast.Mult and isinstance(left, (str, tuple)) != isinstance(right, (str, tuple)):
        sequence, count = (left, right) if isinstance(left, (str, tuple)) else (right, left)
        if isinstance(count, int) and len(sequence) * count > MAX_LENGTH:
            raise ExprError(f"a string or tuple of {len(sequence) * count} items (at most {MAX_LENGTH})")
    elif op is ast.Mod and isinstance(left, str):
        raise TypeError("% does not format strings in a constraint")


def _bounded(value: Any) -> Any:
    if isinstance(value, int) and abs(value).bit_length() > MAX_INT_BITS:
        raise ExprError(f"an integer beyond {MAX_INT_BITS} bits")
    if isinstance(value, (str, tuple)) and len(value) > MAX_LENGTH:
        raise ExprError(f"a string or tuple of {len(value)} items (at most {MAX_LENGTH})")
    return value
