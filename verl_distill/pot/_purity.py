"""Which programs may share one sandboxed fork (stdlib only: the worker loads this file by path).

Why: a fork per program is the simple way to keep programs from changing each other's results, but on small VMs a
fork costs ~1 ms of page faults, more than running a typical word-problem program. Most programs are plain
arithmetic on local names; such a program cannot reach any state another program could see, so several of them can
run one after another in the same forked child (each in a fresh namespace, each with its own deadline).

A program is "pure" when its syntax tree only uses the allow-listed nodes below and:
- every name is ``math``, a pure builtin (``SAFE``), or not a builtin at all (so the program's own); never another
  pre-imported module such as ``sympy`` (its caches and settings are shared state);
- no name or attribute starts with ``_`` (no dunders: no ``__class__``/``__globals__``/``__builtins__`` escapes);
- attributes are only read, never assigned or deleted (``math.sqrt = ...`` is impure);
- no import other than of ``math``; no global/nonlocal, class, try/with/raise, async, yield, decorator.
Everything else (imports, sympy, exceptions, introspection) runs alone in its own fork, as before.

LIMITS: purity is about shared *state*, not about time or memory: a pure program can still loop forever or allocate
too much; the worker then kills the group and re-runs the programs after it, each program keeping its own timeout.
A program that hits MemoryError in a group is re-run alone, so garbage left by an earlier program cannot fail it.
"""

from __future__ import annotations

import ast
import builtins

SAFE = frozenset(
    {"math", "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "int", "len", "list",
     "map", "max", "min", "pow", "print", "range", "reversed", "round", "set", "sorted", "str", "sum", "tuple", "zip"}
)  # fmt: skip

_BUILTINS = frozenset(dir(builtins))
_NODES = (
    ast.Module, ast.FunctionDef, ast.arguments, ast.arg, ast.Return, ast.Assign, ast.AugAssign, ast.AnnAssign,
    ast.Expr, ast.If, ast.For, ast.While, ast.Break, ast.Continue, ast.Pass, ast.Delete, ast.Name, ast.Constant,
    ast.Attribute, ast.Subscript, ast.Slice, ast.Starred, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare,
    ast.IfExp, ast.Call, ast.keyword, ast.Lambda, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.ListComp,
    ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.comprehension, ast.JoinedStr, ast.FormattedValue,
    ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.alias, ast.Import, ast.ImportFrom,
)  # fmt: skip


def _name_is_safe(name: str, shared: frozenset[str]) -> bool:
    # A builtin outside SAFE is refused even as a local name: a local ``setattr = 0`` in one function would make
    # ``setattr`` look like the program's own name in another, where it resolves to the real builtin.
    return not name.startswith("_") and name not in shared and (name in SAFE or name not in _BUILTINS)


def _node_is_pure(node: ast.AST, shared: frozenset[str]) -> bool:
    if not isinstance(node, _NODES):
        return False
    if isinstance(node, ast.Name):
        return _name_is_safe(node.id, shared)
    if isinstance(node, ast.Attribute):
        return isinstance(node.ctx, ast.Load) and not node.attr.startswith("_")
    if isinstance(node, ast.FunctionDef):
        return not node.decorator_list and _name_is_safe(node.name, shared)
    if isinstance(node, ast.arg):
        return _name_is_safe(node.arg, shared)
    if isinstance(node, ast.Import):  # ``import math`` only re-binds the already imported module
        return all(a.name == "math" and _name_is_safe(a.asname or a.name, shared) for a in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.module == "math" and not node.level
    if isinstance(node, ast.alias):
        return node.name == "*" or _name_is_safe(node.asname or node.name, shared)
    return True


def is_pure(tree: ast.Module, shared: frozenset[str] = frozenset()) -> bool:
    """Whether a parsed program may share a forked child with other pure programs (see the module docstring).

    ``shared``: names of pre-imported modules other than ``math`` (e.g. ``sympy``), which a pure program may not use.
    """
    return all(_node_is_pure(node, shared) for node in ast.walk(tree))
