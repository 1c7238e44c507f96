"""The streamed summary (pkpd.metrics.summary): the numbers of the public metric functions on the whole population.

Oracle: :func:`pkpd.metrics.exposure_metrics` and a :class:`pkpd.metrics.PercentileAccumulator`
fed the trajectories of :func:`pkpd.simulate` (all subjects in memory); the streamed summary,
reduced chunk by chunk on threads or by an executor, must give exactly their numbers.
"""

import numba
import numpy as np
import pytest

import pkpd
from conftest import TEST_MODELS, PicklingExecutor
from pkpd.metrics import PercentileAccumulator, exposure_metrics

pytestmark = pytest.mark.models(TEST_MODELS / "pk1cmt_iiv.toml")

MODEL = TEST_MODELS / "pk1cmt_iiv.toml"
TIMES = np.arange(0.0, 48.5, 0.5)
REGIMEN = [pkpd.Dose(1.0, "CENT", duration=2.0, per_weight=True),
           pkpd.Dose(100.0, "DEPOT", time=12.0, every=12.0, count=3)]
OPTIONS = dict(interval=(1.25, 40.0), thresholds={"CP": [1.0, 2.5]}, windows={"CP": [(0.5, 2.0)]},
               quantiles=(5, 50, 95))


@pytest.fixture(scope="module")
def full():
    return pkpd.simulate(MODEL, REGIMEN, pkpd.Population(300, seed=2020), TIMES, progress=False)


@pytest.mark.parametrize("threads, chunk, executor", [(1, 300, False), (2, 70, False), (2, 7, False),
                                                      (1, 70, True)])
def test_the_summary_is_the_metrics_and_sketch_of_the_whole_population(full, threads, chunk, executor):
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        summary = pkpd.simulate_summary(MODEL, REGIMEN, pkpd.Population(300, seed=2020), TIMES, chunk_subjects=chunk,
                                        progress=False, executor=PicklingExecutor() if executor else None, **OPTIONS)
    finally:
        numba.set_num_threads(previous)
    values = full.output("CP")
    expected = exposure_metrics(TIMES, values, interval=OPTIONS["interval"], thresholds=OPTIONS["thresholds"]["CP"],
                                windows=OPTIONS["windows"]["CP"])
    assert list(summary.exposure["CP"]) == list(expected)
    for metric, array in expected.items():
        assert np.array_equal(summary.exposure["CP"][metric], array), metric
    sketch = PercentileAccumulator(TIMES.size, quantiles=OPTIONS["quantiles"])
    sketch.add(values)
    assert np.array_equal(summary.percentiles[["P5", "P50", "P95"]].to_numpy().T, sketch.result())
    assert np.array_equal(summary.percentiles["TIME"], TIMES)


def test_an_output_that_is_not_finite_names_the_subject_and_time(tmp_path):
    # log(CENT) is -inf before the first dose: a simulation failure naming the subject, not a bad argument
    path = tmp_path / "pk1cmt_log.toml"
    path.write_text(MODEL.read_text().replace('name = "pk1cmt_iiv"', 'name = "pk1cmt_log"').replace(
        "[variability.iiv]", 'LOGCP = { expr = "log(CENT/VI)", unit = "1", role = "other" }\n\n[variability.iiv]'))
    population = pkpd.Population(subject_ids=np.arange(101, 111), seed=1)
    with pytest.raises(pkpd.SimulationError, match=r"^subject 101: output LOGCP must be finite; got -inf at time 0 h$"):
        pkpd.simulate_summary(path, [pkpd.Dose(100.0, "DEPOT", time=1.0)], population, TIMES, progress=False)


@pytest.mark.parametrize("executor", [False, True])
def test_the_auc_of_an_output_with_a_baseline_is_above_it_as_in_the_run_tables(tmp_path, executor):
    # issue 20: an endogenous substance's AUC is taken above each subject's baseline; the streamed summary
    # gives what SimulationResult.exposure gives (exposure_metrics of the excess), on threads or an executor
    path = tmp_path / "pk1cmt_baseline.toml"
    path.write_text(MODEL.read_text().replace('name = "pk1cmt_iiv"', 'name = "pk1cmt_baseline"').replace(
        "[outputs]", '[outputs]\nCB = { expr = "B0 + CENT/VI", unit = "mg/L", role = "concentration", '
                     'analyte = "drug", matrix = "plasma", baseline = "B0" }').replace(
        "[parameters]", '[parameters]\nB0 = { value = 2.0, unit = "mg/L", description = "endogenous level", '
                        'source = "test" }'))
    population = pkpd.Population(40, seed=7)
    full = pkpd.simulate(path, REGIMEN, population, TIMES, progress=False)
    expected = full.exposure("CB", interval=(1.25, 40.0))
    summary = pkpd.simulate_summary(path, REGIMEN, population, TIMES, chunk_subjects=15, progress=False,
                                    interval=(1.25, 40.0), executor=PicklingExecutor() if executor else None)
    assert np.array_equal(summary.exposure["CB"]["auc"], expected["auc"].to_numpy())
    assert np.array_equal(summary.exposure["CB"]["cmax"], expected["cmax"].to_numpy())   # of the output itself
    total = exposure_metrics(TIMES, full.output("CB"), interval=(1.25, 40.0))["auc"]
    assert np.all(summary.exposure["CB"]["auc"] < total - 2.0 * 38.0)   # B0 x the interval's length below it


def test_a_pain_score_auc_is_in_score_times_days_as_in_the_run_tables(tmp_path):
    # issue 20: one unit for pain AUC everywhere (score x days), the streamed summary included
    path = tmp_path / "pk1cmt_pain.toml"
    path.write_text(MODEL.read_text().replace('name = "pk1cmt_iiv"', 'name = "pk1cmt_pain"').replace(
        "[outputs]", '[outputs]\nPAIN = { expr = "6 + 0*CENT", unit = "NRS 0-10", role = "pain_score" }'))
    summary = pkpd.simulate_summary(path, [], pkpd.Population(3, seed=1), TIMES, progress=False)
    assert summary.exposure["PAIN"]["auc"] == pytest.approx([12.0] * 3)   # 6 points for 48 h = 2 days
