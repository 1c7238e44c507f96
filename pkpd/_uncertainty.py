"""Parameter uncertainty: what we do not know about a model's fixed parameters, and draws from it.

A model file may give any parameter an ``uncertainty``, as its source reports it::

    CL = { value = 84, ..., uncertainty = { ci95 = [69, 90], source = "..." } }          # 95 % CI
    P_RESP_K = { value = 0.67, ..., uncertainty = { se = 0.10, bounds = [0, 1], source = "..." } }
    GAM_AE = { value = 2, ..., uncertainty = { distribution = "log-uniform", low = 1, high = 4,
                                               source = "ASSUMPTION: ..." } }            # a plausible range

and a covariance block over several parameters (``[[uncertainty]]``, on the parameters' own or
their log scale). Each parameter's distribution (:class:`Marginal`):

================  =====================================================================
``se`` / ``rse``  normal (mean = value, SD = se; ``rse`` in % of the value), or
                  ``distribution = "log-normal"`` (median = value, CV = se/value)
``ci95``          log-normal when both bounds are > 0 (median = value, log-SD =
                  ln(high/low)/3.92), else normal (SD = (high - low)/3.92); the value must
                  lie inside the interval
``low``/``high``  a plausible range: ``uniform`` (default), ``log-uniform``, ``triangular``
                  (mode = ``mode`` or the value), ``log-normal`` (the range is its central
                  95 % interval)
================  =====================================================================

``bounds = [a, b]`` truncates a normal (a probability, a positive quantity). A draw is the
inverse CDF of a uniform from the project's counter-based streams
(:mod:`pkpd._random`): draw ``d`` of parameter ``P`` is a pure function of (seed, d,
``"uncertainty/P"``), so draws do not depend on threads, chunks, workers or which other
parameters are drawn; a block's normals come from one stream per block. The same inverse CDFs
map the unit hypercube of a global sensitivity analysis onto the parameters
(:meth:`ParameterUncertainty.from_unit`), a block through its Cholesky factor (one group).

Range ends (:meth:`ParameterUncertainty.ends`, the tornado's): a range's ``low`` and ``high``;
for the other distributions, their 2.5 % and 97.5 % quantiles.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from ._errors import ModelError, suggestion
from ._keys import Keys
from ._random import subject_uniforms

__all__ = ["Marginal", "Block", "ParameterUncertainty", "parse_uncertainty", "DISTRIBUTIONS"]

SPEC_KEYS = Keys(["se", "rse", "ci95", "low", "high", "mode", "distribution", "bounds", "source"], required=["source"])
BLOCK_KEYS = Keys(["parameters", "covariance", "scale", "source"], required=["parameters", "covariance", "scale", "source"])
#: Distributions of a plausible range (``low``/``high``) and of a reported SE or CI.
RANGE_DISTRIBUTIONS = ("uniform", "log-uniform", "triangular", "log-normal")
ERROR_DISTRIBUTIONS = ("normal", "log-normal")
DISTRIBUTIONS = ("normal", "log-normal", "uniform", "log-uniform", "triangular")
Z975 = float(stats.norm.ppf(0.975))       # 1.959964: a 95 % interval is +-Z975 SD
STREAM = "uncertainty"


@dataclass(frozen=True)
class Marginal:
    """One parameter's uncertainty: a distribution in the parameter's unit.

    Attributes
    ----------
    name : str
    distribution : str
        One of :data:`DISTRIBUTIONS`.
    location, scale : float
        normal: mean and SD; log-normal: median and SD of the log; unused for the others.
    low, high : float
        Range (uniform, log-uniform, triangular) or truncation bounds of a normal (+-inf when none).
    mode : float
        Triangular only.
    given : str
        How the source gave it: "se", "rse", "ci95" or "range".
    source : str
    """
    name: str
    distribution: str
    location: float
    scale: float
    low: float
    high: float
    mode: float
    given: str
    source: str

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Values at cumulative probabilities `u` (in (0, 1)): the inverse CDF."""
        u = np.asarray(u, dtype=np.float64)
        kind = self.distribution
        if kind == "normal":
            if self.scale == 0.0:
                return np.full_like(u, self.location)
            lower, upper = ((np.array([self.low, self.high]) - self.location) / self.scale)
            p_low, p_high = special.ndtr(lower), special.ndtr(upper)
            return self.location + self.scale * special.ndtri(p_low + u * (p_high - p_low))
        if kind == "log-normal":
            return self.location * np.exp(self.scale * special.ndtri(u))
        if kind == "uniform":
            return self.low + u * (self.high - self.low)
        if kind == "log-uniform":
            return self.low * np.exp(u * math.log(self.high / self.low))
        width = self.high - self.low            # triangular
        return stats.triang.ppf(u, (self.mode - self.low) / width, loc=self.low, scale=width)

    def ends(self) -> tuple[float, float]:
        """(low, high): a range's ends, else the 2.5 % and 97.5 % quantiles."""
        if self.given == "range" and self.distribution != "log-normal":
            return self.low, self.high
        low, high = self.ppf(np.array([0.025, 0.975]))
        return float(low), float(high)

    def describe(self) -> str:
        """'log-normal, median 84, 95 % 69-102 (ci95)': one line for tables and manifests."""
        low, high = self.ends()
        return f"{self.distribution}, 2.5-97.5 % {low:.4g}-{high:.4g} ({self.given})"


@dataclass(frozen=True)
class Block:
    """A joint normal uncertainty of several parameters (covariance on their own or their log scale)."""
    names: tuple
    values: tuple            # the parameters' values: the mean (linear) or median (log)
    covariance: np.ndarray = field(repr=False)
    log: bool
    source: str

    @property
    def cholesky(self) -> np.ndarray:
        return np.linalg.cholesky(self.covariance)

    def transform(self, normals: np.ndarray) -> np.ndarray:
        """Parameter values from independent standard normals, shape (n, k) -> (n, k)."""
        shift = normals @ self.cholesky.T
        values = np.asarray(self.values, dtype=np.float64)
        return values * np.exp(shift) if self.log else values + shift

    def ends(self) -> dict:
        sd = np.sqrt(np.diag(self.covariance))
        out = {}
        for name, value, s in zip(self.names, self.values, sd):
            pair = (value * math.exp(-Z975 * s), value * math.exp(Z975 * s)) if self.log else \
                   (value - Z975 * s, value + Z975 * s)
            out[name] = (float(pair[0]), float(pair[1]))
        return out

    def subset(self, names):
        index = [self.names.index(n) for n in names]
        return Block(tuple(names), tuple(self.values[i] for i in index), self.covariance[np.ix_(index, index)],
                     self.log, self.source)


@dataclass(frozen=True)
class ParameterUncertainty:
    """The uncertainty of a model's parameters: marginals and covariance blocks.

    Attributes
    ----------
    marginals : dict of str to Marginal
    blocks : tuple of Block
    """
    marginals: dict = field(default_factory=dict)
    blocks: tuple = ()

    @property
    def names(self) -> list[str]:
        """Every parameter with an uncertainty: the marginals, then each block's."""
        return list(self.marginals) + [n for block in self.blocks for n in block.names]

    def __bool__(self):
        return bool(self.names)

    def subset(self, names: Sequence[str]) -> "ParameterUncertainty":
        """Only the named parameters (a block keeps its named members and their covariance)."""
        chosen = set(names)
        blocks = tuple(b.subset([n for n in b.names if n in chosen]) for b in self.blocks
                       if chosen & set(b.names))
        return ParameterUncertainty({n: m for n, m in self.marginals.items() if n in chosen}, blocks)

    @property
    def groups(self) -> list[tuple[str, list[str], int]]:
        """(label, parameters, number of independent inputs) per group: one per marginal, one per block."""
        out = [(n, [n], 1) for n in self.marginals]
        out += [("+".join(b.names), list(b.names), len(b.names)) for b in self.blocks]
        return out

    def from_unit(self, u: np.ndarray) -> pd.DataFrame:
        """Parameter values from points of the unit hypercube, shape (n, d) with d = total inputs of
        :attr:`groups` (marginals by their inverse CDF, blocks through normals and their Cholesky factor)."""
        u = np.asarray(u, dtype=np.float64)
        columns, at = {}, 0
        for name, marginal in self.marginals.items():
            columns[name] = marginal.ppf(u[:, at])
            at += 1
        for block in self.blocks:
            k = len(block.names)
            values = block.transform(special.ndtri(u[:, at:at + k]))
            columns.update({name: values[:, i] for i, name in enumerate(block.names)})
            at += k
        return pd.DataFrame(columns, columns=self.names)

    def sample(self, draws: int, seed: int, first: int = 0) -> pd.DataFrame:
        """Draws `first` .. `first` + `draws` - 1 of every parameter: a DataFrame indexed by draw.

        Draw d of a marginal is its inverse CDF at the uniform of (seed, d, "uncertainty/NAME"); a
        block's normals come from (seed, d, "uncertainty/A+B+...").
        """
        ids = np.arange(first, first + draws, dtype=np.uint64)
        columns = {}
        for name, marginal in self.marginals.items():
            columns[name] = marginal.ppf(subject_uniforms(seed, ids, f"{STREAM}/{name}", 1)[:, 0])
        for block in self.blocks:
            normals = special.ndtri(subject_uniforms(seed, ids, f"{STREAM}/{'+'.join(block.names)}",
                                                     len(block.names)))
            values = block.transform(normals)
            columns.update({name: values[:, i] for i, name in enumerate(block.names)})
        return pd.DataFrame(columns, columns=self.names, index=pd.Index(np.arange(first, first + draws), name="draw"))

    def ends(self) -> dict[str, tuple[float, float]]:
        """Parameter -> (low end, high end) for a one-at-a-time sensitivity analysis."""
        out = {name: m.ends() for name, m in self.marginals.items()}
        for block in self.blocks:
            out.update(block.ends())
        return out

    def table(self) -> list[dict]:
        """One record per parameter: distribution, ends and source (for manifests and tables)."""
        rows = [{"parameter": n, "distribution": m.distribution, "given": m.given, "low": m.ends()[0],
                 "high": m.ends()[1], "source": m.source} for n, m in self.marginals.items()]
        for block in self.blocks:
            for name, (low, high) in block.ends().items():
                rows.append({"parameter": name, "distribution": "log-normal" if block.log else "normal",
                             "given": f"covariance block {'+'.join(block.names)}", "low": low, "high": high,
                             "source": block.source})
        return rows


# --- parsing and checks ---------------------------------------------------------------------------

def _fail(file, key, rule, value=None):
    raise ModelError(rule, file=file, key=key, **({} if value is None else {"value": value, "got": repr(value)}))


def _finite(file, key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(file, key, "must be a finite number", value)
    return float(value)


def _pair(file, key, value):
    if not (isinstance(value, list) and len(value) == 2):
        _fail(file, key, "must be [low, high]", value)
    low, high = (_finite(file, f"{key}[{i}]", v) for i, v in enumerate(value))
    if not low < high:
        _fail(file, key, "low must be below high (bounds reversed?)", value)
    return low, high


def _marginal(file, key, parameter, spec):
    """The checked Marginal of ``parameters.NAME.uncertainty`` (`spec`, a table)."""
    if not isinstance(spec, dict):
        _fail(file, key, "must be a table such as { se = 0.1, source = '...' }", spec)
    for item in spec:
        if item not in SPEC_KEYS:
            _fail(file, f"{key}.{item}", f"unknown key{suggestion(item, SPEC_KEYS, 'allowed')}")
    if parameter.allowed:
        _fail(file, key, "a switch (a parameter with allowed values) cannot have an uncertainty")
    source = spec.get("source")   # SPEC_KEYS.required
    if not (isinstance(source, str) and source.strip()):
        _fail(file, f"{key}.source", "is required (where the uncertainty comes from, or why the range is plausible)")
    given = [k for k in ("se", "rse", "ci95") if k in spec] + (["range"] if "low" in spec or "high" in spec else [])
    if len(given) != 1:
        _fail(file, key, f"give exactly one of se, rse, ci95 or low and high; got {', '.join(given) or 'none'}")
    given = given[0]
    value = parameter.value
    allowed = RANGE_DISTRIBUTIONS if given == "range" else ERROR_DISTRIBUTIONS
    default = "uniform" if given == "range" else "normal"
    if given == "ci95":
        default = "log-normal" if isinstance(spec["ci95"], list) and all(
            isinstance(v, (int, float)) and v > 0 for v in spec["ci95"]) else "normal"
    kind = spec.get("distribution", default)
    if kind not in allowed:
        hint = suggestion(str(kind), allowed) if isinstance(kind, str) else ""
        _fail(file, f"{key}.distribution", f"must be one of {', '.join(allowed)} for {given}{hint}", kind)
    low, high = -math.inf, math.inf
    if "bounds" in spec:
        if kind != "normal":
            _fail(file, f"{key}.bounds", "only a normal distribution is truncated by bounds")
        low, high = _pair(file, f"{key}.bounds", spec["bounds"])
        if not low <= value <= high:
            _fail(file, f"{key}.bounds", f"must contain the parameter's value {value:g}", spec["bounds"])
    if "mode" in spec and kind != "triangular":
        _fail(file, f"{key}.mode", "only a triangular distribution has a mode")
    location, scale, mode = value, 0.0, value
    if given in ("se", "rse"):
        spread = _finite(file, f"{key}.{given}", spec[given])
        if spread < 0:
            _fail(file, f"{key}.{given}", "must be >= 0 (a standard error)", spec[given])
        se = spread if given == "se" else abs(value) * spread / 100.0
        if kind == "log-normal":
            if value <= 0:
                _fail(file, f"{key}.distribution", f"log-normal needs a positive value; the parameter's is {value:g}")
            scale = math.sqrt(math.log1p((se / value) ** 2))
        else:
            scale = se
    elif given == "ci95":
        ci_low, ci_high = _pair(file, f"{key}.ci95", spec["ci95"])
        if not ci_low <= value <= ci_high:
            _fail(file, f"{key}.ci95", f"must contain the parameter's value {value:g}", spec["ci95"])
        if kind == "log-normal":
            if ci_low <= 0:
                _fail(file, f"{key}.ci95", "a log-normal CI needs positive bounds", spec["ci95"])
            scale = math.log(ci_high / ci_low) / (2 * Z975)
        else:
            scale = (ci_high - ci_low) / (2 * Z975)
    else:
        if "low" not in spec or "high" not in spec:
            _fail(file, f"{key}.{'high' if 'low' in spec else 'low'}", "is required with a range (low and high)")
        low, high = _pair(file, key + ".low/high", [spec["low"], spec["high"]])
        if not low <= value <= high:
            _fail(file, f"{key}.low/high", f"the range must contain the parameter's value {value:g}",
                  [spec["low"], spec["high"]])
        if kind.startswith("log-") and low <= 0:
            _fail(file, f"{key}.low", f"a {kind} range needs low > 0", spec["low"])
        if kind == "triangular":
            mode = _finite(file, f"{key}.mode", spec.get("mode", value))
            if not low <= mode <= high:
                _fail(file, f"{key}.mode", f"must lie within [{low:g}, {high:g}]", spec.get("mode", value))
        if kind == "log-normal":
            location, scale = math.sqrt(low * high), math.log(high / low) / (2 * Z975)
            low, high = -math.inf, math.inf
    return Marginal(parameter.name, kind, location, scale, low, high, mode, given, source.strip())


def _block(file, key, spec, parameters, taken):
    """A checked covariance block (``[[uncertainty]]``)."""
    if not isinstance(spec, dict):
        _fail(file, key, "must be a table of parameters, covariance, scale and source", spec)
    for item in spec:
        if item not in BLOCK_KEYS:
            _fail(file, f"{key}.{item}", f"unknown key{suggestion(item, BLOCK_KEYS, 'allowed')}")
    for item in BLOCK_KEYS.required:
        if item not in spec:
            _fail(file, f"{key}.{item}", "is required")
    names = spec["parameters"]
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        _fail(file, f"{key}.parameters", "must be a non-empty list of parameter names", names)
    for index, name in enumerate(names):
        if name not in parameters:
            _fail(file, f"{key}.parameters[{index}]",
                  f"no parameter {name!r}{suggestion(name, list(parameters), 'the parameters')}")
        if name in taken:
            _fail(file, f"{key}.parameters[{index}]", f"{name} already has an uncertainty")
        if parameters[name].allowed:
            _fail(file, f"{key}.parameters[{index}]", f"{name} is a switch and cannot have an uncertainty")
        taken.add(name)
    k = len(names)
    matrix = spec["covariance"]
    if not (isinstance(matrix, list) and len(matrix) == k and all(isinstance(r, list) and len(r) == k for r in matrix)):
        _fail(file, f"{key}.covariance", f"must be a {k}x{k} matrix (one row per parameter)", matrix)
    covariance = np.array([[_finite(file, f"{key}.covariance[{i}][{j}]", v) for j, v in enumerate(row)]
                           for i, row in enumerate(matrix)])
    if not np.allclose(covariance, covariance.T, rtol=1e-12, atol=0.0):
        _fail(file, f"{key}.covariance", "must be symmetric", matrix)
    try:
        np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        _fail(file, f"{key}.covariance", "must be positive definite", matrix)
    if spec["scale"] not in ("linear", "log"):
        _fail(file, f"{key}.scale", "must be 'linear' (covariance of the values) or 'log' (of their logarithms)",
              spec["scale"])
    values = tuple(parameters[n].value for n in names)
    if spec["scale"] == "log" and min(values) <= 0:
        _fail(file, f"{key}.scale", "'log' needs positive parameter values")
    if not (isinstance(spec["source"], str) and spec["source"].strip()):
        _fail(file, f"{key}.source", "is required (where the covariance comes from)")
    return Block(tuple(names), values, covariance, spec["scale"] == "log", spec["source"].strip())


def parse_uncertainty(file: str, parameters: Mapping, specs: Mapping, blocks: Sequence = (),
                      where: str = "parameters") -> ParameterUncertainty:
    """Check the uncertainty of a model's parameters.

    Parameters
    ----------
    file : str
        The model file's name (for messages).
    parameters : mapping of str to Parameter
    specs : mapping of str to dict
        Parameter name -> its ``uncertainty`` table.
    blocks : sequence of dict
        The ``[[uncertainty]]`` covariance blocks.
    where : str
        Key prefix of `specs` in messages (``parameters``: ``parameters.CL.uncertainty.se``).

    Raises
    ------
    ModelError
        One line naming file, key, rule and value: a negative SE, reversed bounds, an unknown
        distribution, a covariance that is not positive definite, an unknown parameter, ...
    """
    marginals = {}
    for name, spec in specs.items():
        if name not in parameters:
            _fail(file, f"{where}.{name}", f"no parameter {name!r}{suggestion(str(name), list(parameters), 'the parameters')}")
        marginals[name] = _marginal(file, f"{where}.{name}.uncertainty", parameters[name], spec)
    if not isinstance(blocks, list | tuple):
        _fail(file, "uncertainty", "must be an array of tables ([[uncertainty]])", blocks)
    taken = set(marginals)
    checked = tuple(_block(file, f"uncertainty[{i}]", spec, parameters, taken) for i, spec in enumerate(blocks))
    return ParameterUncertainty(marginals, checked)
