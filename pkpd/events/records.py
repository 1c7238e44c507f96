"""NONMEM-style event data: checking, and expansion into the engine's event stream.

The engine integrates between sorted records. This module turns a data set
(one row per NONMEM record) into those records: it checks the data once, at
the boundary, expands ADDL into explicit dose records (vectorised, never in a
kernel), and gives each record a row of parameter and covariate values.

No Python runs per record: the columns are converted whole, one compiled pass
(``_check_records``; for a data set of plain doses and observations a
vectorised one, ``_plain_records``, that reads the columns as they are)
checks every record and maps EVID, CMT and ID to kinds, state indices and
subjects, another (``_share_rows``) writes the parameter and
covariate values once per run of records that repeat them (a data set that
repeats a subject's values on each record gives one row per subject, as
``simulate`` does), and the ADDL doses are merged into the input records by
binary search (``benchmarks`` D1 times it against ``simulate``).
"""

import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._errors import DataError
from .._jit import jit
from .._resources import BYTES_PER_EXPANDED_RECORD, check_memory
from ..engine.constants import KIND_DOSE, KIND_OBS, KIND_RESET, KIND_RESET_DOSE

_STANDARD = ["ID", "TIME", "EVID", "AMT", "CMT", "RATE", "II", "ADDL", "SS", "MDV"]


@dataclass
class EventStream:
    """Sorted engine records for a set of subjects (all arrays have one entry per record)."""
    subject_start: np.ndarray  # (n_subjects + 1,) int64 offsets
    subject_ids: np.ndarray    # (n_subjects,) the ID of each subject
    time: np.ndarray
    kind: np.ndarray
    amt: np.ndarray
    cmt: np.ndarray            # 0-based state index
    rate: np.ndarray
    ii: np.ndarray
    ss: np.ndarray
    prow: np.ndarray
    drow: np.ndarray
    out: np.ndarray
    parent: np.ndarray
    inputs: np.ndarray         # (n_rows, n_inputs) float64, the rows that prow and drow point at
    n_outputs: int             # number of output rows (input records)
    evid: np.ndarray | None = None  # (n_input_records,) EVID of each input record as used
    input_rows: np.ndarray | None = None  # (n_input_records,) the row of `inputs` of each input record
    # (prow, inputs) when its builder knows that no record's row differs from its predecessor's while
    # holding the same values (bit for bit): see parameter_rows
    rows_shared_for: tuple | None = field(default=None, compare=False, repr=False)

    @property
    def n_subjects(self):
        return self.subject_ids.size

    def max_records(self):
        return int(np.max(np.diff(self.subject_start))) if self.n_subjects else 0

    def parameter_rows(self):
        """:func:`shared_parameter_rows` of the stream's rows, without its pass over every record when the
        builder of these very `prow` and `inputs` knows that it would change nothing (``rows_shared_for``;
        a copy of the stream with other rows or inputs is looked at again)."""
        known = self.rows_shared_for
        if known is not None and known[0] is self.prow and known[1] is self.inputs:
            return self.prow
        return shared_parameter_rows(self.prow, self.inputs)


def shared_parameter_rows(prow, inputs):
    """`prow` with each record pointing at the first of its run of records with the same inputs.

    The engine takes a change of parameter row as a change of parameters: it
    ends its block of observations there, derives the parameters again and
    looks up new transition matrices. A data set gives every record its own row
    of parameter and covariate values, though most rows repeat the one before;
    pointing a repeated row at the first of its run lets the engine integrate
    through (the values are the same bits, so nothing else changes).

    Parameters
    ----------
    prow : ndarray of int64, shape (n_records,)
        Row of `inputs` that governs the interval ending at each record.
    inputs : ndarray of float64, shape (n_rows, n_inputs)

    Returns
    -------
    ndarray of int64, shape (n_records,)
        `prow` itself when no record repeats the previous record's values
        under another row (one pass, nothing allocated), else a new array.
    """
    prow = np.ascontiguousarray(prow, np.int64)
    bits = np.ascontiguousarray(inputs, np.float64).view(np.uint64)
    first = first_repeated_row(prow, bits)
    if first < 0:
        return prow
    shared = np.empty_like(prow)
    _share_repeated_rows(shared, prow, bits, first)
    return shared


@jit
def _same_row(bits, row, other):
    for column in range(bits.shape[1]):
        if bits[row, column] != bits[other, column]:
            return False
    return True


@jit
def first_repeated_row(prow, bits):
    """The first record whose row differs from the previous record's but holds the same values; -1 if none."""
    for record in range(1, prow.size):
        if prow[record] != prow[record - 1] and _same_row(bits, prow[record], prow[record - 1]):
            return record
    return -1


@jit
def _share_repeated_rows(shared, prow, bits, first):
    """`prow` into `shared`, from record `first` on each record repeating its predecessor's values at the same row."""
    shared[:first] = prow[:first]
    current = prow[first - 1]
    for record in range(first, prow.size):
        row = prow[record]
        if row != current and not _same_row(bits, row, current):
            current = row
        shared[record] = current


def _blank(raw):
    """Cells that count as empty: missing, '' or '.' (NONMEM's empty), as a boolean array."""
    if raw.dtype.kind in "fiub":
        return raw.isna().to_numpy()
    text = raw.astype(str).str.strip()
    return (raw.isna() | text.isin(["", ".", "nan", "NaN"])).to_numpy()


def _cell(frame, column, index):
    """A cell as the user wrote it, for messages: 'empty', or its text."""
    raw = frame[column].iloc[index]
    if _blank(frame[column].iloc[index:index + 1])[0]:
        return "empty"
    if isinstance(raw, str):
        return raw.strip()
    return f"{raw:g}" if isinstance(raw, numbers.Real) else repr(raw)


def _numeric(frame, column, source, default, copy=True):
    """A data column as float64; '.' and empty cells count as `default`, text is an error.

    With ``copy=False`` the result may be a read-only view of the frame's own
    column (a NumPy float64 column without empty cells).
    """
    return _numeric_and_blanks(frame, column, source, default, copy)[0]


def _numeric_and_blanks(frame, column, source, default, copy=True):
    """(:func:`_numeric`'s array, whether any of the column's cells is empty; False for an absent column)."""
    if column not in frame.columns:   # zeros from calloc: pages the kernel only reads are never written
        return (np.zeros(len(frame)) if default == 0 else np.full(len(frame), float(default))), False
    raw = frame[column]
    if isinstance(raw.dtype, np.dtype) and raw.dtype.kind in "fiub":
        # a NumPy numeric column: empty cells are NaN, and no cell needs a look as text
        values = raw.to_numpy(dtype=float, copy=copy)
        if raw.dtype.kind != "f":                # integers and booleans are finite and never empty
            return values, False
        with np.errstate(over="ignore"):         # an overflowing sum is checked cell by cell below
            total = np.add.reduce(values)
        if np.isfinite(total):                   # no NaN and no inf (one pass, no temporary)
            return values, False
        finite = np.isfinite(values)
        if finite.all():                         # finite values whose sum overflows
            return values, False
        blank = np.isnan(values)
    elif raw.dtype.kind in "fiub":
        blank = _blank(raw)
        values = raw.to_numpy(dtype=float)
        finite = np.isfinite(values)
    else:
        blank = _blank(raw)
        text = raw.astype(str).str.strip()
        values = pd.to_numeric(text.where(~blank, "0"), errors="coerce").to_numpy(dtype=float)
        bad = np.isnan(values) & ~blank
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise DataError("must be a number", file=source, row=_row_label(index), column=column,
                            value=str(raw.iloc[index]).strip())
        finite = np.isfinite(values)
    if not np.all(finite | blank):
        index = int(np.flatnonzero(~finite & ~blank)[0])
        raise DataError("must be finite", file=source, row=_row_label(index), column=column,
                        value=values[index], got=_cell(frame, column, index))
    return np.where(blank, float(default), values), bool(blank.any())


def _standard(frame, column, source, default, blanks=False):
    """:func:`_numeric` of a standard column, as a read-only contiguous array (a view of the frame's own
    column where it can be); with `blanks`, also whether any of its cells is empty."""
    values, blank = _numeric_and_blanks(frame, column, source, default, copy=False)
    values = _read_only(np.ascontiguousarray(values))
    return (values, blank) if blanks else values


def _row_label(index):
    """Data rows are numbered as a spreadsheet shows them: header is row 1, first record row 2."""
    return index + 2


def _fail_rows(mask, source, column, rule, values, frame):
    """Fail at the first row of `mask`, showing the cell as written (or the default it took)."""
    index = int(np.flatnonzero(mask)[0])
    found = _cell(frame, column, index) if column in frame.columns else f"{values[index]:g} (the default)"
    raise DataError(rule, file=source, row=_row_label(index), column=column, value=values[index], got=found)


def standard_columns(data, source="data"):
    """The data set's columns with NONMEM's standard names normalised, after checking the header.

    Names are stripped of surrounding spaces and the standard columns (ID, TIME,
    EVID, AMT, ...) are matched whatever their case. A header naming one column
    twice, e.g. ``AMT`` and ``AMT``, ``ID`` and `` id``, or ``AMT`` and the
    ``AMT.1`` that pandas makes of a second ``AMT``, is ambiguous and refused.

    Returns
    -------
    list
        The new name of each column, in order.
    """
    names = []
    seen = {}
    columns = data.columns.tolist()   # a list: iterating a pandas string index is slow
    for position, column in enumerate(columns):
        name = column.strip() if isinstance(column, str) else column
        if isinstance(name, str) and name.upper() in _STANDARD:
            name = name.upper()
        if name in seen and name != "":
            first = columns[seen[name]]
            which = (f"column {name} appears twice" if first == column else
                     f"columns {first!r} and {column!r} both name {name}")
            raise DataError(f"{which} (columns {seen[name] + 1} and {position + 1}); keep one", file=source)
        seen.setdefault(name, position)
        names.append(name)
    for position, name in enumerate(names):
        base, dot, suffix = name.rpartition(".") if isinstance(name, str) else ("", "", "")
        if dot and suffix.isdigit() and base.strip().upper() in _STANDARD and base.strip().upper() in seen:
            raise DataError(f"column {name!r} looks like a second {base.strip().upper()} column "
                            f"(pandas renames a repeated name so); keep one", file=source)
    return names


def build_stream(model, data, source="data", max_memory=None, split=None, columns=None):
    """Check a NONMEM-style data set against a model and build the engine's records.

    Parameters
    ----------
    model : Model
    data : pandas.DataFrame
        One row per record with at least ID and TIME; EVID, AMT, CMT, RATE, II,
        ADDL, SS optional (NONMEM defaults); columns named like a model
        parameter or covariate give its value on each record.
    source : str
        Name of the data set for error messages (e.g. the file name).
    max_memory : int or str, optional
        Memory the expanded records may take (bytes, or text such as "8GB");
        default: ``PKPD_MAX_MEMORY`` or half the machine's memory. Checked
        before ADDL is expanded.
    split : ndarray of int64, shape (n_records,), optional
        A key per record (e.g. subject and occasion): records with different keys
        never share a row of ``stream.inputs`` (so that random effects can be
        applied to its rows).
    columns : dict, optional
        `data`'s NumPy int64 and float64 columns (:func:`numpy_columns`, or
        slices of them), read instead of asking `data` for them: pandas takes
        longer to hand out a column than the checks take on a few thousand
        records. With it, `data`'s header is taken as checked, its names as
        :func:`standard_columns` gives them.

    Returns
    -------
    EventStream
        ``stream.evid`` holds each input record's EVID as used (inferred from
        AMT where the column or the cell is empty, as NONMEM does);
        ``stream.inputs`` a row per run of records with the same parameter and
        covariate values (and key), ``stream.input_rows`` each input record's row.
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError("expected a pandas DataFrame", file=source, value=data, got=type(data).__name__)
    if columns is None:
        names = standard_columns(data, source)
        frame = data if names == list(data.columns) else data.set_axis(names, axis=1)
        columns = {}
    else:
        frame = data
    for required in ("ID", "TIME"):
        if required not in frame.columns:
            raise DataError(f"column {required} is required (columns found: {', '.join(map(str, frame.columns))})",
                            file=source)
    if len(frame) == 0:
        raise DataError("has no records", file=source)
    n = len(frame)
    records = {name: np.empty(n, np.int64) for name in ("evid", "kind", "cmt", "ss")}
    first_records = np.empty(n + 1, np.int64)   # only the pages of the first n_subjects entries are touched
    checked = _plain_columns(model, frame, records, first_records, columns)
    if checked is None:   # not a data set of plain records in NumPy columns: every column converted and checked
        checked = _checked_columns(model, frame, source, records, first_records)
    ids, time, amt, rate, ii, addl, n_subjects, addl_total = checked

    rows, inputs = _parameter_rows(model, frame, source, split, known=columns)
    check_expanded_records(n, np.array([addl_total]), source, max_memory)
    kind = records["kind"]
    parents = (np.flatnonzero(((kind == KIND_DOSE) | (kind == KIND_RESET_DOSE)) & (addl > 0)) if addl_total > 0
               else np.zeros(0, np.int64))
    first_records = first_records[:n_subjects + 1].copy()
    first_records[n_subjects] = n
    subject_ids = np.asarray(ids[first_records[:-1]], np.float64)
    # without a split key, a new row starts only where the values change (an ADDL dose takes the row of the
    # input record after it): no record repeats its predecessor's values under another row
    stream = _assemble(first_records, subject_ids, time, kind, amt, records["cmt"], rate, ii, records["ss"], addl,
                       inputs, rows, parents, shared=split is None)
    stream.evid = records["evid"]
    return stream


_PLAIN_COLUMNS = ("ID", "TIME", "EVID", "AMT", "CMT", "RATE", "II", "ADDL", "SS")


def _plain_columns(model, frame, records, first_records, columns):
    """The checked standard columns of a data set of plain records (see :func:`_plain_records`) whose standard
    columns are NumPy float64 or int64 columns, read as they are (no conversion, no pass of their own), with
    the records' EVID, kind, state index and SS in `records`; None for any other data set. `columns` holds
    some of the frame's NumPy columns (see :func:`build_stream`).

    Returns
    -------
    (ids, time, amt, rate, ii, addl, n_subjects, addl_total), or None
        As :func:`_checked_columns` returns them.
    """
    n = len(frame)
    zeros = _read_only(np.zeros(n))
    arrays, integer = [], 0
    for k, name in enumerate(_PLAIN_COLUMNS):
        if name not in frame.columns:   # 0, or for EVID NaN: inferred from AMT
            arrays.append(zeros if name != "EVID" else _read_only(np.full(n, np.nan)))
            continue
        values = columns[name] if name in columns else frame[name].to_numpy(copy=False)
        if values.dtype == np.int64:
            integer |= 1 << k
        elif values.dtype != np.float64:
            return None
        arrays.append(_read_only(np.ascontiguousarray(values).view(np.float64)))
    plain, n_subjects = _plain_records(*arrays, integer, float(model.numbers[model.compartments[0]]),
                                       _states_by_number(model), records["evid"], records["kind"], records["cmt"],
                                       first_records, records["ss"])
    if not plain:
        return None

    def as_float(k):   # a column the stream keeps, as float64
        return arrays[k].view(np.int64).astype(np.float64) if integer >> k & 1 else arrays[k]

    ids = arrays[0].view(np.int64) if integer & 1 else arrays[0]   # only the subjects' IDs are converted
    time, amt, rate, ii = (as_float(k) for k in (1, 3, 5, 6))
    return ids, time, amt, rate, ii, zeros, n_subjects, 0.0   # no record has ADDL


def _checked_columns(model, frame, source, records, first_records):
    """The standard columns converted to float64 and checked cell by cell (empty cells take their defaults),
    and every record checked against :data:`_RULES` (the first broken raised), with the records' EVID, kind,
    state index and SS in `records`.

    Returns
    -------
    ids : ndarray of float64 (or int64 from :func:`_plain_columns`)
    time, amt, rate, ii, addl : ndarray of float64
    n_subjects : int
    addl_total : float
        The ADDL doses the records ask for.
    """
    # the standard columns as read-only float64 arrays, views of the data set's own columns where they
    # are float64 already (nothing writes to them; one type for the kernel, which then compiles once)
    (ids, ids_blank), (time, time_blank) = (_standard(frame, name, source, np.nan, blanks=True)
                                            for name in ("ID", "TIME"))
    for name, values, blank in (("ID", ids, ids_blank), ("TIME", time, time_blank)):
        if blank:
            _fail_rows(np.isnan(values), source, name, "must not be empty", values, frame)
    zeros = _read_only(np.zeros(len(frame)))   # every absent column that defaults to 0
    amt = _standard(frame, "AMT", source, 0.0) if "AMT" in frame.columns else zeros
    evid = _standard(frame, "EVID", source, np.nan)   # empty (or no column): inferred from AMT
    cmt, rate, ii, addl, ss = (_standard(frame, name, source, 0.0) if name in frame.columns else zeros
                               for name in ("CMT", "RATE", "II", "ADDL", "SS"))
    first_number = float(model.numbers[model.compartments[0]])
    modelled = np.array([[key in model.dosing.get(name, {}) for key in ("R", "D")] for name in model.compartments])
    first_failure = np.full(len(_RULES), -1, np.int64)
    states_by_number = _states_by_number(model)
    plain, n_subjects = _plain_records(ids, time, evid, amt, cmt, rate, ii, addl, ss, 0, first_number,
                                       states_by_number, records["evid"], records["kind"], records["cmt"],
                                       first_records, records["ss"])
    addl_total = 0.0
    if not plain:   # a record with ADDL, SS, a modelled rate, another EVID, or one breaking a rule: rule by rule
        addl_total, n_subjects = _check_records(ids, time, evid, amt, cmt, rate, ii, addl, ss, first_number,
                                                states_by_number, modelled, records["evid"], records["kind"],
                                                records["cmt"], first_records, records["ss"], first_failure)
    failed = np.flatnonzero(first_failure >= 0)
    if failed.size:
        _fail_rule(int(failed[0]), int(first_failure[failed[0]]), model, source, frame,
                   dict(ids=ids, time=time, evid=evid, amt=amt, cmt=cmt, rate=rate, ii=ii, addl=addl, ss=ss))
    return ids, time, amt, rate, ii, addl, n_subjects, addl_total


def _parameter_rows(model, frame, source, split=None, known=None):
    """The per-record parameter and covariate values, as rows shared by runs of records.

    Each column named like a model input is read whole (a NumPy float64 column as
    it is, any other through :func:`_numeric`); one compiled pass
    (:func:`_share_rows`) then writes a row of values only where a record's values
    differ, bit for bit, from the previous record's (or its `split` key does), so
    that a data set repeating a subject's values on every record gives one row per
    subject, as ``simulate()`` does, instead of a matrix of every record (which
    took as long to write, and to compare again in the engine, as to integrate).
    Errors are raised column by column in the model's order of inputs. `known`
    holds some of the frame's NumPy columns by name (see :func:`build_stream`).

    Returns
    -------
    rows : ndarray of int64, shape (n_records,)
        The row of `inputs` of each record (increasing).
    inputs : ndarray of float64, shape (n_rows, n_inputs)
    """
    n = len(frame)
    columns, errors = [], {}
    for name, default in zip(model.inputs, model.input_defaults):
        values = _float_column(frame, name, known or {})
        if name in frame.columns and values is None:   # integers, text: converted (and checked) now
            try:
                values = np.ascontiguousarray(_numeric(frame, name, source, default, copy=False))
            except DataError as error:
                errors[len(columns)] = error           # raised in the order of the columns, below
        columns.append(values)
    rows, inputs, not_finite = _shared_rows(model, columns, split, n)
    for column, (name, default) in enumerate(zip(model.inputs, model.input_defaults)):
        if column in errors:
            raise errors[column]
        if not_finite[column]:   # empty cells take the default; an infinite value is refused
            columns[column] = np.ascontiguousarray(_numeric(frame, name, source, default, copy=False))
        allowed = model.parameters[name].allowed if name in model.parameters else ()
        if allowed and name in frame.columns:
            bad = np.flatnonzero(~np.isin(columns[column], allowed))
            if bad.size:
                index = bad[0]
                raise DataError(f"must be one of {', '.join(f'{v:g}' for v in allowed)} (a switch)", file=source,
                                row=_row_label(index), column=name, value=columns[column][index],
                                got=_cell(frame, name, index))
    if not_finite.any():
        rows, inputs, _ = _shared_rows(model, columns, split, n)
    return rows, inputs


def _shared_rows(model, columns, split, n):
    """(rows, inputs, not_finite) of :func:`_share_rows` for `columns` (float64 arrays, or None: the default)."""
    width = max(len(columns), 1)   # a model without inputs: one unused column (a kernel takes no empty tuple)
    unused = _read_only(np.empty(0, np.uint64))
    bits = tuple(unused if values is None else _read_only(values.view(np.uint64)) for values in columns) or (unused,)
    present = np.array([values is not None for values in columns] or [False])
    defaults = np.array(list(model.input_defaults) or [0.0], np.float64).view(np.uint64)
    rows = np.empty(n, np.int64)
    inputs = np.empty((n, width))   # only the rows written are ever touched
    not_finite = np.zeros(width, np.bool_)
    keys = np.zeros(0, np.int64) if split is None else np.ascontiguousarray(split, np.int64)
    n_rows = _share_rows(bits, present, defaults, keys, rows, inputs.view(np.uint64), not_finite)
    return rows, inputs[:n_rows, :len(columns)], not_finite[:len(columns)]


def _float_column(frame, name, known):
    """The column `name` as a contiguous float64 array if it is a NumPy float64 column, else None (taken from
    `known`, some of the frame's NumPy columns by name, if it is there)."""
    if name in known:
        values = known[name]
        return np.ascontiguousarray(values) if values.dtype == np.float64 else None
    if name not in frame.columns:
        return None
    column = frame[name]   # once: each look-up of a column makes a new Series
    return np.ascontiguousarray(column.to_numpy(copy=False)) if column.dtype == np.dtype(np.float64) else None


def numpy_columns(data, names):
    """A data set's NumPy int64 and float64 columns as arrays (views of its own), by `names` (its columns'
    standard names, :func:`standard_columns`), for :func:`build_stream`'s `columns`."""
    arrays = {}
    for name, (_, column) in zip(names, data.items()):
        if isinstance(column.dtype, np.dtype) and column.dtype in (np.int64, np.float64):
            arrays[name] = column.to_numpy(copy=False)
    return arrays


def _read_only(values):
    """A read-only view of `values` (so that every array of a tuple passed to a kernel has one type)."""
    view = values.view()
    view.flags.writeable = False
    return view


_EXPONENT = np.uint64(0x7FF0000000000000)   # the bits of a float64 that are all set in NaN and inf


@jit
def _share_rows(columns, present, defaults, split, rows, inputs, not_finite):
    """Write a row of `inputs` where a record's values or `split` key differ from the previous record's.

    columns : tuple of uint64 arrays, the bits of each input column per record (where present[k]).
    defaults : the bits of each input's default (where not present[k]).
    split : int64 key per record (or empty): records with different keys never share a row.
    rows : the row of each record is written here;
    not_finite[k]: column k holds NaN or inf. Returns the number of rows written.

    Column by column, then record by record: the inner loops are simple enough for
    the compiler to vectorise, and each ``columns[k]`` (a tuple indexed at run time)
    is looked up once per column, not once per record.
    """
    n = rows.size
    starts = np.empty(n, np.bool_)   # whether each record starts a row
    for i in range(n):
        starts[i] = i == 0 or (split.size > 0 and split[i] != split[i - 1])
    for k in range(len(columns)):
        if present[k]:
            values = columns[k]
            special = (values[0] & _EXPONENT) == _EXPONENT if n else False
            for i in range(1, n):
                special |= (values[i] & _EXPONENT) == _EXPONENT
                starts[i] |= values[i] != values[i - 1]
            not_finite[k] = special
    n_rows = 0
    for i in range(n):
        if starts[i]:
            for k in range(len(columns)):
                inputs[n_rows, k] = columns[k][i] if present[k] else defaults[k]
            n_rows += 1
        rows[i] = n_rows - 1
    return n_rows


# The checks of a data set's records, in the order they are made: (column, rule); the
# first rule a record breaks is reported, at the first record that breaks it
_RULES = [
    ("EVID", "must be 0, 1, 2, 3 or 4"),
    ("AMT", "must not be negative"),
    ("AMT", "a dose record (EVID 1 or 4) needs AMT > 0"),
    ("SS", "must be 0, 1 or 2"),
    ("II", "must not be negative"),
    ("ADDL", "must be a non-negative integer"),
    ("II", "ADDL > 0 needs II > 0"),
    ("II", "SS with AMT > 0 needs II > 0"),
    ("RATE", "a constant-infusion steady state (SS with II=0) needs RATE > 0"),
    ("RATE", "must be >= 0, -1 (modelled rate) or -2 (modelled duration)"),
    ("CMT", "must be an integer"),
    ("CMT", "must not be negative (NONMEM's negative CMT turns a compartment off, which pkpd does not support)"),
    ("TIME", "must not decrease within an ID"),
    ("CMT", "the model has no such compartment"),
    ("RATE", "RATE=-1 needs the model's rate R for the compartment"),
    ("RATE", "RATE=-2 needs the model's duration D for the compartment"),
]
_FIRST_MODEL_RULE = 12   # the rules from here on have messages of their own


def _fail_rule(rule, index, model, source, frame, values):
    """Raise the one-line error of _RULES[rule], broken first at record `index`."""
    column, text = _RULES[rule]
    where = dict(file=source, row=_row_label(index), column=column)
    if rule < _FIRST_MODEL_RULE:
        value = values[column.lower()][index]
        found = _cell(frame, column, index) if column in frame.columns else f"{value:g} (the default)"
        raise DataError(text, **where, value=value, got=found)
    if column == "TIME":
        ids, time = values["ids"], values["time"]
        raise DataError(f"must not decrease within ID {ids[index]:g}", **where, value=time[index],
                        got=f"{time[index]:g} after {time[index - 1]:g}")
    number = int(values["cmt"][index])
    if column == "CMT":   # CMT 0 (the first compartment on a dose record) is always known
        raise DataError(f"model {model.name!r} has no compartment {number} "
                        f"(compartments: {', '.join(f'{k}={v}' for k, v in model.numbers.items())})",
                        **where, value=number, got=None)
    code, key, word = (-1, "R", "rate") if rule == _FIRST_MODEL_RULE + 2 else (-2, "D", "duration")
    name = model.compartments[model.compartment_index(number or model.numbers[model.compartments[0]])]
    raise DataError(f"RATE={code} asks for a modelled {word}, but model {model.name!r} defines no {key} "
                    f"for compartment {name}", **where, value=code, got=None)


@jit
def _any_true(flags):
    for flag in flags:
        if flag:
            return True
    return False


# the engine's kind of record of each valid EVID (0 to 4)
_KINDS = np.array([KIND_OBS, KIND_DOSE, KIND_OBS, KIND_RESET, KIND_RESET_DOSE], np.int64)


def _states_by_number(model):
    """The 0-based state index of each compartment number 0..largest (-1 where none)."""
    numbers = [model.numbers[name] for name in model.compartments]
    table = np.full(max(numbers) + 1, -1, np.int64)
    table[numbers] = np.arange(len(numbers))
    return table


@jit
def _column_value(values, bits, integer, i):
    """Record i of a column: `values`, or if `integer`, `bits` (the int64 view of `values`) as float64."""
    return np.float64(bits[i]) if integer else values[i]


@jit
def _plain_records(ids, time, evid, amt, cmt, rate, ii, addl, ss, integer, first_number, states_by_number, evid_out,
                   kind, state, first_records, ss_out):
    """:func:`_check_records` for a data set whose every record is plain: an observation (EVID 0) or a dose
    (EVID 1, AMT > 0) without ADDL, II, SS or modelled rate, in a compartment of the model, its time not before
    the previous record's of its ID, every value finite (EVID inferred from AMT where it is NaN).

    The columns are float64 arrays, or int64 ones passed as their bits (bit k of `integer` set for the k-th
    column), so that a data set's own columns are read without conversion. Writes the EVID, kind, state
    index, SS and first record of each subject that :func:`_check_records` writes and returns (True, number
    of subjects); returns (False, 0) if any record is not plain, the outputs then partly written. No branch
    depends on a record's values in the first loop, so the compiler vectorises it (about a third of
    :func:`_check_records`' time).
    """
    n = ids.size
    largest = np.float64(states_by_number.size - 1)
    bad = 0
    ids_bits, time_bits, evid_bits, amt_bits, cmt_bits, rate_bits, ii_bits, addl_bits, ss_bits = (
        ids.view(np.int64), time.view(np.int64), evid.view(np.int64), amt.view(np.int64), cmt.view(np.int64),
        rate.view(np.int64), ii.view(np.int64), addl.view(np.int64), ss.view(np.int64))
    for i in range(n):
        a = _column_value(amt, amt_bits, integer & 8, i)
        e = _column_value(evid, evid_bits, integer & 4, i)
        e = np.float64(a > 0) if np.isnan(e) else e
        dose = e == 1.0
        r = _column_value(rate, rate_bits, integer & 32, i)
        good = ((e == 0.0) & (a >= 0)) | (dose & (a > 0))
        good &= ((_column_value(ss, ss_bits, integer & 256, i) == 0) & (r >= 0)
                 & (_column_value(ii, ii_bits, integer & 64, i) == 0)
                 & (_column_value(addl, addl_bits, integer & 128, i) == 0))
        good &= (np.isfinite(a) & np.isfinite(r) & np.isfinite(_column_value(ids, ids_bits, integer & 1, i))
                 & np.isfinite(_column_value(time, time_bits, integer & 2, i)))
        c = _column_value(cmt, cmt_bits, integer & 16, i)
        number = first_number if dose & (c == 0) else c
        inside = (number >= 0) & (number <= largest)
        whole = np.int64(number if inside else 0.0)
        good &= inside & (np.float64(whole) == number)
        bad |= np.int64(not good)
        evid_out[i] = np.int64(dose)
        kind[i] = KIND_DOSE if dose else KIND_OBS
        state[i] = whole          # the compartment number, its state index below
        ss_out[i] = 0
    if bad:
        return False, 0
    for i in range(n):
        index = states_by_number[state[i]]
        bad |= np.int64(index < 0)
        state[i] = index
    if bad:
        return False, 0
    subject = 0
    first_records[0] = 0
    for i in range(1, n):
        subject_id = _column_value(ids, ids_bits, integer & 1, i)
        if subject_id != _column_value(ids, ids_bits, integer & 1, i - 1):   # NaN is never equal
            subject += 1
            first_records[subject] = i
        elif _column_value(time, time_bits, integer & 2, i) < _column_value(time, time_bits, integer & 2, i - 1):
            return False, 0
    return True, subject + 1


@jit
def _check_records(ids, time, evid, amt, cmt, rate, ii, addl, ss, first_number, states_by_number, modelled,
                   evid_out, kind, state, first_records, ss_out, first_failure):
    """Check every record against _RULES and derive its EVID, kind, state index and subject, in one pass.

    evid : NaN where the data set leaves it empty (then 1 if AMT > 0, else 0, as NONMEM does).
    first_number : the model's first compartment number (that of a dose with CMT 0).
    states_by_number : the state index of each compartment number 0..largest (-1: none).
    modelled : (n_states, 2) bool, whether the model defines the rate R, the duration D.
    state : the 0-based state index of the record's compartment (0 on a record without one).
    first_records : the first record of each subject (a run of records with one ID) is written here.
    Writes first_failure[rule] = the first record breaking each rule (-1: none) and returns
    the number of ADDL doses the dose records ask for and the number of subjects.
    """
    addl_total = 0.0
    current_subject = 0
    largest = states_by_number.size - 1
    for i in range(ids.size):
        e = evid[i]
        if np.isnan(e):
            e = 1.0 if amt[i] > 0 else 0.0
        dose = e == 1.0 or e == 4.0
        infusion_to_steady_state = ss[i] > 0 and ii[i] == 0
        same_subject = i > 0 and ids[i] == ids[i - 1]
        if i > 0 and not same_subject:
            current_subject += 1
        if not same_subject:
            first_records[current_subject] = i
        # NONMEM's compartment number -> state index; CMT=0: the first compartment for a dose, else none
        number = first_number if cmt[i] == 0 and dose else cmt[i]
        index = (states_by_number[np.int64(number)] if 0 <= number <= largest and number == np.floor(number)
                 else -1)
        # an observation, or a dose without ADDL, SS or modelled rate, that breaks none of the rules
        # (a record passing this short test passes them all); the others are checked rule by rule
        plain = ((e == 0.0 and amt[i] >= 0 or e == 1.0 and amt[i] > 0) and ss[i] == 0 and ii[i] == 0
                 and addl[i] == 0 and rate[i] >= 0 and index >= 0 and cmt[i] >= 0 and cmt[i] == np.floor(cmt[i])
                 and not (same_subject and time[i] < time[i - 1]))
        if not plain:
            broken = (not (e == 0.0 or e == 1.0 or e == 2.0 or e == 3.0 or e == 4.0),
                      amt[i] < 0,
                      dose and amt[i] == 0 and not (infusion_to_steady_state and rate[i] > 0),
                      not (ss[i] == 0 or ss[i] == 1 or ss[i] == 2),
                      ii[i] < 0,
                      addl[i] < 0 or addl[i] != np.floor(addl[i]),
                      dose and addl[i] > 0 and ii[i] <= 0,
                      dose and infusion_to_steady_state and amt[i] > 0,
                      dose and infusion_to_steady_state and rate[i] <= 0,
                      rate[i] < 0 and rate[i] != -1 and rate[i] != -2,
                      cmt[i] != np.floor(cmt[i]),
                      cmt[i] < 0,
                      same_subject and time[i] < time[i - 1],
                      index < 0 and number != 0,
                      dose and index >= 0 and rate[i] == -1 and not modelled[max(index, 0), 0],
                      dose and index >= 0 and rate[i] == -2 and not modelled[max(index, 0), 1])
            if _any_true(broken):   # rare: which rules, and is this their first record?
                for rule in range(len(broken)):
                    if broken[rule] and first_failure[rule] < 0:
                        first_failure[rule] = i
        if dose:
            addl_total += addl[i]
        code = np.int64(e)
        evid_out[i] = code
        kind[i] = _KINDS[min(max(code, 0), 4)]   # any other EVID is refused
        state[i] = max(index, 0)
        ss_out[i] = np.int64(ss[i])
    return addl_total, current_subject + 1


def check_expanded_records(n_records, addl, source, max_memory=None):
    """Refuse, before expanding anything, ADDL that would give more records than memory holds."""
    total = n_records + float(np.sum(addl))
    check_memory(total * BYTES_PER_EXPANDED_RECORD, f"{source}: ADDL expands {n_records} records to {total:.3g}",
                 max_memory)


def _assemble(first_records, subject_ids, time, kind, amt, cmt, rate, ii, ss, addl, inputs, rows, parents,
              shared=False):
    """Expand ADDL and merge the generated doses into the sorted stream (vectorised).

    The input records stay in their order (they are sorted by subject, then
    time); each generated dose goes before the first input record of its
    subject at or after its time (at equal times ADDL doses come first, NONMEM
    practice), generated doses at one time in the order of their parent records.
    A generated dose takes the parameters of that next input record, and one
    after its subject's last input record is dropped (no output follows it).

    `first_records` holds each subject's first input record and then the number
    of input records, `cmt` each input record's 0-based state index, `ss` its SS
    as int64, `rows` its row of `inputs` and `parents` the dose records with ADDL > 0; the
    per-record arrays (each of this module's own making, or a read-only column of the data
    set) become the stream's when no dose is generated, and then ``prow``, ``drow`` and
    ``input_rows`` are one array, ``out`` and ``parent`` another (nothing writes to a
    stream's arrays). `shared`: no record repeats its predecessor's values under another row
    (``EventStream.rows_shared_for``).
    """
    n = time.size
    subject_index = (np.repeat(np.arange(subject_ids.size), np.diff(first_records)) if parents.size
                     else np.zeros(0, np.int64))   # each input record's subject, needed to place ADDL doses
    counts = addl[parents].astype(np.int64)
    gen_parent = np.repeat(parents, counts)
    gen_k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    gen_time = time[gen_parent] + gen_k * ii[gen_parent]
    gen_subject = subject_index[gen_parent]
    order = np.lexsort((gen_k, gen_parent, gen_time, gen_subject))
    gen_parent, gen_time, gen_subject = gen_parent[order], gen_time[order], gen_subject[order]

    # the next input record of each generated dose: the first one not before it in (subject, time)
    next_input = (np.searchsorted(_subject_time(subject_index, time), _subject_time(gen_subject, gen_time))
                  if gen_parent.size else gen_parent)
    keep = next_input < n
    keep[keep] = subject_index[next_input[keep]] == gen_subject[keep]
    gen_parent, gen_time, gen_subject, next_input = (gen_parent[keep], gen_time[keep], gen_subject[keep],
                                                     next_input[keep])

    m = gen_parent.size
    if m:
        gen_position = next_input + np.arange(m)
        input_position = np.arange(n) + np.searchsorted(next_input, np.arange(n), side="right")

    def merged(values, generated):
        """Input records' `values` (an array of this function's own) and the generated doses'
        (their parents' values, or `generated`)."""
        if not m:
            return values
        out = np.empty(n + m, values.dtype)
        out[input_position] = values
        out[gen_position] = values[gen_parent] if generated is None else generated
        return out

    records = np.arange(n)   # one array for the two fields that are each record's own index when nothing is merged
    subject_start = first_records + np.searchsorted(gen_subject, np.arange(subject_ids.size + 1))
    stream = EventStream(
        subject_start=subject_start.astype(np.int64),
        subject_ids=subject_ids,
        time=merged(time, gen_time),
        kind=merged(kind, KIND_DOSE),
        amt=merged(amt, None),
        cmt=merged(cmt, None),
        rate=merged(rate, None),
        ii=merged(ii, None),
        ss=merged(ss, 0),
        prow=merged(rows, rows[next_input]),
        drow=merged(rows, None),
        out=merged(records, -1),
        parent=merged(records, None),
        inputs=inputs,
        n_outputs=n,
        input_rows=rows,
    )
    if shared:
        stream.rows_shared_for = (stream.prow, stream.inputs)
    return stream


def _subject_time(subject, time):
    """(subject, time) pairs as one structured array, which NumPy compares and searches in that order."""
    pairs = np.empty(subject.size, [("subject", np.int64), ("time", np.float64)])
    pairs["subject"] = subject
    pairs["time"] = time
    return pairs
