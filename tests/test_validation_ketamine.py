"""Ketamine predictions against published observations, by sampling site (issue 16).

Tolerances, stated before any result was seen:
- racemic ketamine 0.5 mg/kg over 40 min, venous peak: inside the published range
  100-250 ng/mL (Zanos 2018 Pharmacol Rev 70:621, Table 1: dissociation at 100-250 ng/mL,
  Krystal 1994; the central value quoted there, 185 ng/mL, Zarate 2006, is reported as a
  percentage, not asserted). Nothing in the venous link was fitted to these numbers.
- arterial/venous difference after a short infusion: the DIRECTION published by Henthorn
  2018 (Anesthesiology 129:260): venous below arterial during the infusion, above it after.
  Its SIZE: the one published number found (docs/literature/arterial-venous-ketamine.md) is
  Persson 2002 (Eur J Clin Pharmacol 57:869, abstract): arterial mean residence times 40 % smaller
  than venous (ratio 0.60) after 7 mg S- or R-ketamine HCl over 30 min. Tolerance: +-25 % of the
  ratio. Expected before computing it: a KNOWN FAILURE, because the library's venous output is a
  delay without mass that adds its mean time V2/Q2 = 0.35 h to the MRT (ratio 0.89 by the closed
  form); the test checks that closed form (1e-3) and that the miss stays outside the tolerance, so
  a venous model that meets the published size must also retire the known failure in
  pkpd/validation.py.
- S-ketamine after a 20-min infusion (Simons 2022 model): no arterial peak that was NOT used to
  fit the model was found (same note: Jonkman 2017's 20 mg / 20 min arm gives no concentration in
  the parts read), so the 30 % criterion cannot be tested: a known gap, not a pass. The model is
  checked instead against an independent oracle (scipy's matrix exponential of its published
  linear system, 1e-6), molar mass balance (1e-8) and, as a consistency check of the file (not a
  validation), its own data: within 10 % of Simons 2022's peaks, 273 and 260 ng/mL (the
  S-ketamine left from the film given 6 h before is not simulated).
"""

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import expm

import pkpd

pytestmark = pytest.mark.models("ketamine_kamp2020", "ketamine_mg_pain", "esketamine_simons2022")

VENOUS_RANGE = (100.0, 250.0)   # ng/mL, Krystal 1994 via Zanos 2018 Table 1
VENOUS_CENTRAL = 185.0          # ng/mL, Zarate 2006 via Zanos 2018 Table 1 (reported only)
WEIGHT = 70.0


def infusion(cmt, amount, duration, times):
    rows = [{"ID": 1, "TIME": 0.0, "EVID": 1, "AMT": amount, "CMT": cmt, "RATE": amount / duration}]
    rows += [{"ID": 1, "TIME": float(t), "EVID": 0, "AMT": 0.0, "CMT": 0, "RATE": 0.0} for t in times]
    return pd.DataFrame(rows)


def observed(name, frame):
    out = pkpd.simulate_data(pkpd.load_model(name), frame, amounts=True, variability="none")
    return out[out["EVID"] == 0].reset_index(drop=True)


TIMES = np.linspace(0.0, 4.0, 481)   # h, every 0.5 min


@pytest.mark.parametrize("name", ["ketamine_kamp2020", "ketamine_mg_pain"])
def test_venous_peak_after_0_5_mg_per_kg_over_40_min_is_in_the_published_range(name):
    out = observed(name, infusion(2, 0.5 * WEIGHT, 40.0 / 60.0, TIMES))
    peak = out["KETAMINE_VEN"].max()
    print(f"{name}: venous peak {peak:.0f} ng/mL vs {VENOUS_CENTRAL:.0f} "
          f"({100 * (peak / VENOUS_CENTRAL - 1):+.0f} %), range {VENOUS_RANGE}")
    assert VENOUS_RANGE[0] <= peak <= VENOUS_RANGE[1]
    assert peak < out["KETAMINE"].max()     # the venous peak is lower than the arterial one


@pytest.mark.parametrize("duration", [20.0 / 60.0, 40.0 / 60.0])
def test_venous_below_arterial_during_and_above_after_a_short_infusion(duration):
    # Direction only (Henthorn 2018): venous < arterial throughout the infusion; after it,
    # one crossing (within 15 min of the end), then venous > arterial to the last sample.
    out = observed("ketamine_kamp2020", infusion(2, 0.5 * WEIGHT, duration, TIMES))
    difference = (out["KETAMINE_VEN"] - out["KETAMINE"]).to_numpy()
    during = (out["TIME"] > 0) & (out["TIME"] <= duration)
    assert (difference[during] < 0).all()
    after = difference[out["TIME"] > duration]
    crossing = np.flatnonzero(np.diff(np.sign(after)))
    assert len(crossing) == 1
    assert out["TIME"][out["TIME"] > duration].iloc[crossing[0]] < duration + 0.25


PERSSON_RATIO = 0.60            # arterial / venous MRT, Persson 2002 abstract ("40 % smaller")
RATIO_TOLERANCE = 0.25


@pytest.mark.parametrize("name", ["ketamine_kamp2020", "ketamine_mg_pain"])
def test_arterial_over_venous_mean_residence_time_is_the_known_failure_against_persson_2002(name):
    # 7 mg ketamine HCl (6.07 mg base) over 30 min; MRT = AUMC/AUC to 72 h less half the infusion.
    times = np.concatenate([np.linspace(0.0, 2.0, 2401), np.linspace(2.01, 72.0, 7000)])
    out = observed(name, infusion(2, 7.0 * 237.73 / 274.19, 0.5, times))
    t = out["TIME"].to_numpy()

    def mrt(column):
        c = out[column].to_numpy()
        return np.trapezoid(c * t, t) / np.trapezoid(c, t) - 0.25

    ratio = mrt("KETAMINE") / mrt("KETAMINE_VEN")
    model = pkpd.load_model(name)
    v1, v2, v3, cl, q2 = (model.parameters[k].value for k in ("V1", "V2", "V3", "CL", "Q2"))
    arterial = (v1 + v2 + v3) / cl                       # closed-form MRT of a mammillary model, h
    np.testing.assert_allclose(ratio, arterial / (arterial + v2 / q2), rtol=1e-3)
    print(f"{name}: MRT arterial / venous {ratio:.3f} vs {PERSSON_RATIO} ({100 * (ratio / PERSSON_RATIO - 1):+.0f} %)")
    assert abs(ratio / PERSSON_RATIO - 1.0) > RATIO_TOLERANCE      # the known failure of the report


def test_venous_sampling_site_leaves_the_arterial_outputs_unchanged():
    # KETAMINE_VEN is a state without mass: the arterial profile is the 3-compartment closed form.
    out = observed("ketamine_kamp2020", infusion(2, 35.0, 2.0 / 3.0, TIMES))
    v1, v2, v3, cl, q2, q3 = 25.0, 56.0, 157.0, 84.0, 161.0, 79.0
    system = np.array([[-(cl + q2 + q3) / v1, q2 / v2, q3 / v3, 52.5],
                       [q2 / v1, -q2 / v2, 0.0, 0.0], [q3 / v1, 0.0, -q3 / v3, 0.0], [0.0] * 4])
    expected = []
    for t in TIMES:
        state = expm(system * min(t, 2.0 / 3.0)) @ np.array([0.0, 0.0, 0.0, 1.0])
        state[3] = 0.0
        expected.append(1000.0 * (expm(system * max(t - 2.0 / 3.0, 0.0)) @ state)[0] / v1)
    np.testing.assert_allclose(out["KETAMINE"], expected, rtol=1e-6, atol=1e-9)


def test_ketamine_mg_pain_stays_linear_with_its_venous_state():
    # With ALPHA = 0 the model folds to a linear one (exact path); the venous state keeps it so,
    # and the exact path agrees with a tight Dormand-Prince solution.
    model = pkpd.load_model("ketamine_mg_pain").with_parameters({"ALPHA": 0.0})
    regimen = [pkpd.Dose(35.0, "KET_CENT", duration=2.0 / 3.0)]
    times = np.array([0.25, 0.5, 1.0, 2.0, 4.0])
    exact = pkpd.simulate(model, regimen, 1, times, progress=False)
    ode = pkpd.simulate(model, regimen, 1, times, method="rk45", rtol=1e-10, atol=1e-12, progress=False)
    assert exact.method == "exact"
    np.testing.assert_allclose(exact.output("KETAMINE_VEN"), ode.output("KETAMINE_VEN"), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(exact.output("KETAMINE"), ode.output("KETAMINE"), rtol=1e-6, atol=1e-9)


def simons_system(weight=70.0):
    """Simons 2022 Table 4 as a linear system in 1/h, written from the paper's numbers."""
    s_v = weight / 70.0
    s_cl = s_v ** 0.75
    vk1, vk2, vk3, vh1, vh2, vn2 = 11.6 * s_v, 39.0 * s_v, 174.0 * s_v, 4.4 * s_v, 87.5 * s_v, 221.0 * s_v
    clk1, clk2, clk3, cln1, cln2, clh1, clh2 = (60 * c * s_cl for c in (1.48, 2.43, 1.21, 1.00, 2.63, 0.933, 1.70))
    ktk, ktn = 2 / (20.1 / 60), 2 / (1.12 / 60)
    a = np.zeros((11, 11))
    a[0, 0], a[0, 1], a[0, 2] = -(clk1 + clk2 + clk3) / vk1, clk2 / vk2, clk3 / vk3
    a[1, 0], a[1, 1] = clk2 / vk1, -clk2 / vk2
    a[2, 0], a[2, 2] = clk3 / vk1, -clk3 / vk3
    a[3, 0], a[3, 3] = clk1 / vk1, -ktk
    a[4, 3], a[4, 4] = ktk, -ktk
    a[5, 4], a[5, 5], a[5, 6] = 0.8 * ktk, -(cln1 + cln2) / vk1, cln2 / vn2
    a[6, 5], a[6, 6] = cln2 / vk1, -cln2 / vn2
    a[7, 5], a[7, 7] = cln1 / vk1, -ktn
    a[8, 7], a[8, 8] = ktn, -ktn
    a[9, 8], a[9, 9], a[9, 10] = 0.7 * ktn, -(clh1 + clh2) / vh1, clh2 / vh2
    a[10, 9], a[10, 10] = clh2 / vh1, -clh2 / vh2
    return a, (vk1, vk1, vh1)


@pytest.mark.parametrize("weight", [70.0, 55.0])
def test_simons_2022_equals_the_matrix_exponential_of_table_4(weight):
    dose, duration = 20.0, 20.0 / 60.0
    times = np.array([2, 4, 10, 15, 20, 30, 40, 60, 75, 90, 120, 360]) / 60.0   # Simons' IV sampling
    frame = infusion(1, dose, duration, times)
    frame["WT"] = weight
    out = observed("esketamine_simons2022", frame)
    a, (vk, vn, vh) = simons_system(weight)
    augmented = np.zeros((12, 12))
    augmented[:11, :11] = a
    augmented[0, 11] = dose / duration
    for row, t in zip(out.itertuples(), times):
        start = np.zeros(12)
        start[11] = 1.0
        state = expm(augmented * min(t, duration)) @ start
        state[11] = 0.0
        state = expm(augmented * max(t - duration, 0.0)) @ state
        np.testing.assert_allclose([row.KETAMINE_NMOL, row.NORKETAMINE_NMOL, row.HNK_NMOL],
                                   1000.0 * state[[0, 5, 9]] / np.array([vk, vn, vh]) / 237.73, rtol=1e-6)


def test_simons_2022_molar_balance_with_the_fixed_fractions():
    # Every mg S-ketamine given is in the body, or lost (20 % of the first chain, 30 % of the
    # second), or eliminated as S-HNK: with CLH1 = 0 nothing leaves the S-HNK compartments.
    times = np.linspace(0.0, 24.0, 49)
    frame = infusion(1, 20.0, 1.0 / 3.0, times)
    frame["CLH1"] = 0.0
    out = observed("esketamine_simons2022", frame)
    parent = out[["CENT", "PERIPH1", "PERIPH2", "K_CHAIN1", "K_CHAIN2"]].sum(axis=1)
    nk = out[["NK_CENT", "NK_PERIPH", "NK_CHAIN1", "NK_CHAIN2"]].sum(axis=1)
    hnk = out["HNK_CENT"] + out["HNK_PERIPH"]
    given = np.minimum(times / (1.0 / 3.0), 1.0) * 20.0
    formed_nk = 0.8 * (given - parent)                    # through the first chain
    np.testing.assert_allclose(nk + hnk / 0.7, formed_nk, rtol=1e-8, atol=1e-8)


def test_simons_2022_peak_is_arterial_and_above_the_venous_otto_model():
    # Known gap: no independent published arterial peak for 20 mg over 20 min is in the files.
    # What the sources do say (Otto 2021; LITERATURE-3 section 5): the venous Otto/Fanta model,
    # with an 11 x larger central volume, gives a much lower peak after a short infusion.
    frame = infusion(1, 20.0, 1.0 / 3.0, TIMES)
    simons = observed("esketamine_simons2022", frame)
    assert pkpd.load_model("esketamine_simons2022").outputs["KETAMINE"].matrix == "arterial plasma"
    assert simons["TIME"][simons["KETAMINE"].idxmax()] == pytest.approx(1.0 / 3.0)
    print(f"Simons 2022: arterial S-ketamine peak {simons['KETAMINE'].max():.0f} ng/mL after 20 mg over 20 min")


def test_simons_2022_peak_is_consistent_with_its_own_data():
    # Used to build, not validation: Simons' IV peaks 273 and 260 ng/mL (mean weight 73 kg).
    frame = infusion(1, 20.0, 1.0 / 3.0, TIMES)
    frame["WT"] = 73.0
    peak = observed("esketamine_simons2022", frame)["KETAMINE"].max()
    for published in (273.0, 260.0):
        assert abs(peak / published - 1.0) < 0.10, (peak, published)
