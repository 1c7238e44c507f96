"""A checked model: :class:`Model`, its :class:`Parameter` and :class:`Output` records.

A :class:`Model` is frozen: :meth:`Model.with_parameters` and :meth:`Model.with_constants` derive new
models. Its compiled functions come from the cache (:mod:`.cache`) on first use.
"""

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import ModelError, suggestion
from .._uncertainty import ParameterUncertainty, parse_uncertainty
from . import expressions
from .cache import shared_kernels, shared_module

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

    def nonlinear_names(self) -> set[str]:
        """Names in the Jacobian entries that still depend on the amounts, derived names expanded
        (every parameter when an ODE is not differentiable)."""
        states = set(self.compartments)
        names: set[str] = set()
        for name in self.compartments:
            tree = self._trees[f"odes.{name}"]
            for state in self.compartments:
                try:
                    entry = expressions.derivative(tree, state)
                except expressions.NotDifferentiable:
                    return set(self.parameters)  # anything may matter
                if entry is not None and expressions.names(entry) & states:
                    names |= expressions.names(entry)
        pending = [n for n in names if n in self.derived]
        while pending:
            for used in expressions.names(self._trees[f"derived.{pending.pop()}"]):
                if used not in names:
                    names.add(used)
                    if used in self.derived:
                        pending.append(used)
        return names

    def with_constants(self, values):
        """A copy whose expressions treat the named parameters as constants (folded).

        Used to find a linear model inside a nonlinear one: with an interaction
        parameter fixed at 0 the products of amounts vanish. The copy keeps the
        engine's input layout, so the same parameter matrix drives it.
        """
        trees = {key: expressions.substitute(tree, values) for key, tree in self._trees.items()}
        note = "\n# specialised: " + ", ".join(f"{k} = {v!r}" for k, v in sorted(values.items())) + "\n"
        return dataclasses.replace(self, _trees=trees, _module=None, _kernels=None, source_text=self.source_text + note,
                                   is_linear=linear_in_states(trees, self.compartments),
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
            object.__setattr__(self, "_kernels", shared_kernels(self))  # a cache, not a value of the model
        return self._kernels

    @property
    def module(self):
        """The model's compiled module: its eight functions (generated and imported on first use).

        Models with the same text (the same file, or copies made by with_parameters before either
        was used, e.g. one per parameter draw) share it without generating the source again."""
        if self._module is None:
            object.__setattr__(self, "_module", shared_module(self))  # a cache, not a value of the model
        return self._module

    def __getstate__(self):
        # the compiled module stays behind; a worker re-imports it from the on-disk cache
        state = self.__dict__.copy()
        state["_module"] = None
        state["_kernels"] = None
        return state

    def _repr_html_(self) -> str:
        """Jupyter's view: compartments with equations, outputs and parameters with sources, as tables."""
        from ..report._notebook import model_html

        return model_html(self)

    def __repr__(self):
        return (f"Model({self.name!r}, compartments={self.compartments}, "
                f"parameters={list(self.parameters)}, outputs={list(self.outputs)})")


def show_allowed(allowed):
    return ", ".join(f"{v:g}" for v in allowed)


def check_allowed(parameter, value):
    """None if `value` suits `parameter`, else the rule it breaks (for one-line errors)."""
    if parameter.allowed and value not in parameter.allowed:
        return f"must be one of {show_allowed(parameter.allowed)} (a switch); got {value:g}"
    return None


def linear_in_states(trees, compartments):
    states = set(compartments)
    for name in compartments:
        tree = trees[f"odes.{name}"]
        for state in compartments:
            try:
                entry = expressions.derivative(tree, state)
            except expressions.NotDifferentiable:
                return False
            if entry is not None and expressions.names(entry) & states:
                return False
    return True
