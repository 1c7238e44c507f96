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


def _numeric(frame, column, source, default):
    """A data column as float64; '.' and empty cells count as `default`, text is an error."""
    if column not in frame.columns:
        return np.full(len(frame), float(default))
    raw = frame[column]
    blank = _blank(raw)
    if raw.dtype.kind in "fiub":
        values = raw.to_numpy(dtype=float).copy()
    else:
        text = raw.astype(str).str.strip()
        converted = pd.to_numeric(text.where(~blank, "0"), errors="coerce").to_numpy(dtype=float)
        bad = np.isnan(converted) & ~blank
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise DataError("must be a number", file=source, row=_row_label(index), column=column,
                            value=str(raw.iloc[index]).strip())
        values = converted.copy()
    values[blank] = default
    if not np.all(np.isfinite(values[~blank])):
        index = int(np.flatnonzero(~np.isfinite(values) & ~blank)[0])
        raise DataError("must be finite", file=source, row=_row_label(index), column=column,
                        value=values[index], got=_cell(frame, column, index))
    return values


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

    # compartments: NONMEM numbers -> state index; CMT=0 on non-dose records means "default"
    state = np.full(n, -1, np.int64)
    by_number = {model.numbers[name]: i for i, name in enumerate(model.compartments)}
    dose_default = min(by_number)
    for row in range(n):
        number = int(cmt[row])
        if number == 0 and is_dose[row]:
            number = dose_default
        if number == 0:
            continue
        index = by_number.get(number)
        if index is None:
            raise DataError(f"model {model.name!r} has no compartment {number} "
                            f"(compartments: {', '.join(f'{k}={v}' for k, v in model.numbers.items())})",
                            file=source, row=_row_label(row), column="CMT", value=number, got=None)
        state[row] = index
    for code, key, word in ((-1, "R", "rate"), (-2, "D", "duration")):
        rows = np.flatnonzero(is_dose & (rate == code))
        for row in rows:
            name = model.compartments[state[row]]
            if key not in model.dosing.get(name, {}):
                raise DataError(f"RATE={code} asks for a modelled {word}, but model {model.name!r} defines no {key} "
                                f"for compartment {name}", file=source, row=_row_label(row), column="RATE",
                                value=code, got=None)

    # per-record parameter and covariate values
    inputs = np.empty((n, len(model.inputs)))
    for column, (name, default) in enumerate(zip(model.inputs, model.input_defaults)):
        inputs[:, column] = _numeric(frame, name, source, default) if name in frame.columns else default
        allowed = model.parameters[name].allowed if name in model.parameters else ()
        if allowed and name in frame.columns:
            bad = np.flatnonzero(~np.isin(inputs[:, column], allowed))
            if bad.size:
                index = bad[0]
                raise DataError(f"must be one of {', '.join(f'{v:g}' for v in allowed)} (a switch)", file=source,
                                row=_row_label(index), column=name, value=inputs[index, column],
                                got=_cell(frame, name, index))

    check_expanded_records(n, addl[is_dose], source, max_memory)
    kind = np.select([evid == 1, evid == 3, evid == 4], [KIND_DOSE, KIND_RESET, KIND_RESET_DOSE], KIND_OBS)
    subject_index = np.cumsum(new_subject) - 1
    stream = _assemble(subject_index, ids[new_subject], time, kind, amt, state, rate, ii, ss, addl,
                       inputs, is_dose)
    stream.evid = evid.astype(np.int64)
    return stream


def check_expanded_records(n_records, addl, source, max_memory=None):
    """Refuse, before expanding anything, ADDL that would give more records than memory holds."""
    total = n_records + float(np.sum(addl))
    check_memory(total * BYTES_PER_EXPANDED_RECORD, f"{source}: ADDL expands {n_records} records to {total:.3g}",
                 max_memory)


def _assemble(subject_index, subject_ids, time, kind, amt, state, rate, ii, ss, addl, inputs, is_dose):
    """Expand ADDL and merge generated doses into the sorted stream (vectorised)."""
    n = time.size
    rows = np.arange(n)
    parents = np.flatnonzero(is_dose & (addl > 0))
    counts = addl[parents].astype(np.int64)
    gen_parent = np.repeat(parents, counts)
    gen_k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    gen_time = time[gen_parent] + gen_k * ii[gen_parent]

    all_subject = np.concatenate([subject_index, subject_index[gen_parent]])
    all_time = np.concatenate([time, gen_time])
    generated = np.concatenate([np.zeros(n, bool), np.ones(gen_parent.size, bool)])
    all_parent = np.concatenate([rows, gen_parent])
    all_k = np.concatenate([np.zeros(n, np.int64), gen_k])
    # at equal times, ADDL doses come before the input records (NONMEM practice)
    order = np.lexsort((all_k, all_parent, ~generated, all_time, all_subject))
    all_subject = all_subject[order]
    all_time = all_time[order]
    generated = generated[order]
    all_parent = all_parent[order]

    # a generated record's interval parameters are those of the next input record;
    # generated records after a subject's last input record are dropped (no output follows)
    position = np.arange(order.size)
    next_input = np.where(~generated, position, order.size)
    next_input = np.minimum.accumulate(next_input[::-1])[::-1]
    valid = next_input < order.size
    next_safe = np.minimum(next_input, order.size - 1)
    valid &= all_subject[next_safe] == all_subject
    keep = ~generated | valid
    prow = np.where(generated, all_parent[next_safe], all_parent)

    sel = keep
    parent = all_parent[sel]
    gen = generated[sel]
    subj = all_subject[sel]
    stream_kind = np.where(gen, KIND_DOSE, kind[parent])
    n_subjects = subject_ids.size
    subject_start = np.searchsorted(subj, np.arange(n_subjects + 1)).astype(np.int64)
    return EventStream(
        subject_start=subject_start,
        subject_ids=subject_ids,
        time=np.ascontiguousarray(all_time[sel]),
        kind=stream_kind.astype(np.int64),
        amt=amt[parent].copy(),
        cmt=np.maximum(state[parent], 0).astype(np.int64),
        rate=rate[parent].copy(),
        ii=ii[parent].copy(),
        ss=np.where(gen, 0, ss[parent]).astype(np.int64),
        prow=prow[sel].astype(np.int64),
        drow=parent.astype(np.int64),
        out=np.where(gen, -1, parent).astype(np.int64),
        parent=parent.astype(np.int64),
        inputs=np.ascontiguousarray(inputs, dtype=np.float64),
        n_outputs=n,
    )
