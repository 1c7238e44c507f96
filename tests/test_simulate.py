"""simulate(): populations through the engine, reproducibly, with units and exposure metrics."""

import numba
import numpy as np
import pytest
from scipy import stats

import pkpd
from conftest import TEST_MODELS, PicklingExecutor
from pkpd._simulate import individual_inputs

pytestmark = pytest.mark.models("ketamine_mg_pain", TEST_MODELS / "pk1cmt_iiv.toml", TEST_MODELS / "mm1cmt.toml",
                                TEST_MODELS / "stiff.toml")

MODEL = TEST_MODELS / "pk1cmt_iiv.toml"
TIMES = np.arange(0.0, 48.5, 0.5)
REGIMEN = [pkpd.Dose(1.0, "CENT", duration=2.0, per_weight=True),
           pkpd.Dose(100.0, "DEPOT", time=12.0, every=12.0, count=3)]


@pytest.fixture(scope="module")
def population():
    return pkpd.Population(300, seed=2020)


@pytest.mark.parametrize("method", ["exact", "rk45"])
def test_same_seed_same_numbers_whatever_threads_and_chunks(population, method):
    reference = pkpd.simulate(MODEL, REGIMEN, population, TIMES, method=method, chunk_subjects=300)
    previous = numba.get_num_threads()
    try:
        for threads, chunk in [(1, 300), (numba.config.NUMBA_NUM_THREADS, 60), (1, 7)]:
            numba.set_num_threads(threads)
            again = pkpd.simulate(MODEL, REGIMEN, population, TIMES, method=method, chunk_subjects=chunk)
            assert np.array_equal(again.values, reference.values)
    finally:
        numba.set_num_threads(previous)


def test_chunks_share_one_read_only_layout_and_reuse_their_dose_buffers(population):
    """A chunk's stream is the shared layout's first records plus its own doses, whether the doses go
    into new arrays or into buffers that held another chunk's doses."""
    from pkpd._simulate import SimulationPlan

    plan = SimulationPlan(MODEL, REGIMEN, population, TIMES, method="exact", rtol=1e-6, atol=1e-9,
                          variability=True, chunk_subjects=64, progress=False, max_steps=10_000)
    buffers = np.zeros((2, 64 * plan.layout.per_subject))
    plan.chunk_inputs(0, 64, buffers)                       # the buffers now hold chunk 0's doses
    _, reused, _ = plan.chunk_inputs(256, 300, buffers)    # a shorter, last chunk
    _, fresh, _ = plan.chunk_inputs(256, 300)
    per_subject = TIMES.size + 4                           # 4 administrations, each a dose record
    assert fresh.amt.size == 44 * per_subject and fresh.n_outputs == 44 * TIMES.size
    for name in ("subject_start", "time", "kind", "amt", "cmt", "rate", "ii", "ss", "prow", "drow", "out", "parent"):
        assert np.array_equal(getattr(reused, name), getattr(fresh, name)), name
    # the doses are the chunk's own: 1 mg/kg of each subject's weight, then 100 mg three times
    weights = population.covariates["WT"].to_numpy()[256:300]
    doses = fresh.amt.reshape(44, per_subject)[:, fresh.kind[:per_subject] == pkpd.events.records.KIND_DOSE]
    assert np.array_equal(doses, np.column_stack([weights, np.full((44, 3), 100.0)]))
    assert not fresh.time.flags.writeable and not fresh.out.flags.writeable


def test_an_executor_runs_the_chunks_and_gives_the_in_process_numbers(population):
    # the chunks travel as a process pool or a dask worker would get them (pickled), the model without
    # its compiled module; trajectories, parameters, summaries and exposure are those of the run here
    local = pkpd.simulate(MODEL, REGIMEN, population, TIMES)
    executor = PicklingExecutor()
    remote = pkpd.simulate(MODEL, REGIMEN, population, TIMES, chunk_subjects=70, executor=executor)
    assert executor.tasks == 5
    assert np.array_equal(remote.values, local.values) and np.array_equal(remote.states, local.states)
    assert remote.parameters.equals(local.parameters) and remote.method == local.method
    summary = pkpd.simulate_summary(MODEL, REGIMEN, population, TIMES, thresholds={"CP": [1.0]})
    streamed = pkpd.simulate_summary(MODEL, REGIMEN, population, TIMES, thresholds={"CP": [1.0]},
                                     chunk_subjects=60, executor=executor)
    assert executor.tasks == 10
    assert streamed.percentiles.equals(summary.percentiles)
    for metric, values in summary.exposure["CP"].items():
        assert np.array_equal(streamed.exposure["CP"][metric], values)


def test_the_streamed_summary_runs_chunks_on_threads_with_the_numbers_of_one(population, monkeypatch):
    """Chunks run whole on worker threads (engine, sketch, metrics), each thread's sketch merged at the
    end: the percentiles and exposure are those of one thread, whatever the thread count."""
    import threading

    from pkpd.metrics import SummaryReducer

    names = set()
    reduce = SummaryReducer.add

    def recorded(self, start, stop, values):
        names.add(threading.current_thread().name)
        return reduce(self, start, stop, values)

    monkeypatch.setattr(SummaryReducer, "add", recorded)
    previous = numba.get_num_threads()
    results = {}
    try:
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            results[threads] = pkpd.simulate_summary(MODEL, REGIMEN, population, TIMES, chunk_subjects=40,
                                                     thresholds={"CP": [1.0]}, progress=False)
    finally:
        numba.set_num_threads(previous)
    assert results[2].percentiles.equals(results[1].percentiles)
    for metric, values in results[1].exposure["CP"].items():
        assert np.array_equal(results[2].exposure["CP"][metric], values), metric
    assert results[1].exposure["CP"]["cmax"].shape == (300,)
    if numba.config.NUMBA_NUM_THREADS >= 2 and numba.threading_layer() in ("omp", "tbb"):
        assert any(name.startswith("pkpd-chunk") for name in names)


def test_a_subset_of_subjects_gives_the_same_rows(population):
    whole = pkpd.simulate(MODEL, REGIMEN, population, TIMES)
    part = pkpd.simulate(MODEL, REGIMEN, population.subset(100, 150), TIMES)
    assert np.array_equal(part.values, whole.values[100:150])
    assert np.array_equal(part.observed("CP"), whole.observed("CP")[100:150])


def test_typical_values_equal_the_event_table_path(population):
    typical = pkpd.simulate(MODEL, REGIMEN, population, TIMES, variability=False)
    subject = 17
    weight = float(population.covariates["WT"].iloc[subject])
    import pandas as pd

    rows = [dict(ID=1, TIME=0.0, EVID=1, AMT=weight, CMT=2, RATE=weight / 2.0, WT=weight)]
    rows += [dict(ID=1, TIME=12.0 * k, EVID=1, AMT=100.0, CMT=1, RATE=0.0, WT=weight) for k in (1, 2, 3)]
    rows += [dict(ID=1, TIME=t, EVID=0, AMT=0.0, CMT=2, RATE=0.0, WT=weight) for t in TIMES]
    data = pd.DataFrame(rows).sort_values("TIME", kind="stable").reset_index(drop=True)
    out = pkpd.simulate_data(MODEL, data, variability="none")
    cp = out.loc[data["EVID"].to_numpy() == 0, "CP"].to_numpy()
    np.testing.assert_allclose(typical.output("CP")[subject], cp, rtol=1e-12)


def test_random_effects_have_the_declared_omega():
    # 20,000 subjects: each (co)variance of the log-parameters within its 99.9 % sampling interval
    model = pkpd.load_model(MODEL)
    population = pkpd.Population(20_000, seed=7)
    inputs, etas = individual_inputs(model, population)
    logs = np.log(inputs[:, :3] / np.array([4.0, 30.0, 1.0]))
    np.testing.assert_allclose(logs, etas, atol=1e-12)
    omega = np.array(model.variability["iiv"]["omega"])
    n = logs.shape[0]
    sample = np.cov(logs, rowvar=False)
    for i in range(3):
        # (n-1) s^2 / sigma^2 ~ chi-square(n-1)
        low, high = stats.chi2.ppf([0.0005, 0.9995], n - 1) / (n - 1) * omega[i, i]
        assert low <= sample[i, i] <= high
    # correlation of CL and V: Fisher z, SE 1/sqrt(n-3)
    rho = omega[0, 1] / np.sqrt(omega[0, 0] * omega[1, 1])
    r = np.corrcoef(logs[:, 0], logs[:, 1])[0, 1]
    assert abs(np.arctanh(r) - np.arctanh(rho)) <= stats.norm.ppf(0.9995) / np.sqrt(n - 3)


def test_no_variability_gives_typical_parameters(population):
    model = pkpd.load_model(MODEL)
    inputs, _ = individual_inputs(model, population, variability=False)
    assert np.all(inputs[:, 0] == 4.0) and np.all(inputs[:, 1] == 30.0)


def test_exposure_of_one_compartment_infusion_matches_closed_form():
    # dose D over T into V with k = CL/V: Cmax = D/T/(k V) (1 - exp(-k T)) at T; AUC to infinity = D/CL
    population = pkpd.Population(5, seed=3, covariates={"WT": {"distribution": "constant", "value": 70.0}})
    times = np.arange(0.0, 400.0, 0.05)
    result = pkpd.simulate(MODEL, [pkpd.Dose(70.0, "CENT", duration=2.0)], population, times, variability=False)
    table = result.exposure("CP", thresholds=[1.0])
    k = 4.0 / 30.0
    cmax = 70.0 / 2.0 / (k * 30.0) * (1 - np.exp(-k * 2.0))
    np.testing.assert_allclose(table["cmax"], cmax, rtol=1e-9)
    np.testing.assert_allclose(table["tmax"], 2.0)
    # the log-down trapezoid is exact on the decline; the rise contributes an O(h^2) error
    np.testing.assert_allclose(table["auc"], 70.0 / 4.0, rtol=1e-4)
    # time above 1 mg/L: rising crossing t1 from the infusion phase, falling one from the decline
    t1 = -np.log(1 - 1.0 * k * 30.0 * 2.0 / 70.0) / k
    t2 = 2.0 + np.log(cmax / 1.0) / k
    np.testing.assert_allclose(table["time_above_1"], t2 - t1, atol=1e-3)
    assert table.attrs["units"]["auc"] == "mg/L*h"


def test_to_frame_and_percentiles_are_long_format_with_units(population):
    result = pkpd.simulate(MODEL, REGIMEN, population, TIMES)
    frame = result.to_frame(observed=True)
    assert list(frame.columns) == ["ID", "TIME", "CP", "CP_OBS"]
    assert len(frame) == 300 * TIMES.size
    assert frame.attrs["units"]["CP"] == "mg/L"
    table = result.percentiles()
    assert list(table.columns) == ["output", "TIME", "P5", "P25", "P50", "P75", "P95"]
    values = table[["P5", "P25", "P50", "P75", "P95"]].to_numpy()
    assert np.all(np.diff(values, axis=1) >= 0)
    np.testing.assert_allclose(table["P50"], np.median(result.output("CP"), axis=0))


def test_per_weight_dose_scales_with_each_subject(population):
    result = pkpd.simulate(MODEL, [pkpd.Dose(0.5, "CENT", per_weight=True)], population, [0.0], variability=False)
    np.testing.assert_allclose(result.states[:, 0, 1], 0.5 * population.covariates["WT"].to_numpy())


def test_bad_inputs_say_what_is_wrong(population, tmp_path):
    with pytest.raises(pkpd.PkpdError, match=r"times: must be increasing; got 1 after 2 at index 2"):
        pkpd.simulate(MODEL, REGIMEN, population, [0.0, 2.0, 1.0])
    with pytest.raises(pkpd.PkpdError, match=r"doses\[0\]: model 'pk1cmt_iiv' has no drug or compartment 'GUT'"):
        pkpd.simulate(MODEL, [pkpd.Dose(1.0, "GUT")], population, TIMES)
    bad = tmp_path / "bad_omega.toml"
    bad.write_text(MODEL.read_text().replace("[0.09, 0.03, 0.0], [0.03, 0.04, 0.0]",
                                             "[0.09, 0.3, 0.0], [0.3, 0.04, 0.0]"))
    with pytest.raises(pkpd.PkpdError, match=r"bad_omega.toml: variability.iiv.omega: not positive definite"):
        pkpd.simulate(bad, REGIMEN, population, TIMES)


def test_streamed_summary_matches_full_simulation_within_sketch_bound(population):
    full = pkpd.simulate(MODEL, REGIMEN, population, TIMES)
    summary = pkpd.simulate_summary(MODEL, REGIMEN, population, TIMES, chunk_subjects=70,
                                    thresholds={"CP": [1.0]}, relative_accuracy=0.005)
    exact = full.percentiles()
    for q in ("P5", "P50", "P95"):
        streamed = summary.percentiles[q].to_numpy()
        reference = exact[q].to_numpy()
        assert np.all(np.abs(streamed - reference) <= 0.005 * np.abs(reference) + 1e-12)
    table = full.exposure("CP", thresholds=[1.0])
    np.testing.assert_array_equal(summary.exposure["CP"]["cmax"], table["cmax"].to_numpy())
    np.testing.assert_array_equal(summary.exposure["CP"]["time_above"][:, 0], table["time_above_1"].to_numpy())


@pytest.mark.parametrize("model, alpha, hours, expected", [
    (TEST_MODELS / "stiff.toml", None, 24.0, "rosenbrock"),    # radius 3,000/h x 24 h = 72,000
    (TEST_MODELS / "stiff.toml", None, 0.5, "rk45"),           # x 0.5 h = 1,500
    (TEST_MODELS / "mm1cmt.toml", None, 48.0, "rk45"),         # 1.2/h: not stiff
    ("ketamine_mg_pain", 1.0, 840.0, "rosenbrock"),            # 14.6/h x 840 h = 12,300
    ("ketamine_mg_pain", 1.0, 48.0, "rk45"),
    ("ketamine_mg_pain", 0.0, 840.0, "exact"),                 # ALPHA = 0 folds to a linear model
])
def test_auto_takes_the_stiff_method_when_stability_would_bound_the_steps(model, alpha, hours, expected):
    # auto: exact for linear models; for others RODAS4 when (spectral radius of the Jacobian at zero
    # amounts) x (time span) > 10,000, i.e. when Dormand-Prince would need over ~3,000 steps for
    # stability alone; the numbers are then those of the method named explicitly
    model = pkpd.load_model(model)
    if alpha is not None:
        model = model.with_parameters({"ALPHA": alpha})
    target = model.drugs and next(iter(model.drugs.values()))["compartment"] or model.compartments[0]
    regimen = [pkpd.Dose(10.0, target, duration=0.5)]
    times = np.linspace(0.0, hours, 25)
    auto = pkpd.simulate(model, regimen, 4, times, progress=False)
    assert auto.method == expected
    if expected != "exact":
        named = pkpd.simulate(model, regimen, 4, times, method=expected, progress=False)
        assert np.array_equal(auto.values, named.values, equal_nan=True)
