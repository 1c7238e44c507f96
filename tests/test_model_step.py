"""A model's own Dormand-Prince step (``model_dopri``, generated with its right-hand side
written into every stage) against a step taken independently with scipy's RK45 tableau and
the model's right-hand side; and the compiled step against the generated Python, bit for bit."""

import dataclasses
from types import SimpleNamespace
import sys

import numpy as np
import pytest
from scipy.integrate import RK45

import pkpd
from conftest import TEST_MODELS
from pkpd.model import generated_location
from pkpd.model.codegen import STRAIGHT_LINE_STATES, generate_source
from pkpd.engine import pointer
from pkpd.engine.constants import OPT_ATOL, OPT_RTOL, OPT_SIZE, W_ERR, W_K, W_NEW, W_ROWS
from pkpd.engine.linalg import NOT_FINITE_ERROR

pytestmark = pytest.mark.models(TEST_MODELS / "mm1cmt.toml")

MODELS = [TEST_MODELS / "mm1cmt.toml", "ketamine_mg_pain", "pk3cmt"]


def _python_module(model):
    """The model's generated module, imported anew: plain Python functions, nothing compiles."""
    sys.modules.pop(generated_location(model)[1], None)
    return dataclasses.replace(model, _module=None, _kernels=None).module


def _state(model, module, seed):
    """A state, dose rates and the environment (default inputs, derived terms filled in) of the model."""
    rng = np.random.default_rng(seed)
    n = len(model.compartments)
    e = np.zeros(module.N_ENV)
    e[:module.N_INPUTS] = model.input_defaults
    module.model_derive(e)
    return rng.uniform(0.1, 5.0, n), rng.uniform(0.0, 2.0, n), e


def _scipy_step(module, y, rate, e, h):
    """(new state, the seven stages, error estimate) of one step by scipy's RK45 coefficients."""
    def f(state):
        dydt = np.zeros_like(state)
        module.model_rhs(state, e, dydt)
        return dydt + rate

    stages = np.zeros((7, y.size))
    stages[0] = f(y)
    for s in range(1, 6):
        stages[s] = f(y + h * RK45.A[s, :s] @ stages[:s])
    new = y + h * RK45.B @ stages[:6]
    stages[6] = f(new)
    return new, stages, h * RK45.E @ stages


RTOL, ATOL = 1e-6, 1e-9


def _options():
    """The engine's option vector with the tolerances the step's error norm takes."""
    opts = np.zeros(OPT_SIZE)
    opts[OPT_RTOL], opts[OPT_ATOL] = RTOL, ATOL
    return opts


def _model_step(module, y, rate, e, h, first_stage):
    work = np.zeros((W_ROWS, y.size))
    work[W_K] = first_stage
    module.model_dopri(y, e, rate, h, _options(), work.reshape(-1))
    return work


@pytest.mark.parametrize("name", MODELS, ids=str)
@pytest.mark.parametrize("h", [1e-3, 0.05, 0.7])
def test_generated_step_is_a_dormand_prince_step(name, h):
    model = pkpd.load_model(name)
    module = _python_module(model)
    y, rate, e = _state(model, module, seed=len(str(name)))
    new, stages, error = _scipy_step(module, y, rate, e, h)
    work = _model_step(module, y, rate, e, h, stages[0])
    scale = np.abs(y).max() + h * np.abs(stages).max()
    np.testing.assert_allclose(work[W_NEW], new, rtol=1e-14, atol=1e-14 * scale)
    np.testing.assert_allclose(work[W_K:W_K + 7], stages, rtol=1e-13, atol=1e-13 * np.abs(stages).max())
    # the step's squared error norm: mean of (error / (atol + rtol max(|y|, |new|)))^2, as scipy's RK45 scales it
    squared_norm = np.mean((error / (ATOL + RTOL * np.maximum(np.abs(y), np.abs(new)))) ** 2)
    np.testing.assert_allclose(np.sqrt(work[W_ERR, 0]), np.sqrt(squared_norm), rtol=1e-6, atol=1e-14 * scale / ATOL)
    assert squared_norm > 0.0   # a real error estimate, not zeros


@pytest.mark.models("pk3cmt", "ketamine_mg_pain")
@pytest.mark.parametrize("name", ["pk3cmt", "ketamine_mg_pain"])   # written out, and loops
def test_a_step_that_leaves_finite_values_reports_it(name):
    model = pkpd.load_model(name)
    module = _python_module(model)
    y, rate, e = _state(model, module, seed=4)
    first = np.zeros_like(y)
    module.model_rhs(y, e, first)
    with np.errstate(all="ignore"):
        work = _model_step(module, y, rate, e, 1e300, first + rate)   # a step far too long: overflow
    assert work[W_ERR, 0] == NOT_FINITE_ERROR


def test_compiled_step_is_the_generated_python_bit_for_bit():
    model = pkpd.load_model(TEST_MODELS / "mm1cmt.toml")
    module = _python_module(model)
    y, rate, e = _state(model, module, seed=3)
    first = np.zeros_like(y)
    module.model_rhs(y, e, first)
    first += rate
    expected = _model_step(module, y, rate, e, 0.3, first)
    work = np.zeros((W_ROWS, y.size))
    work[W_K] = first
    model.kernels.dopri(pointer(y), pointer(e), pointer(rate), 0.3, pointer(_options()), pointer(work))
    assert np.array_equal(work, expected)


def _engine_steps(phi, g, y, count):
    """`count` steps y <- phi y + g in the engine's order of operations (pkpd.engine.integrate):
    acc = g[i], then acc += phi[i, j] * y[j] for j in order, all rows before y changes."""
    n = y.size
    y = [float(v) for v in y]
    rows = []
    for _ in range(count):
        new = []
        for i in range(n):
            acc = float(g[i])
            for j in range(n):
                acc += float(phi[i, j]) * y[j]
            new.append(acc)
        y = new
        rows.append(y)
    return np.array(rows)


@pytest.mark.models("pk3cmt", "ketamine_kamp2020")
@pytest.mark.parametrize("name", ["pk3cmt", "ketamine_kamp2020"])   # states written out, and loops
def test_exact_run_is_the_engine_step_and_the_models_outputs_bit_for_bit(name):
    """``model_exact`` (the exact path's run of output records on a grid) takes the engine's exact
    step and writes the model's own outputs, bit for bit, and leaves y at the last state."""
    model = pkpd.load_model(name)
    module = model.module
    y, _, e = _state(model, module, seed=5)
    rng = np.random.default_rng(6)
    n = y.size
    phi = rng.uniform(-0.4, 0.6, (n, n))
    g = rng.uniform(0.0, 1.0, n)
    count = 6
    expected_states = _engine_steps(phi, g, y, count)
    n_out = len(model.outputs)
    expected_values = np.zeros((count, n_out))
    for m in range(count):
        model.kernels.outputs(pointer(np.ascontiguousarray(expected_states[m])), pointer(e),
                              pointer(expected_values[m]))
    states = np.full((count, n), np.nan)
    values = np.full((count, n_out), np.nan)
    model.kernels.exact(pointer(y), pointer(e), pointer(phi), pointer(g), count, pointer(states), pointer(values))
    assert np.array_equal(states, expected_states)
    assert np.array_equal(values, expected_values)
    assert np.array_equal(y, expected_states[-1])
    assert (n <= STRAIGHT_LINE_STATES) == ("y0 = y[0]" in generate_source(model))


@pytest.mark.models("pk3cmt")
def test_written_out_step_is_the_looped_step_bit_for_bit(monkeypatch):
    """Small models' Dormand-Prince step is written out (every stage and state); larger ones keep
    the loops. Both forms take the same sums term by term: the same bits."""
    from pkpd.model import codegen

    model = pkpd.load_model("pk3cmt")
    module = _python_module(model)
    y, rate, e = _state(model, module, seed=8)

    def step(limit):
        monkeypatch.setattr(codegen, "STRAIGHT_LINE_DOPRI_STATES", limit)
        namespace = {}
        exec(compile(codegen.generate_source(model), "generated", "exec"), namespace)   # our own generated code
        first = np.zeros_like(y)
        namespace["model_rhs"](y, e, first)
        return _model_step(SimpleNamespace(model_dopri=namespace["model_dopri"]), y, rate, e, 0.2, first + rate)

    written_out, looped = step(len(y)), step(0)
    rows = [*range(W_K, W_K + 7), W_NEW]   # the step's contract (the loops also leave scratch in W_TMP)
    assert np.array_equal(written_out[rows], looped[rows])
    assert written_out[W_ERR, 0] == looped[W_ERR, 0] > 0.0   # the squared error norm
