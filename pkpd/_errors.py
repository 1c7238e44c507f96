"""Exceptions: one hierarchy under :class:`PkpdError` for a user's mistakes.

Every error carries where it happened and what broke as fields (``file``,
``key``, ``row``, ``column``, ``rule``, ``value``), and its one-line message is
built from them here, in one place::

    study.toml: arms[0].doses[0].duration: must be positive; got '-2 h'
    trial.csv, row 4, column TIME: must not decrease within ID 1; got 1 after 2
    `duration` must be positive; got '2 h'.

A caller that adds a location (a scenario naming the key of a quantity a unit
check refused) reads the fields of the error it caught, never its text. The
command line turns a :class:`PkpdError` into ``error: ...`` and exit code 2;
Python callers catch them as :class:`ValueError`. A subject the engine could
not integrate is not bad input: :class:`SimulationError` is a
:class:`RuntimeError` (exit code 3).
"""


import difflib

_ABSENT = object()


def suggestion(name, known, listing=None):
    """'; did you mean 'x'?' for a near miss, else '; LISTING: a, b, c' (or '' without a listing)."""
    known = [str(k) for k in known]
    hint = difflib.get_close_matches(str(name), known, n=1)
    if hint:
        return f"; did you mean {hint[0]!r}?"
    return f"; {listing}: {', '.join(known) or 'none'}" if listing else ""


def shown(value):
    """A value as a message writes it after 'got': a string quoted, anything else as printed."""
    return repr(value) if isinstance(value, str) else str(value)


def _printable(text):
    """`text` as is when it prints on one line, else its repr (a file name or key may hold a newline)."""
    text = str(text)
    return text if text.isprintable() else repr(text)


class PkpdError(ValueError):
    """Bad input: a model file, a data set, a scenario or an argument.

    Parameters
    ----------
    rule : str
        What must hold, e.g. ``"must be positive"`` (for an error no field
        describes better, the whole message).
    file : str, optional
        The file's name (or the data set's label).
    key : str, optional
        The dotted key path, e.g. ``"arms[0].doses[0].duration"``, or the
        argument or option, e.g. ``"--seed"``.
    row : int, optional
        The data row as a spreadsheet numbers it (the header is row 1).
    column : str, optional
        The data column.
    value : optional
        The offending value as found.
    got : str or None, optional
        How the message writes the value after "; got" (by default the value,
        a string quoted); None leaves "; got" out.
    sentence : bool, optional
        Write the key as the subject of a sentence, ```key` rule; got value.``
        (the form of the unit checks), instead of ``key: rule; got value``.

    Attributes
    ----------
    file, key, row, column, rule, value, got
        The fields above; None when not known.
    """

    def __init__(self, rule: object, *, file: str | None = None, key: str | None = None, row: int | None = None,
                 column: str | None = None, value: object = _ABSENT, got: object = _ABSENT,
                 sentence: bool = False) -> None:
        self.rule = str(rule)
        self.file, self.key, self.row, self.column = file, key, row, column
        self.value = None if value is _ABSENT else value
        if got is _ABSENT:
            got = None if value is _ABSENT else shown(value)
        self.got = got
        self.sentence = sentence
        super().__init__(self.message())

    def message(self) -> str:
        """The one-line message, built from the fields."""
        where = [_printable(self.file)] if self.file is not None else []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {_printable(self.column)}")
        parts = [", ".join(where)] if where else []
        got = f"; got {self.got}" if self.got is not None else ""
        if self.key is not None and self.sentence:
            parts.append(f"`{_printable(self.key)}` {self.rule}{got}.")
        else:
            if self.key is not None:
                parts.append(_printable(self.key))
            parts.append(f"{self.rule}{got}")
        text = ": ".join(parts)
        return text if "\n" not in text and "\r" not in text else text.encode("unicode_escape").decode("ascii")

    def fields(self) -> dict[str, object]:
        """``value`` and ``got``: with the rule, what to raise again at another place."""
        return {"value": self.value, "got": self.got}

    def __str__(self) -> str:
        return self.message()

    def __reduce__(self):  # rebuilt from its fields when sent to a worker process and back
        return (_rebuild, (type(self), self.rule, {
            "file": self.file, "key": self.key, "row": self.row, "column": self.column, "value": self.value,
            "got": self.got, "sentence": self.sentence}))


def _rebuild(cls, rule, fields):
    return cls(rule, **fields)


class ModelError(PkpdError):
    """A model file breaks a rule of the model format."""


class ExpressionError(PkpdError):
    """An expression of a model file breaks a rule; its message names no file or key (the model adds them)."""


class DataError(PkpdError):
    """An event data set breaks a NONMEM rule or names what the model lacks."""


class ScenarioError(PkpdError):
    """A scenario file breaks a rule; the message names file, key path, rule and value."""


class PopulationError(PkpdError):
    """A bad population input: covariate spec, OMEGA, patient table, argument.

    A :class:`ValueError`; the message is one line naming the key, the rule
    and the value.
    """


class RandomStreamError(PkpdError):
    """A bad argument to a random-stream function."""


class ResourceError(PkpdError):
    """A run would need more memory than the limit allows."""


class OutputError(PkpdError):
    """An output cannot be written where asked, or the disk refused it."""


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
