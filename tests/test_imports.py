"""The shape of the package: no import cycle between pkpd's modules, and no module reaching for a
leading-underscore name of another one except those listed here (so that the list cannot grow unseen).

Every module of pkpd and of its subpackages (``pkpd/**/*.py``) is read with ``ast``, and named by its
dotted path inside pkpd (``_simulate``, ``figures.style``; a package by its folder, ``figures``; pkpd's own
``__init__`` as ``pkpd``). Imports seen: relative ones at any depth (``from . import _x``,
``from ._x import name``, ``from ..x import name``) and absolute ones of pkpd (``from pkpd._x import
name``), at the top of a module or inside a function, and ``_x._name`` attribute uses of an imported
module; ``if TYPE_CHECKING:`` imports never run and are left out.
"""

import ast

from conftest import ROOT

PACKAGE = ROOT / "pkpd"
ROOT_NAME = "pkpd"   # the name of pkpd/__init__.py in the graph

# (importing module, module, name): leading-underscore names used across modules. Keep it empty;
# a new entry needs a reason (a public name is almost always the better fix).
PRIVATE_USES: set[tuple[str, str, str]] = set()


def _name(parts):
    return ".".join(parts) or ROOT_NAME


def _modules():
    """{dotted name: syntax tree} of every module of pkpd and its subpackages."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if "__pycache__" in parts:
            continue
        modules[_name(parts[:-1] if parts[-1] == "__init__" else parts)] = ast.parse(
            path.read_text(encoding="utf-8"), filename=str(path))
    return modules


def _package_of(name, modules):
    """The parts of the package a module's relative imports start from (a package: itself)."""
    parts = () if name == ROOT_NAME else tuple(name.split("."))
    is_package = name == ROOT_NAME or any(other.startswith(name + ".") for other in modules)
    return parts if is_package else parts[:-1]


def _imports(name, tree, modules):
    """(target module, top level?, imported names, local aliases of modules) of each import of a pkpd module."""
    top = {id(node) for node in tree.body}
    typing_only = {id(inner) for node in ast.walk(tree)   # `if TYPE_CHECKING:` imports never run
                   if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                   for statement in node.body for inner in ast.walk(statement)}
    package = _package_of(name, modules)
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or id(node) in typing_only:
            continue
        if node.level:
            base = package[:len(package) - (node.level - 1)] + tuple(node.module.split(".") if node.module else ())
        elif node.module and node.module.split(".")[0] == ROOT_NAME:
            base = tuple(node.module.split(".")[1:])
        else:
            continue
        for alias in node.names:  # from .x import y: y a module of x, or a name x defines
            module = _name(base + (alias.name,))
            if module in modules:
                yield module, id(node) in top, [], {alias.asname or alias.name: module}
            else:
                yield _name(base), id(node) in top, [alias.name], {}


def _graph(modules, *, top_level_only=False):
    edges = set()
    for name, tree in modules.items():
        for target, top, _, _ in _imports(name, tree, modules):
            if target != name and (top or not top_level_only):
                edges.add((name, target))
    return edges


def _cycle(edges):
    """One cycle of the directed graph `edges` as a list of modules, or None."""
    successors = {}
    for a, b in edges:
        successors.setdefault(a, set()).add(b)
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(successors.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(successors):
        if node not in state and (found := visit(node)):
            return found
    return None


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_import_cycle_at_the_top_level():
    assert _cycle(_graph(_modules(), top_level_only=True)) is None


def test_no_import_cycle_even_through_function_level_imports():
    edges = _graph(_modules())
    assert _cycle(edges) is None
    assert ("_trial", "_distributed") not in edges and ("_distributed", "_trial") not in edges


def _private_uses(modules):
    """(module, other module, name) of every leading-underscore name a module takes from another."""
    found = set()
    for name, tree in modules.items():
        aliases = {}
        for target, _, names, bound in _imports(name, tree, modules):
            aliases.update(bound)
            found |= {(name, target, imported) for imported in names if _private(imported)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and _private(node.attr)):
                found.add((name, aliases[node.value.id], node.attr))
    return found


def test_only_the_listed_private_names_cross_module_boundaries():
    assert _private_uses(_modules()) == PRIVATE_USES


def test_the_checks_see_what_they_look_for():
    # the collectors on a made-up package: a cycle through a lazy import, a private name both ways,
    # a subpackage reaching up (..), into itself (..sub) and by an absolute import (pkpd._b)
    modules = {"_a": ast.parse("from ._b import _hidden, shown\nfrom . import __version__\n"),
               "_b": ast.parse("def f():\n    from . import _a as a\n    return a._secret, a.public\n"),
               ROOT_NAME: ast.parse("__version__ = '1'\n"),
               "sub": ast.parse("from .inner import _tool\n"),
               "sub.inner": ast.parse("from .._a import shown\nfrom pkpd._b import _helper\n"
                                      "from ..sub import deep\n"),
               "sub.deep": ast.parse("def g():\n    return 1\n")}
    assert _cycle(_graph(modules)) in (["_a", "_b", "_a"], ["_b", "_a", "_b"])
    assert _cycle(_graph(modules, top_level_only=True)) is None
    assert {("sub", "sub.inner"), ("sub.inner", "_a"), ("sub.inner", "_b"),
            ("sub.inner", "sub.deep")} <= _graph(modules)
    assert _private_uses(modules) == {("_a", "_b", "_hidden"), ("_b", "_a", "_secret"), ("sub", "sub.inner", "_tool"),
                                      ("sub.inner", "_b", "_helper")}
    assert set(_modules()) >= {ROOT_NAME, "study.run", "engine", "engine.subject", "figures", "figures.style"}
