"""Virtual populations: covariates, random effects and residual error.

Everything random here is drawn from the per-subject counter-based streams of
:mod:`pkpd._random`, so each subject's numbers depend only on ``(seed,
subject id, stream, column)``: a population drawn whole, in chunks, or for a
range of subject ids gives bit-identical rows. Stream names used here:

=====================  ====================================================
``covariates/NAME``    one stream per covariate (adding a covariate leaves
                       the others unchanged unless they are correlated)
``resample``           row picked from a table of real patients
``iiv``                inter-individual random effects (column = eta index)
``iov``                inter-occasion effects (column = occasion * k + eta)
``residual``           residual error (columns 2t and 2t+1 for time index t);
                       use ``residual/OUTPUT`` for a second output
=====================  ====================================================

Units: AGE years, WT kg, HT cm, SCR mg/dL, CRCL mL/min, BMI kg/m2; SEX is
coded 0 = male, 1 = female (:data:`MALE`, :data:`FEMALE`).

Arithmetic that mixes columns (Cholesky factors of OMEGA and of covariate
correlations) is done column by column with NumPy element-wise operations,
never by BLAS matrix products, whose summation order may depend on the number
of rows; this keeps chunked results bit-identical.
"""

import dataclasses
import math
from collections.abc import Iterable, Mapping
import numbers
import os
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import special

from pkpd._errors import PopulationError, suggestion
from pkpd._random import RandomStreamError, check_seed, subject_normals, subject_uniforms

MALE = 0
FEMALE = 1
COCKCROFT_GAULT_FEMALE_FACTOR = 0.85
EFFECT_FORMS = ("exp", "additive", "logit")
DOCUMENTATION_KEYS = ("unit", "description", "source")
_MINIMUM_TRUNCATED_MASS = 1e-9
_EIGENVALUE_TOLERANCE = 1e-10
_SCR_UMOL_SUSPICION_MG_DL = 20.0
_DERIVED_INPUTS = {"CRCL": {"AGE", "WT", "SCR", "SEX"}, "BMI": {"WT", "HT"}}


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def _format(value):
    """A number as a short string: 130.0 -> '130', -0.02 -> '-0.02'."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return format(float(value), "g")
    return repr(value)


def _finite_number(key, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise PopulationError("must be a finite number", key=key, value=value, got=_format(value))
    return float(value)


def _positive_number(key, value):
    value = _finite_number(key, value)
    if value <= 0:
        raise PopulationError("must be > 0", key=key, value=value, got=_format(value))
    return value


def _non_negative_number(key, value):
    value = _finite_number(key, value)
    if value < 0:
        raise PopulationError("must be >= 0", key=key, value=value, got=_format(value))
    return value


def _seed(seed, key):
    try:
        return check_seed(seed)
    except RandomStreamError as error:
        raise PopulationError(error.rule, key=key, **error.fields()) from None


def _given_column(column, name, source):
    """A column of a table of given individuals as float64: numeric, finite, no empty cell."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        cell = column.iloc[index]
        empty = cell is None or (isinstance(cell, float) and math.isnan(cell)) or str(cell).strip() in ("", ".")
        rule = "must not be empty" if empty else ("must be finite" if np.isinf(values[index]) else "must be a number")
        raise PopulationError(rule, file=source, row=index + 2, column=str(name), value=cell,
                              got=None if empty else repr(cell) if isinstance(cell, str) else str(cell))
    return values


def _given_ids(values, name, source):
    """Subject IDs of a table of given individuals: non-negative integers, each once."""
    bad = (values != np.round(values)) | (values < 0) | (values > 2.0 ** 63 - 1024)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise PopulationError("must be a non-negative integer", file=source, row=index + 2, column=name,
                              value=values[index], got=_format(values[index]))
    ids = values.astype(np.int64)
    order = np.argsort(ids, kind="stable")
    same = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if same.size:
        first, second = sorted(order[same[0]:same[0] + 2])
        raise PopulationError(f"must be distinct: row {second + 2} repeats row {first + 2}", file=source,
                              row=second + 2, column=name, value=ids[second], got=str(ids[second]))
    return ids


def _subject_ids(n, subject_ids, key):
    """Validated subject ids, shape (n,), int64: ``subject_ids`` or 0..n-1."""
    if subject_ids is None:
        if n is None:
            raise PopulationError("give n or subject_ids", key=key)
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise PopulationError("must be a positive integer", key=key, value=n, got=_format(n))
        return np.arange(int(n), dtype=np.int64)
    ids = np.asarray(subject_ids)
    if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise PopulationError("must be a non-empty 1-D integer array", key="subject_ids",
                              got=f"shape {ids.shape}, dtype {ids.dtype}")
    if ids.min() < 0 or ids.max() > np.iinfo(np.int64).max:
        raise PopulationError("must be in [0, 2**63 - 1]", key="subject_ids", value=ids.min(), got=str(ids.min()))
    increasing = bool(np.all(ids[1:] > ids[:-1]))
    if not increasing and np.unique(ids).size != ids.size:
        raise PopulationError("must be distinct", key="subject_ids")
    if n is not None and n != ids.size:
        raise PopulationError(f"{_format(n)} does not match len(subject_ids) = {ids.size}", key=key)
    return ids.astype(np.int64, copy=False)


def _lower_triangular_apply(scores, factor):
    """``scores @ factor.T`` for lower-triangular ``factor``, row-order independent.

    Parameters
    ----------
    scores : ndarray, shape (n, k)
    factor : ndarray, shape (k, k), lower triangular.

    Returns
    -------
    ndarray, shape (n, k)
        Column j is ``sum(factor[j, m] * scores[:, m] for m <= j)`` summed in
        that order, so every row gets the same operations whatever n is.
    """
    out = np.zeros(scores.shape, dtype=np.float64)
    for row in range(factor.shape[0]):
        for column in range(row + 1):
            if factor[row, column] != 0.0:
                out[:, row] += factor[row, column] * scores[:, column]
    return out


# --------------------------------------------------------------------------
# symmetric matrices: OMEGA blocks and correlation matrices
# --------------------------------------------------------------------------

def _float_array(key, value):
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise PopulationError("must be a matrix of numbers", key=key) from None


def _first_position(mask):
    """(row, column) of the first True element of a 2-D mask, or None."""
    positions = np.argwhere(mask)
    return tuple(int(index) for index in positions[0]) if positions.size else None


def _square_symmetric(key, matrix):
    """Validated float64 copy of a square, finite, symmetric matrix."""
    values = _float_array(key, matrix)
    if values.ndim != 2 or values.shape[0] != values.shape[1] or values.shape[0] == 0:
        raise PopulationError("must be a square matrix", key=key, got=f"shape {values.shape}")
    position = _first_position(~np.isfinite(values))
    if position:
        row, column = position
        raise PopulationError("must be finite", key=f"{key}[{row}][{column}]", value=values[position],
                              got=str(values[position]))
    scale = max(1.0, float(np.abs(values).max()))
    position = _first_position(np.abs(values - values.T) > 1e-12 * scale)
    if position:
        row, column = position
        raise PopulationError(f"must equal {key}[{column}][{row}] (symmetric)", key=f"{key}[{row}][{column}]",
                              got=f"{_format(values[row, column])} and {_format(values[column, row])}")
    return 0.5 * (values + values.T)


def _check_positive_definite(key, matrix):
    eigenvalues = np.linalg.eigvalsh(matrix)
    if eigenvalues[0] <= _EIGENVALUE_TOLERANCE * abs(eigenvalues[-1]):
        raise PopulationError(f"not positive definite (eigenvalue {eigenvalues[0]:.3g})", key=key)


def omega_cholesky(omega, key="omega"):
    """Validate an OMEGA matrix and return its lower Cholesky factor.

    Parameters
    ----------
    omega : array_like, shape (k, k) or (k,)
        Variances (diagonal) and covariances of the random effects (etas), as
        NONMEM's $OMEGA BLOCK written out in full; a 1-D array is a diagonal.
        A variance of 0 switches that eta off (its covariances must be 0).
    key : str, optional
        Name used in error messages.

    Returns
    -------
    ndarray of float64, shape (k, k)
        Lower-triangular L with ``L @ L.T == omega``; rows of zero-variance
        etas are zero.

    Raises
    ------
    PopulationError
        Not square, not finite, not symmetric, a negative variance, a non-zero
        covariance of a zero variance, or not positive definite.

    Examples
    --------
    >>> omega_cholesky([[0.09, 0.03], [0.03, 0.16]]).round(3).tolist()
    [[0.3, 0.0], [0.1, 0.387]]
    """
    values = _float_array(key, omega)
    matrix = _square_symmetric(key, np.diag(values) if values.ndim == 1 else values)
    variances = np.diag(matrix)
    negative = np.flatnonzero(variances < 0)
    if negative.size:
        index = negative[0]
        raise PopulationError("variance must be >= 0", key=f"{key}[{index}][{index}]", value=variances[index],
                              got=_format(variances[index]))
    active = variances > 0
    position = _first_position(~active[:, None] & (matrix != 0))
    if position:
        row, column = position
        raise PopulationError(f"covariance must be 0 when variance {key}[{row}][{row}] is 0",
                              key=f"{key}[{row}][{column}]", value=matrix[position], got=_format(matrix[position]))
    factor = np.zeros_like(matrix)
    if active.any():
        block = matrix[np.ix_(active, active)]
        _check_positive_definite(key, block)
        factor[np.ix_(active, active)] = np.linalg.cholesky(block)
    return factor


# --------------------------------------------------------------------------
# random effects
# --------------------------------------------------------------------------

def sample_iiv(omega, n=None, *, seed, subject_ids=None, stream="iiv", variability=True, key="omega"):
    """Inter-individual random effects (etas) from a full OMEGA block.

    ``eta_i = L z_i`` with L the Cholesky factor of OMEGA and ``z_i`` the
    first k standard normals of subject i's ``stream``.

    Parameters
    ----------
    omega : array_like, shape (k, k) or (k,)
        Variances and covariances of the etas (see :func:`omega_cholesky`).
    n : int, optional
        Number of subjects, ids 0..n-1; or give ``subject_ids``.
    seed : int
        0 <= seed < 2**64.
    subject_ids : array_like of int, shape (n,), optional
        Subject indices (their etas do not depend on the others).
    stream : str, optional
        Stream name.
    variability : bool, optional
        False gives zeros (typical subjects) after validating ``omega``.
    key : str, optional
        Name of ``omega`` in error messages (a model file's key path).

    Returns
    -------
    ndarray of float64, shape (n, k)

    Examples
    --------
    >>> etas = sample_iiv([[0.09, 0.03], [0.03, 0.16]], 1000, seed=1)
    >>> etas.shape
    (1000, 2)
    """
    factor = omega_cholesky(omega, key)
    ids = _subject_ids(n, subject_ids, "n")
    seed = _seed(seed, "seed")
    if not variability:
        return np.zeros((ids.size, factor.shape[0]))
    scores = subject_normals(seed, ids, stream, factor.shape[0])
    return _lower_triangular_apply(scores, factor)


def sample_iov(omega_iov, n=None, n_occasions=1, *, seed, subject_ids=None, stream="iov",
               variability=True, key="omega_iov"):
    """Inter-occasion random effects (kappas), independent between occasions.

    Occasion o of subject i uses columns ``o*k .. o*k + k - 1`` of the
    subject's ``stream``, so adding occasions leaves earlier ones unchanged.

    Parameters
    ----------
    omega_iov : array_like, shape (k, k) or (k,)
        Variances and covariances of the inter-occasion effects, the same for
        every occasion.
    n : int, optional
        Number of subjects, ids 0..n-1; or give ``subject_ids``.
    n_occasions : int
        Number of occasions (e.g. crossover periods).
    seed : int
    subject_ids : array_like of int, shape (n,), optional
    stream : str, optional
    variability : bool, optional
        False gives zeros.
    key : str, optional
        Name of ``omega_iov`` in error messages (a model file's key path).

    Returns
    -------
    ndarray of float64, shape (n, n_occasions, k)

    Examples
    --------
    >>> sample_iov([0.056], 10, 3, seed=1).shape
    (10, 3, 1)
    """
    factor = omega_cholesky(omega_iov, key)
    ids = _subject_ids(n, subject_ids, "n")
    if isinstance(n_occasions, bool) or not isinstance(n_occasions, numbers.Integral) \
            or n_occasions < 1:
        raise PopulationError("must be a positive integer", key="n_occasions", value=n_occasions,
                              got=_format(n_occasions))
    seed = _seed(seed, "seed")
    size = factor.shape[0]
    if not variability:
        return np.zeros((ids.size, n_occasions, size))
    scores = subject_normals(seed, ids, stream, n_occasions * size)
    scores = scores.reshape(ids.size * n_occasions, size)
    return _lower_triangular_apply(scores, factor).reshape(ids.size, n_occasions, size)


def _effect_forms(forms, size):
    if isinstance(forms, str):
        forms = [forms] * size
    forms = list(forms)
    if len(forms) != size:
        raise PopulationError(f"need one per parameter ({size})", key="forms", value=len(forms), got=str(len(forms)))
    for index, form in enumerate(forms):
        if form not in EFFECT_FORMS:
            allowed = ", ".join(repr(name) for name in EFFECT_FORMS)
            raise PopulationError(f"must be one of {allowed}", key=f"forms[{index}]", value=form, got=repr(form))
    return forms


def apply_random_effects(typical, etas, forms="exp"):
    """Individual parameters from typical values and random effects.

    ``exp``: ``P * exp(eta)`` (log-normal, NONMEM's ``TVCL*EXP(ETA(1))``);
    ``additive``: ``P + eta``; ``logit``: ``expit(logit(P) + eta)`` for
    parameters in (0, 1) such as a bioavailability.

    Parameters
    ----------
    typical : array_like, shape (p,) or (n, p)
        Typical values (after covariate effects), in the parameters' units.
    etas : array_like, shape (n, p)
        Random effects, one column per parameter (sum IIV and IOV beforehand;
        a parameter without variability has a zero column).
    forms : str or sequence of str, length p
        One of ``"exp"``, ``"additive"``, ``"logit"`` per parameter.

    Returns
    -------
    ndarray of float64, shape (n, p)

    Examples
    --------
    >>> apply_random_effects([2.0, 10.0], np.zeros((3, 2)), ["exp", "additive"])[0].tolist()
    [2.0, 10.0]
    """
    etas = np.asarray(etas, dtype=np.float64)
    typical = np.asarray(typical, dtype=np.float64)
    if etas.ndim != 2:
        raise PopulationError("must have shape (n, p)", key="etas", value=etas.shape, got=str(etas.shape))
    if typical.shape not in ((etas.shape[1],), etas.shape):
        raise PopulationError(f"shape {typical.shape} does not match etas {etas.shape}", key="typical")
    forms = _effect_forms(forms, etas.shape[1])
    typical = np.broadcast_to(typical, etas.shape)
    out = np.empty(etas.shape)
    for index, form in enumerate(forms):
        out[:, index] = _apply_one_form(typical[:, index], etas[:, index], form, index)
    return out


def _apply_one_form(typical, eta, form, index):
    if form == "exp":
        return typical * np.exp(eta)
    if form == "additive":
        return typical + eta
    outside = (typical <= 0) | (typical >= 1)
    if outside.any():
        raise PopulationError("logit form needs 0 < value < 1", key=f"typical[{index}]",
                              value=typical[np.argmax(outside)], got=_format(typical[np.argmax(outside)]))
    return special.expit(special.logit(typical) + eta)


def add_residual_error(ipred, additive_sd=0.0, proportional_sd=0.0, *, seed, subject_ids=None,
                       stream="residual", variability=True, first_time_index=0):
    """Observations from individual predictions with residual error.

    ``obs = ipred * (1 + proportional_sd * eps1) + additive_sd * eps2``: additive
    (``proportional_sd = 0``), proportional (``additive_sd = 0``) or combined.
    ``eps1`` and ``eps2`` of subject i at time index t are columns ``2t`` and
    ``2t + 1`` of the subject's ``stream``.

    Parameters
    ----------
    ipred : array_like, shape (n, t) or (n,)
        Individual predictions, e.g. concentrations in ng/mL.
    additive_sd : float
        Standard deviation of the additive error, in ``ipred``'s unit
        (NONMEM SIGMA is a variance: ``additive_sd = sqrt(SIGMA)``).
    proportional_sd : float
        Standard deviation of the proportional error, a fraction (0.12 = 12 %).
    seed : int
    subject_ids : array_like of int, shape (n,), optional
        Defaults to 0..n-1.
    stream : str, optional
        Use one stream per output, e.g. ``"residual/CP"``.
    variability : bool, optional
        False returns a copy of ``ipred``.
    first_time_index : int, optional
        Time index of ``ipred[:, 0]`` (to add errors to a later block of times).

    Returns
    -------
    ndarray of float64, same shape as ``ipred``
        May be negative where ``ipred`` is small; censoring below a limit of
        quantification is the caller's choice.

    Examples
    --------
    >>> add_residual_error(np.full((2, 3), 100.0), 0.0, 0.1, seed=1).shape
    (2, 3)
    """
    predictions = np.asarray(ipred, dtype=np.float64)
    if predictions.ndim not in (1, 2):
        raise PopulationError("must have shape (n, t) or (n,)", key="ipred", value=predictions.shape,
                              got=str(predictions.shape))
    additive_sd = _non_negative_number("additive_sd", additive_sd)
    proportional_sd = _non_negative_number("proportional_sd", proportional_sd)
    ids = _subject_ids(predictions.shape[0], subject_ids, "ipred.shape[0]")
    if isinstance(first_time_index, bool) or not isinstance(first_time_index, numbers.Integral) \
            or first_time_index < 0:
        raise PopulationError("must be an integer >= 0", key="first_time_index", value=first_time_index,
                              got=_format(first_time_index))
    seed = _seed(seed, "seed")
    if not variability:
        return predictions.copy()
    table = predictions.reshape(ids.size, -1)
    errors = subject_normals(seed, ids, stream, 2 * table.shape[1],
                             first_column=2 * int(first_time_index))
    observed = table * (1.0 + proportional_sd * errors[:, 0::2]) + additive_sd * errors[:, 1::2]
    return observed.reshape(predictions.shape)


# --------------------------------------------------------------------------
# covariate distributions
# --------------------------------------------------------------------------

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
    lower = _finite_number(f"{key}.min", spec["min"]) if "min" in spec else default_lower
    upper = _finite_number(f"{key}.max", spec["max"]) if "max" in spec else math.inf
    if lower >= upper:
        raise PopulationError(f"min ({_format(lower)}) must be below max ({_format(upper)})", key=key)
    return lower, upper


def _check_truncated_mass(key, lower, upper, name):
    if _standard_normal_mass(lower, upper) < _MINIMUM_TRUNCATED_MASS:
        raise PopulationError(f"[min, max] holds almost no probability of the {name} distribution "
                              f"(< {_MINIMUM_TRUNCATED_MASS:g}); move the bounds or the mean", key=key)


def _parse_normal(key, spec):
    _check_keys(key, spec, ("mean", "sd"), ("min", "max"))
    mean = _finite_number(f"{key}.mean", spec["mean"])
    sd = _positive_number(f"{key}.sd", spec["sd"])
    lower, upper = _bounds(key, spec, -math.inf)
    _check_truncated_mass(key, (lower - mean) / sd, (upper - mean) / sd, "normal")
    return Normal(mean, sd, lower, upper)


def _parse_lognormal(key, spec):
    _check_keys(key, spec, (), ("mean", "sd", "meanlog", "sdlog", "min", "max"))
    if {"mean", "sd"} <= spec.keys() and not {"meanlog", "sdlog"} & spec.keys():
        mean = _positive_number(f"{key}.mean", spec["mean"])
        sd = _positive_number(f"{key}.sd", spec["sd"])
        sdlog = math.sqrt(math.log1p((sd / mean) ** 2))
        meanlog = math.log(mean) - 0.5 * sdlog ** 2
    elif {"meanlog", "sdlog"} <= spec.keys() and not {"mean", "sd"} & spec.keys():
        meanlog = _finite_number(f"{key}.meanlog", spec["meanlog"])
        sdlog = _positive_number(f"{key}.sdlog", spec["sdlog"])
    else:
        raise PopulationError("lognormal needs either mean and sd (natural scale) or meanlog and sdlog", key=key)
    lower, upper = _bounds(key, spec, 0.0)
    if lower < 0:
        raise PopulationError("must be >= 0 for a lognormal", key=f"{key}.min", value=lower, got=_format(lower))
    log_lower = -math.inf if lower == 0 else (math.log(lower) - meanlog) / sdlog
    _check_truncated_mass(key, log_lower, (math.log(upper) - meanlog) / sdlog, "lognormal")
    return LogNormal(meanlog, sdlog, lower, upper)


def _parse_uniform(key, spec):
    _check_keys(key, spec, ("min", "max"), ())
    return Uniform(*_bounds(key, spec, -math.inf))


def _parse_categorical(key, spec):
    _check_keys(key, spec, ("values", "probabilities"), ())
    values = [_finite_number(f"{key}.values[{index}]", value)
              for index, value in enumerate(spec["values"])]
    probabilities = [_non_negative_number(f"{key}.probabilities[{index}]", value)
                     for index, value in enumerate(spec["probabilities"])]
    if not values or len(values) != len(probabilities):
        raise PopulationError(f"values ({len(values)}) and probabilities ({len(probabilities)}) "
                              "must be non-empty and of equal length", key=key)
    if len(set(values)) != len(values):
        raise PopulationError("must be distinct", key=f"{key}.values", value=spec['values'], got=str(spec['values']))
    total = sum(probabilities)
    if abs(total - 1.0) > 1e-6:
        raise PopulationError("must sum to 1", key=f"{key}.probabilities", value=total, got=_format(total))
    values = tuple(int(value) if value.is_integer() else value for value in values)
    return Categorical(values, tuple(probability / total for probability in probabilities))


def _parse_constant(key, spec):
    _check_keys(key, spec, ("value",), ())
    return Constant(_finite_number(f"{key}.value", spec["value"]))


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
    matrix = _square_symmetric(f"{key}.matrix", spec["matrix"])
    if matrix.shape[0] != len(names):
        raise PopulationError(f"shape {matrix.shape} does not match {len(names)} names", key=f"{key}.matrix")
    for index in range(len(names)):
        if matrix[index, index] != 1.0:
            raise PopulationError("must be 1", key=f"{key}.matrix[{index}][{index}]", value=matrix[index, index],
                                  got=_format(matrix[index, index]))
    position = _first_position(np.abs(matrix) > 1)
    if position:
        row, column = position
        raise PopulationError("must be in [-1, 1]", key=f"{key}.matrix[{row}][{column}]", value=matrix[position],
                              got=_format(matrix[position]))
    _check_positive_definite(f"{key}.matrix", matrix)
    return names, np.linalg.cholesky(matrix)


def _normal_scores(seed, subject_ids, names, correlations):
    """Standard normal scores per continuous covariate, correlated by the copula."""
    scores = {name: subject_normals(seed, subject_ids, f"covariates/{name}", 1)[:, 0]
              for name in names}
    if correlations is not None:
        group, factor = correlations
        mixed = _lower_triangular_apply(np.column_stack([scores[name] for name in group]), factor)
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
    ids = _subject_ids(n, subject_ids, f"{key}.n")
    seed = _seed(seed, f"{key}.seed")
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


# --------------------------------------------------------------------------
# derived covariates
# --------------------------------------------------------------------------

def cockcroft_gault(age, weight, serum_creatinine, female):
    """Creatinine clearance by Cockcroft and Gault (Nephron 1976;16:31-41).

    ``CRCL = (140 - AGE) * WT / (72 * SCR)``, times 0.85 for women, with total
    body weight.

    Parameters
    ----------
    age : array_like, years (< 140)
    weight : array_like, kg
    serum_creatinine : array_like, mg/dL (divide µmol/L by 88.42)
    female : array_like of bool

    Returns
    -------
    ndarray of float64
        Creatinine clearance, mL/min.

    Examples
    --------
    >>> float(cockcroft_gault(60, 80, 1.2, False)).__round__(3)
    74.074
    """
    clearance = (140.0 - np.asarray(age, dtype=np.float64)) * np.asarray(weight, dtype=np.float64) \
        / (72.0 * np.asarray(serum_creatinine, dtype=np.float64))
    return np.where(np.asarray(female, dtype=bool), COCKCROFT_GAULT_FEMALE_FACTOR * clearance,
                    clearance)


def body_mass_index(weight, height):
    """Body-mass index.

    Parameters
    ----------
    weight : array_like, kg
    height : array_like, cm

    Returns
    -------
    ndarray of float64
        kg/m2.

    Examples
    --------
    >>> float(body_mass_index(81, 180))
    25.0
    """
    height_m = np.asarray(height, dtype=np.float64) / 100.0
    return np.asarray(weight, dtype=np.float64) / (height_m * height_m)


def _first_violation(frame, column, bad, rule, source):
    if bad.any():
        position = int(np.argmax(bad))
        raise PopulationError(f"column {column!r} {rule}", file=source,
                              got=f"{_format(frame[column].iloc[position])} (subject {frame.index[position]})")


def add_derived_covariates(frame, source="population"):
    """Add CRCL (Cockcroft-Gault) and BMI when their inputs are present.

    CRCL needs AGE, WT, SCR and SEX (0 male, 1 female); BMI needs WT and HT.
    A column already present is kept as given.

    Parameters
    ----------
    frame : pandas.DataFrame, one row per subject
    source : str, optional
        Name for error messages (e.g. the patient file).

    Returns
    -------
    pandas.DataFrame
        A new frame with the derived columns appended.

    Raises
    ------
    PopulationError
        If an input is out of the formula's domain (SCR <= 0, AGE >= 140,
        SEX not 0/1, WT or HT <= 0).
    """
    frame = frame.copy()
    if "CRCL" not in frame and _DERIVED_INPUTS["CRCL"] <= set(frame.columns):
        _first_violation(frame, "SCR", ~(frame["SCR"].to_numpy() > 0), "must be > 0 mg/dL", source)
        _first_violation(frame, "AGE", ~(frame["AGE"].to_numpy() < 140),
                         "must be < 140 years for Cockcroft-Gault", source)
        _first_violation(frame, "WT", ~(frame["WT"].to_numpy() > 0), "must be > 0 kg", source)
        _first_violation(frame, "SEX", ~np.isin(frame["SEX"].to_numpy(), (MALE, FEMALE)),
                         "must be 0 (male) or 1 (female)", source)
        frame["CRCL"] = cockcroft_gault(frame["AGE"], frame["WT"], frame["SCR"],
                                        frame["SEX"].to_numpy() == FEMALE)
    if "BMI" not in frame and _DERIVED_INPUTS["BMI"] <= set(frame.columns):
        _first_violation(frame, "HT", ~(frame["HT"].to_numpy() > 0), "must be > 0 cm", source)
        frame["BMI"] = body_mass_index(frame["WT"], frame["HT"])
    return frame


# --------------------------------------------------------------------------
# resampling real patients
# --------------------------------------------------------------------------

def read_patients(csv, required=()):
    """Read and check a table of real patients, one row per patient.

    Parameters
    ----------
    csv : str, os.PathLike or pandas.DataFrame
        A CSV file with a header row, or a table already loaded.
    required : sequence of str, optional
        Covariate columns that must be present, numeric and complete. CRCL
        and BMI may be missing if their inputs are present (they are derived).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    PopulationError
        Unreadable or empty file, missing or non-numeric required column,
        missing value, SCR apparently in µmol/L.
    """
    source = "csv" if isinstance(csv, pd.DataFrame) else os.fspath(csv)
    table = csv.copy() if isinstance(csv, pd.DataFrame) else _read_csv(source)
    if table.empty:
        raise PopulationError("no patient rows", file=source)
    for column in required:
        derivable = column in _DERIVED_INPUTS and _DERIVED_INPUTS[column] <= set(table.columns)
        if column not in table and not derivable:
            raise PopulationError(f"missing required covariate column {column!r}", file=source)
    for column in [name for name in required if name in table]:
        _check_numeric_column(table, column, source)
    if "SCR" in table and pd.api.types.is_numeric_dtype(table["SCR"]) \
            and table["SCR"].median() > _SCR_UMOL_SUSPICION_MG_DL:
        raise PopulationError(f"column 'SCR' must be in mg/dL; median {_format(table['SCR'].median())} "
                              "looks like µmol/L (divide by 88.42)", file=source)
    return table


def _read_csv(path):
    try:
        return pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PopulationError(f"cannot read patient table ({reason})", file=path) from None


def _check_numeric_column(table, column, source):
    values = table[column]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise PopulationError(f"column {column!r} must be numeric", file=source, value=values.dtype,
                              got=str(values.dtype))
    missing = values.isna().to_numpy()
    if missing.any():
        raise PopulationError(f"column {column!r} has {int(missing.sum())} missing values "
                              f"(first at data row {int(np.argmax(missing)) + 1})", file=source)


def resample_patients(table, n=None, *, seed, subject_ids=None, stream="resample"):
    """Draw subjects from a patient table with replacement.

    Subject i gets row ``floor(u_i * rows)`` with ``u_i`` the first uniform of
    its ``stream``, so its row depends only on (seed, subject id).

    Parameters
    ----------
    table : pandas.DataFrame, shape (rows, columns)
        Checked patients (see :func:`read_patients`).
    n : int, optional
        Number of subjects, ids 0..n-1; or give ``subject_ids``.
    seed : int
    subject_ids : array_like of int, shape (n,), optional
    stream : str, optional

    Returns
    -------
    pandas.DataFrame, shape (n, columns + 1)
        The drawn rows, with ``SOURCE_ROW`` (0-based row of the table) added
        and a column ``ID`` renamed ``SOURCE_ID``; index ``subject_id``.
    """
    ids = _subject_ids(n, subject_ids, "n")
    uniforms = subject_uniforms(_seed(seed, "seed"), ids, stream, 1)[:, 0]
    rows = np.minimum((uniforms * len(table)).astype(np.int64), len(table) - 1)
    frame = table.iloc[rows].rename(columns={"ID": "SOURCE_ID"})
    frame.insert(len(frame.columns), "SOURCE_ROW", rows)
    frame.index = pd.Index(ids, name="subject_id")
    return frame


# --------------------------------------------------------------------------
# the default population
# --------------------------------------------------------------------------

def default_neuropathic_pain_covariates():
    """Covariate distributions of a refractory neuropathic-pain population.

    No source gives the baseline table of Pickering 2020 (LITERATURE.md
    section 6, LITERATURE-2.md section 1), so the anchor is the closest
    published adult chronic neuropathic-pain ketamine population: the
    S-ketamine arm of Dahan 2011 (CRPS-1, Eur J Pain 15:258) as tabulated by
    Otto 2021 (Table 2): 30 patients, 8 men (27 %), age 46 +- 12 y, weight
    79 +- 19 kg. The whole trial (Sigtermans 2009) was 80 % female; the arm's
    73 % is used to keep sex, age and weight from the same patients.

    Everything else is an ASSUMPTION (marked so in each entry's ``source``):
    height, serum creatinine, all bounds and the weight-height correlation.
    Known limitation: height and creatinine do not depend on sex here
    (categorical covariates are outside the copula).

    Returns
    -------
    dict of str to dict
        AGE (years), SEX (0 male, 1 female), WT (kg), HT (cm), SCR (mg/dL);
        :class:`Population` adds CRCL (mL/min) and BMI (kg/m2).

    Examples
    --------
    >>> sorted(default_neuropathic_pain_covariates())
    ['AGE', 'HT', 'SCR', 'SEX', 'WT']
    """
    return {
        "AGE": {
            "distribution": "normal", "mean": 46.0, "sd": 12.0, "min": 18.0, "max": 85.0,
            "unit": "years",
            # Bounds are an assumption: adults only (trial inclusion >= 18 y); 85 y is
            # near the oldest patient of the esketamine pool (86 y, Perez-Ruixo).
            "source": "mean, sd: Dahan 2011 ketamine arm via Otto 2021 Table 2; "
                      "bounds 18-85 y: ASSUMPTION (adults; esketamine pool max 86 y)",
        },
        "SEX": {
            "distribution": "categorical", "values": [MALE, FEMALE],
            "probabilities": [8 / 30, 22 / 30],
            "unit": "0 = male, 1 = female",
            "source": "Dahan 2011 ketamine arm, 8 of 30 men (27 %), via Otto 2021 Table 2; "
                      "Sigtermans 2009 whole trial 80 % female",
        },
        "WT": {
            "distribution": "lognormal", "mean": 79.0, "sd": 19.0, "min": 40.0, "max": 160.0,
            "unit": "kg",
            # Lognormal is an assumption: adult body weight is right-skewed; mean and sd
            # are those of the untruncated parent distribution.
            "source": "mean, sd: Dahan 2011 ketamine arm via Otto 2021 Table 2; lognormal "
                      "shape and bounds 40-160 kg: ASSUMPTION (esketamine pool 39-170 kg)",
        },
        "HT": {
            "distribution": "normal", "mean": 166.0, "sd": 9.0, "min": 145.0, "max": 195.0,
            "unit": "cm",
            # No source reports height. Assumption: a 73 % female / 27 % male mixture of
            # Western European adult heights (women about 162 +- 6.5 cm, men 175 +- 7 cm)
            # has mean about 165.5 cm and sd about 8.8 cm; rounded to 166 +- 9 cm.
            "source": "ASSUMPTION: sex mixture of Western European adult heights",
        },
        "SCR": {
            "distribution": "lognormal", "mean": 0.8, "sd": 0.2, "min": 0.4, "max": 2.0,
            "unit": "mg/dL",
            # No creatinine distribution for chronic-pain patients was found. Assumption:
            # mostly normal renal function, centred on the reference value of the Mg model
            # (Du 2019, SCr 0.8 mg/dL), CV 25 %, bounds close to Du 2019's observed range
            # (0.4-2.1 mg/dL), which also allow mild-to-moderate renal impairment.
            "source": "ASSUMPTION: centred on Du 2019 reference 0.8 mg/dL, CV 25 %, "
                      "bounds near Du 2019 range 0.4-2.1 mg/dL",
        },
    }


def default_neuropathic_pain_correlations():
    """Gaussian-copula correlations of the default population.

    ASSUMPTION: weight and height of adults correlate at about 0.45 (normal
    scores; log weight against height); no source in the literature files.
    Age is taken as independent of both.

    Returns
    -------
    dict
        ``{"names": ["WT", "HT"], "matrix": [[1, 0.45], [0.45, 1]]}``.
    """
    return {"names": ["WT", "HT"], "matrix": [[1.0, 0.45], [0.45, 1.0]]}


# --------------------------------------------------------------------------
# Population
# --------------------------------------------------------------------------

class Population:
    """A seeded virtual population: covariates and per-subject random streams.

    Parameters
    ----------
    n : int, optional
        Number of subjects, ids 0..n-1 (or give ``subject_ids``).
    covariates : mapping, optional
        Covariate name -> distribution (see :func:`parse_covariate`). None
        with no ``csv`` gives :func:`default_neuropathic_pain_covariates`
        and its correlations.
    correlations : mapping, optional
        Gaussian copula between continuous covariates (see
        :func:`parse_correlations`).
    seed : int
        0 <= seed < 2**64; the same seed gives the same population.
    csv : str, os.PathLike or pandas.DataFrame, optional
        Resample real patients with replacement instead of distributions.
    required : sequence of str, optional
        Covariates the model needs; missing ones raise.
    subject_ids : array_like of int, shape (n,), optional
        Draw only these subjects (a chunk): their rows equal the rows of the
        same ids in a larger population with the same inputs and seed.

    Attributes
    ----------
    covariates : pandas.DataFrame, shape (n, number of covariates)
        One row per subject, index ``subject_id``; derived CRCL (mL/min) and
        BMI (kg/m2) added when their inputs exist.
    subject_ids : ndarray of int64, shape (n,)
    seed : int

    Examples
    --------
    >>> population = Population(1000, seed=2020)
    >>> list(population.covariates.columns)
    ['AGE', 'SEX', 'WT', 'HT', 'SCR', 'CRCL', 'BMI']
    >>> population.subset(10, 20).covariates.equals(population.covariates.iloc[10:20])
    True
    """

    def __init__(self, n: int | None = None, covariates: Mapping[str, Any] | None = None,
                 correlations: Mapping[str, Any] | None = None, *, seed: int,
                 csv: str | os.PathLike[str] | pd.DataFrame | None = None, required: str | Iterable[str] = (),
                 subject_ids: ArrayLike | None = None) -> None:
        self.subject_ids = _subject_ids(n, subject_ids, "population.n")
        self.seed = _seed(seed, "population.seed")
        required = [required] if isinstance(required, str) else list(required)
        if csv is not None:
            self.covariates = self._from_patients(csv, covariates, correlations, required)
        else:
            self.covariates = self._from_distributions(covariates, correlations)
        self._check_required(required)

    def _from_patients(self, csv, covariates, correlations, required):
        if covariates is not None or correlations is not None:
            raise PopulationError("give covariates or csv, not both", key="population")
        table = read_patients(csv, required)
        frame = resample_patients(table, seed=self.seed, subject_ids=self.subject_ids)
        source = "csv" if isinstance(csv, pd.DataFrame) else os.fspath(csv)
        return add_derived_covariates(frame, source)

    def _from_distributions(self, covariates, correlations):
        if covariates is None:
            covariates = default_neuropathic_pain_covariates()
            if correlations is None:
                correlations = default_neuropathic_pain_correlations()
        frame = sample_covariates(covariates, correlations, seed=self.seed,
                                  subject_ids=self.subject_ids)
        return add_derived_covariates(frame)

    def _check_required(self, required):
        for name in required:
            if name not in self.covariates:
                raise PopulationError(f"missing required covariate {name!r}", key="population")

    #: Columns of a table of given individuals (:meth:`from_table`); empty for a drawn population.
    given: tuple[str, ...] = ()

    @classmethod
    def from_table(cls, table: pd.DataFrame, *, seed: int = 0, id_column: str | None = None,
                   required: str | Iterable[str] = (), source: str = "table") -> "Population":
        """Given individuals: one row per subject with its covariates and/or individual parameters.

        Nothing is resampled or drawn for what the table gives: :func:`pkpd.simulate`
        uses each subject's covariates as they are and each parameter column as that
        subject's individual value, without a random effect. Model parameters the table
        does not give take the model's value and its random effects, drawn from `seed`
        and the subject's ID as for any population; covariates it does not give take the
        model's value (or its distribution), as for a table of patients. Each column must
        name a model parameter or covariate (or WT, for doses per kg), which is checked
        against the model when it is simulated. CRCL and BMI are derived when their
        inputs are given.

        Parameters
        ----------
        table : pandas.DataFrame
            One row per subject; numeric, finite, non-empty cells (units those of the
            model: WT in kg, CL in L/h, ...).
        seed : int
            Seed of the random effects of parameters the table does not give.
        id_column : str, optional
            Column of distinct non-negative integer subject IDs; by default "ID" if
            the table has it, else the subjects are numbered 0..n-1 in table order.
        required : str or sequence of str, optional
            Columns that must be present (e.g. the covariates the model needs).
        source : str
            Name of the table in error messages (e.g. its file name).

        Returns
        -------
        Population
            ``covariates`` holds the table's columns (index the subject IDs),
            ``given`` their names.

        Raises
        ------
        PopulationError
            Naming the table, the row (as a spreadsheet numbers it), the column, the
            rule and the value: an empty table, a missing required or ID column, a
            non-numeric, empty or infinite cell, a duplicate or non-integer ID.

        Examples
        --------
        >>> import pandas as pd
        >>> table = pd.DataFrame({"ID": [1, 2], "WT": [70.0, 82.5], "CL": [4.1, 5.3]})
        >>> population = Population.from_table(table)
        >>> population.subject_ids.tolist(), population.given
        ([1, 2], ('WT', 'CL'))
        """
        if not isinstance(table, pd.DataFrame):
            raise PopulationError("must be a pandas DataFrame", file=source, value=type(table).__name__,
                                  got=type(table).__name__)
        if len(table) == 0:
            raise PopulationError("must have at least one row (a subject)", file=source)
        names = [str(name) for name in table.columns]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise PopulationError("names a column twice", file=source, column=repeated[0])
        for name in ([required] if isinstance(required, str) else list(required)) + [id_column or "ID"]:
            if name not in names and (name != "ID" or id_column is not None):
                raise PopulationError(f"is missing{suggestion(name, names, 'the table has')}", file=source,
                                      column=name)
        columns = {name: _given_column(table[original], name, source) for name, original in zip(names, table.columns)}
        ids = columns.pop(id_column or "ID", None)
        if ids is None:
            subject_ids = np.arange(len(table), dtype=np.int64)
        else:
            subject_ids = _given_ids(ids, id_column or "ID", source)
        if not columns:
            raise PopulationError("has no column besides the IDs: give covariates or parameters", file=source)
        frame = pd.DataFrame(columns, index=pd.Index(subject_ids, name="subject_id"))
        population = cls._from_parts(_seed(seed, "seed"), subject_ids, add_derived_covariates(frame, source))
        population.given = tuple(columns)
        return population

    @classmethod
    def _from_parts(cls, seed, subject_ids, covariates, given=()):
        population = cls.__new__(cls)
        population.seed, population.subject_ids, population.covariates = \
            seed, subject_ids, covariates
        population.given = tuple(given)
        return population

    def __len__(self) -> int:
        return self.subject_ids.size

    def __repr__(self) -> str:
        columns = ", ".join(self.covariates.columns)
        return f"Population(n={len(self)}, seed={self.seed}, covariates=[{columns}])"

    def subset(self, start: int, stop: int) -> "Population":
        """Subjects at positions start..stop-1, with the same numbers.

        Parameters
        ----------
        start, stop : int
            Positions (not ids), as in ``slice(start, stop)``.

        Returns
        -------
        Population
        """
        return self._from_parts(self.seed, self.subject_ids[start:stop], self.covariates.iloc[start:stop],
                                self.given)

    def covariate_array(self, names: Iterable[str]) -> NDArray[np.float64]:
        """Covariates as a C-contiguous float64 array for the engine.

        Parameters
        ----------
        names : sequence of str, length c

        Returns
        -------
        ndarray of float64, shape (n, c)
        """
        self._check_required(names)
        return np.ascontiguousarray(self.covariates[list(names)].to_numpy(dtype=np.float64))

    def sample_iiv(self, omega: ArrayLike, *, stream: str = "iiv", variability: bool = True) -> NDArray[np.float64]:
        """Etas of these subjects, shape (n, k); see :func:`sample_iiv`."""
        return sample_iiv(omega, seed=self.seed, subject_ids=self.subject_ids, stream=stream,
                          variability=variability)

    def sample_iov(self, omega_iov: ArrayLike, n_occasions: int, *, stream: str = "iov",
                   variability: bool = True) -> NDArray[np.float64]:
        """Inter-occasion effects, shape (n, n_occasions, k); see :func:`sample_iov`."""
        return sample_iov(omega_iov, n_occasions=n_occasions, seed=self.seed,
                          subject_ids=self.subject_ids, stream=stream, variability=variability)

    def add_residual_error(self, ipred: ArrayLike, additive_sd: float = 0.0, proportional_sd: float = 0.0, *,
                           stream: str = "residual", variability: bool = True,
                           first_time_index: int = 0) -> NDArray[np.float64]:
        """Observations with residual error; see :func:`add_residual_error`."""
        return add_residual_error(ipred, additive_sd, proportional_sd, seed=self.seed,
                                  subject_ids=self.subject_ids, stream=stream,
                                  variability=variability, first_time_index=first_time_index)
