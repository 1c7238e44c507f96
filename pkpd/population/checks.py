"""Checks of the numbers a population is built from: seeds, subject ids, finite and positive values.

Each check returns the cleaned value or raises :class:`~pkpd.PopulationError` naming the key, the
rule and the value.
"""

import math
import numbers

import numpy as np

from .._errors import PopulationError, RandomStreamError
from .._random import check_seed


def format_value(value):
    """A number as a short string: 130.0 -> '130', -0.02 -> '-0.02'."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return format(float(value), "g")
    return repr(value)


def finite_number(key, value):
    """`value` as a float; a bool, a non-number, NaN or infinity raises."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise PopulationError("must be a finite number", key=key, value=value, got=format_value(value))
    return float(value)


def positive_number(key, value):
    """`value` as a float > 0."""
    value = finite_number(key, value)
    if value <= 0:
        raise PopulationError("must be > 0", key=key, value=value, got=format_value(value))
    return value


def non_negative_number(key, value):
    """`value` as a float >= 0."""
    value = finite_number(key, value)
    if value < 0:
        raise PopulationError("must be >= 0", key=key, value=value, got=format_value(value))
    return value


def checked_seed(seed, key):
    """`seed` as an int in [0, 2**64 - 1], a bad one named by `key`."""
    try:
        return check_seed(seed)
    except RandomStreamError as error:
        raise PopulationError(error.rule, key=key, **error.fields()) from None


def checked_subject_ids(n, subject_ids, key):
    """Validated subject ids, shape (n,), int64: ``subject_ids`` or 0..n-1."""
    if subject_ids is None:
        if n is None:
            raise PopulationError("give n or subject_ids", key=key)
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise PopulationError("must be a positive integer", key=key, value=n, got=format_value(n))
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
        raise PopulationError(f"{format_value(n)} does not match len(subject_ids) = {ids.size}", key=key)
    return ids.astype(np.int64, copy=False)
