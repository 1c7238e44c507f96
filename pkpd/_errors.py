"""Exceptions raised for a user's mistakes.

Every message is one line: where (file, key path or column), the rule, and the
value found. The command line turns these into ``error: ...`` and exit code 2;
Python callers catch them as :class:`ValueError`.
"""


import difflib


def suggestion(name, known, listing=None):
    """'; did you mean 'x'?' for a near miss, else '; LISTING: a, b, c' (or '' without a listing)."""
    known = [str(k) for k in known]
    hint = difflib.get_close_matches(str(name), known, n=1)
    if hint:
        return f"; did you mean {hint[0]!r}?"
    return f"; {listing}: {', '.join(known) or 'none'}" if listing else ""


class PkpdError(ValueError):
    """Bad input: a model file, a data set, a scenario or an argument."""


class ModelError(PkpdError):
    """A model file breaks a rule of the model format."""


class DataError(PkpdError):
    """An event data set breaks a NONMEM rule or names what the model lacks."""


class SimulationError(RuntimeError):
    """The engine could not integrate one or more subjects.

    Attributes
    ----------
    failures : dict
        Subject ID -> message for every subject that failed.
    """

    def __init__(self, failures):
        self.failures = dict(failures)
        first = next(iter(self.failures.items()))
        more = len(self.failures) - 1
        tail = f" (and {more} more subject{'s' if more > 1 else ''})" if more else ""
        super().__init__(f"subject {first[0]}: {first[1]}{tail}")
