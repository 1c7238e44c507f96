"""Solver options: one small immutable value, its defaults written once, checked when built.

Every entry point (``simulate``, ``simulate_summary``, ``simulate_data``, the
engine, a scenario's ``[solver]`` table and the command line) takes its
defaults from :class:`SolverOptions`, so a default changes in one place.
"""

import math
from dataclasses import dataclass

from ._errors import PkpdError

#: Integration methods a user may name; "auto" lets the engine choose per model and span.
METHOD_NAMES = ("auto", "exact", "rk45", "rosenbrock")


@dataclass(frozen=True)
class SolverOptions:
    """How the engine integrates: method, tolerances and step limit.

    Parameters
    ----------
    method : str
        ``"auto"``, ``"exact"``, ``"rk45"`` or ``"rosenbrock"``.
    rtol : float
        Relative tolerance, in (0, 1).
    atol : float
        Absolute tolerance (model amount and output units), positive.
    max_steps : int
        Most steps per subject between two records, positive.

    Raises
    ------
    PkpdError
        With ``key`` the option (``rtol``...), the rule and the value.

    Examples
    --------
    >>> SolverOptions(rtol=1e-6).atol
    1e-10
    """
    method: str = "auto"
    rtol: float = 1e-8
    atol: float = 1e-10
    max_steps: int = 100_000

    def __post_init__(self):
        if self.method not in METHOD_NAMES:
            raise PkpdError(f"must be one of {', '.join(METHOD_NAMES)}", key="method", value=self.method,
                            got=repr(self.method))
        if not (_real(self.rtol) and 0 < self.rtol < 1):
            raise PkpdError("must be in (0, 1)", key="rtol", value=self.rtol, got=repr(self.rtol))
        if not (_real(self.atol) and 0 < self.atol < math.inf):
            raise PkpdError("must be positive", key="atol", value=self.atol, got=repr(self.atol))
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps <= 0:
            raise PkpdError("must be a positive integer", key="max_steps", value=self.max_steps,
                            got=repr(self.max_steps))


def _real(value):
    """A real number (not a bool), float or int; NaN fails every comparison after."""
    return not isinstance(value, bool) and isinstance(value, (int, float))


#: The defaults, for keyword arguments: ``rtol=DEFAULT.rtol``.
DEFAULT = SolverOptions()
