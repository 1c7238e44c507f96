"""The dask.distributed backend: a real LocalCluster of 2 worker processes on loopback gives the
numbers of the in-process run, and losing a worker loses no work and counts none twice."""

import os
import signal
import time

import numpy as np
import pytest

import pkpd
from conftest import ROOT, TEST_MODELS

distributed = pytest.importorskip("distributed")

from pkpd import _distributed  # noqa: E402
from pkpd._trial import designs_of  # noqa: E402

pytestmark = pytest.mark.models(TEST_MODELS / "pk1cmt_iiv.toml", "ketamine_mg_pain")

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
def population():
    return pkpd.Population(300, seed=2020)


def test_cluster_has_two_worker_processes_on_loopback(client):
    workers = client.scheduler_info()["workers"]
    assert len(workers) == 2
    assert all(address.startswith("tcp://127.0.0.1") for address in workers)
    pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()


@pytest.mark.parametrize("chunk", [70, 300])
def test_distributed_simulation_equals_in_process(client, population, chunk):
    local = pkpd.simulate(MODEL, REGIMEN, population, TIMES)
    remote = _distributed.simulate(client, MODEL, REGIMEN, population, TIMES, chunk_subjects=chunk)
    assert np.array_equal(remote.values, local.values)
    assert np.array_equal(remote.states, local.states)
    assert remote.parameters.equals(local.parameters)


def test_parameter_overrides_reach_the_workers(client, population):
    # a with_parameters copy (scenario [parameters], arm parameters, --set) has the file's path and
    # hash; the workers must still use its values, for simulate and simulate_summary
    model = pkpd.load_model(MODEL)
    faster = model.with_parameters({"CL": 3.0 * model.parameters["CL"].value})
    local = pkpd.simulate(faster, REGIMEN, population, TIMES)
    remote = _distributed.simulate(client, faster, REGIMEN, population, TIMES, chunk_subjects=150)
    assert np.array_equal(remote.values, local.values)
    assert not np.array_equal(local.values, pkpd.simulate(model, REGIMEN, population, TIMES).values)
    summary = _distributed.simulate_summary(client, faster, REGIMEN, population, TIMES, chunk_subjects=150)
    assert summary.percentiles.equals(pkpd.simulate_summary(faster, REGIMEN, population, TIMES,
                                                            chunk_subjects=300).percentiles)


def test_distributed_summary_equals_in_process_summary(client, population):
    local = pkpd.simulate_summary(MODEL, REGIMEN, population, TIMES, chunk_subjects=300, thresholds={"CP": [1.0]})
    remote = _distributed.simulate_summary(client, MODEL, REGIMEN, population, TIMES, chunk_subjects=60,
                                           thresholds={"CP": [1.0]})
    assert remote.percentiles.equals(local.percentiles)
    for metric, values in local.exposure["CP"].items():
        assert np.array_equal(remote.exposure["CP"][metric], values)


def test_distributed_trial_equals_in_process(client):
    scenario = pkpd.load_scenario(ROOT / "scenarios" / "pickering2020_power.toml")
    scenario.trial = {k: v for k, v in scenario.trial.items()} | {"n": [20, 40]}
    scenario.designs = designs_of(scenario)  # the designs are checked when a scenario loads: check them again
    local = pkpd.trial(scenario, replicates=12)
    remote = _distributed.trial(client, scenario, replicates=12, replicates_per_task=5)
    assert remote.equals(local)


def test_a_killed_worker_loses_and_duplicates_nothing(client, population):
    local = pkpd.simulate(MODEL, REGIMEN, population, TIMES)
    model = pkpd.load_model(MODEL)
    futures = [client.submit(_distributed._simulate_chunk, _distributed._model_key(model), REGIMEN,
                             population.subset(a, b), TIMES, {}, pure=False)
               for a, b in _distributed._ranges(300, 30)]
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
    values = np.concatenate([p[0] for p in parts])
    assert values.shape == local.values.shape
    assert np.array_equal(values, local.values)
