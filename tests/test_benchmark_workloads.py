"""The benchmark workloads compute what they time, and the guard reads its floors right.

No timing here: the performance guard is ``python -m benchmarks --quick``, which
times W1 and W2 (CPU time) against a fixed Numba reference kernel of the same model
in the same process and checks the speeds against ``benchmarks/floors.toml``. These
tests check, on a few subjects, the functional half of that guard: the linear
workloads take the exact path and match scipy.linalg.expm within the floors'
accuracy bound, the reference kernel (the numerator of every speed), the RK45 path
and the solve_ivp baseline agree with expm too, a speed below its floor or an error
above its ceiling is reported as a failure, and a run's record compares with an
earlier one.
"""

import tomllib

import numpy as np
import pytest

import pkpd
from benchmarks import reference
from benchmarks import workloads as wl
from benchmarks.runner import FLOORS, check_floors, compare, figures_of, loose_floors, outputs_of

pytestmark = pytest.mark.models(wl.W1_MODEL)


@pytest.mark.parametrize("workload", [wl.W1, wl.W2], ids=lambda w: w.name)
def test_linear_workload_takes_the_exact_path_and_matches_expm(workload):
    subjects = wl.population(3)
    weights = wl.weights_of(subjects)
    auto = wl.simulate(workload, subjects, "auto")
    assert auto.method == "exact"
    reference = wl.w1_reference(workload, auto, weights, 3)
    ceiling = tomllib.loads(FLOORS.read_text())["accuracy"]["exact_max_relative_difference"]
    assert wl.relative_difference(outputs_of(auto, workload.outputs), reference) <= ceiling
    # at rtol = atol = 1e-8 the RK45 path and the solve_ivp baseline are within 1e-4 of expm
    # (relative to 1e-3 of each subject's peak; measured 8e-6 and 4e-6)
    rk45 = wl.simulate(workload, subjects, "rk45")
    assert wl.relative_difference(outputs_of(rk45, workload.outputs), reference, peak_fraction=1e-3) < 1e-4
    baseline = wl.w1_baseline(workload, auto, weights, 1, **wl.TOLERANCES)
    assert wl.relative_difference(baseline, reference[:1], peak_fraction=1e-3) < 1e-4


@pytest.mark.parametrize("workload", [wl.W1, wl.W2], ids=lambda w: w.name)
def test_reference_kernel_matches_expm(workload):
    """The guard's yardstick computes the workload: within the floors' ceiling of scipy.linalg.expm."""
    subjects = wl.population(4)
    weights = wl.weights_of(subjects)
    result = wl.simulate(workload, subjects, "exact")
    arguments = reference.inputs(workload, result, weights)
    reference.reference_kernel(*arguments)
    ceiling = tomllib.loads(FLOORS.read_text())["accuracy"]["reference_max_relative_difference"]
    assert wl.relative_difference(arguments[-1], wl.w1_reference(workload, result, weights, 4)) <= ceiling


def test_floors_flag_a_slow_path_and_an_inaccurate_one():
    floors = {"W1": {"exact": 0.12, "rk45_engine": 0.04},
              "accuracy": {"exact_max_relative_difference": 1e-9, "reference_max_relative_difference": 1e-9}}
    result = {"workload": "W1", "ratio_to_reference": {"exact": 0.119, "rk45 engine": 0.07},
              "ratio_to_solve_ivp": {"exact": 1e6}, "max_relative_difference_from_expm": {"exact": 2e-9,
                                                                                          "reference": 1e-12}}
    rows = check_floors([result], floors)
    assert {label: ok for label, _, _, ok, _ in rows} == {
        "W1 exact speed relative to the reference kernel (CPU)": False,
        "W1 rk45 engine speed relative to the reference kernel (CPU)": True,
        "W1 exact max relative difference from expm": False,
        "W1 reference max relative difference from expm": True}
    # 0.07 is over 1.5x its floor of 0.04: after a speed-up the floor must be raised
    assert loose_floors(rows) == ["W1 rk45 engine speed relative to the reference kernel (CPU)"]


def test_a_record_compares_with_an_earlier_one():
    earlier = {"workload": "W1", "subjects": 10, "threads": 1,
               "cpu_microseconds_per_subject": {"exact": 10.0, "rk45": 50.0}, "ratio_to_reference": {"exact": 0.2}}
    later = {**earlier, "cpu_microseconds_per_subject": {"exact": 13.0, "rk45": 49.0},
             "ratio_to_reference": {"exact": 0.15}}
    lines = compare({"figures": figures_of([later])}, {"figures": figures_of([earlier]), "commit": "abc"})
    assert lines[1:] == [
        "  W1 subjects=10 threads=1: cpu_microseconds_per_subject exact: 10 -> 13 (+30.0 %)  <-",
        "  W1 subjects=10 threads=1: cpu_microseconds_per_subject rk45: 50 -> 49 (-2.0 %)",
        "  W1 subjects=10 threads=1: ratio_to_reference exact: 0.2 -> 0.15 (-25.0 %)  <-"]


def test_the_data_path_workload_gives_simulate_its_own_numbers():
    """D1: W1 as a NONMEM data set (individual parameters on every record) through simulate_data."""
    subjects = wl.population(3)
    regimen = wl.simulate(wl.W1, subjects, "exact")
    data = wl.w1_data_set(regimen, wl.weights_of(subjects))
    assert len(data) == 3 * (1 + wl.W1.times.size)
    table = pkpd.simulate_data(wl.load(wl.W1.model), data, variability="none", method="exact", **wl.TOLERANCES)
    observed = data["EVID"].to_numpy() == 0
    for name in wl.W1.outputs:
        assert np.array_equal(table[name].to_numpy()[observed].reshape(3, -1), regimen.output(name))


def test_floors_flag_a_slow_data_path_and_a_wrong_one():
    floors = {"D1": {"max_ratio_to_simulate": 2.0, "max_relative_difference_from_simulate": 1e-12}}
    small = {"workload": "D1", "subjects": 1000, "ratio_to_simulate": 1.4, "max_relative_difference_from_simulate": 0.0}
    large = dict(small, subjects=10_000, ratio_to_simulate=2.5)   # each size is held to the bounds
    rows = {label: ok for label, _, _, ok, _ in check_floors([small, large], floors)}
    assert rows == {"D1 1,000 subjects: simulate_data / simulate CPU per subject": True,
                    "D1 1,000 subjects: simulate_data max relative difference from simulate": True,
                    "D1 10,000 subjects: simulate_data / simulate CPU per subject": False,
                    "D1 10,000 subjects: simulate_data max relative difference from simulate": True}
    small.update(max_relative_difference_from_simulate=1e-6)
    rows = {label: ok for label, _, _, ok, _ in check_floors([small], floors)}
    assert rows == {"D1 1,000 subjects: simulate_data / simulate CPU per subject": True,
                    "D1 1,000 subjects: simulate_data max relative difference from simulate": False}


def test_search_workload_measures_the_total_dose_per_kg_of_a_model_that_uses_wt_only_for_doses():
    """S1 on 20 subjects and 4 candidates: W1's model has no WT input (the population's WT scales the doses
    per kg), so each candidate's mean total dose is its loading dose plus 4 h of its rate, per kg."""
    found = wl.search(wl.population(20), budget=4)
    table = found.table
    assert len(table) == 4 and set(table["stage"]) == {"coarse"}
    expected = table["loading (mg/kg)"] + 4.0 * table["rate (mg/kg/h)"]
    np.testing.assert_allclose(table["total_dose (mg/kg)"], expected, rtol=1e-12)


def test_floors_flag_a_slow_summary_and_leave_the_full_w4_run_alone():
    floors = {"W4": {"max_ratio_to_simulate": 2.9}}
    quick = {"workload": "W4", "ratio_to_simulate": 3.2}
    assert [(label, ok) for label, _, _, ok, _ in check_floors([quick], floors)] == [
        ("W4 simulate_summary / simulate CPU per subject", False)]
    quick["ratio_to_simulate"] = 2.6
    assert [ok for _, _, _, ok, _ in check_floors([quick], floors)] == [True]
    full = {"workload": "W4", "seconds": 12.0}   # the 1,000,000-subject run has no ratio to check
    assert check_floors([full], floors) == []
