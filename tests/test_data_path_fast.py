"""The fast passes of the data path and of simulate() against the general ones they stand in for
(issue 21, benchmarks D1, W1 and W2).

``_plain_records`` checks a data set of plain doses and observations in a vectorised
pass, reading NumPy int64 and float64 columns as they are, and must write what the
rule-by-rule ``_check_records`` writes, or decline; ``_run_start`` finds a chunk's cut
by looking back from it and must find the cut that a search of every change of ID
finds; a data set's NumPy columns sliced per chunk give the numbers of the same data
set as text; a stream marked ``rows_shared_for`` (the engine then skips
``shared_parameter_rows``) must be one that pass leaves as it is.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from conftest import TEST_MODELS
from pkpd._simulate_data import _run_start
from pkpd.events import records
from pkpd.events.records import _RULES, _check_records, _plain_records, _states_by_number, build_stream
from pkpd.model import load_model

NMTESTS = TEST_MODELS / "nmtests.toml"   # GUT = 1, CENT = 2


def plain_columns(seed, n=400):
    """The standard columns (float64) of a data set of plain records: observations and doses (with CMT 0,
    empty EVID cells inferred from AMT), several subjects, times not decreasing within each."""
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.integers(1, 12, n)).astype(float)
    time = np.zeros(n)
    for subject in np.unique(ids):
        rows = ids == subject
        time[rows] = np.sort(rng.choice(np.arange(-2.0, 30.0, 0.5), rows.sum()))
    dose = rng.random(n) < 0.3
    evid = np.where(dose, 1.0, 0.0)
    evid[rng.random(n) < 0.2] = np.nan                 # inferred: 1 where AMT > 0
    amt = np.where(dose, rng.choice([2.5, 10.0, 100.0], n), rng.choice([0.0, 0.0, 3.0], n))
    amt[np.isnan(evid) & ~dose] = 0.0                  # an empty EVID with AMT 0 is an observation
    cmt = rng.choice([0.0, 1.0, 2.0], n)
    cmt[~dose & (cmt == 0)] = 2.0
    rate = np.where(dose, rng.choice([0.0, 4.0], n), 0.0)
    zeros = np.zeros(n)
    return dict(ids=ids, time=time, evid=evid, amt=amt, cmt=cmt, rate=rate, ii=zeros.copy(), addl=zeros.copy(),
                ss=zeros.copy())


NAMES = ("ids", "time", "evid", "amt", "cmt", "rate", "ii", "addl", "ss")


def both_passes(model, columns, integers=()):
    """(plain, its outputs), (the rule-by-rule pass's outputs, first failures); the fast pass reads the
    columns named in `integers` as int64 columns (their bits passed as float64), as a data set's own."""
    n = columns["ids"].size
    first_number = float(model.numbers[model.compartments[0]])
    modelled = np.array([[key in model.dosing.get(name, {}) for key in ("R", "D")] for name in model.compartments])
    arrays = [np.ascontiguousarray(columns[name]) for name in NAMES]
    as_read = [array.astype(np.int64).view(np.float64) if name in integers else array
               for name, array in zip(NAMES, arrays)]
    integer = sum(1 << k for k, name in enumerate(NAMES) if name in integers)
    fast = [np.full(n, -7, np.int64) for _ in range(4)] + [np.full(n + 1, -7, np.int64)]
    plain, fast_subjects = _plain_records(*as_read, integer, first_number, _states_by_number(model), fast[0], fast[1],
                                          fast[2], fast[4], fast[3])
    slow = [np.full(n, -7, np.int64) for _ in range(4)] + [np.full(n + 1, -7, np.int64)]
    failures = np.full(len(_RULES), -1, np.int64)
    addl_total, slow_subjects = _check_records(*arrays, first_number, _states_by_number(model), modelled, slow[0],
                                               slow[1], slow[2], slow[4], slow[3], failures)
    return (plain, fast_subjects, fast), (addl_total, slow_subjects, slow, failures)


def test_plain_records_write_what_the_rule_by_rule_pass_writes():
    model = load_model(NMTESTS)
    for seed in range(40):
        columns = plain_columns(seed)
        integers = ("ids", "cmt", "ii", "addl", "ss") + (("evid",) if seed % 2 and not np.isnan(columns["evid"]).any()
                                                          else ())
        (plain, subjects, fast), (addl_total, expected_subjects, slow, failures) = both_passes(
            model, columns, integers if seed % 3 else ())
        assert plain and (failures < 0).all() and addl_total == 0.0
        assert subjects == expected_subjects
        for written, expected in zip(fast[:4], slow[:4]):           # EVID, kind, state index, SS
            assert written.tobytes() == expected.tobytes()
        assert fast[4][:subjects].tobytes() == slow[4][:subjects].tobytes()   # each subject's first record


@pytest.mark.parametrize("column, value", [
    ("evid", 2.0), ("evid", 3.0), ("evid", 4.0), ("evid", 5.0), ("amt", -1.0), ("ss", 1.0), ("ii", 12.0),
    ("addl", 2.0), ("rate", -1.0), ("rate", -2.0), ("cmt", 1.5), ("cmt", -1.0), ("cmt", 3.0), ("cmt", 1e15),
    ("time", -50.0), ("amt", np.inf), ("rate", np.inf), ("time", np.inf), ("ids", np.nan), ("ids", np.inf)])
def test_plain_records_decline_any_other_record(column, value):
    """A single record that is not a plain dose or observation (or breaks a rule) sends the data set to
    the rule-by-rule pass."""
    model = load_model(NMTESTS)
    columns = plain_columns(1)
    record = 200 if column != "time" else int(np.flatnonzero(np.diff(columns["ids"]) == 0)[-1]) + 1
    columns[column][record] = value
    if column in ("evid", "amt"):
        columns["amt"][record] = value if column == "amt" else 10.0
    (plain, _, _), _ = both_passes(model, columns)
    assert not plain


def reference_run_start(ids, end, lower):
    same = (ids[1:] == ids[:-1]) | (np.isnan(ids[1:]) & np.isnan(ids[:-1]))
    starts = np.flatnonzero(np.concatenate([[True], ~same]))
    return max(lower, int(starts[np.searchsorted(starts, end, side="right") - 1]))


def test_a_chunk_is_cut_where_a_search_of_every_change_of_id_cuts_it():
    rng = np.random.default_rng(5)
    for _ in range(60):
        lengths = rng.choice([1, 3, 194, 1000, 5000], rng.integers(1, 12))   # subjects short and longer than windows
        ids = np.repeat(rng.permutation(lengths.size).astype(float), lengths)
        ids[rng.random(ids.size) < 0.01] = np.nan
        for end in rng.integers(1, ids.size, 5) if ids.size > 1 else []:
            lower = int(rng.integers(0, end))
            assert _run_start(ids, int(end), lower) == reference_run_start(ids, int(end), lower)


def test_a_data_set_of_plain_records_in_numpy_columns_gives_the_reference_stream(monkeypatch):
    """Integer and float columns read as they are (``_plain_columns``, no column converted and checked cell
    by cell) give the stream of the per-record reference, as the same data set as text (converted and
    checked) does."""
    from test_events_vectorised import assert_same_stream, reference_build_stream

    model = load_model(NMTESTS)
    for seed in range(12):
        columns = plain_columns(seed, n=60)
        data = pd.DataFrame({"ID": columns["ids"].astype(np.int64) if seed % 2 else columns["ids"] + 0.5,
                             "TIME": columns["time"], "AMT": columns["amt"], "CMT": columns["cmt"].astype(np.int64),
                             "RATE": columns["rate"], "II": np.zeros(60, np.int64), "SS": -0.0,
                             "CL": np.repeat([1.1, 2.0], 30), "WT": 70})
        if seed % 3:
            data["EVID"] = columns["evid"] if seed % 3 == 1 else np.where(np.isnan(columns["evid"]),
                                                                          columns["amt"] > 0, columns["evid"])
        if seed % 4 == 0:
            data["EVID"] = (data["AMT"] > 0).astype(np.int64)
        reference = reference_build_stream(model, data)
        with monkeypatch.context() as patch:
            patch.setattr(records, "_checked_columns", None)   # the general path is not taken
            assert_same_stream(build_stream(model, data), reference)
        assert_same_stream(build_stream(model, data.astype(str)), reference)


def test_integer_ids_are_cut_as_the_engine_compares_them():
    """A data set's integer IDs are read as they are and compared as float64, as the engine compares them."""
    ids = np.array([1, 2 ** 53, 2 ** 53 + 1, 2 ** 53 + 1, 7], np.int64)   # 2**53 + 1 is 2**53 as float64
    assert _run_start(ids, 2, 0) == 1 and _run_start(ids, 4, 0) == 4


@pytest.mark.models(TEST_MODELS / "pk1cmt_iiv.toml", "magnesium_du2019", "pk1cmt")
@pytest.mark.parametrize("model, variability, occasions, shared", [
    (TEST_MODELS / "pk1cmt_iiv.toml", True, None, True),          # every subject its own parameter values
    (TEST_MODELS / "pk1cmt_iiv.toml", False, None, True),         # typical values, but each subject's weight
    ("pk1cmt", True, None, False),                                # no IIV, no covariate: the subjects' rows repeat
    (TEST_MODELS / "pk1cmt_iiv.toml", True, [0.0, 6.0], False),   # occasions without IOV repeat a subject's row
    ("magnesium_du2019", True, [0.0, 6.0, 30.0], True),           # IOV: each occasion its own (none at 30 h)
])
def test_simulate_marks_its_streams_shared_only_when_the_engine_would_share_nothing(model, variability,
                                                                                      occasions, shared):
    """A stream marked ``rows_shared_for`` (the engine then skips ``shared_parameter_rows``, a pass over every
    record) is one that ``shared_parameter_rows`` leaves as it is; the numbers are those of the pass."""
    import pkpd
    from pkpd import _simulate
    from pkpd._simulate import SimulationPlan
    from pkpd.events.records import shared_parameter_rows

    regimen, population, times = [pkpd.Dose(10.0, "CENT")], pkpd.Population(150, seed=8), np.arange(0.0, 24.0, 2.0)
    plan = SimulationPlan(model, regimen, population, times, method="exact", rtol=1e-8, atol=1e-8,
                          variability=variability, chunk_subjects=64, progress=False, max_steps=10_000,
                          occasions=occasions)
    assert plan.rows_shared is shared
    for start, stop in plan.ranges():
        stream = plan.chunk_inputs(start, stop)[1]
        assert (stream.parameter_rows() is stream.prow) is shared   # no pass over the records
        assert np.array_equal(shared_parameter_rows(stream.prow, stream.inputs), stream.prow) is shared
    options = dict(variability=variability, occasions=occasions, chunk_subjects=64)
    marked = pkpd.simulate(model, regimen, population, times, **options)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_simulate, "_rows_shared", lambda *args: False)
        looked = pkpd.simulate(model, regimen, population, times, **options)
    assert np.array_equal(marked.values, looked.values) and np.array_equal(marked.states, looked.states)


def test_build_stream_marks_its_stream_shared_without_a_split_key():
    """Without a split key (random effects), a data set's rows change only where its values do: the stream
    is marked (``rows_shared_for``), and ``shared_parameter_rows`` would leave it as it is (ADDL doses
    included)."""
    from test_events_vectorised import random_data

    from pkpd._errors import DataError
    from pkpd.events.records import shared_parameter_rows

    model = load_model(NMTESTS)
    marked = 0
    for seed in range(200):
        data = random_data(seed)
        try:
            stream = build_stream(model, data)
        except DataError:
            continue
        assert stream.rows_shared_for is not None and stream.parameter_rows() is stream.prow
        assert np.array_equal(shared_parameter_rows(stream.prow, stream.inputs), stream.prow)
        split = np.arange(len(data)) % 2   # records of alternate keys never share a row
        assert build_stream(model, data, split=split).rows_shared_for is None
        # a copy with other rows or inputs is looked at again
        records = np.arange(stream.n_outputs)
        per_record = dataclasses.replace(stream, inputs=stream.inputs[stream.input_rows], prow=records)
        assert np.array_equal(per_record.parameter_rows(), shared_parameter_rows(records, per_record.inputs))
        marked += 1
    assert marked > 100


@pytest.mark.models(TEST_MODELS / "pk1cmt_iiv.toml")
@pytest.mark.parametrize("variability", ["none", "all"])
def test_a_data_set_in_numpy_columns_gives_the_numbers_of_the_same_data_set_as_text_in_any_chunks(variability):
    """simulate_data takes a data set's NumPy columns from pandas once and slices them per chunk of IDs:
    whatever the chunks, the added columns are those of the same data set as text (every column converted
    and checked chunk by chunk)."""
    import pkpd

    rng = np.random.default_rng(4)
    per, n = 9, 12
    data = pd.DataFrame({"ID": np.repeat(np.arange(1, n + 1), per),
                         "TIME": np.tile(np.arange(per) * 1.5, n),
                         "AMT": np.tile([100.0] + [0.0] * (per - 1), n),
                         "CMT": np.tile([1] + [2] * (per - 1), n),
                         "EVID": np.tile([1] + [0] * (per - 1), n),
                         "MDV": np.tile([1, 0, 0, 1, 0, 0, 0, 0, 0], n),
                         "WT": np.repeat(rng.uniform(50.0, 90.0, n), per),
                         "CL": np.where(np.tile(np.arange(per), n) < 5, 4.0, 5.5),   # CL changes within subjects
                         "DV": rng.random(n * per)})
    added = ["REP", "IPRED", "PRED", "DV", "CP"]
    text = pkpd.simulate_data(TEST_MODELS / "pk1cmt_iiv.toml", data.astype(str), variability=variability, seed=3)
    for chunk in (len(data), 20, 1):
        out = pkpd.simulate_data(TEST_MODELS / "pk1cmt_iiv.toml", data, variability=variability, seed=3,
                                 chunk_records=chunk)
        np.testing.assert_array_equal(out[added].to_numpy(float), text[added].to_numpy(float))
    assert out["DV"].isna().sum() == 2 * n   # MDV 1 (the dose and one observation per subject): no DV
