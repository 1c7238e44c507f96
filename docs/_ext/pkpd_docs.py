"""Sphinx extension: the pages of the pkpd documentation that the package itself defines.

At ``builder-inited`` it writes ``docs/_generated/``: the API reference (one autodoc entry per
name in ``pkpd.__all__``), one page per library model and the scenario-key reference. The
model pages and the key references are directives (``pkpd-model``, ``pkpd-keys``)
that build docutils tables from :func:`pkpd.load_model` and the checkers' allowed-key lists,
so no text of a model file is pasted into markup (nothing to escape, nothing run).
"""

import importlib
import inspect
import tomllib
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive

import pkpd
from pkpd._keys import Keys

# (key path in a scenario file, module, name of its allowed-key list, what the table holds)
SCENARIO_SECTIONS = [
    ("(top level)", "pkpd.study.scenario", "TOP_KEYS", "the tables and values a scenario file may hold"),
    ("population", "pkpd.study.scenario", "POPULATION_KEYS", "the virtual population"),
    ("arms[i]", "pkpd.study.scenario", "ARM_KEYS", "one arm"),
    ("arms[i].doses[j]", "pkpd.study.scenario", "DOSE_KEYS", "one dose or repeated doses of an arm"),
    ("sweep", "pkpd.study.scenario", "SWEEP_KEYS", "arms made from a grid of dose values"),
    ("outputs", "pkpd.study.scenario", "OUTPUT_KEYS", "what is reported"),
    ("outputs.times", "pkpd.study.scenario", "TIME_KEYS", "the output time grid"),
    ("solver", "pkpd.study.scenario", "SOLVER_KEYS", "the ODE solver"),
    ("trial", "pkpd.study.trial_design", "TRIAL_KEYS", "crossover or parallel trial replicates"),
    ("trial.endpoint", "pkpd.study.trial_design", "ENDPOINT_KEYS", "the trial's endpoint"),
    ("search", "pkpd.study.search_spec", "SEARCH_KEYS", "the regimen search"),
    ("search.variables[i]", "pkpd.study.search_spec", "VARIABLE_KEYS", "one searched dose value"),
    ("search.constraints[i]", "pkpd.study.search_spec", "CONSTRAINT_KEYS", "one population target or limit"),
    ("search.objective", "pkpd.study.search_spec", "OBJECTIVE_KEYS", "what the search optimises"),
    ("search.tci", "pkpd.study.search_spec", "TCI_KEYS", "a target-controlled infusion added to every candidate"),
    ("uncertainty", "pkpd.study.draws", "UNCERTAINTY_KEYS", "parameter draws"),
    ("sensitivity", "pkpd.study.sensitivity_options", "SENSITIVITY_KEYS", "local sensitivity"),
    ("sensitivity.sobol", "pkpd.study.sensitivity_options", "SOBOL_KEYS", "global (Sobol) indices"),
]

# the same for a model file (models/README.md describes each key)
MODEL_FILE_SECTIONS = [
    ("(top level)", "pkpd.model.loading", "_SECTIONS", "the sections a model file may hold"),
    ("compartments.NAME", "pkpd.model.loading", "_COMPARTMENT_KEYS", "one state of the ODE system"),
    ("parameters.NAME", "pkpd.model.loading", "_PARAMETER_KEYS", "one fixed parameter (THETA)"),
    ("parameters.NAME.uncertainty", "pkpd._uncertainty", "SPEC_KEYS", "what is not known about a parameter"),
    ("[[uncertainty]]", "pkpd._uncertainty", "BLOCK_KEYS", "a joint (covariance) uncertainty of parameters"),
    ("covariates.NAME", "pkpd.model.loading", "_COVARIATE_KEYS", "one per-record input with its default"),
    ("dosing.COMPARTMENT", "pkpd.model.loading", "_DOSING_KEYS", "bioavailability, lag, modelled rate or duration of doses"),
    ("outputs.NAME", "pkpd.model.loading", "_OUTPUT_KEYS", "one output and what it is"),
]
SECTIONS = {"scenario": SCENARIO_SECTIONS, "model": MODEL_FILE_SECTIONS}


def table(headers, rows, widths=None):
    """A docutils table node: `headers` and `rows` of plain text (shown as written)."""
    tgroup = nodes.tgroup(cols=len(headers))
    for width in widths or [1] * len(headers):
        tgroup += nodes.colspec(colwidth=width)
    tgroup += nodes.thead("", _row(headers))
    tgroup += nodes.tbody("", *(_row(row) for row in rows))
    return nodes.table("", tgroup)


def _row(cells):
    return nodes.row("", *(nodes.entry("", nodes.paragraph(text=str(cell))) for cell in cells))


def _section(document_id, title, *content):
    """A titled section with a unique id under the current document."""
    section = nodes.section(ids=[nodes.make_id(f"{document_id}-{title}")])
    section += nodes.title(text=title)
    for node in content:
        section += node
    return section


def _equations(mapping):
    """``NAME = expression`` lines, one literal block."""
    return nodes.literal_block(text="\n".join(f"{name} = {expr}" for name, expr in mapping.items()))


def _uncertainty(model, name):
    """What is not known about parameter `name`: its marginal or covariance block and source, else "-"."""
    marginal = model.uncertainty.marginals.get(name)
    if marginal:
        return f"{marginal.describe()}; {marginal.source}"
    for block in model.uncertainty.blocks:
        if name in block.names:
            low, high = block.ends()[name]
            scale = "log-normal" if block.log else "normal"
            return f"joint {scale} with {', '.join(block.names)}, 2.5-97.5 % {low:.4g}-{high:.4g}; {block.source}"
    return "-"


def _variability(model, name):
    """The ``[variability]`` blocks (IIV, IOV): each parameter's form and variance, with the block's source."""
    rows = []
    for level, block in model.variability.items():
        forms = block.get("forms", ["exp"] * len(block["parameters"]))
        for i, (parameter, form) in enumerate(zip(block["parameters"], forms)):
            covaried = [other for j, other in enumerate(block["parameters"]) if j != i and block["omega"][i][j] != 0.0]
            rows.append([level.upper(), parameter, form, f"{block['omega'][i][i]:g}", ", ".join(covaried) or "-",
                         block.get("source", "")])
    return _section(name, "Variability", table(["Level", "Parameter", "Form", "Variance", "Covaries with", "Source"],
                                               rows, [1, 2, 1, 2, 3, 6]))


def _drugs(model, name):
    """The ``[drugs]`` section: what may be dosed, into which compartment by which route, and in what unit."""
    rows = []
    for drug, spec in model.drugs.items():
        routes = spec.get("routes") or {"default": spec.get("compartment", "")}
        doses = spec.get("dose_range", {})
        documented = "; ".join(f"{kind} {' to '.join(doses[kind])}" for kind in ("amount", "rate") if kind in doses)
        rows.append([drug, spec.get("unit", ""), ", ".join(f"{route}: {cmt}" for route, cmt in routes.items()),
                     documented or "-", spec.get("description", "")])
    return _section(name, "Drugs", table(["Drug", "Unit", "Routes (compartment)", "Documented doses", "Description"],
                                         rows, [2, 1, 3, 4, 6]))


class ModelDirective(Directive):
    """``pkpd-model NAME``: a library model's description, compartments, parameters (value, unit,
    source, reliability, uncertainty), covariates, drugs and routes, variability, residual error,
    equations and outputs (role, analyte, matrix), as :func:`pkpd.load_model` reads them."""
    required_arguments = 1

    def run(self):
        name = self.arguments[0]
        model = pkpd.load_model(name)
        # compartment descriptions are kept in the file only: read the TOML text (data, never run)
        described = tomllib.loads(model.source_text).get("compartments", {})
        units = ", ".join(f"{kind} {unit}" for kind, unit in model.units.items())
        parts = [nodes.paragraph(text=model.description), nodes.paragraph(text=f"Units: {units}."),
                 _section(name, "Compartments", table(
                     ["CMT", "Name", "Unit", "Description"],
                     [[model.numbers[c], c, model.compartment_units.get(c, ""), described.get(c, {}).get("description", "")]
                      for c in model.compartments], [1, 2, 2, 6])),
                 _section(name, "Parameters", table(
                     ["Name", "Value", "Unit", "Description", "Source", "Reliability", "Uncertainty"],
                     [[p.name, f"{p.value:g}", p.unit, p.description, p.source, p.reliability, _uncertainty(model, p.name)]
                      for p in model.parameters.values()], [2, 2, 2, 4, 6, 2, 5]))]
        if model.covariates:
            parts.append(_section(name, "Covariates", table(
                ["Name", "Default", "Unit", "Description", "Source"],
                [[c.name, f"{c.value:g}", c.unit, c.description, c.source] for c in model.covariates.values()],
                [2, 2, 2, 5, 5])))
        if model.drugs:
            parts.append(_drugs(model, name))
        if model.variability:
            parts.append(_variability(model, name))
        if model.residual:
            parts.append(_section(name, "Residual error", table(
                ["Output", "Proportional (SD)", "Additive (SD)", "Source"],
                [[output, f"{spec.get('proportional', 0.0):g}", f"{spec.get('additive', 0.0):g}", spec.get("source", "")]
                 for output, spec in model.residual.items()], [2, 2, 2, 8])))
        if model.derived:
            parts.append(_section(name, "Individual parameters", _equations(model.derived)))
        parts.append(_section(name, "Differential equations", _equations(model.odes)))
        parts.append(_section(name, "Outputs", table(
            ["Name", "Unit", "Role", "Analyte", "Matrix", "Event", "Description"],
            [[o.name, o.unit, o.role, o.analyte or "-", o.matrix or "-", o.event or "-", o.description]
             for o in model.outputs.values()], [2, 2, 3, 2, 2, 3, 5])))
        return parts


class KeysDirective(Directive):
    """``pkpd-keys scenario`` or ``pkpd-keys model``: every key a scenario or model file accepts and
    those it requires, from the checkers' own lists."""
    required_arguments = 1

    def run(self):
        if self.arguments[0] not in SECTIONS:
            raise self.error(f"pkpd-keys: the argument must be one of {', '.join(SECTIONS)}")
        rows = []
        for path, module, constant, what in SECTIONS[self.arguments[0]]:
            keys = getattr(importlib.import_module(module), constant)
            rows.append([path, ", ".join(keys), required(keys), what])
        return [table(["Table", "Keys it accepts", "Required", "What it describes"], rows, [3, 8, 4, 4])]


def required(keys):
    """The keys a table requires, as the checker reads them (:class:`pkpd._keys.Keys`); "-" for none."""
    return keys.requirement() if isinstance(keys, Keys) else "-"


def _api_page():
    """MyST text of the API reference: an autodoc entry per public name, in ``__all__`` order."""
    lines = ["# API reference", "", "Everything `import pkpd` offers (`pkpd.__all__`).", ""]
    for name in pkpd.__all__:
        if name == "__version__":
            lines += [f"`pkpd.__version__`: the package version, `{pkpd.__version__}`.", ""]
            continue
        obj = getattr(pkpd, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            kind = "autoexception"
        elif inspect.isclass(obj):
            kind = "autoclass"
        else:
            kind = "autofunction"
        options = ["   :members:"] if kind == "autoclass" else []
        lines += ["```{eval-rst}", f".. {kind}:: pkpd.{name}", *options, "```", ""]   # autodoc writes reST
    return "\n".join(lines)


def _model_index(names):
    lines = ["# Library models", "", "One page per model of `models/`, generated from its file.", "",
             "```{toctree}", ":maxdepth: 1", "", *names, "```", ""]
    return "\n".join(lines)


def _write(path, text):
    """Write `text` unless the file already holds it (an unchanged page is not rebuilt)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def generate(app):
    """Write the generated pages under ``<source>/_generated/`` and remove stale model pages."""
    out = Path(app.srcdir) / "_generated"
    names = pkpd.library_models()
    _write(out / "api.md", _api_page())
    _write(out / "scenario_keys.md",
           "# Scenario keys\n\nEvery key a scenario file accepts and those it requires, by table, read from the "
           "lists the scenario checker itself uses (a key not listed, or a required key missing, is refused "
           "with a one-line error).\n\n"
           "```{pkpd-keys} scenario\n```\n")
    _write(out / "models" / "index.md", _model_index(names))
    for name in names:
        _write(out / "models" / f"{name}.md", f"# {name}\n\n```{{pkpd-model}} {name}\n```\n")
    for page in (out / "models").glob("*.md"):
        if page.stem not in names and page.stem != "index":
            page.unlink()


def setup(app):
    app.add_directive("pkpd-model", ModelDirective)
    app.add_directive("pkpd-keys", KeysDirective)
    app.connect("builder-inited", generate)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
