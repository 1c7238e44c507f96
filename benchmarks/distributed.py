"""Distributed throughput: the same workload in-process (Numba threads) and on a local
dask.distributed cluster of 1 and 2 worker processes, and the overhead per task.

    python -m benchmarks.distributed [--subjects 20000] [--chunk 2000]

Workload: W1 (ketamine 2-cmt + norketamine, 0.5 mg/kg over 2 h, outputs every 0.25 h
over 48 h) reduced to percentiles and exposure metrics (simulate_summary), so that only
sketches and metrics travel back. Overhead per task: a 1-subject chunk's round trip
minus its in-process time.
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

import pkpd
from pkpd import _distributed

HERE = Path(__file__).resolve().parent
MODEL = HERE / "models" / "w1_ketamine_nk.toml"


def timed(function, repeats=3):
    values = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        values.append(time.perf_counter() - started)
    return statistics.median(values)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=2_000)
    arguments = parser.parse_args(argv)
    model = pkpd.load_model(MODEL)
    regimen = [pkpd.Dose(0.5, "ketamine" if "ketamine" in model.drugs else model.compartments[0], duration=2.0,
                         per_weight=True)]
    population = pkpd.Population(arguments.subjects, seed=1,
                                 covariates={"WT": {"distribution": "normal", "mean": 75, "sd": 12, "min": 45,
                                                    "max": 130}})
    times = np.arange(0.0, 48.0 + 1e-9, 0.25)
    kwargs = dict(chunk_subjects=arguments.chunk)
    pkpd.simulate_summary(model, regimen, population.subset(0, 10), times)  # compile/load outside timing
    local = timed(lambda: pkpd.simulate_summary(model, regimen, population, times, progress=False, **kwargs))
    print(f"W1 summary, {arguments.subjects} subjects in chunks of {arguments.chunk}")
    print(f"  in-process (Numba threads): {local:7.3f} s  {arguments.subjects / local:10.0f} subjects/s")
    for workers in (1, 2):
        with _distributed.cluster(workers=workers, threads_per_worker=1) as client:
            dask = _distributed.DaskExecutor(client)
            pkpd.simulate_summary(model, regimen, population.subset(0, 10), times, executor=dask)  # warm workers
            elapsed = timed(lambda: pkpd.simulate_summary(model, regimen, population, times, progress=False,
                                                          executor=dask, **kwargs))
            one = population.subset(0, 1)
            round_trip = timed(lambda: pkpd.simulate_summary(model, regimen, one, times, chunk_subjects=1,
                                                             progress=False, executor=dask), repeats=5)
            in_process = timed(lambda: pkpd.simulate_summary(model, regimen, one, times, progress=False), repeats=5)
        print(f"  dask, {workers} worker{'s' if workers > 1 else ' '}:              {elapsed:7.3f} s  "
              f"{arguments.subjects / elapsed:10.0f} subjects/s  ({local / elapsed:.2f}x in-process); "
              f"overhead per task {1e3 * (round_trip - in_process):.1f} ms")


if __name__ == "__main__":
    main()
