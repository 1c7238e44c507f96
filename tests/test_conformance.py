"""NONMEM conformance: the 29 dosing scenarios and the time-varying covariate case.

The reference values are NONMEM 7.5's own simulated answers (mrgsolve/nmtests,
kept in tests/data/nonmem with their license; see README.md and PROVENANCE.md there). Each record must equal NONMEM after
rounding to 5 significant digits (±1 in the last digit), zeros exactly. Every
scenario runs through each integration method: the exact matrix exponential,
the adaptive Dormand-Prince 5(4) and the Rosenbrock 4(3) (RODAS4).
"""

import numpy as np
import pandas as pd
import pytest

import pkpd
from conftest import TEST_MODELS

METHODS = ["exact", "rk45", "rosenbrock"]
NMTESTS = TEST_MODELS / "nmtests.toml"
uses_nmtests = pytest.mark.models(NMTESTS)

# scenario ID -> test name: what the scenario pins down
SCENARIOS = {
    1: "depot_bolus_addl",
    2: "iv_bolus_addl_lag_and_bioavailability_above_one",
    3: "iv_infusion_addl",
    4: "infusion_bioavailability_keeps_rate_shortens_duration",
    5: "modelled_duration_rate_is_f_amt_over_d",
    6: "depot_infusion_addl",
    7: "infusion_addl_with_lag",
    8: "infusion_addl_lag_and_bioavailability",
    9: "ss1_infusion_lag_and_bioavailability",
    10: "ss1_infusion_longer_than_interval_with_bioavailability",
    11: "ss1_infusion_longer_than_interval",
    12: "ss1_infusion_duration_twice_interval",
    13: "ss1_infusion_duration_equals_interval_with_bioavailability",
    14: "ss1_infusion_duration_equals_interval",
    15: "ss1_bolus_lag_and_bioavailability",
    16: "lagged_bolus_lands_on_observation_times",
    17: "lagged_bolus_then_depot_infusion_lag_from_dose_record",
    18: "modelled_duration_with_lag_and_bioavailability",
    19: "ss1_modelled_duration_with_bioavailability",
    20: "evid4_reset_and_dose_with_addl",
    21: "evid4_ss1_depot_bolus",
    22: "evid4_ss1_depot_bolus_addl",
    23: "evid4_ss1_iv_bolus_lag",
    24: "evid4_ss1_iv_bolus_lag_addl",
    25: "evid4_ss1_lagged_boluses_multiple_records",
    26: "evid3_reset_with_addl",
    27: "evid3_reset_lag_inert_on_depot",
    28: "ss1_then_ss2_adds_steady_state",
    29: "constant_infusion_steady_state_stops_at_record",
}


def matches_nonmem(simulated, reference):
    """Equal after rounding to 5 significant digits, ±1 in the last digit; zeros exact."""
    simulated = np.asarray(simulated, float)
    reference = np.asarray(reference, float)
    ok = np.empty(reference.size, bool)
    zero = reference == 0
    ok[zero] = simulated[zero] == 0
    nonzero = ~zero
    exponent = np.floor(np.log10(np.abs(reference[nonzero])))
    unit = 10.0 ** (exponent - 4)  # one unit in the 5th significant digit
    ok[nonzero] = np.abs(np.round(simulated[nonzero] / unit) - np.round(reference[nonzero] / unit)) <= 1
    return ok


@pytest.fixture(scope="module")
def model():
    return pkpd.load_model(NMTESTS)


@pytest.fixture(scope="module")
def dosing(conformance_dir):
    data = pd.read_csv(conformance_dir / "dosing_1001_input.csv")
    reference = pd.read_csv(conformance_dir / "dosing_1001_nonmem.csv")
    assert len(data) == len(reference) == 3837
    return data, reference


@pytest.fixture(scope="module", params=METHODS)
def dosing_result(request, model, dosing):
    data, _ = dosing
    return request.param, pkpd.simulate_data(model, data, method=request.param, rtol=1e-10, atol=1e-12)


def test_every_scenario_is_named(dosing):
    data, _ = dosing
    assert sorted(data["ID"].unique()) == sorted(SCENARIOS)


@uses_nmtests
@pytest.mark.parametrize("scenario", list(SCENARIOS), ids=[f"{i:02d}_{name}" for i, name in SCENARIOS.items()])
def test_nonmem_dosing(scenario, dosing, dosing_result):
    data, reference = dosing
    method, result = dosing_result
    rows = (data["ID"] == scenario).to_numpy()
    simulated = result["CP"].to_numpy()[rows]
    expected = reference["CP"].to_numpy()[rows]
    ok = matches_nonmem(simulated, expected)
    if not ok.all():
        bad = np.flatnonzero(~ok)[:5]
        times = data["TIME"].to_numpy()[rows][bad]
        pytest.fail(f"{method}: scenario {scenario}: {np.count_nonzero(~ok)} records differ from NONMEM, e.g. "
                    + "; ".join(f"t={t:g}: {s:.6g} vs {e:.5g}" for t, s, e in zip(times, simulated[bad], expected[bad])))


@uses_nmtests
def test_output_rows_follow_input_order(dosing, dosing_result):
    data, _ = dosing
    _, result = dosing_result
    assert len(result) == len(data)
    np.testing.assert_array_equal(result["ID"].to_numpy(), data["ID"].to_numpy())
    np.testing.assert_array_equal(result["TIME"].to_numpy(), data["TIME"].to_numpy())


@uses_nmtests
@pytest.mark.parametrize("method", METHODS)
def test_nonmem_time_varying_covariate_next_record_rule(method, model, conformance_dir):
    data = pd.read_csv(conformance_dir / "timevarying_2001_input.csv")
    reference = pd.read_csv(conformance_dir / "timevarying_2001_nonmem.csv")
    result = pkpd.simulate_data(model, data, method=method, rtol=1e-10, atol=1e-12)
    assert matches_nonmem(result["CP"], reference["CP"]).all()
    # the clearance NONMEM tabulated on each record is the one computed from that record's WT
    assert matches_nonmem(result["CLOUT"], reference["CL"]).all()


def test_matches_nonmem_rejects_a_wrong_digit():
    assert matches_nonmem([1002.7], [1002.7]).all()
    assert matches_nonmem([1002.74], [1002.7]).all()
    assert not matches_nonmem([1002.9], [1002.7]).any()
    assert not matches_nonmem([1e-12], [0.0]).any()
