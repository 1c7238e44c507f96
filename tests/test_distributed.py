"""The dask.distributed executor: a real LocalCluster of 2 worker processes on loopback gives the
numbers of the in-process run, and losing a worker loses no work and counts none twice."""

import dataclasses
import os
import signal
import time

import numpy as np
import pytest

import pkpd
from conftest import ROOT, TEST_MODELS
from pkpd._simulate import SimulationPlan, run_chunk

distributed = pytest.importorskip("distributed")

from pkpd import _distributed  # noqa: E402
from pkpd.study.trial_design import designs_of  # noqa: E402

pytestmark = pytest.mark.models(TEST_MODELS / "pk1cmt_iiv.toml", "ketamine_mg_pain", TEST_MODELS / "pk1cmt_uncertain.toml")

MODEL = TEST_MODELS / "pk1cmt_iiv.toml"
TIMES = np.arange(0.0, 48.5, 0.5)
REGIMEN = pkpd.Regimen([pkpd.Dose(1.0, "CENT", duration=2.0, per_weight=True),
                        pkpd.Dose(100.0, "DEPOT", time=12.0, every=12.0, count=3)])


@pytest.fixture(scope="module")
def client():
    pkpd.load_model(MODEL).module  # compiled on disk before workers start: they only load it
    with _distributed.cluster(workers=2) as client:
        yield client


@pytest.fixture(scope="module")
def dask(client):
    return _distributed.DaskExecutor(client)


@pytest.fixture(scope="module")
def population():
    return pkpd.Population(300, seed=2020)


def test_cluster_has_two_worker_processes_on_loopback(client):
    workers = client.scheduler_info()["workers"]
    assert len(workers) == 2
    assert all(address.startswith("tcp://127.0.0.1") for address in workers)
    pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()


@pytest.mark.parametrize("chunk", [70, 300])
def test_distributed_simulation_equals_in_process(dask, population, chunk):
    local = pkpd.simulate(MODEL, REGIMEN, population, TIMES)
    remote = pkpd.simulate(MODEL, REGIMEN, population, TIMES, chunk_subjects=chunk, executor=dask)
    assert np.array_equal(remote.values, local.values)
    assert np.array_equal(remote.states, local.states)
    assert remote.parameters.equals(local.parameters)


def test_parameter_overrides_reach_the_workers(dask, population):
    # a with_parameters copy (scenario [parameters], arm parameters, --set) has the file's path and
    # hash; the workers must still use its values, for simulate and simulate_summary
    model = pkpd.load_model(MODEL)
    faster = model.with_parameters({"CL": 3.0 * model.parameters["CL"].value})
    local = pkpd.simulate(faster, REGIMEN, population, TIMES)
    remote = pkpd.simulate(faster, REGIMEN, population, TIMES, chunk_subjects=150, executor=dask)
    assert np.array_equal(remote.values, local.values)
    assert not np.array_equal(local.values, pkpd.simulate(model, REGIMEN, population, TIMES).values)
    summary = pkpd.simulate_summary(faster, REGIMEN, population, TIMES, chunk_subjects=150, executor=dask)
    assert summary.percentiles.equals(pkpd.simulate_summary(faster, REGIMEN, population, TIMES,
                                                            chunk_subjects=300).percentiles)


def test_distributed_summary_equals_in_process_summary(dask, population):
    local = pkpd.simulate_summary(MODEL, REGIMEN, population, TIMES, chunk_subjects=300, thresholds={"CP": [1.0]})
    remote = pkpd.simulate_summary(MODEL, REGIMEN, population, TIMES, chunk_subjects=60, thresholds={"CP": [1.0]},
                                   executor=dask)
    assert remote.percentiles.equals(local.percentiles)
    for metric, values in local.exposure["CP"].items():
        assert np.array_equal(remote.exposure["CP"][metric], values)


def test_distributed_trial_equals_in_process(dask):
    scenario = pkpd.load_scenario(ROOT / "scenarios" / "pickering2020_power.toml")
    scenario = dataclasses.replace(scenario, trial=scenario.trial | {"n": [20, 40]})
    scenario = dataclasses.replace(scenario, designs=designs_of(scenario))  # checked when it loads: check again
    local = pkpd.trial(scenario, replicates=12)
    remote = pkpd.trial(scenario, replicates=12, executor=dask, chunk_replicates=5)
    assert remote.equals(local)


def test_a_killed_worker_loses_and_duplicates_nothing(client, population):
    local = pkpd.simulate(MODEL, REGIMEN, population, TIMES)
    run = SimulationPlan(MODEL, REGIMEN, population, TIMES, method="auto", rtol=1e-8, atol=1e-10,
                         variability=True, chunk_subjects=30, progress=False, max_steps=100_000)
    futures = [client.submit(run_chunk, *run.chunk_inputs(a, b), pure=False) for a, b in run.ranges()]
    distributed.wait(futures)
    # kill the worker process that holds the most results: they must be recomputed elsewhere
    holders = client.who_has(futures)
    counts = {}
    for addresses in holders.values():
        for address in addresses:
            counts[address] = counts.get(address, 0) + 1
    victim = max(counts, key=counts.get)
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 60
    while victim in client.scheduler_info()["workers"] and time.time() < deadline:
        time.sleep(0.1)
    parts = client.gather(futures)
    values = np.concatenate([p[0] for p in parts]).reshape(local.values.shape)
    assert np.array_equal(values, local.values)


def test_parameter_draws_on_dask_workers_equal_in_process(dask):
    # issue 19: the outer loop of parameter draws runs on a dask cluster as it does here
    model = TEST_MODELS / "pk1cmt_uncertain.toml"
    pkpd.load_model(model).kernels   # compiled on disk before the workers load it
    arguments = (model, [pkpd.Dose(100.0, "DEPOT")], pkpd.Population(30, seed=2), np.arange(0.0, 48.0, 2.0))
    here = pkpd.simulate(*arguments, uncertainty=6, progress=False)
    remote = pkpd.simulate(*arguments, uncertainty=6, progress=False, executor=dask)
    assert here.draws.equals(remote.draws)
    for key, table in here.percentiles.items():
        assert np.array_equal(table, remote.percentiles[key])
    assert here.statistics.equals(remote.statistics)
