"""The shape of the package: no import cycle between pkpd's modules, and no module reaching for a
leading-underscore name of another one except those listed here (so that the list cannot grow unseen).

Both are read from the source with ``ast``: ``from . import _x``, ``from ._x import name`` (at the top
of a module or inside a function) and ``_x._name`` attribute uses of an imported module.
"""

import ast

from conftest import ROOT

PACKAGE = ROOT / "pkpd"

# Function-level (lazy) imports that close a cycle, each with its reason; the graph without them
# must be acyclic, and top-level imports may never form a cycle.
LAZY_CYCLE_EDGES = {
    # trial() accepts a scenario file and loads it, while loading a scenario checks its [trial]
    # section with _trial's parser; drop this once the [trial] parsing lives in _scenario
    ("_trial", "_scenario"),
    # search() accepts a scenario file and reads doses by the scenario's unit rules (parse_amount), while
    # loading a scenario checks its [search] section with _search's parser; as for _trial
    ("_search", "_scenario"),
    # simulate(uncertainty=) and trial(uncertainty=) hand over to the parameter draws, and each draw's
    # evaluation runs simulate() and trial()
    ("_simulate", "_draws"),
    ("_trial", "_draws"),
    # the figure set of a run ends with the uncertainty figures, which draw with _figures' helpers
    ("_figures", "_uncertainty_figures"),
}

# (importing module, module, name): leading-underscore names used across modules today. Shrink it;
# a new entry needs a reason (a public name is almost always the better fix).
PRIVATE_USES = {
    ("_model", "_units", "_parse_unit"),
    ("_model", "_units", "_per_mass"),
    ("_scenario", "_units", "_per_mass"),
    # the uncertainty figures keep the house style of the others with its helpers; public once
    # _figures is split into a package
    ("_uncertainty_figures", "_figures", "_label"),
    ("_uncertainty_figures", "_figures", "_new_figure"),
    ("_uncertainty_figures", "_figures", "_styled"),
    ("_uncertainty_figures", "_figures", "_time_scale"),
}


def _modules():
    return {path.stem: ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for path in sorted(PACKAGE.glob("*.py"))}


def _imports(name, tree, modules):
    """(target module, top level?, imported names, local aliases of modules) of each relative import."""
    top = {id(node) for node in tree.body}
    typing_only = {id(inner) for node in ast.walk(tree)   # `if TYPE_CHECKING:` imports never run
                   if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                   for statement in node.body for inner in ast.walk(statement)}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.level == 1) or id(node) in typing_only:
            continue
        if node.module:
            yield node.module.split(".")[0], id(node) in top, [a.name for a in node.names], {}
            continue
        for alias in node.names:  # from . import _x (a module), or from . import name (of __init__)
            if alias.name in modules:
                yield alias.name, id(node) in top, [], {alias.asname or alias.name: alias.name}
            else:
                yield "__init__", id(node) in top, [alias.name], {}


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


def test_no_import_cycle_but_the_listed_lazy_imports():
    edges = _graph(_modules())
    assert _cycle(edges - LAZY_CYCLE_EDGES) is None
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
    # the collectors on a made-up package: a cycle through a lazy import, a private name both ways
    modules = {"_a": ast.parse("from ._b import _hidden, shown\nfrom . import __version__\n"),
               "_b": ast.parse("def f():\n    from . import _a as a\n    return a._secret, a.public\n"),
               "__init__": ast.parse("__version__ = '1'\n")}
    assert _cycle(_graph(modules)) in (["_a", "_b", "_a"], ["_b", "_a", "_b"])
    assert _cycle(_graph(modules, top_level_only=True)) is None
    assert _private_uses(modules) == {("_a", "_b", "_hidden"), ("_b", "_a", "_secret")}
