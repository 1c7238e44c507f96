"""The vectorised data path (``pkpd.events.records``) against the per-record logic it replaced.

``build_stream`` used to map CMT numbers to states and check RATE=-1/-2 record by
record in Python, and to sort every record with a five-key ``lexsort``. The
reference below keeps that logic, written out plainly, in the test only; on
randomized data sets (fixed seeds: ADDL, SS, RATE -1/-2, CMT 0 defaults, resets,
several subjects, parameter columns, empty and text cells) the new code must give
the same EventStream bit for bit, or refuse with the same message.

``shared_parameter_rows`` lets the engine integrate through records that repeat
the previous record's parameter values: a row per record must give the bits of a
row per subject.
"""

import dataclasses
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import TEST_MODELS
from pkpd._engine import run_stream
from pkpd._errors import DataError
from pkpd.events.records import (KIND_DOSE, KIND_OBS, KIND_RESET, KIND_RESET_DOSE, EventStream, _blank, _cell, _row_label,
                          build_stream, check_expanded_records, shared_parameter_rows, standard_columns)
from pkpd.model import load_model

NMTESTS = TEST_MODELS / "nmtests.toml"   # GUT = 1 (no modelled rate), CENT = 2 (R and D defined)
SEED_WITH_ADDL = 2                       # random_data(2): 23 valid records, 18 ADDL doses


# --- the reference: the per-record logic as it was ---------------------------------

def reference_numeric(frame, column, source, default):
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


def reference_fail(mask, source, column, rule, values, frame):
    index = int(np.flatnonzero(mask)[0])
    found = _cell(frame, column, index) if column in frame.columns else f"{values[index]:g} (the default)"
    raise DataError(rule, file=source, row=_row_label(index), column=column, value=values[index], got=found)


def reference_build_stream(model, data, source="data", max_memory=None):
    frame = data.set_axis(standard_columns(data, source), axis=1)
    ids = reference_numeric(frame, "ID", source, np.nan)
    time = reference_numeric(frame, "TIME", source, np.nan)
    for name, values in (("ID", ids), ("TIME", time)):
        if np.isnan(values).any():
            reference_fail(np.isnan(values), source, name, "must not be empty", values, frame)
    amt = reference_numeric(frame, "AMT", source, 0.0)
    default_evid = np.where(amt > 0, 1.0, 0.0)
    evid = reference_numeric(frame, "EVID", source, np.nan) if "EVID" in frame.columns else default_evid
    evid = np.where(np.isnan(evid), default_evid, evid)
    cmt = reference_numeric(frame, "CMT", source, 0.0)
    rate = reference_numeric(frame, "RATE", source, 0.0)
    ii = reference_numeric(frame, "II", source, 0.0)
    addl = reference_numeric(frame, "ADDL", source, 0.0)
    ss = reference_numeric(frame, "SS", source, 0.0)
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
        ((rate < 0) & ~np.isin(rate, [-1, -2]), "RATE", "must be >= 0, -1 (modelled rate) or -2 (modelled duration)",
         rate),
        (cmt != np.round(cmt), "CMT", "must be an integer", cmt),
        (cmt < 0, "CMT", "must not be negative (NONMEM's negative CMT turns a compartment off, "
                         "which pkpd does not support)", cmt),
    ]
    for mask, column, rule, values in checks:
        if mask.any():
            reference_fail(mask, source, column, rule, values, frame)
    subject_index = np.zeros(n, np.int64)
    for row in range(1, n):
        subject_index[row] = subject_index[row - 1] + (ids[row] != ids[row - 1])
        if ids[row] == ids[row - 1] and time[row] < time[row - 1]:
            raise DataError(f"must not decrease within ID {ids[row]:g}", file=source, row=_row_label(row),
                            column="TIME", value=time[row], got=f"{time[row]:g} after {time[row - 1]:g}")
    # record by record: NONMEM compartment number -> state index; CMT=0 on a non-dose record: none
    state = np.full(n, -1, np.int64)
    by_number = {model.numbers[name]: i for i, name in enumerate(model.compartments)}
    for row in range(n):
        number = int(cmt[row])
        if number == 0 and is_dose[row]:
            number = min(by_number)
        if number == 0:
            continue
        if number not in by_number:
            raise DataError(f"model {model.name!r} has no compartment {number} "
                            f"(compartments: {', '.join(f'{k}={v}' for k, v in model.numbers.items())})",
                            file=source, row=_row_label(row), column="CMT", value=number, got=None)
        state[row] = by_number[number]
    for code, key, word in ((-1, "R", "rate"), (-2, "D", "duration")):
        for row in range(n):
            if is_dose[row] and rate[row] == code:
                name = model.compartments[state[row]]
                if key not in model.dosing.get(name, {}):
                    raise DataError(f"RATE={code} asks for a modelled {word}, but model {model.name!r} defines no "
                                    f"{key} for compartment {name}", file=source, row=_row_label(row), column="RATE",
                                    value=code, got=None)
    inputs = np.empty((n, len(model.inputs)))
    for column, (name, default) in enumerate(zip(model.inputs, model.input_defaults)):
        inputs[:, column] = reference_numeric(frame, name, source, default) if name in frame.columns else default
        allowed = model.parameters[name].allowed if name in model.parameters else ()
        if allowed and name in frame.columns:
            bad = np.flatnonzero(~np.isin(inputs[:, column], allowed))
            if bad.size:
                raise DataError(f"must be one of {', '.join(f'{v:g}' for v in allowed)} (a switch)", file=source,
                                row=_row_label(bad[0]), column=name, value=inputs[bad[0], column],
                                got=_cell(frame, name, bad[0]))
    check_expanded_records(n, addl[is_dose], source, max_memory)
    kind = {1: KIND_DOSE, 3: KIND_RESET, 4: KIND_RESET_DOSE}
    return reference_assemble(subject_index, ids, time, [kind.get(int(e), KIND_OBS) for e in evid], amt, state, rate,
                              ii, ss, addl, inputs, is_dose, evid)


def reference_assemble(subject_index, ids, time, kind, amt, state, rate, ii, ss, addl, inputs, is_dose, evid):
    """ADDL expanded dose by dose; every record sorted by (subject, time, generated first, parent, k)."""
    n = time.size
    records = [(subject_index[row], time[row], 1, row, 0) for row in range(n)]
    for row in range(n):
        if is_dose[row]:
            for k in range(1, int(addl[row]) + 1):
                records.append((subject_index[row], time[row] + k * ii[row], 0, row, k))
    records.sort()
    kept = []
    for position, (subject, _, is_input, row, _) in enumerate(records):
        if is_input:
            kept.append((position, row, row))
            continue
        # a generated dose takes the parameters of the next input record of its subject; none: dropped
        following = [r for s, _, i, r, _ in records[position + 1:] if i and s == subject]
        if following:
            kept.append((position, row, following[0]))
    generated = np.array([records[p][2] == 0 for p, _, _ in kept], bool)
    parent = np.array([row for _, row, _ in kept], np.int64)
    subjects = np.array([records[p][0] for p, _, _ in kept], np.int64)
    starts = [0] + [i for i in range(1, len(kept)) if subjects[i] != subjects[i - 1]] + [len(kept)]
    first_rows = np.array([0] + [row for row in range(1, n) if subject_index[row] != subject_index[row - 1]])
    return EventStream(
        subject_start=np.array(starts, np.int64), subject_ids=ids[first_rows],
        time=np.array([records[p][1] for p, _, _ in kept], np.float64),
        kind=np.where(generated, KIND_DOSE, np.asarray(kind, np.int64)[parent]).astype(np.int64),
        amt=amt[parent], cmt=np.maximum(state[parent], 0), rate=rate[parent], ii=ii[parent],
        ss=np.where(generated, 0, ss[parent]).astype(np.int64),
        prow=np.array([p for _, _, p in kept], np.int64), drow=parent.copy(),
        out=np.where(generated, -1, parent).astype(np.int64), parent=parent.copy(), inputs=inputs,
        n_outputs=n, evid=evid.astype(np.int64))


# --- randomized data sets ------------------------------------------------------------

def random_data(seed):
    """A NONMEM data set for the nmtests model: mostly valid, sometimes refused."""
    rng = np.random.default_rng(seed)
    rows = []
    previous_id = None
    for _ in range(rng.integers(1, 6)):
        subject = int(rng.choice([i for i in (1, 2, 3, 7) if i != previous_id]))   # IDs may come back later
        previous_id = subject
        n = int(rng.integers(1, 10))
        times = np.sort(rng.choice(np.arange(-2.0, 30.0, 1.5), n))
        for time in times:
            evid = int(rng.choice([0, 0, 0, 1, 1, 1, 2, 3, 4]))
            dose = evid in (1, 4)
            cmt = int(rng.choice([0, 1, 2, 2]))
            rate = float(rng.choice([0.0, 0.0, 4.0, -1.0, -2.0])) if dose else 0.0
            if rate < 0 and rng.random() < 0.9:
                cmt = 2                        # the modelled rate or duration is defined on CENT only
            ii = float(rng.choice([0.0, 0.0, 3.0, 4.5, 12.0])) if dose else 0.0
            addl = int(rng.choice([0, 1, 3, 6])) if ii > 0 else 0
            ss = int(rng.choice([0, 0, 1, 2])) if ii > 0 else 0
            amt = float(rng.choice([10.0, 100.0, 2.5])) if dose else float(rng.choice([0.0, 0.0, 5.0]))
            if dose and ii == 0 and rng.random() < 0.1:
                amt, rate, ss = 0.0, 3.0, 1     # constant infusion to steady state
            rows.append({"ID": subject, "TIME": time, "EVID": evid, "AMT": amt, "CMT": cmt, "RATE": rate, "II": ii,
                         "ADDL": addl, "SS": ss,
                         "WT": float(rng.choice([55.0, 70.0, 91.5])),   # a covariate of the model
                         "CL": float(rng.choice([1.1, 2.0])),           # a parameter
                         "MODE": float(rng.choice([0.0, 1.0, 2.0])),
                         "DV": float(rng.random())})                    # not a model input
    data = pd.DataFrame(rows)
    if rng.random() < 0.3:   # empty cells: NaN in numeric columns take the default
        data.loc[rng.random(len(data)) < 0.2, "CL"] = np.nan
    if rng.random() < 0.3:   # a text column with NONMEM's "." for empty
        data["KA"] = np.where(rng.random(len(data)) < 0.5, ".", "1.25")
    if rng.random() < 0.2:   # an integer column
        data["CMT"] = data["CMT"].astype(np.int64)
    for column in ("EVID", "CMT", "RATE", "II", "ADDL", "SS", "WT", "CL"):
        if rng.random() < 0.1:
            data = data.drop(columns=column)
    if rng.random() < 0.1:   # a bad cell somewhere (TIME: one that goes back)
        column = str(rng.choice(["CMT", "RATE", "EVID", "SS", "AMT", "TIME", "II", "ADDL"]))
        if column in data.columns:
            data[column] = data[column].astype(float)
            data.loc[int(rng.integers(len(data))), column] = float(rng.choice([9.0, -3.0, 0.5, 7.0]))
    return data


def assert_same_stream(new, reference):
    """The same records bit for bit, and on each of them the same parameter values (the reference has a
    row of `inputs` per input record, the new stream a row per run of records repeating their values)."""
    for rows in ("prow", "drow"):
        assert getattr(new, rows).shape == getattr(reference, rows).shape, rows
        assert (new.inputs[getattr(new, rows)].tobytes() == reference.inputs[getattr(reference, rows)].tobytes()), rows
    assert new.inputs[new.input_rows].tobytes() == reference.inputs.tobytes()
    assert np.all(np.diff(new.input_rows) >= 0) and new.input_rows.dtype == np.int64
    for field in dataclasses.fields(EventStream):
        if field.name in ("prow", "drow", "inputs", "input_rows", "rows_shared_for"):   # the last: tested apart
            continue
        a, b = getattr(new, field.name), getattr(reference, field.name)
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray), field.name
            assert a.dtype == b.dtype, (field.name, a.dtype, b.dtype)
            assert a.shape == b.shape, (field.name, a.shape, b.shape)
            assert a.tobytes() == b.tobytes(), (field.name, a, b)
        else:
            assert a == b, field.name


def outcome(function, model, data):
    """(stream, None), or (None, the error's message and fields)."""
    try:
        return function(model, data), None
    except DataError as error:
        return None, (str(error), error.rule, error.file, error.row, error.column, error.got, repr(error.value))


def test_build_stream_equals_the_per_record_reference_on_random_data_sets():
    model = load_model(NMTESTS)
    built = refused = generated = 0
    for seed in range(400):
        data = random_data(seed)
        new, new_error = outcome(build_stream, model, data)
        reference, reference_error = outcome(reference_build_stream, model, data)
        assert new_error == reference_error, (seed, new_error, reference_error)
        if reference is not None:
            assert_same_stream(new, reference)
            built += 1
            generated += new.time.size - new.n_outputs
        else:
            refused += 1
    # the data sets exercise both outcomes and ADDL expansion
    assert built > 250 and refused > 20 and generated > 300, (built, refused, generated)


def test_a_data_set_of_one_record_and_one_without_doses():
    model = load_model(NMTESTS)
    for data in (pd.DataFrame({"ID": [1], "TIME": [0.0]}),
                 pd.DataFrame({"ID": [5, 5, 6], "TIME": [0.0, 1.0, 0.0], "CMT": [2, 0, 1]})):
        assert_same_stream(build_stream(model, data), reference_build_stream(model, data))


def test_addl_doses_after_the_last_record_are_dropped_and_ties_put_addl_first():
    model = load_model(NMTESTS)
    data = pd.DataFrame({"ID": [1, 1, 1, 2, 2], "TIME": [0.0, 12.0, 12.0, 0.0, 24.0], "EVID": [1, 1, 0, 1, 0],
                         "AMT": [100.0, 50.0, 0.0, 10.0, 0.0], "CMT": [1, 2, 2, 1, 2], "II": [6.0, 0, 0, 12.0, 0],
                         "ADDL": [4, 0, 0, 1, 0]})
    stream = build_stream(model, data)
    assert_same_stream(stream, reference_build_stream(model, data))
    # subject 1: ADDL doses at 6 and 12 h (before the records at 12 h); those at 18 and 24 h are dropped
    assert stream.time[:stream.subject_start[1]].tolist() == [0.0, 6.0, 12.0, 12.0, 12.0]
    assert stream.out[:stream.subject_start[1]].tolist() == [0, -1, -1, 1, 2]


@pytest.mark.parametrize("rows, message", [
    # CMT 5 on the third record (row 4 of the file): the row and the column as before
    ({"CMT": [1, 2, 5, 2]}, "data, row 4, column CMT: model 'nmtests' has no compartment 5 "
                            "(compartments: GUT=1, CENT=2)"),
    # an unknown CMT on a dose record, however large
    ({"CMT": [1e15, 2, 2, 2]}, "data, row 2, column CMT: model 'nmtests' has no compartment 1000000000000000"),
    # RATE=-1 into GUT, which has no modelled rate R
    ({"CMT": [2, 2, 1, 2], "RATE": [0, 0, -1, 0]}, "data, row 4, column RATE: RATE=-1 asks for a modelled rate, "
                                                   "but model 'nmtests' defines no R for compartment GUT"),
    # RATE=-2 on a dose with CMT 0, which goes to the first compartment (GUT)
    ({"CMT": [2, 0, 0, 2], "RATE": [0, 0, -2, 0]}, "data, row 4, column RATE: RATE=-2 asks for a modelled duration"),
    # both: the CMT check comes first, as before, though its row comes later
    ({"CMT": [2, 2, 1, 9], "RATE": [0, 0, -1, 0]}, "data, row 5, column CMT: model 'nmtests' has no compartment 9"),
])
def test_compartment_and_modelled_rate_errors_name_the_same_row_and_column(rows, message):
    model = load_model(NMTESTS)
    data = pd.DataFrame({"ID": [1, 1, 1, 1], "TIME": [0.0, 1.0, 2.0, 3.0], "EVID": [1, 0, 1, 0],
                         "AMT": [10.0, 0.0, 10.0, 0.0], **rows})
    new, new_error = outcome(build_stream, model, data)
    reference, reference_error = outcome(reference_build_stream, model, data)
    assert new is None and new_error == reference_error
    assert new_error[0].startswith(message), new_error[0]


@pytest.mark.parametrize("column, value", [("AMT", -1.0), ("CMT", 1.5), ("CMT", -1), ("CMT", 9), ("SS", 0.5),
                                           ("SS", 3), ("II", -1.0), ("ADDL", 0.5), ("RATE", -3.0), ("TIME", 0.5),
                                           ("EVID", 5)])
def test_one_broken_rule_on_an_otherwise_plain_observation_is_found(column, value):
    """The compiled check tests a record rule by rule only if it fails a short test that plain records pass;
    an observation breaking any one rule must still be refused with the reference's message."""
    model = load_model(NMTESTS)
    columns = {"ID": [1, 1, 1], "TIME": [0.0, 1.0, 2.0], "EVID": [1, 0, 0], "AMT": [10.0, 0.0, 0.0],
               "CMT": [1, 2, 2], "RATE": [0.0] * 3, "II": [0.0] * 3, "ADDL": [0] * 3, "SS": [0] * 3}
    columns[column][2] = value
    data = pd.DataFrame(columns)
    new_error, reference_error = (outcome(function, model, data)[1]
                                  for function in (build_stream, reference_build_stream))
    assert new_error is not None and new_error == reference_error


def test_parameter_columns_of_every_kind_give_the_reference_values_and_errors():
    """NumPy float64 parameter columns are gathered in one compiled pass (also when not contiguous, from a
    2-D array); integer and text columns, empty cells and infinite values take the column-by-column path."""
    model = load_model(NMTESTS)
    data = random_data(SEED_WITH_ADDL)
    n = len(data)
    data["V"] = np.arange(n) + 10.5
    data["WT"] = np.arange(n) + 50                                     # integers
    data["LAGT"] = np.where(np.arange(n) % 3 == 0, ".", "0.5")         # text with NONMEM's empty
    data["DUR2"] = np.where(np.arange(n) % 2 == 0, np.nan, 3.0)        # empty cells take the default
    numeric = data.drop(columns="LAGT")
    grid = pd.DataFrame(np.ascontiguousarray(numeric.to_numpy(float)), columns=numeric.columns, copy=False)
    assert not grid["V"].to_numpy().flags.c_contiguous                 # one 2-D block: columns are strided
    for frame in (data, grid):
        new = build_stream(model, frame)
        assert_same_stream(new, reference_build_stream(model, frame))
        assert np.array_equal(new.inputs[new.input_rows, model.inputs.index("V")], np.arange(n) + 10.5)
    for value in (np.inf, -np.inf):
        broken = data.assign(RAT2=np.where(np.arange(n) == 5, value, 10.0))
        new_error, reference_error = (outcome(function, model, broken)[1]
                                      for function in (build_stream, reference_build_stream))
        assert new_error is not None and new_error == reference_error


def test_switch_parameters_are_checked_on_every_record():
    model = load_model("ketamine_mg_pain")
    data = pd.DataFrame({"ID": [1, 1, 1], "TIME": [0.0, 1.0, 2.0], "MG_SOURCE": [0, 1, 0.5]})
    with pytest.raises(DataError, match=r"data, row 4, column MG_SOURCE: must be one of 0, 1 \(a switch\); got 0.5"):
        build_stream(model, data)


def python_calls(function, *args):
    """Python and builtin function calls made while `function` runs (a count, not a time)."""
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        calls += event in ("call", "c_call")

    sys.setprofile(count)
    try:
        function(*args)
    finally:
        sys.setprofile(None)
    return calls


def test_build_stream_makes_no_python_call_per_record():
    """Ten times the records, about the same Python calls: the per-record work is all in NumPy or a kernel
    (the per-record loop made one dict lookup per record: 4,000 more calls here)."""
    model = load_model(NMTESTS)
    data = random_data(SEED_WITH_ADDL)
    small, large = (pd.concat([data.assign(ID=data["ID"] + 10 * copy) for copy in range(copies)], ignore_index=True)
                    for copies in (20, 200))
    build_stream(model, small)   # compiled and warm
    assert python_calls(build_stream, model, large) <= python_calls(build_stream, model, small) + 50


# --- shared parameter rows -----------------------------------------------------------------

def test_shared_parameter_rows_point_repeated_values_at_the_first_row_of_their_run():
    inputs = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 2.0], [1.0, 2.0], [0.0, 1.0], [-0.0, 1.0], [np.nan, 1.0],
                       [np.nan, 1.0]])
    prow = np.arange(8, dtype=np.int64)
    # rows 0 and 1 hold the same values; row 3 repeats row 0 but not its predecessor (row 2);
    # -0.0 is not 0.0 bit for bit; NaN of the same bits is the same value
    assert shared_parameter_rows(prow, inputs).tolist() == [0, 0, 2, 3, 4, 5, 6, 6]
    assert prow.tolist() == list(range(8))                     # the caller's array is left alone
    once_per_subject = np.repeat(np.array([0, 2, 4], np.int64), 5)
    assert shared_parameter_rows(once_per_subject, inputs) is once_per_subject
    assert shared_parameter_rows(np.zeros(0, np.int64), inputs).size == 0
    assert shared_parameter_rows(prow[:3], np.empty((3, 0))).tolist() == [0, 0, 0]


def test_records_share_a_row_while_their_values_and_key_repeat():
    model = load_model(NMTESTS)
    data = pd.DataFrame({"ID": [1, 1, 1, 2, 2, 2, 2], "TIME": [0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 3.0],
                         "CL": [2.0, 2.0, 3.0, 3.0, 0.0, -0.0, np.nan], "WT": [70.0] * 6 + [50.0]})
    column = model.inputs.index("CL")
    stream = build_stream(model, data)
    # a row per change of values (bit for bit: -0.0 is not 0.0), across subjects too; an empty cell
    # takes the default (1.1) and WT's change starts a row as well
    assert stream.input_rows.tolist() == [0, 0, 1, 1, 2, 3, 4]
    assert stream.inputs[:, column].tolist() == [2.0, 3.0, 0.0, -0.0, 1.1]
    assert np.signbit(stream.inputs[3, column])
    assert stream.prow.tolist() == stream.drow.tolist() == stream.input_rows.tolist()
    keyed = build_stream(model, data, split=np.array([1, 1, 1, 2, 2, 2, 2]))   # e.g. the subject
    assert keyed.input_rows.tolist() == [0, 0, 1, 2, 3, 4, 5]
    assert keyed.inputs[:, column].tolist() == [2.0, 3.0, 3.0, 0.0, -0.0, 1.1]


@pytest.mark.models(NMTESTS)
@pytest.mark.parametrize("method", ["rk45", "rosenbrock", "exact"])
def test_a_row_per_record_gives_the_bits_of_a_row_per_subject(method):
    """A data set gives every record its own parameter row. The engine used to end its block
    of observations at every new row (rk45 and rosenbrock then differed from the same
    subjects with one row each, as simulate() builds them, by about 5e-6 ng/mL)."""
    times = np.arange(0.0, 24.0, 0.5)
    first = np.r_[1, np.zeros(times.size - 1, int)]
    data = pd.DataFrame({"ID": np.repeat([1, 2], times.size), "TIME": np.tile(times, 2), "EVID": np.tile(first, 2),
                         "AMT": np.tile(100.0 * first, 2), "CMT": np.tile(2 - first, 2),
                         "RATE": np.tile(40.0 * first, 2), "WT": np.repeat([60.0, 80.0], times.size)})
    model = load_model(NMTESTS)
    stream = build_stream(model, data)
    assert stream.inputs.shape[0] == 2            # build_stream itself writes a row per subject here
    records = np.arange(stream.n_outputs)
    row_per_record = dataclasses.replace(stream, inputs=stream.inputs[stream.input_rows], prow=records, drow=records)
    first_rows = np.repeat(stream.subject_start[:-1], np.diff(stream.subject_start))
    row_per_subject = dataclasses.replace(row_per_record, prow=first_rows)
    per_record = run_stream(model, row_per_record, method=method)[1]
    assert np.array_equal(per_record, run_stream(model, row_per_subject, method=method)[1])
    assert np.array_equal(per_record, run_stream(model, stream, method=method)[1])
    assert np.all(per_record[1:times.size, 0] > 0)
