"""Model files: reading a model by name or path, and checking every section against the format.

A model file is TOML (see ``models/README.md`` for the format). Loading checks every section
against the rules of the format and raises :class:`~pkpd.ModelError` naming the file, the key and
the problem.
"""

import ast
import math
import os
import re
import tomllib
from pathlib import Path

from .._errors import ModelError, PkpdError, suggestion
from .._keys import Keys
from .._uncertainty import parse_uncertainty
from . import expressions
from .checks import fail
from .model import Model, Output, Parameter, linear_in_states, show_allowed

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


def model_directories():
    """Folders searched for library models: ``$PKPD_MODEL_PATH`` entries, then ``models/``."""
    folders = [Path(p) for p in os.environ.get("PKPD_MODEL_PATH", "").split(os.pathsep) if p]
    folders.append(Path(__file__).resolve().parent.parent.parent / "models")
    return folders


def library_models() -> list[str]:
    """Names of the models in the library folders, sorted."""
    found: set[str] = set()
    for folder in model_directories():
        if folder.is_dir():
            found.update(p.stem for p in folder.glob("*.toml"))
    return sorted(found)


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




def _unknown(path, where, keys, allowed):
    for key in keys:
        if key not in allowed:
            extra = suggestion(key, allowed, "allowed")
            fail(path, f"{where}{key}" if where else key, f"unknown key{extra}")


def _number(path, key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        fail(path, key, "must be a finite number", value=value)
    return float(value)


def _check_name(path, key, name):
    # ASCII only: Python folds other identifiers (NFKC), which would merge distinct names
    if not (name.isascii() and name.isidentifier()) or name.startswith("v_") or name in expressions.FUNCTIONS:
        fail(path, key, f"{name!r} is not a valid name (letters, digits, underscore; not a function name)")
    if name.upper() in _RESERVED:
        fail(path, key, f"{name!r} is a reserved NONMEM data item")


def _build(path, source, data):
    _unknown(path, "", data.keys(), _SECTIONS)
    header = data.get("model", {})
    if not isinstance(header, dict) or "name" not in header:
        fail(path, "model.name", "is required")
    _unknown(path, "model.", header.keys(), ["name", "description", "units", "references"])
    if not isinstance(header["name"], str) or not _MODEL_NAME.fullmatch(header["name"]):
        fail(path, "model.name", f"must be 1 to 64 letters, digits, spaces or _ . - (starting with a letter "
                                  f"or digit); got {header['name']!r}")

    # compartments, in NONMEM number order
    raw_compartments = data.get("compartments")
    if not raw_compartments:
        fail(path, "compartments", "at least one compartment is required")
    numbers = {}
    for name, spec in raw_compartments.items():
        _check_name(path, f"compartments.{name}", name)
        if not isinstance(spec, dict) or "number" not in spec:   # _COMPARTMENT_KEYS.required
            fail(path, f"compartments.{name}.number", "is required")
        _unknown(path, f"compartments.{name}.", spec.keys(), _COMPARTMENT_KEYS)
        number = spec["number"]
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            fail(path, f"compartments.{name}.number", "must be a positive integer", value=number)
        if number in numbers.values():
            fail(path, f"compartments.{name}.number", f"{number} is used twice")
        numbers[name] = number
    compartments = sorted(numbers, key=numbers.get)

    def described(section, allowed_keys):
        out = {}
        for name, spec in data.get(section, {}).items():
            key = f"{section}.{name}"
            _check_name(path, key, name)
            if name in numbers or name in out:
                fail(path, key, f"{name!r} is declared twice")
            if not isinstance(spec, dict):
                spec = {"value": spec}
            _unknown(path, f"{key}.", spec.keys(), allowed_keys)
            for required in allowed_keys.required:
                if required not in spec:
                    fail(path, f"{key}.{required}", "is required (every parameter needs a value)" if required == "value"
                          else "is required")
            value = _number(path, f"{key}.value", spec["value"])
            allowed = ()
            if "allowed" in spec:
                if not isinstance(spec["allowed"], list) or not spec["allowed"]:
                    fail(path, f"{key}.allowed", "must be a non-empty list of numbers", value=spec['allowed'])
                allowed = tuple(_number(path, f"{key}.allowed", v) for v in spec["allowed"])
                if value not in allowed:
                    fail(path, f"{key}.value", f"must be one of {show_allowed(allowed)}", value=value, got=f"{value:g}")
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
            fail(path, f"covariates.{name}", f"{name!r} is also a parameter")

    trees = {}
    known = set(parameters) | set(covariates)

    def expression(key, text, allowed):
        try:
            tree = expressions.parse(text, allowed)
        except expressions.ExpressionError as error:
            fail(path, key, error.rule, **error.fields())
        trees[key] = tree
        return str(text)

    derived = {}
    for name, text in data.get("derived", {}).items():
        key = f"derived.{name}"
        _check_name(path, key, name)
        if name in known or name in numbers:
            fail(path, key, f"{name!r} is declared twice")
        derived[name] = expression(key, text, known)
        known = known | {name}

    states = set(numbers)
    odes = {}
    raw_odes = data.get("odes", {})
    for name in raw_odes:
        if name not in numbers:
            extra = suggestion(name, list(numbers))
            fail(path, f"odes.{name}", f"no compartment {name!r} is declared{extra}")
    for name in compartments:
        if name not in raw_odes:
            fail(path, f"odes.{name}", "every compartment needs an equation")
        odes[name] = expression(f"odes.{name}", raw_odes[name], known | states)

    dosing = {}
    for name, spec in data.get("dosing", {}).items():
        if name not in numbers:
            fail(path, f"dosing.{name}", f"no compartment {name!r} is declared")
        if not isinstance(spec, dict):
            fail(path, f"dosing.{name}", "must be a table of F, ALAG, R, D")
        _unknown(path, f"dosing.{name}.", spec.keys(), list(_DOSING_KEYS))
        dosing[name] = {k: expression(f"dosing.{name}.{k}", v, known) for k, v in spec.items()}

    initial = {}
    for name, text in data.get("initial", {}).items():
        if name not in numbers:
            fail(path, f"initial.{name}", f"no compartment {name!r} is declared")
        initial[name] = expression(f"initial.{name}", text, known)

    outputs = {}
    raw_outputs = data.get("outputs", {})
    for name, spec in raw_outputs.items():
        key = f"outputs.{name}"
        _check_name(path, key, name)
        if name in known or name in numbers:
            fail(path, key, f"{name!r} is already a parameter, covariate or compartment name")
        if not isinstance(spec, dict):
            spec = {"expr": spec}
        _unknown(path, f"{key}.", spec.keys(), _OUTPUT_KEYS)
        if "expr" not in spec:   # _OUTPUT_KEYS.required (role: in _output_role)
            fail(path, f"{key}.expr", "is required")
        # An output may use the outputs declared above it (computed in file order).
        later = set(raw_outputs) - set(outputs) - {name}
        try:
            tree = expressions.parse(spec["expr"], known | states | set(outputs))
        except expressions.ExpressionError as error:
            try:
                named = {n.id for n in ast.walk(ast.parse(str(spec["expr"]).strip(), mode="eval"))
                         if isinstance(n, ast.Name)}
            except (SyntaxError, RecursionError, MemoryError):
                named = set()
            used_later = sorted(later & named)
            hint = f" (an output can use only the outputs declared above it: {', '.join(used_later)})" if used_later else ""
            fail(path, f"{key}.expr", f"{error.rule}{hint}", **error.fields())
        trees[f"{key}.expr"] = tree
        outputs[name] = Output(name, str(spec["expr"]), str(spec.get("unit", "")), str(spec.get("description", "")),
                               **_output_role(path, key, spec), **_output_words(path, key, spec),
                               baseline=_output_baseline(path, key, spec, set(parameters) | set(covariates)))

    drugs = {}
    for name, spec in data.get("drugs", {}).items():
        key = f"drugs.{name}"
        if not isinstance(spec, dict) or "compartment" not in spec:
            fail(path, f"{key}.compartment", "is required")
        _unknown(path, f"{key}.", spec.keys(), ["compartment", "unit", "molar_mass", "description", "source",
                                                 "conversions", "routes", "dose_range"])
        _check_drug(path, key, spec, numbers)
        drugs[name] = dict(spec)

    is_linear = linear_in_states(trees, compartments)
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
        fail(path, f"{key}.role", f"is required (one of {', '.join(OUTPUT_ROLES)})")
    if role not in OUTPUT_ROLES:
        extra = suggestion(str(role), list(OUTPUT_ROLES)) if isinstance(role, str) else ""
        fail(path, f"{key}.role", f"must be one of {', '.join(OUTPUT_ROLES)}; got {role!r}{extra}")
    found = {"role": role}
    for item, owner in _ROLE_KEYS.items():
        if role != owner:
            if item in spec:
                fail(path, f"{key}.{item}", f"only an output of role {owner} has {item} (this one's role is {role})")
            continue
        if item not in spec:
            fail(path, f"{key}.{item}", f"is required {_OUTPUT_KEYS.required_when[item]}")
        value = spec[item]
        if not (isinstance(value, str) and value.strip() and value.isprintable() and len(value) <= 64):
            fail(path, f"{key}.{item}", f"must be text on one line (1 to 64 characters); got {value!r}")
        if item == "matrix" and value not in MATRICES:
            extra = suggestion(value, MATRICES)
            fail(path, f"{key}.matrix", f"must be one of {', '.join(MATRICES)}; got {value!r}{extra}")
        found[item] = value
    return found


def _output_words(path, key, spec):
    """The checked ``label`` of an output (its name in words), as keyword arguments of Output; a
    concentration is named by its analyte and matrix and an adverse-event probability by its event."""
    if "label" not in spec:
        return {}
    if spec["role"] in ("concentration", "adverse_event_probability"):
        fail(path, f"{key}.label", f"an output of role {spec['role']} is named by its "
                                    f"{'analyte and matrix' if spec['role'] == 'concentration' else 'event'}")
    value = spec["label"]
    if not (isinstance(value, str) and value.strip() and value.isprintable() and len(value) <= 80):
        fail(path, f"{key}.label", f"must be text on one line (1 to 80 characters); got {value!r}")
    return {"words": value}


def _output_baseline(path, key, spec, allowed):
    """The checked ``baseline`` of an output: the endogenous level (magnesium's MG0), an expression of
    parameters and covariates; exposure AUCs of the output are then taken above it ("" if none)."""
    if "baseline" not in spec:
        return ""
    text = spec["baseline"]
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        fail(path, f"{key}.baseline", "must be a number or an expression of parameters and covariates, e.g. 'MG0'",
              value=text)
    try:
        expressions.parse(text, allowed)
    except expressions.ExpressionError as error:
        fail(path, f"{key}.baseline", f"{error.rule} (a baseline uses parameters and covariates only)",
              **error.fields())
    return str(text)


def _check_drug(path, key, spec, numbers):
    """A drug's compartment and routes name declared compartments; its units parse;
    its molar mass and conversion factors are positive numbers."""
    from .._units import parse_unit  # pint: imported only for models that declare drugs

    def compartment(where, value):
        if not isinstance(value, str) or value not in numbers:
            extra = suggestion(str(value), numbers, "the compartments") if isinstance(value, str) else ""
            fail(path, where, f"no compartment {value!r} is declared{extra}")

    def positive(where, value):
        if _number(path, where, value) <= 0:
            fail(path, where, "must be > 0", value=value)

    def unit(where, value):
        if not isinstance(value, str):
            fail(path, where, "must be a unit text such as 'mg'", value=value)
        try:
            parse_unit(value, where)
        except PkpdError:
            fail(path, where, "must be a unit such as 'mg' or 'mmol'", value=value)

    compartment(f"{key}.compartment", spec["compartment"])
    if "unit" in spec:
        unit(f"{key}.unit", spec["unit"])
    if "molar_mass" in spec:
        positive(f"{key}.molar_mass", spec["molar_mass"])
    for table in ("routes", "conversions"):
        if table in spec and not isinstance(spec[table], dict):
            fail(path, f"{key}.{table}", "must be a table", value=spec[table])
    for route, target in spec.get("routes", {}).items():
        compartment(f"{key}.routes.{route}", target)
    for target_unit, factor in spec.get("conversions", {}).items():
        unit(f"{key}.conversions.{target_unit} (its key)", target_unit)
        positive(f"{key}.conversions.{target_unit}", factor)
    if "dose_range" in spec:
        _check_dose_range(path, f"{key}.dose_range", spec["dose_range"])
    if spec.get("conversions") and "unit" not in spec:
        fail(path, f"{key}.unit", "is required when conversions are given (the unit they convert from)")


def _check_dose_range(path, key, spec):
    """``dose_range = { amount = [low, high], rate = [low, high], source = "..." }``, per kg of body weight."""
    from .._units import parse_quantity, per_mass

    if not isinstance(spec, dict):
        fail(path, key, "must be a table of amount, rate and source", value=spec)
    _unknown(path, f"{key}.", spec.keys(), ["amount", "rate", "source"])
    if not isinstance(spec.get("source"), str):
        fail(path, f"{key}.source", "is required (where the range comes from)")
    for kind in ("amount", "rate"):
        pair = spec.get(kind)
        if pair is None:
            continue
        if not (isinstance(pair, list) and len(pair) == 2):
            fail(path, f"{key}.{kind}", "must be [low, high] per kg, e.g. ['0.1 mg/kg', '1 mg/kg']", value=pair)
        try:
            low, high = (parse_quantity(text, f"{key}.{kind}", positive=True) for text in pair)
        except PkpdError as error:
            fail(path, f"{key}.{kind}", error.rule, **error.fields())
        if not (per_mass(low.units) and per_mass(high.units)):
            fail(path, f"{key}.{kind}", "must be per kg of body weight (e.g. 'mg/kg')", value=pair)
