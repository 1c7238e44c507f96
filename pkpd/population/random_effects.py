"""Random effects: inter-individual (``iiv``) and inter-occasion (``iov``) etas from OMEGA, applied to
typical values (exponential, additive or logit), and residual error (``residual``)."""

import numbers

import numpy as np
from scipy import special

from .._errors import PopulationError
from .._random import subject_normals
from .checks import checked_seed, checked_subject_ids, format_value, non_negative_number
from .matrices import lower_triangular_apply, omega_cholesky

EFFECT_FORMS = ("exp", "additive", "logit")


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
    ids = checked_subject_ids(n, subject_ids, "n")
    seed = checked_seed(seed, "seed")
    if not variability:
        return np.zeros((ids.size, factor.shape[0]))
    scores = subject_normals(seed, ids, stream, factor.shape[0])
    return lower_triangular_apply(scores, factor)


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
    ids = checked_subject_ids(n, subject_ids, "n")
    if isinstance(n_occasions, bool) or not isinstance(n_occasions, numbers.Integral) \
            or n_occasions < 1:
        raise PopulationError("must be a positive integer", key="n_occasions", value=n_occasions,
                              got=format_value(n_occasions))
    seed = checked_seed(seed, "seed")
    size = factor.shape[0]
    if not variability:
        return np.zeros((ids.size, n_occasions, size))
    scores = subject_normals(seed, ids, stream, n_occasions * size)
    scores = scores.reshape(ids.size * n_occasions, size)
    return lower_triangular_apply(scores, factor).reshape(ids.size, n_occasions, size)


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
                              value=typical[np.argmax(outside)], got=format_value(typical[np.argmax(outside)]))
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
    additive_sd = non_negative_number("additive_sd", additive_sd)
    proportional_sd = non_negative_number("proportional_sd", proportional_sd)
    ids = checked_subject_ids(predictions.shape[0], subject_ids, "ipred.shape[0]")
    if isinstance(first_time_index, bool) or not isinstance(first_time_index, numbers.Integral) \
            or first_time_index < 0:
        raise PopulationError("must be an integer >= 0", key="first_time_index", value=first_time_index,
                              got=format_value(first_time_index))
    seed = checked_seed(seed, "seed")
    if not variability:
        return predictions.copy()
    table = predictions.reshape(ids.size, -1)
    errors = subject_normals(seed, ids, stream, 2 * table.shape[1],
                             first_column=2 * int(first_time_index))
    observed = table * (1.0 + proportional_sd * errors[:, 0::2]) + additive_sd * errors[:, 1::2]
    return observed.reshape(predictions.shape)
