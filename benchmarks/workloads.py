"""The standard workloads of issue 8 and their in-process baselines.

Each workload is defined exactly as it was timed side by side with mrgsolve,
numbalsoda and scipy (issue 8):

W1  ketamine 2 compartments (CL 80 L/h, V1 20 L, Q 150 L/h, V2 200 L), 80 % of
    its clearance forming norketamine in 1 compartment (CL 25 L/h, V 120 L);
    log-normal IIV 30 % CV on ketamine CL, V1 and norketamine CL
    (omega = log(1 + 0.3^2)); weight normal(75, 12) kg truncated to 45-130 kg;
    0.5 mg/kg over 2 h; ketamine and norketamine every 0.25 h from 0 to 48 h;
    rtol = atol = 1e-8.
W2  W1's infusion every 24 h for 7 days, hourly output from 0 to 192 h.
W3  35-day three-arm crossover period (ketamine 0.5 mg/kg over 2 h; the same
    with magnesium sulfate 3 g over 2 h; saline) of ``models/ketamine_mg_pain``,
    1,000 subjects per arm, hourly output.
W4  1,000,000 subjects of W1 reduced in chunks to percentiles over subjects
    and exposure metrics.
S1  regimen search (issue 18): 500 candidates (25 loading doses x 20 maintenance
    rates of W1's ketamine, a bolus then a 4-h infusion) x 1,000 subjects of
    W1's population, each candidate's fraction of subjects within 80-250 ng/mL
    from 20 min to 4 h (continuous window metric; at least 80 %) and its total dose; output
    every 15 min for 6 h; the solver's default tolerances.
D1  the data path: W1 written as a NONMEM data set (a dose record and 193
    observation records per subject, each record carrying the subject's
    parameters and weight) through ``pkpd.simulate_data``, against
    ``pkpd.simulate`` of the same subjects and regimen.

The baselines are independent of pkpd's engine: ``solve_ivp_subject`` is the
per-subject ``scipy.integrate.solve_ivp`` (LSODA) loop a pharmacologist would
write, restarted at every infusion start and end; ``expm_subject`` is the exact
solution by ``scipy.linalg.expm``, each output computed from the last
breakpoint (no error accumulates from one output to the next).
"""

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp
from scipy.linalg import expm

import pkpd
from pkpd.events.regimen import resolve_target
from pkpd.engine import pointer

MODELS = Path(__file__).resolve().parent / "models"
W1_MODEL = MODELS / "w1_ketamine_nk.toml"
W3_MODEL = "ketamine_mg_pain"
TOLERANCES = {"rtol": 1e-8, "atol": 1e-8}
WEIGHT = {"WT": {"distribution": "normal", "mean": 75.0, "sd": 12.0, "min": 45.0, "max": 130.0,
                 "unit": "kg", "description": "body weight, issue 8"}}
SEED = 2020
MAGNESIUM_SULFATE_MMOL = 3.0 * 4.06   # 3 g MgSO4.7H2O = 12.2 mmol Mg (models/ketamine_mg_pain.toml [drugs])


@dataclass(frozen=True)
class Workload:
    """One benchmark workload.

    Attributes
    ----------
    name : str
    description : str
    model : str or Path
        Library name or model file.
    arms : dict of str to list of pkpd.Dose
        Regimen of each arm (W1, W2 and W4 have one arm).
    times : ndarray, shape (n_times,), h
    outputs : tuple of str
        Model outputs compared with the references.
    """
    name: str
    description: str
    model: object
    arms: dict
    times: np.ndarray
    outputs: tuple


def ketamine_infusion(**repeat):
    return pkpd.Dose(0.5, "ketamine", duration=2.0, per_weight=True, **repeat)


W1 = Workload("W1", "ketamine + norketamine, 0.5 mg/kg over 2 h, every 0.25 h for 48 h", W1_MODEL,
              {"ketamine": [ketamine_infusion()]}, np.linspace(0.0, 48.0, 193), ("KETAMINE", "NORKETAMINE"))
W2 = Workload("W2", "W1's infusion every 24 h for 7 days, hourly for 192 h", W1_MODEL,
              {"ketamine": [ketamine_infusion(every=24.0, count=7)]}, np.linspace(0.0, 192.0, 193),
              ("KETAMINE", "NORKETAMINE"))
W3 = Workload("W3", "three arms (ketamine, ketamine + MgSO4 3 g, saline), 35 days hourly", W3_MODEL,
              {"ketamine": [ketamine_infusion()],
               "ketamine + magnesium": [ketamine_infusion(),
                                        pkpd.Dose(MAGNESIUM_SULFATE_MMOL, "magnesium", duration=2.0)],
               "saline": []},
              np.linspace(0.0, 840.0, 841), ("KETAMINE", "NORKETAMINE", "MAGNESIUM", "PAIN"))
WORKLOADS = {w.name: w for w in (W1, W2, W3)}

S1_TIMES = np.linspace(0.0, 6.0, 25)
S1_SEARCH = {
    "variables": {"loading": {"set": "doses[0].amount", "from": "0.05 mg/kg", "to": "1.25 mg/kg",
                              "step": "0.05 mg/kg"},
                  "rate": {"set": "doses[1].rate", "from": "0.05 mg/kg/h", "to": "1 mg/kg/h", "step": "0.05 mg/kg/h"}},
    "constraints": [{"metric": "fraction_within", "output": "KETAMINE", "window": ["80 ng/mL", "250 ng/mL"],
                     "interval": ["20 min", "4 h"], "at_least": "80 %"}],
    "objective": {"minimise": "total_dose"},
    "budget": 500,
}


def s1_regimen():
    """S1's template: a bolus, then a 4-h infusion (both per kg); the search sets the amount and the rate."""
    return [pkpd.Dose(0.25, "ketamine", per_weight=True),
            pkpd.Dose(None, "ketamine", rate=0.25, duration=4.0, per_weight=True)]


def search(subjects, **search):
    """pkpd.search of S1 in `subjects` (keys of S1_SEARCH may be overridden, e.g. a smaller budget)."""
    return pkpd.search(load(W1_MODEL), s1_regimen(), subjects, S1_TIMES, progress=False, **{**S1_SEARCH, **search})


def population(n, start=0, seed=SEED):
    """Subjects start..start+n-1 of the benchmark population (weight only; the same ids give the same numbers)."""
    return pkpd.Population(covariates=WEIGHT, seed=seed, subject_ids=np.arange(start, start + n, dtype=np.int64))


@functools.lru_cache(maxsize=None)
def load(model):
    """The workload's model, loaded (and compiled or read from the cache) once per process."""
    return pkpd.load_model(model)


def simulate(workload, subjects, method, arm=None):
    """pkpd.simulate of one arm (the first by default); returns the SimulationResult."""
    doses = workload.arms[arm if arm is not None else next(iter(workload.arms))]
    return pkpd.simulate(load(workload.model), doses, subjects, workload.times, method=method, progress=False,
                         **TOLERANCES)


def w1_data_set(result, weights):
    """W1 as a NONMEM data set: what ``simulate_data`` must turn back into `result` (W1's simulation).

    Per subject a dose record (EVID 1, AMT 0.5 mg/kg x WT over 2 h as RATE, CMT 1)
    and one observation record (EVID 0, CMT 1) per output time; every record
    carries the subject's individual parameters (the columns of
    ``result.parameters``, named like the model's inputs) and its weight WT, the
    way a data set exported from a population analysis does.

    Returns
    -------
    pandas.DataFrame, shape (n_subjects * (1 + n_times), 8 + n_inputs)
    """
    import pandas as pd

    workload = W1
    (dose,) = workload.arms["ketamine"]
    n = weights.size
    per_subject = 1 + workload.times.size
    first = np.zeros(per_subject, bool)
    first[0] = True
    amount = dose.amount * weights
    is_dose = np.tile(first, n)
    columns = {"ID": np.repeat(np.arange(1, n + 1), per_subject),
               "TIME": np.tile(np.concatenate([[0.0], workload.times]), n),
               "EVID": is_dose.astype(np.int64),
               "AMT": np.where(is_dose, np.repeat(amount, per_subject), 0.0),
               "CMT": np.ones(n * per_subject, np.int64),
               "RATE": np.where(is_dose, np.repeat(amount / dose.duration, per_subject), 0.0),
               "MDV": is_dose.astype(np.int64),
               "WT": np.repeat(weights, per_subject)}
    for name in result.model.inputs:
        columns[name] = np.repeat(result.parameters[name].to_numpy(float), per_subject)
    return pd.DataFrame(columns)


# --- W1/W2 baselines: the model written out by hand --------------------------------

def w1_matrix(parameters):
    """Rate matrix (1/h) of the W1 model for one subject's parameters (dict or Series)."""
    CL, V1, Q, V2 = parameters["CL"], parameters["V1"], parameters["Q"], parameters["V2"]
    FM, CL_NK, V_NK = parameters["FM"], parameters["CL_NK"], parameters["V_NK"]
    return np.array([[-(CL + Q) / V1, Q / V2, 0.0],
                     [Q / V1, -Q / V2, 0.0],
                     [FM * CL / V1, 0.0, -CL_NK / V_NK]])


def w1_outputs(states, parameters):
    """KETAMINE and NORKETAMINE (ng/mL) from amounts (mg), shape (n_times, 2)."""
    return np.column_stack([1000.0 * states[:, 0] / parameters["V1"], 1000.0 * states[:, 2] / parameters["V_NK"]])


def infusions(doses, weight):
    """(start, end, rate) of every infusion into compartment 0 for one subject of weight `weight` kg."""
    out = []
    for dose in doses:
        if not dose.duration > 0:
            raise ValueError("the baselines handle infusions only (every workload dose is an infusion)")
        amount = dose.amount * (weight if dose.per_weight else 1.0)
        for start in dose.start_times():
            out.append((float(start), float(start) + dose.duration, amount / dose.duration))
    return out


def _segments(infusion_list, times, n_states):
    """Breakpoints and the constant input vector on each segment between them."""
    edges = {float(times[0]), float(times[-1])}
    for start, end, _ in infusion_list:
        edges.update(t for t in (start, end) if times[0] <= t <= times[-1])
    edges = sorted(edges)
    for a, b in zip(edges[:-1], edges[1:]):
        rate = np.zeros(n_states)
        for start, end, value in infusion_list:
            if start <= a < end:
                rate[0] += value
        yield a, b, rate


def _linear_rhs(t, y, matrix, rate):
    return matrix @ y + rate


def solve_ivp_subject(matrix, infusion_list, times, rtol, atol):
    """Amounts at `times` by a per-subject solve_ivp (LSODA) restarted at each infusion start and end.

    Returns
    -------
    ndarray, shape (n_times, n_states)
    """
    n = matrix.shape[0]
    y = np.zeros(n)
    out = np.empty((times.size, n))
    segments = list(_segments(infusion_list, times, n))
    for index, (a, b, rate) in enumerate(segments):
        last = index == len(segments) - 1
        mask = (times >= a) & ((times <= b) if last else (times < b))
        t_eval = times[mask]
        if t_eval.size == 0 or t_eval[-1] != b:
            t_eval = np.append(t_eval, b)
        solution = solve_ivp(_linear_rhs, (a, b), y, method="LSODA", t_eval=t_eval, rtol=rtol, atol=atol,
                             args=(matrix, rate))
        if not solution.success:
            raise RuntimeError(f"solve_ivp baseline failed: {solution.message}")
        out[mask] = solution.y[:, :mask.sum()].T
        y = solution.y[:, -1]
    return out


def expm_subject(matrix, infusion_list, times):
    """Exact amounts at `times` by scipy.linalg.expm of the augmented matrix [[A, c], [0, 0]] from each breakpoint."""
    n = matrix.shape[0]
    y = np.zeros(n)
    out = np.empty((times.size, n))
    segments = list(_segments(infusion_list, times, n))
    for index, (a, b, rate) in enumerate(segments):
        last = index == len(segments) - 1
        augmented = np.zeros((n + 1, n + 1))
        augmented[:n, :n] = matrix
        augmented[:n, n] = rate
        start = np.append(y, 1.0)
        for i in np.flatnonzero((times >= a) & ((times <= b) if last else (times < b))):
            out[i] = (expm(augmented * (times[i] - a)) @ start)[:n]
        y = (expm(augmented * (b - a)) @ start)[:n]
    return out


def relative_difference(values, reference, peak_fraction=0.0):
    """Largest |values - reference| / scale over all entries (entries where both are 0 count as 0).

    values, reference : array_like, shape (n_subjects, n_times, n_outputs)
    peak_fraction : float
        scale = max(|reference|, peak_fraction * the subject's peak |reference| of that
        output over time); 0 gives the plain relative difference. W3 uses 1e-6: after
        35 days a single dose of ketamine has decayed to 1e-30 of its peak, where a
        relative difference measures nothing but rounding.
    """
    values = np.asarray(values, float)
    reference = np.asarray(reference, float)
    difference = np.abs(values - reference)
    scale = np.abs(reference)
    if peak_fraction > 0.0:
        scale = np.maximum(scale, peak_fraction * scale.max(axis=1, keepdims=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(difference == 0.0, 0.0, difference / scale)
    return float(np.max(ratio))


def weights_of(subjects):
    """Body weights (kg) of a population, shape (n,)."""
    return subjects.covariates["WT"].to_numpy(float)


def w1_baseline(workload, result, weights, subjects, rtol, atol):
    """solve_ivp outputs of the first `subjects` subjects of `result`, shape (subjects, n_times, 2)."""
    doses = next(iter(workload.arms.values()))
    out = np.empty((subjects, workload.times.size, 2))
    for i in range(subjects):
        parameters = result.parameters.iloc[i]
        weight = float(weights[i])
        states = solve_ivp_subject(w1_matrix(parameters), infusions(doses, weight), workload.times, rtol, atol)
        out[i] = w1_outputs(states, parameters)
    return out


def w1_reference(workload, result, weights, subjects):
    """Exact (expm) outputs of the first `subjects` subjects of `result`, shape (subjects, n_times, 2)."""
    doses = next(iter(workload.arms.values()))
    out = np.empty((subjects, workload.times.size, 2))
    for i in range(subjects):
        parameters = result.parameters.iloc[i]
        states = expm_subject(w1_matrix(parameters), infusions(doses, float(weights[i])), workload.times)
        out[i] = w1_outputs(states, parameters)
    return out


# --- W3 baseline: the model's own right-hand side ---------------------------------

def generic_rhs(t, y, context, rate):
    kernels, e, dydt = context
    kernels.rhs(pointer(np.ascontiguousarray(y)), pointer(e), pointer(dydt))
    return dydt + rate


def generic_baseline(workload, result, weights, arm, subjects, rtol, atol, method="LSODA"):
    """solve_ivp of the model's generated right-hand side (W3): outputs of the first `subjects` subjects.

    The right-hand side is the model's compiled right-hand side called from Python
    (what a user with the model as a Python function would write); infusions of
    several drugs are restarted at every start and end.
    """
    model = result.model
    module, kernels = model.module, model.kernels
    n_states = len(model.compartments)
    out = np.empty((subjects, workload.times.size, len(model.outputs)))
    doses = workload.arms[arm]
    for i in range(subjects):
        e = np.zeros(module.N_ENV)
        e[:module.N_INPUTS] = result.parameters.iloc[i].to_numpy(float)
        kernels.derive(pointer(e))
        weight = float(weights[i])
        by_compartment = {}
        for dose in doses:
            cmt = resolve_target(model, dose.target)
            by_compartment.setdefault(cmt, []).extend(infusions([dose], weight))
        states = _solve_multi(kernels, e, by_compartment, workload.times, n_states, rtol, atol, method)
        values = np.empty((workload.times.size, len(model.outputs)))
        for k in range(workload.times.size):
            kernels.outputs(pointer(states[k]), pointer(e), pointer(values[k]))
        out[i] = values
    return out


def _solve_multi(kernels, e, by_compartment, times, n_states, rtol, atol, method):
    edges = {float(times[0]), float(times[-1])}
    for items in by_compartment.values():
        for start, end, _ in items:
            edges.update(t for t in (start, end) if times[0] <= t <= times[-1])
    edges = sorted(edges)
    y = np.zeros(n_states)
    kernels.initial(pointer(e), pointer(y))
    out = np.empty((times.size, n_states))
    context = (kernels, e, np.empty(n_states))
    for index, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        rate = np.zeros(n_states)
        for cmt, items in by_compartment.items():
            for start, end, value in items:
                if start <= a < end:
                    rate[cmt] += value
        last = index == len(edges) - 2
        mask = (times >= a) & ((times <= b) if last else (times < b))
        t_eval = times[mask]
        if t_eval.size == 0 or t_eval[-1] != b:
            t_eval = np.append(t_eval, b)
        solution = solve_ivp(generic_rhs, (a, b), y, method=method, t_eval=t_eval, rtol=rtol, atol=atol,
                             args=(context, rate))
        if not solution.success:
            raise RuntimeError(f"solve_ivp baseline failed: {solution.message}")
        out[mask] = solution.y[:, :mask.sum()].T
        y = solution.y[:, -1]
    return out


def describe_machine():
    """nproc, CPU model and versions, for the figures table."""
    import os
    import platform

    import numba
    import scipy

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "numba": numba.__version__, "pkpd": pkpd.__version__
            if hasattr(pkpd, "__version__") else "unknown", "threading_layer": _threading_layer(),
            "numba_threads": numba.get_num_threads()}


def _threading_layer():
    import numba
    try:
        return numba.threading_layer()
    except ValueError:
        return "not initialised"

