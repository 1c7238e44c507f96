"""Model files: parsing, checking and compiling the model's functions for the engine.

A model file is TOML (see ``models/README.md`` for the format). Loading checks
every section against the rules of the format and raises :class:`ModelError`
naming the file, the key and the problem. Compilation writes a Python module of
the model's seven small functions (:mod:`pkpd.engine.interface`) to a cache folder
under a name keyed by the SHA-256 of the generated source and the Numba version;
Numba's on-disk cache beside that file means an unchanged model is compiled once,
ever (about a second), and the engine itself (:mod:`pkpd.engine`), compiled once
per installation, takes those functions as arguments.

Nothing a model file says reaches the generated source as text: names are
checked identifiers (prefixed), numbers and expressions are re-printed from
checked trees, and the model's name and file name appear only as ``repr()``
in a comment. A cache entry that does not load (a truncated or garbled ``.py``,
``.nbi`` or ``.nbc``) is reported once on stderr, removed and rebuilt.
"""

import ast
import copy
import dataclasses
import hashlib
import importlib.util
import math
import os
import re
import sys
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numba

from . import _expr
from ._errors import ModelError, PkpdError, suggestion
from ._keys import Keys
from ._numba_cache import guard
from ._uncertainty import ParameterUncertainty, parse_uncertainty

__all__ = ["Model", "load_model", "library_models", "model_directories"]

CODEGEN_VERSION = "4"   # 2: Numba cache files end in a checksum; 3: model functions only, the engine apart; 4: model_dopri
_SECTIONS = ["model", "compartments", "parameters", "covariates", "derived", "odes",
             "dosing", "outputs", "initial", "variability", "residual", "drugs", "uncertainty"]
# Each table's keys, required ones included (pkpd/_keys.py): the checker below and the docs' key reference read them.
_PARAMETER_KEYS = Keys(["value", "unit", "description", "source", "reliability", "assumption", "allowed", "uncertainty"],
                       required=["value", "unit", "description", "source"])
_COVARIATE_KEYS = Keys(["value", "unit", "description", "source", "reliability", "assumption", "distribution"],
                       required=["value"])
# What an output is (models/README.md, "Outputs"): tables, console lines and figures choose by role, never by name.
OUTPUT_ROLES = {
    "concentration": "a concentration of one analyte in one matrix (requires analyte and matrix)",
    "amount": "an amount of drug (in a compartment, excreted, ...)",
    "effect": "a drug effect (fraction of the maximal effect, a fall in blood pressure, ...)",
    "adverse_event_probability": "the probability of an adverse event at this time (requires event); "
                                 "a subject's incidence is its maximum over time",
    "pain_score": "a pain score (e.g. NRS 0-10)",
    "other": "anything else: indicators, ratios, individual parameters",
}
# Where a concentration is measured (or, for an effect site, where it is modelled to act).
MATRICES = ("arterial plasma", "venous plasma", "plasma", "arterial blood", "venous blood", "blood", "serum",
            "CSF", "effect site")
_ROLE_KEYS = {"analyte": "concentration", "matrix": "concentration", "event": "adverse_event_probability"}
_OUTPUT_KEYS = Keys(["expr", "unit", "role", "analyte", "matrix", "event", "label", "baseline", "description", "source",
                     "reliability", "assumption"], required=["expr", "role"],
                    required_when={item: f"for an output of role {role}" for item, role in _ROLE_KEYS.items()})
_COMPARTMENT_KEYS = Keys(["number", "description", "unit"], required=["number"])
_DOSING_KEYS = {"F": "bioavailability", "ALAG": "lag time", "R": "modelled rate", "D": "modelled duration"}
_RESERVED = {"ID", "TIME", "EVID", "AMT", "CMT", "RATE", "II", "ADDL", "SS", "MDV", "DV", "REC"}
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_. -]{0,63}")
_MODULE_PREFIX_LENGTH = 32       # characters of the model name kept in its module's file name
# (model text hash, cache folder) -> (module name, generated module, compiled kernels or None), for this process: a model's
# copies share them; an entry counts only while its module is the one imported under that name
_LOADED: dict[tuple[str, Path], tuple[str, object, object]] = {}


def model_directories():
    """Folders searched for library models: ``$PKPD_MODEL_PATH`` entries, then ``models/``."""
    folders = [Path(p) for p in os.environ.get("PKPD_MODEL_PATH", "").split(os.pathsep) if p]
    folders.append(Path(__file__).resolve().parent.parent / "models")
    return folders


def library_models() -> list[str]:
    """Names of the models in the library folders, sorted."""
    found: set[str] = set()
    for folder in model_directories():
        if folder.is_dir():
            found.update(p.stem for p in folder.glob("*.toml"))
    return sorted(found)


def cache_directory():
    """Where generated model code and Numba's cache live (``$PKPD_CACHE_DIR`` or ``~/.cache/pkpd``).

    Raises PkpdError when that path exists and is not a folder."""
    base = os.environ.get("PKPD_CACHE_DIR")
    if base:
        folder = Path(base)
    else:
        folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pkpd"
    if folder.exists() and not folder.is_dir():
        raise PkpdError(f"{_cache_label(folder)}: not a folder")
    return folder


def _cache_label(folder):
    """How messages name the cache folder: by the variable that chose it, when one did."""
    base = os.environ.get("PKPD_CACHE_DIR")
    return f"PKPD_CACHE_DIR={_printable(base)}" if base else f"model cache folder {_printable(str(folder))}"


def _printable(text):
    """`text` as is when it prints on one line, else its repr (a file name may hold a newline)."""
    return text if text.isprintable() else repr(text)


@dataclass(frozen=True)
class Parameter:
    """A fixed model parameter (THETA): value, unit and where it comes from."""
    name: str
    value: float
    unit: str
    description: str
    source: str
    reliability: str
    allowed: tuple = ()      # the only values a switch parameter may take (empty: any finite number)


@dataclass(frozen=True)
class Output:
    """A model output: its expression, unit and what it is (``role``; for a concentration the
    ``analyte`` and ``matrix``, for an adverse-event probability the ``event``)."""
    name: str
    expression: str
    unit: str
    description: str
    role: str = "other"
    analyte: str = ""
    matrix: str = ""
    event: str = ""
    words: str = ""       # the file's ``label``: the output named in words ("Fall in systolic blood pressure")
    baseline: str = ""    # the file's ``baseline``: the endogenous level, an expression of parameters and covariates

    @property
    def label(self):
        """How tables, console lines and figure axes name the output, with its unit.

        Examples
        --------
        >>> import pkpd
        >>> pkpd.load_model("ketamine_kamp2020").outputs["KETAMINE"].label
        'Ketamine, racemic, arterial plasma (ng/mL)'
        """
        unit = self.unit
        if unit == "1":  # dimensionless: an effect is a fraction of its maximum; a probability or flag says so itself
            unit = "fraction" if self.role == "effect" else ""
        return f"{self.title} ({unit})" if unit else self.title

    @property
    def title(self):
        """:attr:`label` without the unit: "Ketamine, racemic, arterial plasma"; an output that is
        not a concentration or an adverse event by the file's ``label`` ("Fall in systolic blood
        pressure"), else by its name ("Pain" for PAIN, names with digits or underscores as written)."""
        if self.role == "concentration":
            return f"{_capitalised(self.analyte)}, {self.matrix}"
        if self.role == "adverse_event_probability":
            return f"Probability of {self.event}"
        if self.words:
            return self.words
        return self.name.capitalize() if self.name.isalpha() and self.name.isupper() else self.name


def _capitalised(text):
    """`text` with its first letter upper case and the rest as written ("S-ketamine", "ketamine, racemic")."""
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Model:
    """A checked model, ready to compile; frozen: :meth:`with_parameters` and
    :meth:`with_constants` derive new models.

    Attributes
    ----------
    name : str
    path : Path
    compartments : list of str
        State names in NONMEM compartment-number order (CMT 1 first).
    numbers : dict of str to int
        NONMEM compartment number of each state.
    parameters : dict of str to Parameter
    covariates : dict of str to Parameter
        Per-record inputs with a default value (data columns override them).
    derived : dict of str to str
        Individual-parameter expressions, evaluated in order.
    outputs : dict of str to Output
    units : dict of str to str
    variability, residual, drugs : dict
        The ``[variability]``, ``[residual]`` and ``[drugs]`` sections (used by
        populations and scenarios; checked there).
    covariate_distributions : dict
        Covariates whose ``distribution`` the model itself declares (drawn per
        subject when a population does not supply them).
    is_linear : bool
        The ODEs are linear in the amounts with coefficients that depend only
        on parameters: the exact matrix-exponential path applies.
    unfolded : Model or None
        For a copy with constants folded in (:meth:`with_constants`), the model it
        was folded from; None otherwise.
    uncertainty : ParameterUncertainty
        What is not known about the parameters (each one's ``uncertainty`` key and the
        ``[[uncertainty]]`` covariance blocks; see :mod:`pkpd._uncertainty`); empty when none.
    """
    name: str
    path: Path
    description: str
    source_text: str
    units: dict
    compartments: list
    numbers: dict
    parameters: dict
    covariates: dict
    derived: dict
    odes: dict
    dosing: dict
    outputs: dict
    initial: dict
    variability: dict
    residual: dict
    drugs: dict
    covariate_distributions: dict
    compartment_units: dict
    is_linear: bool
    _trees: dict = field(repr=False, default_factory=dict)
    uncertainty: ParameterUncertainty = field(repr=False, compare=False, default_factory=ParameterUncertainty)
    unfolded: "Model | None" = field(repr=False, compare=False, default=None)
    _module: object = field(repr=False, compare=False, default=None)  # compiled on first use: see `module`
    _kernels: object = field(repr=False, compare=False, default=None)  # see `kernels`

    @property
    def inputs(self) -> list[str]:
        """Names of the per-record input columns of the engine: parameters, then covariates."""
        return list(self.parameters) + list(self.covariates)

    @property
    def input_defaults(self) -> list[float]:
        return [p.value for p in self.parameters.values()] + [c.value for c in self.covariates.values()]

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.source_text.encode()).hexdigest()

    def compartment_index(self, number: int) -> int | None:
        """0-based state index of NONMEM compartment ``number``, or None."""
        for index, name in enumerate(self.compartments):
            if self.numbers[name] == number:
                return index
        return None

    def with_constants(self, values):
        """A copy whose expressions treat the named parameters as constants (folded).

        Used to find a linear model inside a nonlinear one: with an interaction
        parameter fixed at 0 the products of amounts vanish. The copy keeps the
        engine's input layout, so the same parameter matrix drives it.
        """
        trees = {key: _expr.substitute(tree, values) for key, tree in self._trees.items()}
        note = "\n# specialised: " + ", ".join(f"{k} = {v!r}" for k, v in sorted(values.items())) + "\n"
        return dataclasses.replace(self, _trees=trees, _module=None, _kernels=None, source_text=self.source_text + note,
                                   is_linear=_is_linear(trees, self.compartments),
                                   unfolded=self.unfolded or self)  # with_parameters starts from this

    def with_parameters(self, values: Mapping[str, float], origin: str = "set by the user") -> "Model":
        """A copy with other values for some fixed parameters (THETAs), in the model's units.

        Values reach the engine as inputs, so the copy shares the compiled module: no
        recompilation. Each changed parameter's ``source`` says it was overridden and
        keeps the file's value and source; its reliability becomes ``"override"``, and
        its uncertainty is dropped (a value set by the user is taken as known).

        Parameters
        ----------
        values : mapping of str to float
            Parameter name -> value in the parameter's declared unit.
        origin : str
            Who set the values (shown in the parameter's source, e.g. a scenario file).

        Examples
        --------
        >>> import pkpd
        >>> synergy = pkpd.load_model("ketamine_mg_pain").with_parameters({"ALPHA": 1.0})
        >>> synergy.parameters["ALPHA"].value
        1.0
        """
        # a specialised copy (folded constants, e.g. SimulationResult.model) would keep its folded
        # values whatever the new ones: start from the model it was folded from
        base = self.unfolded or self
        if base is not self:
            return base.with_parameters({**{n: p.value for n, p in self.parameters.items()
                                            if p.value != base.parameters[n].value}, **values}, origin)
        parameters = dict(self.parameters)
        for name, value in values.items():
            if name not in parameters:
                extra = suggestion(str(name), list(parameters), "the model's parameters")
                raise ModelError(f"no parameter {name!r}{extra}", file=self.path.name, key="parameters")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ModelError("must be a finite number", file=self.path.name, key=f"parameters.{name}", value=value,
                                 got=repr(value))
            old = self.parameters[name]
            rule = check_allowed(old, float(value))
            if rule:
                raise ModelError(rule, file=self.path.name, key=f"parameters.{name}")
            unit = "" if old.unit in ("", "1") else f" {old.unit}"
            parameters[name] = dataclasses.replace(
                old, value=float(value), reliability="override",
                source=f"OVERRIDE ({origin}): {float(value):g}{unit} instead of the file's {old.value:g}{unit} "
                       f"(file source: {old.source})")
        known = [n for n in self.uncertainty.names if n not in values]
        return dataclasses.replace(self, parameters=parameters,  # shares the compiled module
                                   uncertainty=self.uncertainty.subset(known) if len(known) < len(
                                       self.uncertainty.names) else self.uncertainty)

    def with_uncertainty(self, specs: Mapping[str, Mapping], blocks: list | tuple = ()) -> "Model":
        """A copy with another parameter uncertainty (replacing the file's); shares the compiled module.

        Parameters
        ----------
        specs : mapping of str to mapping
            Parameter name -> its ``uncertainty`` table, as in a model file (``{"se": 0.1,
            "source": "..."}``, ``{"distribution": "log-uniform", "low": 1, "high": 4, "source":
            "..."}``; see :mod:`pkpd._uncertainty`).
        blocks : sequence of mapping
            Covariance blocks, as ``[[uncertainty]]`` tables of a model file.

        Examples
        --------
        >>> import pkpd
        >>> model = pkpd.load_model("pk1cmt").with_uncertainty({"CL": {"rse": 20, "source": "example"}})
        >>> model.uncertainty.names
        ['CL']
        """
        return dataclasses.replace(self, uncertainty=parse_uncertainty(self.path.name, self.parameters, specs,
                                                                       list(blocks), where="uncertainty"))

    @property
    def kernels(self):
        """The model's compiled functions as the engine takes them (:class:`pkpd.engine.ModelKernels`)."""
        if self._kernels is None:
            module = self.module
            key = (self.hash, cache_directory())
            name, shared, kernels = _LOADED.get(key, (None, None, None))
            if shared is not module or kernels is None:
                kernels = _compile_kernels(self)
                _LOADED[key] = (module.__name__, module, kernels)
            object.__setattr__(self, "_kernels", kernels)  # a cache, not a value of the model
        return self._kernels

    @property
    def module(self):
        """The model's compiled module: its seven functions (generated and imported on first use).

        Models with the same text (the same file, or copies made by with_parameters before either
        was used, e.g. one per parameter draw) share it without generating the source again."""
        if self._module is None:
            key = (self.hash, cache_directory())
            name, module, _ = _LOADED.get(key, (None, None, None))
            if module is None or sys.modules.get(name) is not module:
                module = _import_generated(self)
                _LOADED[key] = (module.__name__, module, None)
            object.__setattr__(self, "_module", module)  # a cache, not a value of the model
        return self._module

    def __getstate__(self):
        # the compiled module stays behind; a worker re-imports it from the on-disk cache
        state = self.__dict__.copy()
        state["_module"] = None
        state["_kernels"] = None
        return state

    def _repr_html_(self) -> str:
        """Jupyter's view: compartments with equations, outputs and parameters with sources, as tables."""
        from .report._notebook import model_html

        return model_html(self)

    def __repr__(self):
        return (f"Model({self.name!r}, compartments={self.compartments}, "
                f"parameters={list(self.parameters)}, outputs={list(self.outputs)})")


def load_model(name_or_path: str | os.PathLike[str]) -> "Model":
    """Load a model by library name (``"pk2cmt"``) or by path to a ``.toml`` file.

    Examples
    --------
    >>> import pkpd
    >>> model = pkpd.load_model("pk1cmt")
    >>> model.compartments
    ['DEPOT', 'CENT']
    """
    if isinstance(name_or_path, Model):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith(".toml") or os.sep in text or "/" in text):
        for folder in model_directories():
            candidate = folder / f"{text}.toml"
            if candidate.is_file():
                path = candidate
                break
        else:
            known = library_models()
            extra = suggestion(text, known, "library models")
            raise ModelError(f"model {text!r}: no such library model or file{extra}", value=text, got=None)
    if not path.is_file():
        raise ModelError("model file not found", file=str(path))
    source = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as error:
        raise ModelError(f"not valid TOML ({error})", file=str(path)) from None
    return _build(path, source, data)


def _fail(path, key, rule, **found):
    """Raise ModelError at `key` of the model file; ``value=`` is written as its repr, unless ``got=`` says how."""
    if "value" in found:
        found.setdefault("got", repr(found["value"]))
    raise ModelError(rule, file=path.name, key=key, **found)


def _unknown(path, where, keys, allowed):
    for key in keys:
        if key not in allowed:
            extra = suggestion(key, allowed, "allowed")
            _fail(path, f"{where}{key}" if where else key, f"unknown key{extra}")


def _show_allowed(allowed):
    return ", ".join(f"{v:g}" for v in allowed)


def check_allowed(parameter, value):
    """None if `value` suits `parameter`, else the rule it breaks (for one-line errors)."""
    if parameter.allowed and value not in parameter.allowed:
        return f"must be one of {_show_allowed(parameter.allowed)} (a switch); got {value:g}"
    return None


def _number(path, key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(path, key, "must be a finite number", value=value)
    return float(value)


def _check_name(path, key, name):
    # ASCII only: Python folds other identifiers (NFKC), which would merge distinct names
    if not (name.isascii() and name.isidentifier()) or name.startswith("v_") or name in _expr.FUNCTIONS:
        _fail(path, key, f"{name!r} is not a valid name (letters, digits, underscore; not a function name)")
    if name.upper() in _RESERVED:
        _fail(path, key, f"{name!r} is a reserved NONMEM data item")


def _build(path, source, data):
    _unknown(path, "", data.keys(), _SECTIONS)
    header = data.get("model", {})
    if not isinstance(header, dict) or "name" not in header:
        _fail(path, "model.name", "is required")
    _unknown(path, "model.", header.keys(), ["name", "description", "units", "references"])
    if not isinstance(header["name"], str) or not _MODEL_NAME.fullmatch(header["name"]):
        _fail(path, "model.name", f"must be 1 to 64 letters, digits, spaces or _ . - (starting with a letter "
                                  f"or digit); got {header['name']!r}")

    # compartments, in NONMEM number order
    raw_compartments = data.get("compartments")
    if not raw_compartments:
        _fail(path, "compartments", "at least one compartment is required")
    numbers = {}
    for name, spec in raw_compartments.items():
        _check_name(path, f"compartments.{name}", name)
        if not isinstance(spec, dict) or "number" not in spec:   # _COMPARTMENT_KEYS.required
            _fail(path, f"compartments.{name}.number", "is required")
        _unknown(path, f"compartments.{name}.", spec.keys(), _COMPARTMENT_KEYS)
        number = spec["number"]
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            _fail(path, f"compartments.{name}.number", "must be a positive integer", value=number)
        if number in numbers.values():
            _fail(path, f"compartments.{name}.number", f"{number} is used twice")
        numbers[name] = number
    compartments = sorted(numbers, key=numbers.get)

    def described(section, allowed_keys):
        out = {}
        for name, spec in data.get(section, {}).items():
            key = f"{section}.{name}"
            _check_name(path, key, name)
            if name in numbers or name in out:
                _fail(path, key, f"{name!r} is declared twice")
            if not isinstance(spec, dict):
                spec = {"value": spec}
            _unknown(path, f"{key}.", spec.keys(), allowed_keys)
            for required in allowed_keys.required:
                if required not in spec:
                    _fail(path, f"{key}.{required}", "is required (every parameter needs a value)" if required == "value"
                          else "is required")
            value = _number(path, f"{key}.value", spec["value"])
            allowed = ()
            if "allowed" in spec:
                if not isinstance(spec["allowed"], list) or not spec["allowed"]:
                    _fail(path, f"{key}.allowed", "must be a non-empty list of numbers", value=spec['allowed'])
                allowed = tuple(_number(path, f"{key}.allowed", v) for v in spec["allowed"])
                if value not in allowed:
                    _fail(path, f"{key}.value", f"must be one of {_show_allowed(allowed)}", value=value, got=f"{value:g}")
            out[name] = Parameter(name, value, str(spec.get("unit", "")), str(spec.get("description", "")),
                                  str(spec.get("source", spec.get("assumption", ""))),
                                  str(spec.get("reliability", "")), allowed)
        return out

    parameters = described("parameters", _PARAMETER_KEYS)
    covariates = described("covariates", _COVARIATE_KEYS)
    covariate_distributions = {name: spec["distribution"] for name, spec in data.get("covariates", {}).items()
                               if isinstance(spec, dict) and "distribution" in spec}
    for name in covariates:
        if name in parameters:
            _fail(path, f"covariates.{name}", f"{name!r} is also a parameter")

    trees = {}
    known = set(parameters) | set(covariates)

    def expression(key, text, allowed):
        try:
            tree = _expr.parse(text, allowed)
        except _expr.ExpressionError as error:
            _fail(path, key, error.rule, **error.fields())
        trees[key] = tree
        return str(text)

    derived = {}
    for name, text in data.get("derived", {}).items():
        key = f"derived.{name}"
        _check_name(path, key, name)
        if name in known or name in numbers:
            _fail(path, key, f"{name!r} is declared twice")
        derived[name] = expression(key, text, known)
        known = known | {name}

    states = set(numbers)
    odes = {}
    raw_odes = data.get("odes", {})
    for name in raw_odes:
        if name not in numbers:
            extra = suggestion(name, list(numbers))
            _fail(path, f"odes.{name}", f"no compartment {name!r} is declared{extra}")
    for name in compartments:
        if name not in raw_odes:
            _fail(path, f"odes.{name}", "every compartment needs an equation")
        odes[name] = expression(f"odes.{name}", raw_odes[name], known | states)

    dosing = {}
    for name, spec in data.get("dosing", {}).items():
        if name not in numbers:
            _fail(path, f"dosing.{name}", f"no compartment {name!r} is declared")
        if not isinstance(spec, dict):
            _fail(path, f"dosing.{name}", "must be a table of F, ALAG, R, D")
        _unknown(path, f"dosing.{name}.", spec.keys(), list(_DOSING_KEYS))
        dosing[name] = {k: expression(f"dosing.{name}.{k}", v, known) for k, v in spec.items()}

    initial = {}
    for name, text in data.get("initial", {}).items():
        if name not in numbers:
            _fail(path, f"initial.{name}", f"no compartment {name!r} is declared")
        initial[name] = expression(f"initial.{name}", text, known)

    outputs = {}
    raw_outputs = data.get("outputs", {})
    for name, spec in raw_outputs.items():
        key = f"outputs.{name}"
        _check_name(path, key, name)
        if name in known or name in numbers:
            _fail(path, key, f"{name!r} is already a parameter, covariate or compartment name")
        if not isinstance(spec, dict):
            spec = {"expr": spec}
        _unknown(path, f"{key}.", spec.keys(), _OUTPUT_KEYS)
        if "expr" not in spec:   # _OUTPUT_KEYS.required (role: in _output_role)
            _fail(path, f"{key}.expr", "is required")
        # An output may use the outputs declared above it (computed in file order).
        later = set(raw_outputs) - set(outputs) - {name}
        try:
            tree = _expr.parse(spec["expr"], known | states | set(outputs))
        except _expr.ExpressionError as error:
            try:
                named = {n.id for n in ast.walk(ast.parse(str(spec["expr"]).strip(), mode="eval"))
                         if isinstance(n, ast.Name)}
            except (SyntaxError, RecursionError, MemoryError):
                named = set()
            used_later = sorted(later & named)
            hint = f" (an output can use only the outputs declared above it: {', '.join(used_later)})" if used_later else ""
            _fail(path, f"{key}.expr", f"{error.rule}{hint}", **error.fields())
        trees[f"{key}.expr"] = tree
        outputs[name] = Output(name, str(spec["expr"]), str(spec.get("unit", "")), str(spec.get("description", "")),
                               **_output_role(path, key, spec), **_output_words(path, key, spec),
                               baseline=_output_baseline(path, key, spec, set(parameters) | set(covariates)))

    drugs = {}
    for name, spec in data.get("drugs", {}).items():
        key = f"drugs.{name}"
        if not isinstance(spec, dict) or "compartment" not in spec:
            _fail(path, f"{key}.compartment", "is required")
        _unknown(path, f"{key}.", spec.keys(), ["compartment", "unit", "molar_mass", "description", "source",
                                                 "conversions", "routes", "dose_range"])
        _check_drug(path, key, spec, numbers)
        drugs[name] = dict(spec)

    is_linear = _is_linear(trees, compartments)
    uncertainty = parse_uncertainty(path.name, parameters, {name: spec["uncertainty"] for name, spec in
                                                            data.get("parameters", {}).items()
                                                            if isinstance(spec, dict) and "uncertainty" in spec},
                                    data.get("uncertainty", []))
    model = Model(name=str(header["name"]), path=path.resolve(), description=str(header.get("description", "")),
                  source_text=source, units=dict(header.get("units", {})), compartments=compartments,
                  numbers=numbers, parameters=parameters, covariates=covariates, derived=derived,
                  odes=odes, dosing=dosing, outputs=outputs, initial=initial,
                  variability=dict(data.get("variability", {})), residual=dict(data.get("residual", {})),
                  drugs=drugs, covariate_distributions=covariate_distributions,
                  compartment_units={name: str(spec["unit"]) for name, spec in raw_compartments.items()
                                     if "unit" in spec},
                  is_linear=is_linear, _trees=trees, uncertainty=uncertainty)
    return model


def _output_role(path, key, spec):
    """The checked ``role`` of an output and the keys that go with it (analyte and matrix of a
    concentration, event of an adverse-event probability), as keyword arguments of Output."""
    role = spec.get("role")
    if role is None:
        _fail(path, f"{key}.role", f"is required (one of {', '.join(OUTPUT_ROLES)})")
    if role not in OUTPUT_ROLES:
        extra = suggestion(str(role), list(OUTPUT_ROLES)) if isinstance(role, str) else ""
        _fail(path, f"{key}.role", f"must be one of {', '.join(OUTPUT_ROLES)}; got {role!r}{extra}")
    found = {"role": role}
    for item, owner in _ROLE_KEYS.items():
        if role != owner:
            if item in spec:
                _fail(path, f"{key}.{item}", f"only an output of role {owner} has {item} (this one's role is {role})")
            continue
        if item not in spec:
            _fail(path, f"{key}.{item}", f"is required {_OUTPUT_KEYS.required_when[item]}")
        value = spec[item]
        if not (isinstance(value, str) and value.strip() and value.isprintable() and len(value) <= 64):
            _fail(path, f"{key}.{item}", f"must be text on one line (1 to 64 characters); got {value!r}")
        if item == "matrix" and value not in MATRICES:
            extra = suggestion(value, MATRICES)
            _fail(path, f"{key}.matrix", f"must be one of {', '.join(MATRICES)}; got {value!r}{extra}")
        found[item] = value
    return found


def _output_words(path, key, spec):
    """The checked ``label`` of an output (its name in words), as keyword arguments of Output; a
    concentration is named by its analyte and matrix and an adverse-event probability by its event."""
    if "label" not in spec:
        return {}
    if spec["role"] in ("concentration", "adverse_event_probability"):
        _fail(path, f"{key}.label", f"an output of role {spec['role']} is named by its "
                                    f"{'analyte and matrix' if spec['role'] == 'concentration' else 'event'}")
    value = spec["label"]
    if not (isinstance(value, str) and value.strip() and value.isprintable() and len(value) <= 80):
        _fail(path, f"{key}.label", f"must be text on one line (1 to 80 characters); got {value!r}")
    return {"words": value}


def _output_baseline(path, key, spec, allowed):
    """The checked ``baseline`` of an output: the endogenous level (magnesium's MG0), an expression of
    parameters and covariates; exposure AUCs of the output are then taken above it ("" if none)."""
    if "baseline" not in spec:
        return ""
    text = spec["baseline"]
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        _fail(path, f"{key}.baseline", "must be a number or an expression of parameters and covariates, e.g. 'MG0'",
              value=text)
    try:
        _expr.parse(text, allowed)
    except _expr.ExpressionError as error:
        _fail(path, f"{key}.baseline", f"{error.rule} (a baseline uses parameters and covariates only)",
              **error.fields())
    return str(text)


def _check_drug(path, key, spec, numbers):
    """A drug's compartment and routes name declared compartments; its units parse;
    its molar mass and conversion factors are positive numbers."""
    from ._units import _parse_unit  # pint: imported only for models that declare drugs

    def compartment(where, value):
        if not isinstance(value, str) or value not in numbers:
            extra = suggestion(str(value), numbers, "the compartments") if isinstance(value, str) else ""
            _fail(path, where, f"no compartment {value!r} is declared{extra}")

    def positive(where, value):
        if _number(path, where, value) <= 0:
            _fail(path, where, "must be > 0", value=value)

    def unit(where, value):
        if not isinstance(value, str):
            _fail(path, where, "must be a unit text such as 'mg'", value=value)
        try:
            _parse_unit(value, where)
        except PkpdError:
            _fail(path, where, "must be a unit such as 'mg' or 'mmol'", value=value)

    compartment(f"{key}.compartment", spec["compartment"])
    if "unit" in spec:
        unit(f"{key}.unit", spec["unit"])
    if "molar_mass" in spec:
        positive(f"{key}.molar_mass", spec["molar_mass"])
    for table in ("routes", "conversions"):
        if table in spec and not isinstance(spec[table], dict):
            _fail(path, f"{key}.{table}", "must be a table", value=spec[table])
    for route, target in spec.get("routes", {}).items():
        compartment(f"{key}.routes.{route}", target)
    for target_unit, factor in spec.get("conversions", {}).items():
        unit(f"{key}.conversions.{target_unit} (its key)", target_unit)
        positive(f"{key}.conversions.{target_unit}", factor)
    if "dose_range" in spec:
        _check_dose_range(path, f"{key}.dose_range", spec["dose_range"])
    if spec.get("conversions") and "unit" not in spec:
        _fail(path, f"{key}.unit", "is required when conversions are given (the unit they convert from)")


def _check_dose_range(path, key, spec):
    """``dose_range = { amount = [low, high], rate = [low, high], source = "..." }``, per kg of body weight."""
    from ._units import _per_mass, parse_quantity

    if not isinstance(spec, dict):
        _fail(path, key, "must be a table of amount, rate and source", value=spec)
    _unknown(path, f"{key}.", spec.keys(), ["amount", "rate", "source"])
    if not isinstance(spec.get("source"), str):
        _fail(path, f"{key}.source", "is required (where the range comes from)")
    for kind in ("amount", "rate"):
        pair = spec.get(kind)
        if pair is None:
            continue
        if not (isinstance(pair, list) and len(pair) == 2):
            _fail(path, f"{key}.{kind}", "must be [low, high] per kg, e.g. ['0.1 mg/kg', '1 mg/kg']", value=pair)
        try:
            low, high = (parse_quantity(text, f"{key}.{kind}", positive=True) for text in pair)
        except PkpdError as error:
            _fail(path, f"{key}.{kind}", error.rule, **error.fields())
        if not (_per_mass(low.units) and _per_mass(high.units)):
            _fail(path, f"{key}.{kind}", "must be per kg of body weight (e.g. 'mg/kg')", value=pair)


def _is_linear(trees, compartments):
    states = set(compartments)
    for name in compartments:
        tree = trees[f"odes.{name}"]
        for state in compartments:
            try:
                entry = _expr.derivative(tree, state)
            except _expr.NotDifferentiable:
                return False
            if entry is not None and _expr.names(entry) & states:
                return False
    return True


# --- code generation ---------------------------------------------------------

def _unpack(model, array, names_needed, env=True, hoisted=()):
    lines = []
    if env:
        for index, name in enumerate(model.inputs + list(model.derived) + [name for name, _ in hoisted]):
            if name in names_needed:
                lines.append(f"    {_expr.PREFIX}{name} = {array}[{index}]")
    else:
        for index, name in enumerate(model.compartments):
            if name in names_needed:
                lines.append(f"    {_expr.PREFIX}{name} = {array}[{index}]")
    return lines


_HOISTABLE = (ast.BinOp, ast.UnaryOp, ast.Call, ast.IfExp)


def _hoist(trees, varying):
    """Move the sub-expressions that depend on parameters only out of the per-step functions.

    Returns (trees with each maximal such sub-expression replaced by a name, [(name, sub-expression)]):
    the model's derive function computes them once per parameter row into extra slots of the
    environment, so the right-hand side, Jacobian and outputs, called by the engine through a
    pointer (not inlined, so nothing is hoisted for them), compute e.g. CL/V once per subject
    instead of at every stage of every step. Each value is computed by the same operations on
    the same operands, so results are bit-identical. The names (``v_h0``...) are prefixed again
    like every model name (``v_v_h0``) and cannot collide with a model's (which never start ``v_``)."""
    slots = {}

    def visit(node):
        if isinstance(node, _HOISTABLE) and not (_expr.names(node) & varying):
            key = ast.dump(node)
            if key not in slots:
                slots[key] = (f"v_h{len(slots)}", node)
            return ast.Name(id=slots[key][0], ctx=ast.Load())
        for name, value in ast.iter_fields(node):
            if isinstance(value, list):
                setattr(node, name, [visit(item) if isinstance(item, ast.AST) else item for item in value])
            elif isinstance(value, ast.AST):
                setattr(node, name, visit(value))
        return node

    with _expr.deep_recursion():
        return [None if tree is None else visit(copy.deepcopy(tree)) for tree in trees], list(slots.values())


def _used(trees):
    used = set()
    for tree in trees:
        if tree is not None:
            used |= _expr.names(tree)
    return used


def generate_source(model):
    """The Python source of the model's seven functions (see :mod:`pkpd.engine.interface`).

    Raises ModelError naming the key when an expression (or its derivative) nests
    deeper than Python can compile."""
    trees = model._trees
    states = model.compartments

    def code(key, tree=None, where=""):
        try:
            return _expr.to_source(trees[key] if tree is None else tree)
        except _expr.ExpressionError as error:
            _fail(model.path, key, f"{where}{error.rule}", **error.fields())

    ode_keys = [f"odes.{name}" for name in states]
    jacobian = {(i, j): _expr.derivative(trees[ode_keys[i]], state)
                for i in range(len(states)) for j, state in enumerate(states)}
    output_keys = [f"outputs.{name}.expr" for name in model.outputs]
    per_step = [trees[key] for key in ode_keys] + list(jacobian.values()) + [trees[key] for key in output_keys]
    per_step, hoisted = _hoist(per_step, set(states) | set(model.outputs))
    odes = per_step[:len(states)]
    jacobian = dict(zip(jacobian, per_step[len(states):len(states) + len(jacobian)]))
    outputs = per_step[len(states) + len(jacobian):]

    n_inputs = len(model.inputs)
    n_env = n_inputs + len(model.derived)
    lines = [
        f"# Generated by pkpd from model {model.name!r} (file {model.path.name!r}); do not edit.",
        f"# model sha256 {model.hash}",
        "import math",
        "",
        "",
        f"N_STATES = {len(states)}",
        f"N_INPUTS = {n_inputs}",
        f"N_ENV = {n_env + len(hoisted)}   # inputs, derived parameters, parameter-only sub-expressions",
        f"N_OUTPUTS = {len(model.outputs)}",
        f"IS_LINEAR = {model.is_linear}",
        "",
        "",
        "def model_derive(e):",
    ]
    derived_trees = [trees[f"derived.{n}"] for n in model.derived]
    lines += _unpack(model, "e", _used(derived_trees) | _used(node for _, node in hoisted))
    for offset, name in enumerate(model.derived):
        lines.append(f"    {_expr.PREFIX}{name} = {code(f'derived.{name}')}")
        lines.append(f"    e[{n_inputs + offset}] = {_expr.PREFIX}{name}")
    for offset, (name, node) in enumerate(hoisted):
        lines.append(f"    e[{n_env + offset}] = {code(ode_keys[0] if states else 'model', node)}")
    lines += ["    return", "", ""]

    used = _used(odes)
    lines += ["def model_rhs(y, e, dydt):"]
    lines += _unpack(model, "e", used, hoisted=hoisted) + _unpack(model, "y", used, env=False)
    for index, name in enumerate(states):
        lines.append(f"    dydt[{index}] = {code(ode_keys[index], odes[index])}")
    lines += ["", ""]

    lines += _dopri_source(model, odes, code, ode_keys, hoisted)

    used = _used(jacobian.values())
    lines += ["def model_jacobian(y, e, jac):"]
    lines += _unpack(model, "e", used, hoisted=hoisted) + _unpack(model, "y", used, env=False)
    for (i, j), entry in jacobian.items():
        where = f"its derivative by {states[j]} "
        value = code(ode_keys[i], entry, where) if entry is not None else "0.0"
        lines.append(f"    jac[{i * len(states) + j}] = {value}")   # row-major (n_states, n_states)
    lines += ["", ""]

    used = _used(outputs)
    lines += ["def model_outputs(y, e, out):"]
    lines += _unpack(model, "e", used, hoisted=hoisted) + _unpack(model, "y", used, env=False)
    for index, name in enumerate(model.outputs):  # in file order: later outputs may use earlier ones
        lines.append(f"    {_expr.PREFIX}{name} = {code(output_keys[index], outputs[index])}")
        lines.append(f"    out[{index}] = {_expr.PREFIX}{name}")
    lines += ["    return", "", ""]

    dose_trees = [trees[f"dosing.{c}.{k}"] for c, spec in model.dosing.items() for k in spec]
    lines += ["def model_dose(e, cmt, mods):"]
    lines += _unpack(model, "e", _used(dose_trees))
    slot = {"F": 0, "ALAG": 1, "R": 2, "D": 3}
    for name, spec in model.dosing.items():
        lines.append(f"    if cmt == {model.compartments.index(name)}:")
        for key in spec:
            lines.append(f"        mods[{slot[key]}] = {code(f'dosing.{name}.{key}')}")
    lines += ["    return", "", ""]

    initial_trees = [trees[f"initial.{n}"] for n in model.initial]
    lines += ["def model_initial(e, y):"]
    lines += _unpack(model, "e", _used(initial_trees))
    for index, name in enumerate(model.compartments):
        value = code(f"initial.{name}") if name in model.initial else "0.0"
        lines.append(f"    y[{index}] = {value}")
    lines += ["", ""]

    source = "\n".join(lines)
    with _expr.deep_recursion():
        ast.parse(source)  # generated code must always be valid Python
    return source


def _dopri_source(model, odes, code, ode_keys, hoisted):
    """The lines of ``model_dopri(y, e, rate, h, work)``: one Dormand-Prince step of
    :mod:`pkpd.engine.dopri`'s contract for this model's states.

    A step of the engine's own would loop over a state count learnt at run time and reach the
    right-hand side through a pointer at each of six stages: for a small model most of a step
    was loop overhead and calls. Here the state count is a constant and the right-hand side's
    expressions stand inside the loop over stages, once. Written once, not once per stage, and
    with the sums over states as loops: a straight-line version (every stage and state written
    out) was 12 % faster on W1's 3 states but compiled ketamine_mg_pain's step in 1.3-1.5 s
    instead of 0.25 s (Numba types every arithmetic operation; LLVM unrolls what is written as
    loops with constant bounds when the body is small). The stage sums follow the tableau's
    order and each derivative is the right-hand side plus its dose rate, as in scipy's RK45;
    ``work`` is the engine's work matrix (rows of ``n_states``), flat."""
    from .engine import dopri
    from .engine.constants import W_ERR, W_K, W_NEW, W_TMP

    n = len(model.compartments)
    names = [f"{_expr.PREFIX}{name}" for name in model.compartments]
    tableau = ", ".join(repr(value) for value in dopri.TABLEAU.ravel().tolist())
    error = ", ".join(repr(value) for value in dopri.E.tolist())
    lines = ["# the Dormand-Prince tableau of pkpd.engine.dopri, row s the weights of stages 0..s-1 in stage s",
             f"DOPRI_A = ({tableau})",
             f"DOPRI_E = ({error})", "", "",
             "def model_dopri(y, e, rate, h, work):"]
    lines += _unpack(model, "e", _used(odes), hoisted=hoisted)
    lines += ["    for s in range(1, 7):",
              f"        for i in range({n}):",
              f"            total = DOPRI_A[s * 7] * work[{W_K * n} + i]",
              "            for j in range(1, s):",
              f"                total += DOPRI_A[s * 7 + j] * work[({W_K} + j) * {n} + i]",
              f"            work[{W_TMP * n} + i] = y[i] + h * total"]
    lines += [f"        {names[i]} = work[{W_TMP * n + i}]" for i in range(n)]
    lines += [f"        work[({W_K} + s) * {n} + {i}] = ({code(ode_keys[i], odes[i])}) + rate[{i}]" for i in range(n)]
    lines += [f"    for i in range({n}):",
              f"        work[{W_NEW * n} + i] = work[{W_TMP * n} + i]",
              f"        total = DOPRI_E[0] * work[{W_K * n} + i]",
              "        for j in range(1, 7):",
              f"            total += DOPRI_E[j] * work[({W_K} + j) * {n} + i]",
              f"        work[{W_ERR * n} + i] = h * total"]
    return lines + ["", ""]


def _generated_location(model):
    """(source, module name, file) of the model's generated module.

    The module name is the start of the model's name (ASCII letters and digits) and a
    hash: bounded in length, a valid identifier, whatever the model is called."""
    source = generate_source(model)
    key = hashlib.sha256((source + numba.__version__ + CODEGEN_VERSION).encode()).hexdigest()[:20]
    safe = "".join(c if c.isascii() and c.isalnum() else "_" for c in model.name[:_MODULE_PREFIX_LENGTH])
    module_name = f"pkpd_model_{safe}_{key}"
    return source, module_name, cache_directory() / f"{module_name}.py"


def is_compiled(model):
    """Whether Numba's on-disk cache already holds the model's functions (the engine: :func:`pkpd.engine.is_cached`)."""
    _, module_name, file = _generated_location(model)
    return file.exists() and any((file.parent / "__pycache__").glob(f"{module_name}.model_initial-*.nbi"))


def _import_generated(model):
    """The model's compiled module: its source written to the cache (checked against the
    expected text) and executed from that text (nothing compiles: see `Model.kernels`)."""
    source, module_name, file = _generated_location(model)
    if module_name in sys.modules:
        return sys.modules[module_name]
    _write_source(model, source, module_name, file)
    spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(spec)
    with _expr.deep_recursion():
        # compiled from the checked text, not the file: no bytecode cache (.pyc) to go stale or corrupt
        code = compile(source, str(file), "exec")
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _write_source(model, source, module_name, file):
    """Write the generated source unless the file already holds exactly it (through a
    temporary file and a rename, so a concurrent reader never sees half a file). A file
    of that name with other content is a corrupt entry: reported, removed, rebuilt."""
    folder = file.parent
    expected = source.encode("utf-8")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            existing = file.read_bytes()
        except FileNotFoundError:
            existing = None
        if existing == expected:
            return
        if existing is not None:
            _report_corrupt(model.name)
            _remove_compiled(folder / "__pycache__", module_name)
        handle, temporary = tempfile.mkstemp(prefix=f".{module_name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(expected)
            os.replace(temporary, file)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except OSError as error:
        raise PkpdError(f"{_cache_label(folder)}: cannot write the compiled model there "
                        f"({error.strerror or error}); set PKPD_CACHE_DIR to a writable folder") from None


def _report_corrupt(name):
    print(f"pkpd: cache entry for model {name} was corrupt; rebuilding", file=sys.stderr)


def _remove_compiled(folder, module_name):
    """Delete Numba's cache files (index, data, temporaries) of one generated module."""
    for path in folder.glob(f"{module_name}.*"):   # module names are [A-Za-z0-9_]: no glob characters
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _compile_kernels(model):
    """Compile (or load from Numba's disk cache) the model's functions for the engine. A cache
    entry that fails to load is reported once, the module's cache files deleted and the
    functions compiled afresh (Numba then saves new ones)."""
    from .engine import compile_model_functions

    module = model.module
    reported = []

    def rebuild(cache):
        if not reported:
            _report_corrupt(model.name)
            reported.append(True)
        _remove_compiled(Path(cache.cache_path), module.__name__)

    return compile_model_functions(module, guard=lambda cache: guard(cache, rebuild))
