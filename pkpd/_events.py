"""NONMEM-style event data: checking, and expansion into the engine's event stream.

The engine integrates between sorted records. This module turns a data set
(one row per NONMEM record) into those records: it checks the data once, at
the boundary, expands ADDL into explicit dose records (vectorised, never in a
kernel), and builds the matrix of per-record parameter and covariate values.
"""

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._errors import DataError
from ._jit import jit
from ._resources import BYTES_PER_EXPANDED_RECORD, check_memory

KIND_OBS, KIND_DOSE, KIND_RESET, KIND_RESET_DOSE = 0, 1, 3, 4
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
    inputs: np.ndarray         # (n_input_records, n_inputs) float64
    n_outputs: int             # number of output rows (input records)
    evid: np.ndarray | None = None  # (n_input_records,) EVID of each input record as used

    @property
    def n_subjects(self):
        return self.subject_ids.size

    def max_records(self):
        return int(np.max(np.diff(self.subject_start))) if self.n_subjects else 0


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
    first = _first_repeated_row(prow, bits)
    if first < 0:
        return prow
    shared = prow.copy()
    _share_repeated_rows(shared, bits, first)
    return shared


@jit
def _same_row(bits, row, other):
    for column in range(bits.shape[1]):
        if bits[row, column] != bits[other, column]:
            return False
    return True


@jit
def _first_repeated_row(prow, bits):
    """The first record whose row differs from the previous record's but holds the same values; -1 if none."""
    for record in range(1, prow.size):
        if prow[record] != prow[record - 1] and _same_row(bits, prow[record], prow[record - 1]):
            return record
    return -1


@jit
def _share_repeated_rows(prow, bits, first):
    """From record `first` on, point each record repeating its predecessor's values at the same row (in place)."""
    current = prow[first - 1]
    for record in range(first, prow.size):
        row = prow[record]
        if row != current and not _same_row(bits, row, current):
            current = row
        prow[record] = current


def _where(source, row=None, column=None):
    parts = [source]
    if row is not None:
        parts.append(f"row {row}")
    if column is not None:
        parts.append(f"column {column}")
    return ", ".join(parts)


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
    if column not in frame.columns:
        return np.full(len(frame), float(default))
    raw = frame[column]
    if isinstance(raw.dtype, np.dtype) and raw.dtype.kind in "fiub":
        # a NumPy numeric column: empty cells are NaN, and no cell needs a look as text
        values = raw.to_numpy(dtype=float, copy=copy)
        finite = np.isfinite(values)
        if finite.all():
            return values
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
            raise DataError(f"{_where(source, _row_label(index), column)}: must be a number; "
                            f"got {str(raw.iloc[index]).strip()!r}")
        finite = np.isfinite(values)
    if not np.all(finite | blank):
        index = int(np.flatnonzero(~finite & ~blank)[0])
        raise DataError(f"{_where(source, _row_label(index), column)}: must be finite; "
                        f"got {_cell(frame, column, index)}")
    return np.where(blank, float(default), values)


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
    for position, column in enumerate(data.columns):
        name = column.strip() if isinstance(column, str) else column
        if isinstance(name, str) and name.upper() in _STANDARD:
            name = name.upper()
        if name in seen and name != "":
            first = data.columns[seen[name]]
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


def build_stream(model, data, source="data", max_memory=None):
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

    Returns
    -------
    EventStream
        ``stream.evid`` holds each input record's EVID as used (inferred from
        AMT where the column or the cell is empty, as NONMEM does).
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError("expected a pandas DataFrame", file=source, value=data, got=type(data).__name__)
    frame = data.set_axis(standard_columns(data, source), axis=1)
    for required in ("ID", "TIME"):
        if required not in frame.columns:
            raise DataError(f"column {required} is required (columns found: {', '.join(map(str, frame.columns))})",
                            file=source)
    if len(frame) == 0:
        raise DataError("has no records", file=source)
    ids = _numeric(frame, "ID", source, np.nan)
    time = _numeric(frame, "TIME", source, np.nan)
    for name, values in (("ID", ids), ("TIME", time)):
        if np.isnan(values).any():
            _fail_rows(np.isnan(values), source, name, "must not be empty", values, frame)
    amt = _numeric(frame, "AMT", source, 0.0)
    default_evid = np.where(amt > 0, 1.0, 0.0)
    evid = _numeric(frame, "EVID", source, np.nan) if "EVID" in frame.columns else default_evid
    evid = np.where(np.isnan(evid), default_evid, evid)
    cmt = _numeric(frame, "CMT", source, 0.0)
    rate = _numeric(frame, "RATE", source, 0.0)
    ii = _numeric(frame, "II", source, 0.0)
    addl = _numeric(frame, "ADDL", source, 0.0)
    ss = _numeric(frame, "SS", source, 0.0)

    n = len(frame)
    is_dose = (evid == 1) | (evid == 4)
    checks = [
        (~np.isin(evid, [0, 1, 2, 3, 4]), "EVID", "must be 0, 1, 2, 3 or 4", evid),
        (amt < 0, "AMT", "must not be negative", amt),
        (is_dose & (amt == 0) & ~((ss > 0) & (rate > 0) & (ii == 0)), "AMT",
         "a dose record (EVID 1 or 4) needs AMT > 0", amt),
        (~np.isin(ss, [0, 1, 2]), "SS", "must be 0, 1 or 2", ss),
        (ii < 0, "II", "must not be negative", ii),
        ((addl < 0) | (addl != np.round(addl)), "ADDL", "must be a non-negative integer", addl),
        (is_dose & (addl > 0) & (ii <= 0), "II", "ADDL > 0 needs II > 0", ii),
        (is_dose & (ss > 0) & (ii == 0) & (amt > 0), "II", "SS with AMT > 0 needs II > 0", ii),
        (is_dose & (ss > 0) & (ii == 0) & (rate <= 0), "RATE",
         "a constant-infusion steady state (SS with II=0) needs RATE > 0", rate),
        ((rate < 0) & ~np.isin(rate, [-1, -2]), "RATE", "must be >= 0, -1 (modelled rate) or -2 (modelled duration)", rate),
        (cmt != np.round(cmt), "CMT", "must be an integer", cmt),
        (cmt < 0, "CMT", "must not be negative (NONMEM's negative CMT turns a compartment off, "
                         "which pkpd does not support)", cmt),
    ]
    for mask, column, rule, values in checks:
        if mask.any():
            _fail_rows(mask, source, column, rule, values, frame)

    # subjects are runs of equal ID, as NONMEM reads them
    new_subject = np.empty(n, bool)
    new_subject[0] = True
    new_subject[1:] = ids[1:] != ids[:-1]
    decreasing = ~new_subject[1:] & (time[1:] < time[:-1])
    if decreasing.any():
        index = int(np.flatnonzero(decreasing)[0]) + 1
        raise DataError(f"must not decrease within ID {ids[index]:g}", file=source, row=_row_label(index),
                        column="TIME", value=time[index], got=f"{time[index]:g} after {time[index - 1]:g}")

    state = _state_index(model, cmt, is_dose, source)
    _check_modelled_rates(model, state, rate, is_dose, source)

    # per-record parameter and covariate values
    inputs = np.empty((n, len(model.inputs)))
    for column, (name, default) in enumerate(zip(model.inputs, model.input_defaults)):
        inputs[:, column] = _numeric(frame, name, source, default, copy=False) if name in frame.columns else default
        allowed = model.parameters[name].allowed if name in model.parameters else ()
        if allowed and name in frame.columns:
            bad = np.flatnonzero(~np.isin(inputs[:, column], allowed))
            if bad.size:
                index = bad[0]
                raise DataError(f"must be one of {', '.join(f'{v:g}' for v in allowed)} (a switch)", file=source,
                                row=_row_label(index), column=name, value=inputs[index, column],
                                got=_cell(frame, name, index))

    check_expanded_records(n, addl[is_dose], source, max_memory)
    kind = np.select([evid == 1, evid == 3, evid == 4], [KIND_DOSE, KIND_RESET, KIND_RESET_DOSE],
                     KIND_OBS).astype(np.int64, copy=False)
    subject_index = np.cumsum(new_subject) - 1
    stream = _assemble(subject_index, ids[new_subject], time, kind, amt, state, rate, ii, ss, addl,
                       inputs, is_dose)
    stream.evid = evid.astype(np.int64)
    return stream


def _state_index(model, cmt, is_dose, source):
    """The 0-based state index of each record's compartment (-1: none), looked up by number.

    CMT holds NONMEM's compartment numbers (checked to be non-negative integers);
    CMT=0 on a dose record means the model's first compartment, on any other
    record "no compartment". The model's states are in compartment-number order.
    """
    numbers = np.array([model.numbers[name] for name in model.compartments], np.float64)
    number = np.where((cmt == 0) & is_dose, numbers[0], cmt)
    state = np.minimum(np.searchsorted(numbers, number), numbers.size - 1)
    unknown = (numbers[state] != number) & (number != 0)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise DataError(f"{_where(source, _row_label(row), 'CMT')}: model {model.name!r} has no compartment "
                        f"{int(number[row])} (compartments: {', '.join(f'{k}={v}' for k, v in model.numbers.items())})")
    return np.where(number == 0, -1, state).astype(np.int64)


def _check_modelled_rates(model, state, rate, is_dose, source):
    """RATE=-1 (-2) dose records need the model's rate R (duration D) for their compartment."""
    for code, key, word in ((-1, "R", "rate"), (-2, "D", "duration")):
        defined = np.array([key in model.dosing.get(name, {}) for name in model.compartments])
        missing = is_dose & (rate == code)
        missing[missing] = ~defined[state[missing]]
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            name = model.compartments[state[row]]
            raise DataError(f"{_where(source, _row_label(row), 'RATE')}: RATE={code} asks for a modelled {word}, "
                            f"but model {model.name!r} defines no {key} for compartment {name}")


def check_expanded_records(n_records, addl, source, max_memory=None):
    """Refuse, before expanding anything, ADDL that would give more records than memory holds."""
    total = n_records + float(np.sum(addl))
    check_memory(total * BYTES_PER_EXPANDED_RECORD, f"{source}: ADDL expands {n_records} records to {total:.3g}",
                 max_memory)


def _assemble(subject_index, subject_ids, time, kind, amt, state, rate, ii, ss, addl, inputs, is_dose):
    """Expand ADDL and merge the generated doses into the sorted stream (vectorised).

    The input records stay in their order (they are sorted by subject, then
    time); each generated dose goes before the first input record of its
    subject at or after its time (at equal times ADDL doses come first, NONMEM
    practice), generated doses at one time in the order of their parent records.
    A generated dose takes the parameters of that next input record, and one
    after its subject's last input record is dropped (no output follows it).
    """
    n = time.size
    parents = np.flatnonzero(is_dose & (addl > 0))
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

    subject_start = np.searchsorted(subject_index, np.arange(subject_ids.size + 1))
    subject_start += np.searchsorted(gen_subject, np.arange(subject_ids.size + 1))
    return EventStream(
        subject_start=subject_start.astype(np.int64),
        subject_ids=subject_ids,
        time=merged(time, gen_time),
        kind=merged(kind, KIND_DOSE),
        amt=merged(amt, None),
        cmt=merged(np.maximum(state, 0), None),
        rate=merged(rate, None),
        ii=merged(ii, None),
        ss=merged(ss.astype(np.int64), 0),
        prow=merged(np.arange(n), next_input),
        drow=merged(np.arange(n), None),
        out=merged(np.arange(n), -1),
        parent=merged(np.arange(n), None),
        inputs=np.ascontiguousarray(inputs, dtype=np.float64),
        n_outputs=n,
    )


def _subject_time(subject, time):
    """(subject, time) pairs as one structured array, which NumPy compares and searches in that order."""
    pairs = np.empty(subject.size, [("subject", np.int64), ("time", np.float64)])
    pairs["subject"] = subject
    pairs["time"] = time
    return pairs
