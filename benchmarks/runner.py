"""``python -m benchmarks``: time the workloads against in-process baselines; check the floors.

Every figure is a median over repeated rounds (after two warm-up rounds that are
discarded). pkpd's time is that of the whole ``pkpd.simulate`` call (individual
parameters, event records, engine, result), with the population drawn beforehand.

The guard (``--quick``, ``floors.toml``) divides the CPU time per subject of a fixed
Numba reference kernel of the same model (:mod:`benchmarks.reference`) by pkpd's CPU
time per subject, both measured in this process, back to back in every round: a busy
or slow machine slows both compiled loops alike, and CPU time does not count the time
the process waited for a core. The solve_ivp loop (interpreted Python, which load slows
far more than compiled code) and its ratios are information only.
"""

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import tracemalloc
from pathlib import Path

import numba
import numpy as np

import pkpd
from pkpd import _simulate, _simulate_data

from . import reference
from . import workloads as wl

HERE = Path(__file__).resolve().parent
FLOORS = HERE / "floors.toml"
QUICK = {"W1": dict(n=1000, baseline=20, reference=10), "W2": dict(n=200, baseline=10, reference=10),
         "D1": dict(sizes=(1000, 10_000)), "W4": dict(n=4000, chunk=500)}
FULL = {"W1": dict(sizes=(1000, 10_000), baseline=30, reference=30),
        "W2": dict(sizes=(1000, 10_000), baseline=20, reference=20)}
METHODS = ("exact", "rk45")
# Rounds run first and discarded: on the reference machine (a Firecracker VM) memory
# the process has not touched yet costs up to 8 us per 4 KiB page the first time, so
# the first rounds of a 10,000-subject run can take 3 times as long as the later ones.
WARM_UP_ROUNDS = 2


def median(values):
    return float(statistics.median(values))


@contextlib.contextmanager
def threads(count):
    previous = numba.get_num_threads()
    numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


class EngineClock:
    """Seconds spent in the engine (``run_stream``) during ``pkpd.simulate`` calls (or in another
    function of another module: ``EngineClock(_simulate_data, "build_stream")``)."""

    def __init__(self, module=_simulate, name="run_stream"):
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.module = module
        self.name = name

    @contextlib.contextmanager
    def installed(self):
        original = getattr(self.module, self.name, None)
        if original is None:
            yield self
            return

        def timed(*args, **kwargs):
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.cpu_seconds += time.process_time() - cpu

        setattr(self.module, self.name, timed)
        try:
            yield self
        finally:
            setattr(self.module, self.name, original)


def clock(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def clock_cpu(function, *args, **kwargs):
    """(wall seconds, CPU seconds of the whole process, i.e. of every thread, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def peak_traced_bytes(function, *args, **kwargs):
    """Peak of the memory traced by tracemalloc (NumPy arrays included) during one call."""
    tracemalloc.start()
    try:
        function(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def max_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def outputs_of(result, names):
    return np.stack([result.output(name) for name in names], axis=-1)


# --- W1 and W2 ----------------------------------------------------------------------

def linear_workload(workload, n, baseline_subjects, reference_subjects, repeats, thread_count, memory=True):
    """Per-subject wall and CPU times, ratios to the reference kernel (the guard) and to the
    solve_ivp loop (information), accuracy against expm, peak memory."""
    subjects = wl.population(n)
    weights = wl.weights_of(subjects)
    with threads(thread_count):
        results = {method: wl.simulate(workload, subjects, method) for method in METHODS}
        kernel_arguments = reference.inputs(workload, results["exact"], weights)
        reference.reference_kernel(*kernel_arguments)          # compiled (or loaded) before the rounds
        rounds = []
        for _ in range(WARM_UP_ROUNDS + repeats):
            wall, cpu, _ = clock_cpu(reference.reference_kernel, *kernel_arguments)
            row = {"reference": wall / n, "reference cpu": cpu / n}
            wall, cpu, baseline = clock_cpu(wl.w1_baseline, workload, results["exact"], weights, baseline_subjects,
                                            **wl.TOLERANCES)
            row.update({"solve_ivp": wall / baseline_subjects, "solve_ivp cpu": cpu / baseline_subjects})
            for method in METHODS:
                engine = EngineClock()
                with engine.installed():
                    wall, cpu, results[method] = clock_cpu(wl.simulate, workload, subjects, method)
                row.update({method: wall / n, f"{method} cpu": cpu / n, f"{method} engine": engine.seconds / n,
                            f"{method} engine cpu": engine.cpu_seconds / n})
            rounds.append(row)
        del rounds[:WARM_UP_ROUNDS]
        memory_peak = {method: peak_traced_bytes(wl.simulate, workload, subjects, method) if memory else None
                       for method in METHODS}
    expm = wl.w1_reference(workload, results["exact"], weights, reference_subjects)
    difference = {method: wl.relative_difference(outputs_of(results[method], workload.outputs)[:reference_subjects],
                                                 expm) for method in METHODS}
    common = min(baseline_subjects, reference_subjects)
    difference["solve_ivp"] = wl.relative_difference(baseline[:common], expm[:common])
    difference["reference"] = wl.relative_difference(kernel_arguments[-1][:reference_subjects], expm)
    timed = (*METHODS, *(f"{m} engine" for m in METHODS))
    keys = ["reference", "solve_ivp", *timed]
    return {
        "workload": workload.name, "subjects": n, "threads": thread_count, "repeats": repeats,
        "baseline_subjects": baseline_subjects, "reference_subjects": reference_subjects,
        "microseconds_per_subject": {k: 1e6 * median([r[k] for r in rounds]) for k in keys},
        "cpu_microseconds_per_subject": {k: 1e6 * median([r[f"{k} cpu"] for r in rounds]) for k in keys},
        "ratio_to_reference": {m: median([r["reference cpu"] / r[f"{m} cpu"] for r in rounds]) for m in timed},
        "ratio_to_solve_ivp": {m: median([r["solve_ivp"] / r[m] for r in rounds]) for m in timed},
        "max_relative_difference_from_expm": difference,
        "peak_traced_bytes": memory_peak,
    }


def thread_scaling(workload, n, repeats):
    """Per-subject wall and CPU microseconds with 1 and 2 Numba threads (rounds interleaved), whole call and
    engine alone; CPU / wall says how many cores a part kept busy."""
    subjects = wl.population(n)
    counts = [c for c in (1, 2) if c <= numba.config.NUMBA_NUM_THREADS]
    parts = ("total", "engine", "total cpu", "engine cpu")
    times = {(m, c, part): [] for m in METHODS for c in counts for part in parts}
    for round_index in range(WARM_UP_ROUNDS + repeats):
        for count in counts:
            with threads(count):
                for method in METHODS:
                    engine = EngineClock()
                    with engine.installed():
                        wall, cpu, _ = clock_cpu(wl.simulate, workload, subjects, method)
                    if round_index >= WARM_UP_ROUNDS:
                        for part, seconds in zip(parts, (wall, engine.seconds, cpu, engine.cpu_seconds)):
                            times[method, count, part].append(seconds / n)
    label = {c: f"{c} thread{'s' if c > 1 else ''}" for c in counts}
    out = {"workload": "threads", "workload_name": workload.name, "subjects": n, "repeats": repeats,
           "microseconds_per_subject": {f"{m} {part} {label[c]}": 1e6 * median(times[m, c, part])
                                        for m in METHODS for part in parts for c in counts},
           "cpu_per_wall": {f"{m} {part} {label[c]}": median([cpu / wall for cpu, wall in
                                                              zip(times[m, c, f"{part} cpu"], times[m, c, part])])
                            for m in METHODS for part in ("total", "engine") for c in counts}}
    if len(counts) == 2:
        out["speedup_2_threads"] = {f"{m} {part}": median(times[m, 1, part]) / median(times[m, 2, part])
                                    for m in METHODS for part in ("total", "engine")}
    return out


# --- D1: the data path ---------------------------------------------------------------

def data_path_workload(n, repeats, thread_count):
    """``simulate_data`` of W1 written as a NONMEM data set against ``simulate`` of W1, per subject.

    The data set carries each subject's individual parameters on every record, so
    ``simulate_data(..., variability="none")`` must give ``simulate``'s numbers to the
    last bit. Both take the exact path with W1's tolerances; each round runs
    ``simulate`` (the population drawn beforehand) and then ``simulate_data`` (the
    data set built beforehand) back to back, and the ratio is the median over rounds
    of their per-subject CPU times, so a busy machine moves both sides together.
    """
    workload = wl.W1
    model = wl.load(workload.model)
    subjects = wl.population(n)
    with threads(thread_count):
        regimen = wl.simulate(workload, subjects, "exact")
        data = wl.w1_data_set(regimen, wl.weights_of(subjects))
        rounds = []
        for _ in range(WARM_UP_ROUNDS + repeats):
            wall, cpu, regimen = clock_cpu(wl.simulate, workload, subjects, "exact")
            row = {"simulate": wall / n, "simulate cpu": cpu / n}
            stream = EngineClock(_simulate_data, "build_stream")
            engine = EngineClock(_simulate_data, "run_stream")
            with stream.installed(), engine.installed():
                wall, cpu, table = clock_cpu(pkpd.simulate_data, model, data, variability="none", method="exact",
                                             **wl.TOLERANCES)
            row.update({"simulate_data": wall / n, "simulate_data cpu": cpu / n,
                        "simulate_data build_stream": stream.seconds / n, "simulate_data engine": engine.seconds / n})
            rounds.append(row)
        del rounds[:WARM_UP_ROUNDS]
    observed = ~data["EVID"].to_numpy().astype(bool)
    values = np.stack([table[name].to_numpy()[observed].reshape(n, -1) for name in workload.outputs], axis=-1)
    return {"workload": "D1", "subjects": n, "records": len(data), "threads": thread_count, "repeats": repeats,
            "microseconds_per_subject": {k: 1e6 * median([r[k] for r in rounds]) for k in rounds[0]},
            "ratio_to_simulate": median([r["simulate_data cpu"] / r["simulate cpu"] for r in rounds]),
            "max_relative_difference_from_simulate": wl.relative_difference(
                values, outputs_of(regimen, workload.outputs))}


# --- W3 -----------------------------------------------------------------------------

def w3_workload(n_per_arm, baseline_subjects, repeats, methods=("auto", "rk45", "rosenbrock")):
    workload = wl.W3
    subjects = wl.population(n_per_arm)
    weights = wl.weights_of(subjects)
    model = wl.load(workload.model)
    results = {}
    per_method = {m: [] for m in methods}
    baseline_times = []
    ratios = {m: [] for m in methods}
    for method in methods:
        for arm in workload.arms:
            results[method, arm] = wl.simulate(workload, subjects, method, arm)
    for _ in range(repeats):
        seconds = 0.0
        for arm in workload.arms:
            elapsed, _ = clock(wl.generic_baseline, workload, results[methods[0], arm], weights, arm,
                               baseline_subjects, **wl.TOLERANCES)
            seconds += elapsed
        baseline = seconds / (baseline_subjects * len(workload.arms))
        baseline_times.append(baseline)
        for method in methods:
            seconds = 0.0
            for arm in workload.arms:
                elapsed, results[method, arm] = clock(wl.simulate, workload, subjects, method, arm)
                seconds += elapsed
            per_subject = seconds / (n_per_arm * len(workload.arms))
            per_method[method].append(per_subject)
            ratios[method].append(baseline / per_subject)
    # accuracy: against a tight solve_ivp (LSODA, rtol 1e-10, atol 1e-12) of the model's own equations
    reference_subjects = min(3, baseline_subjects)
    difference = {m: 0.0 for m in methods}
    names = list(model.outputs)
    index = [names.index(o) for o in workload.outputs]
    for arm in workload.arms:
        reference = wl.generic_baseline(workload, results[methods[0], arm], weights, arm, reference_subjects,
                                        1e-10, 1e-12)[..., index]
        for method in methods:
            values = outputs_of(results[method, arm], workload.outputs)[:reference_subjects]
            difference[method] = max(difference[method], wl.relative_difference(values, reference, 1e-6))
    return {"workload": "W3", "subjects_per_arm": n_per_arm, "arms": list(workload.arms), "repeats": repeats,
            "baseline_subjects_per_arm": baseline_subjects,
            "microseconds_per_subject": {"solve_ivp": 1e6 * median(baseline_times),
                                         **{m: 1e6 * median(per_method[m]) for m in methods}},
            "ratio_to_solve_ivp": {m: median(ratios[m]) for m in methods},
            "max_relative_difference_from_tight_solve_ivp": difference}


# --- W4 -----------------------------------------------------------------------------

def w4_workload(n_total, chunk, baseline_subjects):
    """n_total subjects of W1 (exact path) reduced chunk by chunk to percentiles and exposure metrics.

    Uses ``pkpd.simulate_summary``, which simulates `chunk` subjects at a time and
    keeps per time a mergeable percentile sketch (PercentileAccumulator) and per
    subject the exposure metrics, never the trajectories.
    """
    workload = wl.W1
    model = wl.load(workload.model)
    doses = workload.arms["ketamine"]
    wl.simulate(workload, wl.population(100), "exact")   # loaded and warm
    first = wl.population(baseline_subjects)
    base_seconds, _ = clock(wl.w1_baseline, workload, wl.simulate(workload, first, "exact"), wl.weights_of(first),
                            baseline_subjects, **wl.TOLERANCES)
    population_seconds, subjects = clock(wl.population, n_total)
    rss_before = max_rss_bytes()
    tracemalloc.start()
    elapsed, cpu, summary = clock_cpu(pkpd.simulate_summary, model, doses, subjects, workload.times, method="exact",
                                      chunk_subjects=chunk, progress=False, **wl.TOLERANCES)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    per_subject = elapsed / n_total
    figures = {}
    for name in workload.outputs:
        exposure = summary.exposure[name]
        figures[name] = {f"{m} P{q}": float(np.percentile(exposure[m], q)) for m in ("cmax", "auc")
                         for q in (5, 50, 95)}
    return {"workload": "W4", "subjects": n_total, "chunk": chunk, "seconds": elapsed, "cpu_seconds": cpu,
            "threads": numba.get_num_threads(), "population_seconds": population_seconds,
            "microseconds_per_subject": {"solve_ivp": 1e6 * base_seconds / baseline_subjects,
                                         "pkpd exact + reduction": 1e6 * per_subject},
            "ratio_to_solve_ivp": base_seconds / baseline_subjects / per_subject,
            "peak_traced_bytes": peak, "max_rss_bytes": max_rss_bytes(), "max_rss_bytes_before": rss_before,
            "exposure_percentiles": figures}


def summary_workload(n, chunk, repeats):
    """``simulate_summary`` of W1 against ``simulate`` of the same subjects, CPU per subject, 1 thread.

    The quick guard of the streamed summary: each round runs ``simulate`` and then
    ``simulate_summary`` (exact path, `chunk` subjects at a time) back to back; the ratio
    is the median over rounds of their per-subject CPU times. What the summary adds to the
    simulation (exposure metrics and percentile sketch) shows in it; load moves both sides.
    """
    workload = wl.W1
    model = wl.load(workload.model)
    subjects = wl.population(n)
    doses = workload.arms["ketamine"]
    with threads(1):
        rounds = []
        for _ in range(WARM_UP_ROUNDS + repeats):
            _, simulate_cpu, _ = clock_cpu(wl.simulate, workload, subjects, "exact")
            _, summary_cpu, _ = clock_cpu(pkpd.simulate_summary, model, doses, subjects, workload.times,
                                          method="exact", chunk_subjects=chunk, progress=False, **wl.TOLERANCES)
            rounds.append((simulate_cpu / n, summary_cpu / n))
        del rounds[:WARM_UP_ROUNDS]
    return {"workload": "W4", "subjects": n, "chunk": chunk, "threads": 1, "repeats": repeats,
            "cpu_microseconds_per_subject": {"simulate": 1e6 * median([r[0] for r in rounds]),
                                             "simulate_summary": 1e6 * median([r[1] for r in rounds])},
            "ratio_to_simulate": median([summary / simulate for simulate, summary in rounds])}


# --- cold start -----------------------------------------------------------------------

PROBE = r"""
import json, sys, time
start = time.perf_counter()
import numpy as np
import pkpd
imported = time.perf_counter()
model = pkpd.load_model(sys.argv[1])
model.kernels
loaded = time.perf_counter()
dose = [pkpd.Dose(0.5, "ketamine", duration=2.0, per_weight=True)]
weight = {"WT": {"distribution": "normal", "mean": 75.0, "sd": 12.0, "min": 45.0, "max": 130.0}}
times = np.linspace(0.0, 48.0, 193)
pkpd.simulate(model, dose, pkpd.Population(10, weight, seed=1), times, progress=False)
first = time.perf_counter()
pkpd.simulate(model, dose, pkpd.Population(37, weight, seed=2), times, method="rk45", progress=False)
second = time.perf_counter()
from pkpd.engine import run_population
stats = run_population.stats
print(json.dumps({"import_seconds": imported - start, "load_seconds": loaded - imported,
                  "first_simulate_seconds": first - loaded, "second_population_seconds": second - first,
                  "signatures": len(run_population.signatures),
                  "cache_hits": sum(stats.cache_hits.values()), "cache_misses": sum(stats.cache_misses.values())}))
"""


def search_workload(n=1000):
    """S1: the regimen search of 500 candidates x `n` subjects, warm (the model and a small search first)."""
    subjects = wl.population(n)
    wl.search(wl.population(10), budget=2)
    elapsed, found = clock(wl.search, subjects)
    candidates = len(found.table)
    return {"workload": "S1", "subjects": n, "candidates": candidates, "seconds": elapsed,
            "milliseconds_per_candidate": 1e3 * elapsed / candidates,
            "microseconds_per_subject_and_candidate": 1e6 * elapsed / (candidates * n),
            "answer": found.message, "strategy": found.strategy}


def cold_start(model=wl.W1_MODEL):
    """Fresh processes: with empty caches for the engine and the model (the engine's one-time compile,
    in a separate NUMBA_CACHE_DIR), then an empty model cache only (the model's functions compile),
    then both warm (everything loads from the caches)."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="pkpd-bench-cache-") as cache, \
            tempfile.TemporaryDirectory(prefix="pkpd-bench-engine-") as engine_cache:
        runs = {"engine and model cold": {"PKPD_CACHE_DIR": cache, "NUMBA_CACHE_DIR": engine_cache},
                "model cold": {"PKPD_CACHE_DIR": cache + "/model"},
                "warm": {"PKPD_CACHE_DIR": cache + "/model"}}
        for label, variables in runs.items():
            environment = {**os.environ, **variables}
            start = time.perf_counter()
            run = subprocess.run([sys.executable, "-c", PROBE, str(model)], capture_output=True, text=True,
                                 env=environment, cwd=HERE.parent)
            wall = time.perf_counter() - start
            if run.returncode != 0:
                raise RuntimeError(f"cold-start probe failed:\n{run.stderr}")
            figures = json.loads(run.stdout.strip().splitlines()[-1])
            figures["process_seconds"] = wall
            figures["load_and_first_simulate_seconds"] = figures["load_seconds"] + figures["first_simulate_seconds"]
            out[label] = figures
    return {"workload": "cold start", "model": Path(model).name, **out}


# --- floors -----------------------------------------------------------------------------

def check_floors(results, floors):
    """Rows (label, measured, bound, ok, ">=" or "<=") for every bound of floors.toml that a result covers."""
    rows = []
    for result in results:
        name = result.get("workload")
        if name == "D1":   # the same bounds at every size (--quick: 1,000 and 10,000 subjects)
            bounds = floors.get(name, {})
            size = f"D1 {result['subjects']:,} subjects"
            if "max_ratio_to_simulate" in bounds:
                measured, ceiling = result["ratio_to_simulate"], bounds["max_ratio_to_simulate"]
                rows.append((f"{size}: simulate_data / simulate CPU per subject", measured, ceiling,
                             measured <= ceiling, "<="))
            if "max_relative_difference_from_simulate" in bounds:
                measured, ceiling = (result["max_relative_difference_from_simulate"],
                                     bounds["max_relative_difference_from_simulate"])
                rows.append((f"{size}: simulate_data max relative difference from simulate", measured, ceiling,
                             measured <= ceiling, "<="))
            continue
        if name == "W4":   # --quick only: the full run has no ratio to simulate
            ceiling = floors.get(name, {}).get("max_ratio_to_simulate")
            if ceiling is not None and "ratio_to_simulate" in result:
                measured = result["ratio_to_simulate"]
                rows.append(("W4 simulate_summary / simulate CPU per subject", measured, ceiling, measured <= ceiling,
                             "<="))
            continue
        for key, floor in floors.get(name, {}).items():
            method = key.replace("_", " ")          # exact_engine -> "exact engine"
            measured = result.get("ratio_to_reference", {}).get(method)
            if measured is not None:
                rows.append((f"{name} {method} speed relative to the reference kernel (CPU)", measured, floor,
                             measured >= floor, ">="))
        accuracy = floors.get("accuracy", {})
        differences = result.get("max_relative_difference_from_expm", {})
        for method, key in (("exact", "exact_max_relative_difference"),
                            ("reference", "reference_max_relative_difference")):
            ceiling, measured = accuracy.get(key), differences.get(method)
            if ceiling is not None and measured is not None:
                rows.append((f"{name} {method} max relative difference from expm", measured, ceiling,
                             measured <= ceiling, "<="))
    return rows


def loose_floors(rows, slack=1.5):
    """Labels of floors the measurement exceeds by more than `slack` times: after a speed-up,
    raise them (benchmarks/README.md), or a later regression of that size passes unseen."""
    return [label for label, measured, bound, ok, relation in rows
            if relation == ">=" and ok and measured > slack * bound]


# --- report -------------------------------------------------------------------------------

def format_report(results, machine):
    lines = [f"machine: {machine['nproc']} cores, {machine['cpu']}; Python {machine['python']}, "
             f"NumPy {machine['numpy']}, SciPy {machine['scipy']}, Numba {machine['numba']} "
             f"({machine['threading_layer']} threads)", ""]
    for r in results:
        name = r["workload"]
        if name in ("W1", "W2"):
            us, cpu = r["microseconds_per_subject"], r["cpu_microseconds_per_subject"]
            lines.append(f"{name} n={r['subjects']} threads={r['threads']} (median of {r['repeats']}; "
                         f"solve_ivp on {r['baseline_subjects']}, expm on {r['reference_subjects']} subjects); "
                         "speed = reference kernel CPU / pkpd CPU (the guard), ratio = solve_ivp / pkpd wall")
            for m in ("reference", "solve_ivp", *METHODS):
                extra = ""
                if m in METHODS:
                    peak = r["peak_traced_bytes"][m]
                    speed = r["ratio_to_reference"]
                    extra = (f"  speed {speed[m]:5.3f}  ratio {r['ratio_to_solve_ivp'][m]:6.0f}x  engine "
                             f"{us[m + ' engine']:7.2f} us (cpu {cpu[m + ' engine']:7.2f}) speed "
                             f"{speed[m + ' engine']:5.3f}" + (f"  peak {peak / 1e6:6.1f} MB" if peak else ""))
                lines.append(f"  {m:10s} {us[m]:9.2f} us/subject (cpu {cpu[m]:9.2f}){extra}  max rel diff "
                             f"{r['max_relative_difference_from_expm'][m]:.2e}")
        elif name == "threads":
            us = r["microseconds_per_subject"]
            lines.append(f"thread scaling {r['workload_name']} n={r['subjects']} (median of {r['repeats']}), "
                         "us/subject:")
            lines.append("  " + ", ".join(f"{k} {v:.2f}" for k, v in us.items()))
            lines.append("  CPU / wall: " + ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_per_wall"].items()))
            lines.append("  2-thread speedup: " + ", ".join(
                f"{m} {v:.2f}x" for m, v in r.get("speedup_2_threads", {}).items()))
        elif name == "W3":
            us = r["microseconds_per_subject"]
            lines.append(f"W3 {r['subjects_per_arm']} subjects x {len(r['arms'])} arms (median of {r['repeats']})")
            for m, value in us.items():
                ratio = r["ratio_to_solve_ivp"].get(m)
                diff = r["max_relative_difference_from_tight_solve_ivp"].get(m)
                lines.append(f"  {m:10s} {value:10.1f} us/subject" + (f"  ratio {ratio:6.0f}x  max rel diff "
                                                                     f"{diff:.2e}" if ratio else ""))
        elif name == "D1":
            us = r["microseconds_per_subject"]
            lines.append(f"D1 W1 as a data set: {r['subjects']} subjects, {r['records']} records, "
                         f"threads={r['threads']} (median of {r['repeats']})")
            lines.append(f"  simulate      {us['simulate']:10.2f} us/subject")
            lines.append(f"  simulate_data {us['simulate_data']:10.2f} us/subject  "
                         f"ratio {r['ratio_to_simulate']:.2f}x  (build_stream {us['simulate_data build_stream']:.2f}, "
                         f"engine {us['simulate_data engine']:.2f})  "
                         f"max rel diff {r['max_relative_difference_from_simulate']:.1e}")
        elif name == "W4" and "ratio_to_simulate" in r:
            us = r["cpu_microseconds_per_subject"]
            lines.append(f"W4 quick: {r['subjects']} subjects in chunks of {r['chunk']}, 1 thread (median of "
                         f"{r['repeats']}): simulate_summary {us['simulate_summary']:.2f} us CPU/subject, simulate "
                         f"{us['simulate']:.2f}, ratio {r['ratio_to_simulate']:.2f}")
        elif name == "W4":
            lines.append(f"W4 {r['subjects']} subjects in chunks of {r['chunk']}, {r['threads']} threads: "
                         f"{r['seconds']:.1f} s ({r['cpu_seconds']:.1f} s CPU, "
                         f"{1e6 * r['cpu_seconds'] / r['subjects']:.2f} us CPU/subject), "
                         f"{r['microseconds_per_subject']['pkpd exact + reduction']:.2f} us/subject, ratio "
                         f"{r['ratio_to_solve_ivp']:.0f}x; peak traced {r['peak_traced_bytes'] / 1e6:.0f} MB, "
                         f"max RSS {r['max_rss_bytes'] / 1e6:.0f} MB")
        elif name == "S1":
            lines.append(f"S1 search {r['candidates']} candidates x {r['subjects']} subjects (warm): "
                         f"{r['seconds']:.1f} s, {r['milliseconds_per_candidate']:.1f} ms/candidate, "
                         f"{r['microseconds_per_subject_and_candidate']:.2f} us per subject and candidate")
            lines.append(f"  {r['strategy']}")
            lines.append(f"  {r['answer']}")
        elif name == "cold start":
            for label in ("engine and model cold", "model cold", "warm"):
                f = r[label]
                lines.append(f"{label} ({r['model']}): import {f['import_seconds']:.2f} s, model functions "
                             f"{f['load_seconds']:.2f} s, first simulate {f['first_simulate_seconds']:.2f} s, "
                             f"process {f['process_seconds']:.2f} s; signatures {f['signatures']}, "
                             f"cache hits {f['cache_hits']}, misses {f['cache_misses']}")
        lines.append("")
    return "\n".join(lines)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes on 1 thread, then check benchmarks/floors.toml (exit 1 on a regression)")
    parser.add_argument("--workload", action="append",
                        choices=["W1", "W2", "W3", "W4", "D1", "cold", "threads", "search"],
                        help="run only these (repeatable); default: all")
    parser.add_argument("--repeats", type=int, default=None, help="rounds per measurement (default 7; quick 5)")
    parser.add_argument("--w4-subjects", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path,
                        help="also write the run's record (machine, commit, every figure) as JSON to this file")
    parser.add_argument("--compare", type=Path, metavar="PREVIOUS.json",
                        help="print every figure beside the same figure of an earlier --json record")
    return parser.parse_args(argv)


# --- the record of a run, and comparing two -------------------------------------------------

def commit_of(directory=HERE.parent):
    """The checked-out git commit ('+dirty' with uncommitted changes to tracked files), or 'unknown'."""
    try:
        def git(*words):
            return subprocess.run(["git", *words], cwd=directory, capture_output=True, text=True,
                                  check=True).stdout.strip()
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def figures_of(results):
    """Every number of `results` under a flat name, e.g.
    ``"W1 n=1000 threads=1: cpu_microseconds_per_subject exact"`` (an asv-like benchmark name)."""
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix} {key}", item)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[prefix] = float(value)

    for result in results:
        name = result["workload"]
        label = " ".join([name] + [f"{key}={result[key]}" for key in ("workload_name", "subjects", "threads")
                                   if key in result]) + ":"
        for key, value in result.items():
            if key not in ("workload", "workload_name", "subjects", "threads", "repeats"):
                walk(f"{label} {key}", value)
    return flat


def record(results, machine, rows, elapsed, arguments):
    """The run as one JSON-ready mapping (after asv's results files: machine, commit, figures)."""
    return {"version": 1, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": commit_of(),
            "machine": machine, "mode": "quick" if arguments.quick else "full", "seconds": elapsed,
            "figures": figures_of(results), "floors": [list(r) for r in rows], "results": results}


def higher_is_better(name):
    return "ratio" in name or "speedup" in name or "cpu_per_wall" in name


def compare(current, previous, worse_by=0.10):
    """Lines: each figure of `current` also in `previous`, both values and the change; '<-' marks a
    change for the worse by more than `worse_by` (a fraction) of a time or ratio."""
    old = previous.get("figures", {})
    lines = [f"compared with {previous.get('commit', '?')} ({previous.get('date', '?')}, "
             f"{previous.get('mode', '?')} run):"]
    for name, value in current["figures"].items():
        if name not in old or not old[name]:
            continue
        change = value / old[name] - 1.0
        timed = "microseconds" in name or "seconds" in name or higher_is_better(name)
        worse = -change if higher_is_better(name) else change
        mark = "  <-" if timed and worse > worse_by else ""
        lines.append(f"  {name}: {old[name]:.4g} -> {value:.4g} ({100 * change:+.1f} %){mark}")
    return lines


def main(argv=None):
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    repeats = arguments.repeats or (5 if arguments.quick else 7)
    machine = wl.describe_machine()
    results = []
    start = time.perf_counter()
    if arguments.quick:
        selected = arguments.workload or ["W1", "W2", "D1", "W4"]
        for name in selected:
            if name == "D1":
                for n in QUICK[name]["sizes"]:
                    results.append(data_path_workload(n, repeats, 1))
            elif name == "W4":
                results.append(summary_workload(QUICK[name]["n"], QUICK[name]["chunk"], repeats))
            elif name == "search":
                results.append(search_workload())
            elif name in QUICK:
                q = QUICK[name]
                results.append(linear_workload(wl.WORKLOADS[name], q["n"], q["baseline"], q["reference"], repeats,
                                               1, memory=False))
    else:
        selected = arguments.workload or ["cold", "W1", "W2", "D1", "threads", "W4", "W3", "search"]
        for name in selected:
            if name == "D1":
                for n in (1000, 10_000):
                    results.append(data_path_workload(n, repeats, numba.config.NUMBA_NUM_THREADS))
            elif name in FULL:
                f = FULL[name]
                for n in f["sizes"]:
                    results.append(linear_workload(wl.WORKLOADS[name], n, f["baseline"], f["reference"], repeats,
                                                   numba.config.NUMBA_NUM_THREADS))
            elif name == "threads":
                for workload in (wl.W1, wl.W2):
                    results.append(thread_scaling(workload, 10_000, repeats))
            elif name == "W4":
                results.append(w4_workload(arguments.w4_subjects, 500, 20))
            elif name == "W3":
                results.append(w3_workload(1000, 3, max(1, min(repeats, 3))))
            elif name == "cold":
                results.append(cold_start())
            elif name == "search":
                results.append(search_workload())
    machine["numba_threads"] = numba.get_num_threads()
    machine["threading_layer"] = wl._threading_layer()
    elapsed = time.perf_counter() - start
    print(format_report(results, machine))
    print(f"({elapsed:.1f} s)")
    status = 0
    floors = tomllib.loads(FLOORS.read_text()) if FLOORS.exists() else {}
    rows = check_floors(results, floors) if arguments.quick else []
    for label, measured, bound, ok, relation in rows:
        print(f"{'ok  ' if ok else 'FAIL'} {label}: {measured:.3g} (must be {relation} {bound:g})")
        if not ok:
            status = 1
    for label in loose_floors(rows):
        print(f"note: {label} is over 1.5x its floor: if pkpd got faster, raise the floor (benchmarks/README.md)")
    this_run = record(results, machine, rows, elapsed, arguments)
    if arguments.compare:
        print("\n".join(compare(this_run, json.loads(arguments.compare.read_text()))))
    if arguments.json:
        arguments.json.write_text(json.dumps(this_run, indent=2, default=float))
    return status
