"""Pharmacokinetic properties that any correct engine has (exact and ODE paths)."""

import numpy as np
import pandas as pd
import pytest

import pkpd
from conftest import TEST_MODELS

pytestmark = pytest.mark.models("pk1cmt", "pk2cmt", "pk3cmt", TEST_MODELS / "parent_metabolite.toml")

METHODS = ["exact", "rk45"]
TOL = dict(rtol=1e-10, atol=1e-12)


def frame(rows, times, obs_cmt=2):
    base = dict(ID=1, EVID=1, RATE=0.0, II=0.0, ADDL=0, SS=0)
    records = [{**base, **r} for r in rows]
    records += [dict(ID=1, TIME=t, EVID=0, AMT=0.0, CMT=obs_cmt, RATE=0.0, II=0.0, ADDL=0, SS=0) for t in times]
    data = pd.DataFrame(records)
    return data.iloc[np.lexsort((data["EVID"].to_numpy() != 1, data["TIME"].to_numpy()))].reset_index(drop=True)


def observed(result, data):
    return result[data["EVID"].to_numpy() == 0].reset_index(drop=True)


TIMES = np.arange(0.0, 120.0, 0.5)


@pytest.mark.parametrize("method", METHODS)
def test_addl_equals_explicit_doses(method):
    addl = frame([dict(TIME=0.0, AMT=100.0, CMT=2, RATE=40.0, II=12.0, ADDL=5),
                  dict(TIME=3.0, AMT=50.0, CMT=1, II=24.0, ADDL=2)], TIMES)
    explicit_rows = [dict(TIME=12.0 * k, AMT=100.0, CMT=2, RATE=40.0) for k in range(6)]
    explicit_rows += [dict(TIME=3.0 + 24.0 * k, AMT=50.0, CMT=1) for k in range(3)]
    explicit = frame(explicit_rows, TIMES)
    a = observed(pkpd.simulate_data("pk2cmt", addl, method=method, **TOL), addl)
    b = observed(pkpd.simulate_data("pk2cmt", explicit, method=method, **TOL), explicit)
    np.testing.assert_allclose(a["CP"], b["CP"], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_back_to_back_infusions_equal_one_long_infusion(method):
    two = frame([dict(TIME=0.0, AMT=60.0, CMT=2, RATE=20.0), dict(TIME=3.0, AMT=60.0, CMT=2, RATE=20.0)], TIMES)
    one = frame([dict(TIME=0.0, AMT=120.0, CMT=2, RATE=20.0)], TIMES)
    a = observed(pkpd.simulate_data("pk3cmt", two, method=method, **TOL), two)
    b = observed(pkpd.simulate_data("pk3cmt", one, method=method, **TOL), one)
    np.testing.assert_allclose(a["CP"], b["CP"], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_infusion_tmax_is_its_end(method):
    times = np.round(np.arange(0.0, 12.0, 0.01), 10)
    data = frame([dict(TIME=0.0, AMT=100.0, CMT=2, RATE=100.0 / 4.0)], times)
    cp = observed(pkpd.simulate_data("pk2cmt", data, method=method, **TOL), data)["CP"].to_numpy()
    assert times[np.argmax(cp)] == pytest.approx(4.0)
    assert np.all(np.diff(cp[times <= 4.0]) > 0) and np.all(np.diff(cp[times >= 4.0]) < 0)


@pytest.mark.parametrize("method", METHODS)
def test_dose_linearity(method):
    rows = [dict(TIME=0.0, AMT=100.0, CMT=1, II=24.0, ADDL=3), dict(TIME=6.0, AMT=30.0, CMT=2, RATE=10.0)]
    single = frame(rows, TIMES)
    double = frame([{**r, "AMT": 2 * r["AMT"], **({"RATE": 2 * r["RATE"]} if "RATE" in r else {})} for r in rows], TIMES)
    a = observed(pkpd.simulate_data("pk2cmt", single, method=method, **TOL), single)["CP"].to_numpy()
    b = observed(pkpd.simulate_data("pk2cmt", double, method=method, **TOL), double)["CP"].to_numpy()
    np.testing.assert_allclose(b, 2 * a, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", METHODS + ["rosenbrock"])
def test_mass_balance_parent_to_metabolite(method):
    # amount in = amount in compartments + amount eliminated, at every time, metabolite included
    model = pkpd.load_model(TEST_MODELS / "parent_metabolite.toml")
    data = frame([dict(TIME=0.0, AMT=35.0, CMT=2, RATE=17.5), dict(TIME=24.0, AMT=50.0, CMT=1, II=24.0, ADDL=2)],
                 TIMES)
    result = observed(pkpd.simulate_data(model, data, method=method, **TOL, amounts=True), data)
    total = result[model.compartments].sum(axis=1).to_numpy()
    times = result["TIME"].to_numpy()
    given = np.minimum(times, 2.0) * 17.5 + 50.0 * np.searchsorted([24.0, 48.0, 72.0], times, side="right")
    np.testing.assert_allclose(total, given, rtol=1e-8, atol=1e-9)
    # the metabolite formed is FM of the parent eliminated: at late times almost everything is eliminated
    p = {k: v.value for k, v in model.parameters.items()}
    formed = result["METAB"] + result["ELIM_M"]
    eliminated_parent = formed + result["ELIM_P"]
    np.testing.assert_allclose(formed.iloc[-1] / eliminated_parent.iloc[-1], p["FM"], rtol=1e-9)
    # an output may use the outputs declared above it: RATIO = CM / CP
    dosed = result["PARENT"] > 0
    assert (result.loc[~dosed, "RATIO"] == 0).all()
    np.testing.assert_allclose(result.loc[dosed, "RATIO"],
                               (result["METAB"] / p["VM"] / (result["PARENT"] / p["V1"]))[dosed], rtol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_bolus_record_reports_post_dose_state(method):
    data = frame([dict(TIME=5.0, AMT=100.0, CMT=2)], [0.0, 5.0])
    result = pkpd.simulate_data("pk1cmt", data, method=method, amounts=True)
    dose_row = result[data["EVID"].to_numpy() == 1]
    assert float(dose_row["CENT"].iloc[0]) == 100.0


@pytest.mark.parametrize("method", METHODS)
def test_reset_cancels_running_infusion_and_pending_addl(method):
    data = frame([dict(TIME=0.0, AMT=100.0, CMT=2, RATE=10.0, II=24.0, ADDL=3),
                  dict(TIME=5.0, EVID=3, AMT=0.0, CMT=2)], np.arange(0.0, 100.0, 1.0))
    result = observed(pkpd.simulate_data("pk1cmt", data, method=method, amounts=True), data)
    after = result[result["TIME"] >= 5.0]
    assert (after["CENT"] == 0).all() and (after["DEPOT"] == 0).all()


@pytest.mark.parametrize("method", METHODS)
def test_parameter_columns_override_per_record(method):
    times = np.arange(0.0, 48.0, 1.0)
    data = frame([dict(TIME=0.0, AMT=100.0, CMT=2)], times)
    base = observed(pkpd.simulate_data("pk1cmt", data, method=method, amounts=True), data)
    data2 = data.assign(CL=2.0)
    doubled = observed(pkpd.simulate_data("pk1cmt", data2, method=method, amounts=True), data2)
    np.testing.assert_allclose(doubled["CENT"], 100.0 * np.exp(-2.0 / 20.0 * times), rtol=1e-7)
    assert not np.allclose(base["CENT"], doubled["CENT"])


def test_no_recompilation_for_a_second_data_set_or_another_model():
    from pkpd.engine import run_population as kernel

    model = pkpd.load_model("pk2cmt")
    first = frame([dict(TIME=0.0, AMT=100.0, CMT=1)], [1.0, 2.0])
    pkpd.simulate_data(model, first)
    signatures = len(kernel.signatures)
    second = pd.concat([first, first.assign(ID=2, AMT=first["AMT"] * 3)], ignore_index=True)
    pkpd.simulate_data(model, second, method="rk45")
    pkpd.simulate_data(model, second, method="rosenbrock")
    pkpd.simulate_data("pk1cmt", frame([dict(TIME=0.0, AMT=100.0, CMT=1)], [1.0, 2.0]))  # one engine for every model
    assert len(kernel.signatures) == signatures == 1


def test_subjects_are_independent_of_threads_and_chunks():
    from pkpd._engine import run_stream
    from pkpd.events.records import build_stream
    import numba

    model = pkpd.load_model("pk2cmt")
    rows = []
    for subject in range(1, 41):
        rows.append(dict(ID=subject, TIME=0.0, EVID=1, AMT=10.0 * subject, CMT=1, RATE=0, CL=0.5 + 0.05 * subject))
        rows += [dict(ID=subject, TIME=t, EVID=0, AMT=0.0, CMT=2, RATE=0, CL=0.5 + 0.05 * subject)
                 for t in np.arange(0.5, 48, 0.5)]
    stream = build_stream(model, pd.DataFrame(rows))
    reference = run_stream(model, stream, method="rk45", chunk_size=40)
    previous = numba.get_num_threads()
    try:
        for threads, chunk in [(1, 1), (numba.config.NUMBA_NUM_THREADS, 3), (numba.config.NUMBA_NUM_THREADS, 7)]:
            numba.set_num_threads(threads)
            states, values, status = run_stream(model, stream, method="rk45", chunk_size=chunk)
            assert np.array_equal(states, reference[0]) and np.array_equal(values, reference[1])
    finally:
        numba.set_num_threads(previous)
