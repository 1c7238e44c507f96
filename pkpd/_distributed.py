"""Beyond one machine: chunks of subjects and trial replicates as dask.distributed tasks.

In-process Numba threads stay the default; this backend sends the same chunks
to a ``dask.distributed`` cluster (an existing scheduler, or a ``LocalCluster``
started here). Every subject's random numbers depend only on (seed, subject
id), so a chunk computed on any worker gives the numbers the single-process
run gives, whatever the number of workers or the chunk size. Tasks are pure
functions of their inputs: when a worker dies, the scheduler reruns its tasks
elsewhere and nothing is lost or counted twice.

Compilation happens once per worker process: a task loads the model by path
(the generated code and Numba's cache are on disk, keyed by the model's hash)
and keeps it in a per-process table, so later tasks reuse the compiled engine.

Reductions never gather trajectories when they need not: ``simulate_summary``
merges per-chunk quantile sketches (mergeable, with a stated relative error)
and per-subject exposure metrics; ``trial`` gathers only the per-replicate
endpoint arrays (replicates x patients x periods).
"""

import contextlib

import numpy as np
import pandas as pd

from . import _metrics
from ._errors import PkpdError

_MODELS = {}


def _require():
    try:
        import distributed  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the installation
        raise PkpdError("the distributed backend needs dask.distributed: pip install 'pkpd[distributed]'") from None


@contextlib.contextmanager
def cluster(scheduler=None, workers=None, threads_per_worker=1):
    """A dask Client: to `scheduler` (``tcp://HOST:PORT``), or to a LocalCluster of `workers` processes."""
    _require()
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    local = LocalCluster(n_workers=workers or 2, threads_per_worker=threads_per_worker, processes=True,
                         dashboard_address=None, host="127.0.0.1")
    client = Client(local)
    try:
        yield client
    finally:
        client.close()
        local.close()


def _model_key(model):
    """What a worker needs to rebuild `model`: its file, the file's hash and every parameter
    value (a scenario or ``with_parameters`` may have changed them; the file has the defaults)."""
    return str(model.path), model.hash, tuple((name, p.value) for name, p in model.parameters.items())


def _model(key):
    """The model of a :func:`_model_key`, loaded (and compiled) once per worker process."""
    from ._model import load_model

    path, source_hash, values = key
    if key not in _MODELS:
        base = _MODELS.get((path, source_hash))
        if base is None:
            base = load_model(path)
            if base.hash != source_hash:
                raise PkpdError("the model file on the worker differs from the client's (hash mismatch)", file=path)
            _MODELS[(path, source_hash)] = base
        changed = {name: value for name, value in values if base.parameters[name].value != value}
        _MODELS[key] = base.with_parameters(changed, origin="client") if changed else base
    return _MODELS[key]


def _simulate_chunk(model_key, regimen, population, times, options):
    from ._simulate import simulate

    result = simulate(_model(model_key), regimen, population, times, progress=False, **options)
    return result.values, result.states


def _summary_chunk(model_key, regimen, population, times, options, outputs, quantiles, accuracy,
                   interval, thresholds, windows):
    from ._simulate import simulate

    result = simulate(_model(model_key), regimen, population, times, progress=False, **options)
    sketches, exposures = {}, {}
    for output in outputs:
        values = np.ascontiguousarray(result.output(output))
        sketch = _metrics.PercentileAccumulator(times.size, quantiles=quantiles, relative_accuracy=accuracy)
        sketch.add(values)
        sketches[output] = sketch
        exposures[output] = _metrics.exposure_metrics(times, values, interval=interval,
                                                      thresholds=thresholds.get(output, ()),
                                                      windows=windows.get(output, ()))
    return sketches, exposures


def _ranges(n, chunk_subjects):
    return [(start, min(start + chunk_subjects, n)) for start in range(0, n, chunk_subjects)]


def simulate(client, model, regimen, population, times, *, chunk_subjects=1000, **options):
    """:func:`pkpd.simulate` with chunks of subjects as tasks; the same SimulationResult, the same numbers."""
    from ._model import load_model
    from ._simulate import SimulationResult, _Run

    model = load_model(model)
    times = np.asarray(times, dtype=np.float64)
    futures = [client.submit(_simulate_chunk, _model_key(model), regimen, population.subset(a, b),
                             times, options, pure=False) for a, b in _ranges(population.subject_ids.size,
                                                                             chunk_subjects)]
    parts = client.gather(futures)
    values = np.concatenate([p[0] for p in parts])
    states = np.concatenate([p[1] for p in parts])
    # parameters, etas and the (possibly specialised) model as the in-process run has them
    run = _Run(model, regimen, population, times, method=options.get("method", "auto"), rtol=1e-8, atol=1e-10,
               variability=options.get("variability", True), chunk_subjects=None, progress=False, max_steps=1)
    parameters = pd.DataFrame(run.inputs, columns=model.inputs, index=pd.Index(population.subject_ids, name="ID"))
    return SimulationResult(model=run.model, times=run.times, values=values, states=states,
                            subject_ids=population.subject_ids, parameters=parameters, etas=run.etas,
                            seed=population.seed, regimen=run.regimen, method=run.options["method"])


def simulate_summary(client, model, regimen, population, times, *, outputs=None, quantiles=(5, 25, 50, 75, 95),
                     relative_accuracy=0.005, interval=None, thresholds=None, windows=None, chunk_subjects=10_000,
                     **options):
    """:func:`pkpd.simulate_summary` on a cluster: sketches and metrics merged, no trajectory gathered."""
    from ._model import load_model
    from ._simulate import SummaryResult

    model = load_model(model)
    times = np.asarray(times, dtype=np.float64)
    outputs = list(outputs or model.outputs)
    futures = [client.submit(_summary_chunk, _model_key(model), regimen, population.subset(a, b), times,
                             options, outputs, tuple(quantiles), relative_accuracy, interval, thresholds or {},
                             windows or {}, pure=False)
               for a, b in _ranges(population.subject_ids.size, chunk_subjects)]
    merged, exposures = None, {o: [] for o in outputs}
    for sketches, exposure in client.gather(futures):  # in submission order: deterministic concatenation
        if merged is None:
            merged = sketches
        else:
            for output in outputs:
                merged[output].merge(sketches[output])
        for output in outputs:
            exposures[output].append(exposure[output])
    frames = []
    for output in outputs:
        frame = pd.DataFrame({"output": output, "TIME": times})
        for q, row in zip(quantiles, merged[output].result()):
            frame[f"P{q:g}"] = row
        frames.append(frame)
    exposure = {o: {k: np.concatenate([p[k] for p in exposures[o]]) for k in exposures[o][0]} for o in outputs}
    return SummaryResult(percentiles=pd.concat(frames, ignore_index=True), exposure=exposure,
                         n=int(population.subject_ids.size), units={o: model.outputs[o].unit for o in outputs})


def _trial_chunk(scenario, design, first, count):
    from ._trial import simulate_trial_scores

    scores, baseline, sequence, stay = simulate_trial_scores(scenario, design, replicates=count,
                                                             first_replicate=first)
    return scores, baseline, stay


def trial(client, scenario, *, replicates_per_task=50, replicates=None):
    """:func:`pkpd.trial` with chunks of replicate trials as tasks; power counts from the same endpoints."""
    from ._scenario import load_scenario
    from ._trial import designs_of, endpoint_values, power_table

    if not hasattr(scenario, "trial"):
        scenario = load_scenario(scenario)
    tables = []
    for design in designs_of(scenario):
        if replicates is not None:
            design.replicates = replicates
        chunks = [(first, min(replicates_per_task, design.replicates - first))
                  for first in range(0, design.replicates, replicates_per_task)]
        futures = [client.submit(_trial_chunk, scenario, design, first, count, pure=False) for first, count in chunks]
        parts = client.gather(futures)
        scores = np.concatenate([p[0] for p in parts])
        baseline = np.concatenate([p[1] for p in parts])
        stay = np.concatenate([p[2] for p in parts])
        sequence = np.arange(max(design.sample_sizes)) % len(design.sequences)
        tables.append(power_table(design, endpoint_values(design, scores, baseline), sequence, stay))
    return pd.concat(tables, ignore_index=True)
