"""The engine against independent answers: closed forms, scipy.linalg.expm and solve_ivp.

Criterion for linear models: abs(error) <= 1e-6*abs(reference) + 1e-9 on every
amount and concentration, for the exact path and for the adaptive ODE path.
"""

import numpy as np
import pandas as pd
import pytest

import pkpd
from conftest import TEST_MODELS
from pkpd._engine import run_stream
from pkpd.events.records import build_stream
from reference import linear_solution, ode_solution, records


def close(simulated, reference, relative=1e-6, absolute=1e-9):
    simulated = np.asarray(simulated, float)
    reference = np.asarray(reference, float)
    error = np.abs(simulated - reference)
    bound = relative * np.abs(reference) + absolute
    assert np.all(error <= bound), f"max excess {np.max(error - bound):.3g}, max error {error.max():.3g}"


def matrix_of(name):
    p = {k: v.value for k, v in pkpd.load_model(name).parameters.items()}
    if name == "pk1cmt":
        return np.array([[-p["KA"], 0], [p["KA"], -p["CL"] / p["V"]]]), p["V"]
    if name == "pk2cmt":
        k10, k12, k21 = p["CL"] / p["V2"], p["Q"] / p["V2"], p["Q"] / p["V3"]
        return np.array([[-p["KA"], 0, 0], [p["KA"], -k10 - k12, k21], [0, k12, -k21]]), p["V2"]
    k10, k12, k21 = p["CL"] / p["V2"], p["Q3"] / p["V2"], p["Q3"] / p["V3"]
    k13, k31 = p["Q4"] / p["V2"], p["Q4"] / p["V4"]
    return (np.array([[-p["KA"], 0, 0, 0], [p["KA"], -k10 - k12 - k13, k21, k31],
                      [0, k12, -k21, 0], [0, k13, 0, -k31]]), p["V2"])


MODELS = [pytest.param(name, marks=pytest.mark.models(name)) for name in ("pk1cmt", "pk2cmt", "pk3cmt")]
METHODS = ["exact", "rk45"]
TOLERANCES = dict(rtol=1e-10, atol=1e-12)
TIMES = np.round(np.concatenate([np.arange(0, 24, 0.25), np.arange(24, 169, 2.0)]), 10)
REGIMENS = {
    "depot_bolus": [(0.0, 0, 100.0, 0.0)],
    "central_bolus": [(0.0, 1, 100.0, 0.0)],
    "central_infusion": [(0.0, 1, 100.0, 2.5)],
    "repeated_oral": [(24.0 * k, 0, 50.0, 0.0) for k in range(5)],
    "repeated_infusion_and_bolus": [(12.0 * k, 1, 30.0, 1.5) for k in range(6)] + [(80.0, 0, 40.0, 0.0)],
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("regimen", list(REGIMENS))
@pytest.mark.parametrize("name", MODELS)
def test_linear_models_match_matrix_exponential(name, regimen, method):
    matrix, volume = matrix_of(name)
    doses = REGIMENS[regimen]
    model = pkpd.load_model(name)
    data = records(doses, TIMES, {i: i + 1 for i in range(matrix.shape[0])})
    result = pkpd.simulate_data(model, data, method=method, **TOLERANCES, amounts=True, variability="none")
    observed = result[data["EVID"].to_numpy() == 0]
    expected = linear_solution(matrix, doses, TIMES)
    close(observed[model.compartments].to_numpy(), expected)
    close(observed["CP"].to_numpy(), expected[:, 1] / volume)


@pytest.mark.models("pk1cmt")
def test_one_compartment_closed_form_bateman():
    # A2(t) = D*KA/(KA-k)*(exp(-k t) - exp(-KA t)) for a depot bolus, k = CL/V
    model = pkpd.load_model("pk1cmt")
    p = {k: v.value for k, v in model.parameters.items()}
    k = p["CL"] / p["V"]
    times = np.linspace(0, 48, 97)
    data = records([(0.0, 0, 100.0, 0.0)], times, {0: 1, 1: 2})
    result = pkpd.simulate_data(model, data, amounts=True, variability="none")
    observed = result[data["EVID"].to_numpy() == 0]
    expected = 100.0 * p["KA"] / (p["KA"] - k) * (np.exp(-k * times) - np.exp(-p["KA"] * times))
    close(observed["CENT"].to_numpy(), expected)


def ss_reference(matrix, dose, interval, cycles=400):
    """Trough..peak of the periodic steady state by brute force: many explicit doses."""
    t0, cmt, amount, duration = dose
    doses = [(interval * j, cmt, amount, duration) for j in range(cycles)]
    last = interval * (cycles - 1)
    times = last + np.linspace(0, interval, 25)
    return times - last, linear_solution(matrix, doses, times)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dose", [(0.0, 0, 100.0, 0.0), (0.0, 1, 100.0, 0.0), (0.0, 1, 100.0, 3.0),
                                  (0.0, 1, 100.0, 30.0)],
                         ids=["depot_bolus", "central_bolus", "infusion", "infusion_longer_than_interval"])
@pytest.mark.parametrize("name", MODELS)
def test_steady_state_matches_long_dose_train(name, dose, method):
    matrix, volume = matrix_of(name)
    interval = 24.0
    phase, expected = ss_reference(matrix, dose, interval)
    _, cmt, amount, duration = dose
    rows = [dict(ID=1, TIME=0.0, EVID=1, AMT=amount, CMT=cmt + 1, RATE=amount / duration if duration else 0,
                 II=interval, SS=1, ADDL=0)]
    rows += [dict(ID=1, TIME=t, EVID=0, AMT=0, CMT=2, RATE=0, II=0, SS=0, ADDL=0) for t in phase]
    data = pd.DataFrame(rows)
    result = pkpd.simulate_data(name, data, method=method, **TOLERANCES, amounts=True, variability="none")
    # the brute-force train includes the dose at `last`; the SS record's own dose plays that role
    close(result[model_states(name)].to_numpy()[1:], expected, relative=1e-6, absolute=1e-7)


def model_states(name):
    return pkpd.load_model(name).compartments


@pytest.mark.models(TEST_MODELS / "mm1cmt.toml")
@pytest.mark.parametrize("method", ["rk45", "rosenbrock"])
def test_nonlinear_michaelis_menten_matches_solve_ivp(method):
    model = pkpd.load_model(TEST_MODELS / "mm1cmt.toml")
    p = {k: v.value for k, v in model.parameters.items()}

    def rhs(y):
        c = y[1] / p["V"]
        return np.array([-p["KA"] * y[0], p["KA"] * y[0] - p["VMAX"] * c / (p["KM"] + c)])

    doses = [(0.0, 0, 200.0, 0.0), (12.0, 1, 100.0, 2.0), (24.0, 0, 200.0, 0.0)]
    times = np.linspace(0, 60, 121)
    data = records(doses, times, {0: 1, 1: 2})
    result = pkpd.simulate_data(model, data, method=method, rtol=1e-10, atol=1e-12, amounts=True, variability="none")
    observed = result[data["EVID"].to_numpy() == 0]
    expected = ode_solution(rhs, 2, doses, times, rtol=1e-12, atol=1e-14, method="DOP853")
    close(observed[["DEPOT", "CENT"]].to_numpy(), expected)
    assert not model.is_linear


def stiff_model_and_rhs():
    """tests/models/stiff.toml and its right-hand side written out independently, for scipy."""
    model = pkpd.load_model(TEST_MODELS / "stiff.toml")
    p = {k: v.value for k, v in model.parameters.items()}

    def rhs(y):
        c = y[0] / p["V"]
        elimination = p["VMAX"] * c / (p["KM"] + c)
        return np.array([-p["K12"] * y[0] + p["K21"] * y[1] - elimination, p["K12"] * y[0] - p["K21"] * y[1]])

    return model, rhs


@pytest.mark.models(TEST_MODELS / "stiff.toml")
def test_stiff_model_with_rosenbrock_matches_radau():
    model, rhs = stiff_model_and_rhs()

    doses = [(0.0, 0, 50.0, 0.0), (10.0, 0, 50.0, 4.0)]
    times = np.linspace(0, 40, 81)
    data = records(doses, times, {0: 1, 1: 2}, obs_cmt=1)
    result = pkpd.simulate_data(model, data, method="rosenbrock", rtol=1e-8, atol=1e-10, amounts=True, variability="none")
    observed = result[data["EVID"].to_numpy() == 0]
    expected = ode_solution(rhs, 2, doses, times, rtol=1e-11, atol=1e-13, method="Radau")
    close(observed[["CENT", "TISSUE"]].to_numpy(), expected, relative=1e-5, absolute=1e-8)


@pytest.mark.models(TEST_MODELS / "stiff.toml")
@pytest.mark.parametrize("rtol", [1e-6, 1e-8])
def test_stiff_dense_output_inside_long_steps_matches_radau(rtol):
    # Outputs between the steps of the stiff method (a 100 mg bolus, then 20 mg over 1 h at 5 h,
    # read every 0.01 h through simulate) stay within a few rtol of Radau at rtol 1e-11, also
    # just after the infusion starts: the step size restarts at every dose (a step carried over
    # the fast transient once left the interpolated values 150 rtol off at rtol 1e-6).
    model, rhs = stiff_model_and_rhs()

    times = np.linspace(0, 24, 2401)
    expected = ode_solution(rhs, 2, [(0.0, 0, 100.0, 0.0), (5.0, 0, 20.0, 1.0)], times, rtol=1e-11, atol=1e-13,
                            method="Radau")
    regimen = [pkpd.Dose(100.0, "CENT"), pkpd.Dose(20.0, "CENT", time=5.0, duration=1.0)]
    result = pkpd.simulate(model, regimen, 1, times, method="rosenbrock", rtol=rtol, atol=rtol * 1e-2,
                           variability=False)
    cent = result.states[0, :, 0]
    assert np.max(np.abs(cent - expected[:, 0]) / np.abs(expected[:, 0])) < 20 * rtol


def pk2cmt_matrix_problem():
    """pk2cmt after a 100 mg depot bolus, outputs every hour for 12 h: (model, data, exact amounts)."""
    matrix, _ = matrix_of("pk2cmt")
    doses = [(0.0, 0, 100.0, 0.0)]
    times = np.arange(0.0, 13.0)
    return pkpd.load_model("pk2cmt"), records(doses, times, {0: 1, 1: 2, 2: 3}), linear_solution(matrix, doses, times)


@pytest.mark.models("pk2cmt")
@pytest.mark.parametrize("method, order", [("rk45", 5), ("rosenbrock", 4)])
def test_ode_methods_converge_at_their_order(method, order):
    # Fixed steps h (h_max = h, and tolerances so loose that no step is rejected or shortened; every
    # output time is a step end, so no dense output is involved): the global error of a method of
    # order p falls as h**p. Dormand-Prince 5(4) propagates its 5th-order solution, RODAS4 its
    # 4th-order one. The slope of log(error) against log(h) over h = 1/4 ... 1/32 h (errors from
    # 1e-6 down to 1e-12, far above rounding) must be within 0.3 of p; measured 5.13 and 4.01.
    model, data, exact = pk2cmt_matrix_problem()
    stream = build_stream(model, data)
    observed = data["EVID"].to_numpy() == 0
    steps = 2.0 ** -np.arange(2, 6)
    errors = []
    for h in steps:
        states, _, status = run_stream(model, stream, method=method, rtol=0.5, atol=1e6, h_max=h)
        assert not status.any()
        errors.append(np.max(np.abs(states[observed] - exact) / np.abs(exact).max(axis=0)))
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - order) <= 0.3, f"observed order {slope:.2f}, errors {errors}"


@pytest.mark.models("pk2cmt")
@pytest.mark.parametrize("method", ["rk45", "rosenbrock"])
def test_ode_error_is_proportional_to_the_tolerance(method):
    # With error control per step and local extrapolation, the global error of either method is
    # proportional to the tolerance (Hairer, Norsett & Wanner I, II.4): over rtol = 1e-4 ... 1e-7 the
    # slope of log(error) against log(rtol) must be within 0.2 of 1 (measured 0.93 and 0.95), and
    # the error below rtol itself.
    model = pkpd.load_model("pk2cmt")
    doses = [(0.0, 0, 100.0, 0.0), (24.0, 1, 100.0, 2.0)]
    times = np.linspace(0, 72, 145)
    data = records(doses, times, {0: 1, 1: 2, 2: 3})
    exact = pkpd.simulate_data(model, data, method="exact", amounts=True, variability="none")["CENT"].to_numpy()
    tolerances = 10.0 ** -np.arange(4, 8)
    errors = []
    for rtol in tolerances:
        approx = pkpd.simulate_data(model, data, method=method, rtol=rtol, atol=rtol * 1e-2, amounts=True, variability="none")["CENT"].to_numpy()
        errors.append(np.max(np.abs(approx - exact) / (np.abs(exact) + 1e-6)))
    slope = np.polyfit(np.log(tolerances), np.log(errors), 1)[0]
    assert abs(slope - 1.0) <= 0.2, f"error ~ rtol**{slope:.2f}, errors {errors}"
    assert np.all(np.array(errors) < tolerances), errors
