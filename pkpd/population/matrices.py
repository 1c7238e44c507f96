"""Symmetric matrices: OMEGA blocks and correlation matrices, checked, and their Cholesky factors.

Products with a factor are done column by column with NumPy element-wise operations
(:func:`lower_triangular_apply`), never by BLAS matrix products, whose summation order may depend
on the number of rows; this keeps chunked results bit-identical.
"""

import numpy as np

from .._errors import PopulationError
from .checks import format_value

_EIGENVALUE_TOLERANCE = 1e-10


def lower_triangular_apply(scores, factor):
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


def _float_array(key, value):
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise PopulationError("must be a matrix of numbers", key=key) from None


def first_position(mask):
    """(row, column) of the first True element of a 2-D mask, or None."""
    positions = np.argwhere(mask)
    return tuple(int(index) for index in positions[0]) if positions.size else None


def square_symmetric(key, matrix):
    """Validated float64 copy of a square, finite, symmetric matrix."""
    values = _float_array(key, matrix)
    if values.ndim != 2 or values.shape[0] != values.shape[1] or values.shape[0] == 0:
        raise PopulationError("must be a square matrix", key=key, got=f"shape {values.shape}")
    position = first_position(~np.isfinite(values))
    if position:
        row, column = position
        raise PopulationError("must be finite", key=f"{key}[{row}][{column}]", value=values[position],
                              got=str(values[position]))
    scale = max(1.0, float(np.abs(values).max()))
    position = first_position(np.abs(values - values.T) > 1e-12 * scale)
    if position:
        row, column = position
        raise PopulationError(f"must equal {key}[{column}][{row}] (symmetric)", key=f"{key}[{row}][{column}]",
                              got=f"{format_value(values[row, column])} and {format_value(values[column, row])}")
    return 0.5 * (values + values.T)


def check_positive_definite(key, matrix):
    """Raise unless the symmetric `matrix` is positive definite: its smallest eigenvalue above
    _EIGENVALUE_TOLERANCE times its largest."""
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
    matrix = square_symmetric(key, np.diag(values) if values.ndim == 1 else values)
    variances = np.diag(matrix)
    negative = np.flatnonzero(variances < 0)
    if negative.size:
        index = negative[0]
        raise PopulationError("variance must be >= 0", key=f"{key}[{index}][{index}]", value=variances[index],
                              got=format_value(variances[index]))
    active = variances > 0
    position = first_position(~active[:, None] & (matrix != 0))
    if position:
        row, column = position
        raise PopulationError(f"covariance must be 0 when variance {key}[{row}][{row}] is 0",
                              key=f"{key}[{row}][{column}]", value=matrix[position], got=format_value(matrix[position]))
    factor = np.zeros_like(matrix)
    if active.any():
        block = matrix[np.ix_(active, active)]
        check_positive_definite(key, block)
        factor[np.ix_(active, active)] = np.linalg.cholesky(block)
    return factor
