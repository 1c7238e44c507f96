"""The keys a table of a scenario or model file accepts, and those it requires, in one place.

Each checker declares a table's keys once, as a :class:`Keys` (a list of the allowed keys, in
the order the documentation shows them, with the required ones and the conditionally required
ones beside it); the checker refuses what is missing or unknown from it and the documentation's
key references (``docs/_ext/pkpd_docs.py``) print it, so the two cannot disagree.
"""

from collections.abc import Iterable, Mapping


class Keys(list):
    """The allowed keys of one table (a list), with ``required`` (keys it must hold) and
    ``required_when`` ({key: the case in which it is required, as the error message says it}).

    Examples
    --------
    >>> DOSE = Keys(["drug", "amount", "every", "count"], required=["drug"],
    ...             required_when={"every": "when count > 1"})
    >>> DOSE.required, DOSE.required_when["every"], "count" in DOSE
    (('drug',), 'when count > 1', True)
    """

    def __init__(self, keys: Iterable[str], required: Iterable[str] = (),
                 required_when: Mapping[str, str] | None = None):
        super().__init__(keys)
        self.required = tuple(required)
        self.required_when = dict(required_when or {})
        stray = [key for key in (*self.required, *self.required_when) if key not in self]
        if stray:
            raise ValueError(f"required keys {stray} are not among the allowed keys {list(self)}")

    def requirement(self) -> str:
        """The required keys as the documentation shows them: "name; every (when count > 1)"."""
        parts = list(self.required) + [f"{key} ({case})" for key, case in self.required_when.items()]
        return "; ".join(parts) or "-"
