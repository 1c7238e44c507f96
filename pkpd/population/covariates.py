"""Covariate distributions (normal, log-normal, uniform, categorical, constant; truncated where
bounded), a Gaussian copula between them, and sampling (stream ``covariates/NAME``)."""

import dataclasses
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import special

from .._errors import PopulationError
from .._random import subject_normals, subject_uniforms
from .checks import checked_seed, checked_subject_ids, finite_number, format_value, non_negative_number, positive_number
from .matrices import check_positive_definite, first_position, lower_triangular_apply, square_symmetric

DOCUMENTATION_KEYS = ("unit", "description", "source")
_MINIMUM_TRUNCATED_MASS = 1e-9


def _truncated_standard_normal(scores, lower, upper):
    """Map standard normal scores to N(0, 1) truncated to [lower, upper].

    Inverse-CDF: ``x = F^-1(Phi(z))`` with F the truncated CDF; computed on
    the upper-tail side when ``lower >= 0`` for precision, then clipped so the
    bounds are never crossed by rounding.
    """
    if lower >= 0:
        tail_lower, tail_upper = special.ndtr(-lower), special.ndtr(-upper)
        values = -special.ndtri(tail_upper + special.ndtr(-scores) * (tail_lower - tail_upper))
    else:
        cdf_lower, cdf_upper = special.ndtr(lower), special.ndtr(upper)
        values = special.ndtri(cdf_lower + special.ndtr(scores) * (cdf_upper - cdf_lower))
    return np.clip(values, lower, upper)


def _standard_normal_mass(lower, upper):
    if lower >= 0:
        return float(special.ndtr(-lower) - special.ndtr(-upper))
    return float(special.ndtr(upper) - special.ndtr(lower))


@dataclasses.dataclass(frozen=True)
class Normal:
    """Normal distribution, optionally truncated to [lower, upper]."""

    mean: float
    sd: float
    lower: float = -math.inf
    upper: float = math.inf
    continuous = True

    def from_normal_scores(self, scores):
        """Values from standard normal scores, shape (n,) -> (n,)."""
        if math.isinf(self.lower) and math.isinf(self.upper):
            return self.mean + self.sd * scores
        standard = _truncated_standard_normal(
            scores, (self.lower - self.mean) / self.sd, (self.upper - self.mean) / self.sd)
        return np.clip(self.mean + self.sd * standard, self.lower, self.upper)


@dataclasses.dataclass(frozen=True)
class LogNormal:
    """Log-normal: log(X) ~ N(meanlog, sdlog**2), optionally truncated."""

    meanlog: float
    sdlog: float
    lower: float = 0.0
    upper: float = math.inf
    continuous = True

    def from_normal_scores(self, scores):
        """Values from standard normal scores, shape (n,) -> (n,)."""
        if self.lower == 0 and math.isinf(self.upper):
            return np.exp(self.meanlog + self.sdlog * scores)
        lower = -math.inf if self.lower == 0 else (math.log(self.lower) - self.meanlog) / self.sdlog
        upper = (math.log(self.upper) - self.meanlog) / self.sdlog
        standard = _truncated_standard_normal(scores, lower, upper)
        return np.clip(np.exp(self.meanlog + self.sdlog * standard), self.lower, self.upper)


@dataclasses.dataclass(frozen=True)
class Uniform:
    """Continuous uniform on [lower, upper]."""

    lower: float
    upper: float
    continuous = True

    def from_normal_scores(self, scores):
        """Values from standard normal scores, shape (n,) -> (n,)."""
        values = self.lower + (self.upper - self.lower) * special.ndtr(scores)
        return np.clip(values, self.lower, self.upper)


@dataclasses.dataclass(frozen=True)
class Categorical:
    """Discrete values with probabilities (e.g. SEX 0/1)."""

    values: tuple
    probabilities: tuple
    continuous = False

    def from_uniforms(self, uniforms):
        """Values from uniforms on (0, 1), shape (n,) -> (n,)."""
        cumulative = np.cumsum(self.probabilities)
        cumulative[-1] = 1.0
        index = np.minimum(np.searchsorted(cumulative, uniforms, side="right"),
                           len(self.values) - 1)
        return np.asarray(self.values)[index]


@dataclasses.dataclass(frozen=True)
class Constant:
    """The same value for every subject."""

    value: float
    continuous = False

    def from_uniforms(self, uniforms):
        """Values, shape (n,) -> (n,)."""
        return np.full(uniforms.shape, self.value)


def _check_keys(key, spec, required, optional):
    allowed = {"distribution", *required, *optional, *DOCUMENTATION_KEYS}
    for name in spec:
        if name not in allowed:
            raise PopulationError(f"unknown key {name!r} (allowed: {', '.join(sorted(allowed))})", key=key)
    for name in required:
        if name not in spec:
            raise PopulationError(f"missing key {name!r}", key=key)


def _bounds(key, spec, default_lower):
    lower = finite_number(f"{key}.min", spec["min"]) if "min" in spec else default_lower
    upper = finite_number(f"{key}.max", spec["max"]) if "max" in spec else math.inf
    if lower >= upper:
        raise PopulationError(f"min ({format_value(lower)}) must be below max ({format_value(upper)})", key=key)
    return lower, upper


def _check_truncated_mass(key, lower, upper, name):
    if _standard_normal_mass(lower, upper) < _MINIMUM_TRUNCATED_MASS:
        raise PopulationError(f"[min, max] holds almost no probability of the {name} distribution "
                              f"(< {_MINIMUM_TRUNCATED_MASS:g}); move the bounds or the mean", key=key)


def _parse_normal(key, spec):
    _check_keys(key, spec, ("mean", "sd"), ("min", "max"))
    mean = finite_number(f"{key}.mean", spec["mean"])
    sd = positive_number(f"{key}.sd", spec["sd"])
    lower, upper = _bounds(key, spec, -math.inf)
    _check_truncated_mass(key, (lower - mean) / sd, (upper - mean) / sd, "normal")
    return Normal(mean, sd, lower, upper)


def _parse_lognormal(key, spec):
    _check_keys(key, spec, (), ("mean", "sd", "meanlog", "sdlog", "min", "max"))
    if {"mean", "sd"} <= spec.keys() and not {"meanlog", "sdlog"} & spec.keys():
        mean = positive_number(f"{key}.mean", spec["mean"])
        sd = positive_number(f"{key}.sd", spec["sd"])
        sdlog = math.sqrt(math.log1p((sd / mean) ** 2))
        meanlog = math.log(mean) - 0.5 * sdlog ** 2
    elif {"meanlog", "sdlog"} <= spec.keys() and not {"mean", "sd"} & spec.keys():
        meanlog = finite_number(f"{key}.meanlog", spec["meanlog"])
        sdlog = positive_number(f"{key}.sdlog", spec["sdlog"])
    else:
        raise PopulationError("lognormal needs either mean and sd (natural scale) or meanlog and sdlog", key=key)
    lower, upper = _bounds(key, spec, 0.0)
    if lower < 0:
        raise PopulationError("must be >= 0 for a lognormal", key=f"{key}.min", value=lower, got=format_value(lower))
    log_lower = -math.inf if lower == 0 else (math.log(lower) - meanlog) / sdlog
    _check_truncated_mass(key, log_lower, (math.log(upper) - meanlog) / sdlog, "lognormal")
    return LogNormal(meanlog, sdlog, lower, upper)


def _parse_uniform(key, spec):
    _check_keys(key, spec, ("min", "max"), ())
    return Uniform(*_bounds(key, spec, -math.inf))


def _parse_categorical(key, spec):
    _check_keys(key, spec, ("values", "probabilities"), ())
    values = [finite_number(f"{key}.values[{index}]", value)
              for index, value in enumerate(spec["values"])]
    probabilities = [non_negative_number(f"{key}.probabilities[{index}]", value)
                     for index, value in enumerate(spec["probabilities"])]
    if not values or len(values) != len(probabilities):
        raise PopulationError(f"values ({len(values)}) and probabilities ({len(probabilities)}) "
                              "must be non-empty and of equal length", key=key)
    if len(set(values)) != len(values):
        raise PopulationError("must be distinct", key=f"{key}.values", value=spec['values'], got=str(spec['values']))
    total = sum(probabilities)
    if abs(total - 1.0) > 1e-6:
        raise PopulationError("must sum to 1", key=f"{key}.probabilities", value=total, got=format_value(total))
    values = tuple(int(value) if value.is_integer() else value for value in values)
    return Categorical(values, tuple(probability / total for probability in probabilities))


def _parse_constant(key, spec):
    _check_keys(key, spec, ("value",), ())
    return Constant(finite_number(f"{key}.value", spec["value"]))


_PARSERS = {
    "normal": _parse_normal,
    "lognormal": _parse_lognormal,
    "uniform": _parse_uniform,
    "categorical": _parse_categorical,
    "constant": _parse_constant,
}


def parse_covariate(name, spec, key="population.covariates"):
    """Validate one covariate specification.

    Parameters
    ----------
    name : str
        Covariate name, an identifier such as ``"WT"``.
    spec : mapping
        ``distribution`` = ``"normal"`` (mean, sd), ``"lognormal"`` (mean and
        sd on the natural scale, or meanlog and sdlog), ``"uniform"`` (min,
        max), ``"categorical"`` (values, probabilities) or ``"constant"``
        (value). Normal and lognormal take optional ``min``/``max``
        truncation bounds of the parent distribution. ``unit``,
        ``description`` and ``source`` are free text.
    key : str, optional
        Key path of the covariate table, for error messages.

    Returns
    -------
    Normal, LogNormal, Uniform, Categorical or Constant

    Examples
    --------
    >>> parse_covariate("AGE", {"distribution": "normal", "mean": 46, "sd": 12, "min": 18})
    Normal(mean=46.0, sd=12.0, lower=18.0, upper=inf)
    """
    key = f"{key}.{name}"
    if not isinstance(name, str) or not name.isidentifier():
        raise PopulationError("covariate name must be an identifier", key=key)
    if not isinstance(spec, Mapping):
        raise PopulationError("must be a table of distribution settings", key=key, value=spec, got=repr(spec))
    kind = spec.get("distribution")
    if kind not in _PARSERS:
        allowed = ", ".join(repr(name) for name in _PARSERS)
        raise PopulationError(f"must be one of {allowed}", key=f"{key}.distribution", value=kind, got=repr(kind))
    return _PARSERS[kind](key, spec)


def parse_correlations(spec, distributions, key="population.correlations"):
    """Validate a Gaussian-copula correlation matrix between covariates.

    Parameters
    ----------
    spec : mapping
        ``{"names": [...], "matrix": [[...]]}``: correlations of the normal
        scores of continuous covariates (for a normal covariate the Pearson
        correlation; for a lognormal one that of its logarithm; truncation
        changes the realised value a little).
    distributions : mapping of str to distribution
        The parsed covariates.
    key : str, optional

    Returns
    -------
    names : tuple of str, length m
    factor : ndarray of float64, shape (m, m)
        Lower Cholesky factor of the correlation matrix.
    """
    if not isinstance(spec, Mapping) or set(spec) != {"names", "matrix"}:
        raise PopulationError("must be a table with exactly the keys 'names' and 'matrix'", key=key)
    names = tuple(spec["names"])
    for index, name in enumerate(names):
        if name not in distributions:
            raise PopulationError(f"no covariate named {name!r}", key=f"{key}.names[{index}]")
        if not distributions[name].continuous:
            raise PopulationError(f"{name!r} is not continuous; only normal, lognormal "
                                  "and uniform covariates can be correlated", key=f"{key}.names[{index}]")
    if len(set(names)) != len(names):
        raise PopulationError("must be distinct", key=f"{key}.names", value=list(names), got=str(list(names)))
    matrix = square_symmetric(f"{key}.matrix", spec["matrix"])
    if matrix.shape[0] != len(names):
        raise PopulationError(f"shape {matrix.shape} does not match {len(names)} names", key=f"{key}.matrix")
    for index in range(len(names)):
        if matrix[index, index] != 1.0:
            raise PopulationError("must be 1", key=f"{key}.matrix[{index}][{index}]", value=matrix[index, index],
                                  got=format_value(matrix[index, index]))
    position = first_position(np.abs(matrix) > 1)
    if position:
        row, column = position
        raise PopulationError("must be in [-1, 1]", key=f"{key}.matrix[{row}][{column}]", value=matrix[position],
                              got=format_value(matrix[position]))
    check_positive_definite(f"{key}.matrix", matrix)
    return names, np.linalg.cholesky(matrix)


def _normal_scores(seed, subject_ids, names, correlations):
    """Standard normal scores per continuous covariate, correlated by the copula."""
    scores = {name: subject_normals(seed, subject_ids, f"covariates/{name}", 1)[:, 0]
              for name in names}
    if correlations is not None:
        group, factor = correlations
        mixed = lower_triangular_apply(np.column_stack([scores[name] for name in group]), factor)
        scores.update({name: mixed[:, index] for index, name in enumerate(group)})
    return scores


def sample_covariates(covariates, correlations=None, n=None, *, seed, subject_ids=None,
                      key="population"):
    """Draw covariates from distributions, one row per subject.

    Parameters
    ----------
    covariates : mapping of str to mapping
        Covariate name -> distribution spec (see :func:`parse_covariate`).
    correlations : mapping, optional
        Gaussian copula (see :func:`parse_correlations`).
    n : int, optional
        Number of subjects, ids 0..n-1; or give ``subject_ids``.
    seed : int
    subject_ids : array_like of int, shape (n,), optional
    key : str, optional
        Key path for error messages.

    Returns
    -------
    pandas.DataFrame, shape (n, number of covariates)
        Columns in spec order, index ``subject_id``; no derived covariates
        (see :func:`add_derived_covariates`).

    Examples
    --------
    >>> spec = {"WT": {"distribution": "lognormal", "mean": 79, "sd": 19}}
    >>> sample_covariates(spec, n=3, seed=1).shape
    (3, 1)
    """
    ids = checked_subject_ids(n, subject_ids, f"{key}.n")
    seed = checked_seed(seed, f"{key}.seed")
    if not isinstance(covariates, Mapping) or not covariates:
        raise PopulationError("must be a non-empty table of covariates", key=f"{key}.covariates")
    distributions = {name: parse_covariate(name, spec, f"{key}.covariates")
                     for name, spec in covariates.items()}
    parsed_correlations = None if correlations is None else parse_correlations(
        correlations, distributions, f"{key}.correlations")
    continuous = [name for name, distribution in distributions.items() if distribution.continuous]
    scores = _normal_scores(seed, ids, continuous, parsed_correlations)
    columns = {}
    for name, distribution in distributions.items():
        if distribution.continuous:
            columns[name] = distribution.from_normal_scores(scores[name])
        else:
            uniforms = subject_uniforms(seed, ids, f"covariates/{name}", 1)[:, 0]
            columns[name] = distribution.from_uniforms(uniforms)
    return pd.DataFrame(columns, index=pd.Index(ids, name="subject_id"))
