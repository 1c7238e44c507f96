"""Tests of the drug model library: ketamine, norketamine, magnesium and their effects.

Three kinds of check:

- annotation: every parameter of every model file carries value, unit,
  description, source and reliability, assumptions say so, and the
  variability, residual and drug sections are well formed;
- closed forms: properties a linear compartment model must have whatever the
  numbers (clearance = dose / AUC = rate / Css, Vss = amount / Css at steady
  state, mass balance, effect-site and slow-compartment half-lives, unit
  conversions), compared with the parameter values, never with numbers the
  engine produced itself;
- published observations, each with its tolerance stated next to it.

Each model compiles once (about 30 s on two cores) and is cached on disk, so a
second run is fast. Typical values are simulated through ``simulate_data``;
individuals are emulated by parameter and covariate columns.
"""

import math
import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.population import omega_cholesky, parse_covariate, sample_covariates
from pkpd._units import (
    KETAMINE_MOLAR_MASS,
    MAGNESIUM_MOLAR_MASS,
    MMOL_MG_PER_G_MGSO4_7H2O,
    NORKETAMINE_MOLAR_MASS,
    convert,
)

pytestmark = pytest.mark.models("ketamine_kamp2020", "esketamine_otto2021", "esketamine_simons2022", "magnesium_du2019",
                                "magnesium_salinger2013", "magnesium_lu2002", "ketamine_mg_pain")

MODELS = Path(__file__).resolve().parent.parent / "models"
DRUG_MODELS = ["ketamine_kamp2020", "esketamine_otto2021", "esketamine_simons2022", "magnesium_du2019",
               "magnesium_salinger2013", "magnesium_lu2002", "ketamine_mg_pain"]
MAGNESIUM_MODELS = ["magnesium_du2019", "magnesium_salinger2013", "magnesium_lu2002", "ketamine_mg_pain"]
MAGNESIUM_PK_MODELS = ["magnesium_du2019", "magnesium_salinger2013", "magnesium_lu2002"]
RELIABILITY = {"A", "B", "C", "assumption"}
CITATION = re.compile(r"doi:|PMID|\b\d{2,3}:\d{2,4}\b|IUPAC|computed", re.IGNORECASE)
LN2 = math.log(2.0)


def raw(name):
    return tomllib.loads((MODELS / f"{name}.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def models():
    return {name: pkpd.load_model(name) for name in DRUG_MODELS}


def events(doses=(), times=(), **columns):
    """A one-subject NONMEM data set.

    doses : iterable of (time h, CMT, amount, duration h); duration 0 is a bolus.
    times : observation times (h). Doses come before observations at equal times.
    columns : parameter or covariate columns (constant over the records).
    """
    rows = [{"ID": 1, "TIME": float(time), "EVID": 1, "AMT": float(amount), "CMT": int(cmt),
             "RATE": float(amount) / duration if duration > 0 else 0.0}
            for time, cmt, amount, duration in doses]
    rows += [{"ID": 1, "TIME": float(time), "EVID": 0, "AMT": 0.0, "CMT": 0, "RATE": 0.0}
             for time in times]
    frame = pd.DataFrame(rows).sort_values("TIME", kind="stable").reset_index(drop=True)
    for name, value in columns.items():
        frame[name] = float(value)
    return frame


def observed(model, frame, **options):
    out = pkpd.simulate_data(model, frame, **options, amounts=True, variability="none")
    return out[out["EVID"] == 0].reset_index(drop=True)


def auc_to_infinity(times, values):
    """Trapezoidal AUC on the (dense, log-spaced) grid plus the log-linear tail."""
    times, values = np.asarray(times), np.asarray(values)
    slope = math.log(values[-2] / values[-1]) / (times[-1] - times[-2])
    return float(np.trapezoid(values, times) + values[-1] / slope)


def half_life_from_rise(times, values, plateau):
    """t1/2 of values = plateau * (1 - exp(-k t)), by least squares on log(1 - values/plateau)."""
    slope = np.polyfit(np.asarray(times), np.log(1.0 - np.asarray(values) / plateau), 1)[0]
    return LN2 / -slope


def half_life_from_decay(times, values):
    slope = np.polyfit(np.asarray(times), np.log(np.asarray(values)), 1)[0]
    return LN2 / -slope


DENSE = np.concatenate([[0.0], np.geomspace(1e-4, 72.0, 2500)])  # h


# --- annotation -------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(p.stem for p in MODELS.glob("*.toml")))
def test_every_library_parameter_has_the_five_keys(name):
    for key, spec in raw(name).get("parameters", {}).items():
        for field in ("value", "unit", "description", "source", "reliability"):
            assert field in spec, f"{name}: parameters.{key} lacks {field}"
        assert isinstance(spec["value"], (int, float)) and not isinstance(spec["value"], bool)
        for field in ("unit", "description", "source", "reliability"):
            assert isinstance(spec[field], str) and spec[field].strip(), f"{name}: parameters.{key}.{field}"


@pytest.mark.parametrize("name", DRUG_MODELS)
def test_drug_model_sources_cite_and_assumptions_say_so(name):
    data = raw(name)
    for key, spec in data["parameters"].items():
        assert spec["reliability"] in RELIABILITY, f"{name}: {key} reliability {spec['reliability']!r}"
        if spec["reliability"] == "assumption":
            assert "ASSUMPTION" in spec["source"].upper(), f"{name}: {key} is an assumption but its source does not say so"
        else:
            assert CITATION.search(spec["source"]), f"{name}: {key} source cites no DOI, PMID or journal: {spec['source']!r}"
    for key, spec in data.get("covariates", {}).items():
        for field in ("value", "unit", "description"):
            assert field in spec, f"{name}: covariates.{key} lacks {field}"
    for key, spec in data["outputs"].items():
        assert spec.get("unit") and spec.get("description"), f"{name}: outputs.{key} needs unit and description"


@pytest.mark.parametrize("name", DRUG_MODELS)
def test_variability_residual_and_drug_sections_are_well_formed(name, models):
    model, data = models[name], raw(name)
    for section in ("iiv", "iov"):
        spec = data.get("variability", {}).get(section)
        if spec is None:
            continue
        assert spec.get("source"), f"{name}: variability.{section} needs a source"
        for parameter in spec["parameters"]:
            assert parameter in model.parameters, f"{name}: variability.{section} names {parameter!r}"
        omega = np.asarray(spec["omega"], dtype=float)
        assert omega.shape == (len(spec["parameters"]),) * 2
        omega_cholesky(omega)  # square, symmetric, positive semi-definite
        if "forms" in spec:
            assert len(spec["forms"]) == len(spec["parameters"])
    for output, spec in data.get("residual", {}).items():
        assert output in model.outputs, f"{name}: residual.{output} is not an output"
        assert spec.get("source")
        assert spec.get("additive", 0.0) >= 0 and spec.get("proportional", 0.0) >= 0
    for covariate, spec in model.covariate_distributions.items():
        parse_covariate(covariate, spec, key=f"{name}.covariates.{covariate}.distribution")
    for drug, spec in model.drugs.items():
        assert spec.get("unit") and spec.get("description"), f"{name}: drugs.{drug}"
        for route, compartment in spec.get("routes", {}).items():
            assert compartment in model.compartments, f"{name}: drugs.{drug}.routes.{route}"


def test_molar_masses_match_formulas_and_units_module():
    atomic = {"C": 12.011, "H": 1.008, "Cl": 35.45, "N": 14.007, "O": 15.999}
    ketamine = 13 * atomic["C"] + 16 * atomic["H"] + atomic["Cl"] + atomic["N"] + atomic["O"]
    norketamine = 12 * atomic["C"] + 14 * atomic["H"] + atomic["Cl"] + atomic["N"] + atomic["O"]
    assert KETAMINE_MOLAR_MASS == pytest.approx(ketamine, abs=0.01)
    assert NORKETAMINE_MOLAR_MASS == pytest.approx(norketamine, abs=0.01)
    for name in DRUG_MODELS:
        parameters = raw(name)["parameters"]
        expected = {"MW_K": KETAMINE_MOLAR_MASS, "MW_NK": NORKETAMINE_MOLAR_MASS, "MW_MG": MAGNESIUM_MOLAR_MASS}
        for key, value in expected.items():
            if key in parameters:
                assert parameters[key]["value"] == value, f"{name}: {key}"
        for drug in raw(name).get("drugs", {}).values():
            if drug.get("unit") == "g" and "conversions" in drug:
                assert drug["conversions"]["mmol"] == MMOL_MG_PER_G_MGSO4_7H2O


@pytest.mark.parametrize("name", MAGNESIUM_MODELS)
def test_magnesium_files_say_the_sources_studied_pregnant_women(name):
    text = (MODELS / f"{name}.toml").read_text(encoding="utf-8")
    header = text.split("[model]")[0]
    assert "PREGNANT" in header.upper()
    if name.startswith("magnesium"):
        assert "PREGNANT" in raw(name)["model"]["description"].upper()


def test_responder_draws_follow_the_declared_distribution(models):
    # U_RESP ~ U(0, 1): the drug-responder fraction is P(U < 0.67). n = 20000,
    # binomial SE 0.0033, so 0.67 +- 0.011 is a 99.9 % interval (z = 3.29).
    model = models["ketamine_mg_pain"]
    drawn = sample_covariates(model.covariate_distributions, n=20_000, seed=2020)
    assert abs(np.mean(drawn["U_RESP"] < 0.67) - 0.67) < 0.011
    assert abs(np.mean(drawn["U_RESP"] < 0.23) - 0.23) < 0.010
    assert drawn["PAIN0"].between(0.0, 10.0).all()


# --- ketamine (Kamp 2020) and norketamine -----------------------------------------------

def test_kamp_clearance_from_dose_over_auc(models):
    # Closed form: CL = dose / AUC = 84 L/h at 70 kg (opentiva Klamp), linear in weight.
    # Published: Kamp 2020 meta-analysis 79 L/h (95 % CI 69-90) at 70 kg.
    model = models["ketamine_kamp2020"]
    for weight in (70.0, 35.0):
        dose = 0.5 * weight  # 0.5 mg/kg bolus
        out = observed(model, events([(0, 2, dose, 0)], DENSE, WT=weight))
        auc = auc_to_infinity(out["TIME"], out["KETAMINE"])          # ng h / mL = ug h / L
        clearance = 1000.0 * dose / auc                                # L/h
        assert clearance == pytest.approx(84.0 * weight / 70.0, rel=2e-3)
        if weight == 70.0:
            assert 69.0 <= clearance <= 90.0


def test_kamp_steady_state_clearance_and_volume(models):
    # Constant infusion R for 500 h (> 100 terminal half-lives): Css = R / CL and
    # Vss = amount in the body / Css = V1 + V2 + V3 = 238 L (closed form).
    # Published: Kamp 2020 meta-analysis V 252 L/70 kg (95 % CI 200-304).
    model = models["ketamine_kamp2020"]
    rate = 10.0  # mg/h
    out = observed(model, events([(0, 2, rate * 500, 500)], [499.0]))
    css = out["KETAMINE"].iloc[0] / 1000.0                                       # mg/L
    assert rate / css == pytest.approx(84.0, rel=1e-6)
    volume = (out["CENT"] + out["PERIPH1"] + out["PERIPH2"]).iloc[0] / css
    assert volume == pytest.approx(25.0 + 56.0 + 157.0, rel=1e-6)
    assert 200.0 <= volume <= 304.0
    # norketamine at steady state: FM * R / CL_NK (ketamine mass equivalents)
    assert out["NORKETAMINE"].iloc[0] / 1000.0 == pytest.approx(1.0 * rate / 57.72, rel=1e-6)


@pytest.mark.parametrize("fm", [1.0, 0.8])
def test_ketamine_to_norketamine_mass_balance(models, fm):
    # With norketamine elimination switched off (CL_NK = 0 column), every mg of
    # ketamine cleared is FM mg (ketamine equivalents) of norketamine:
    # NK amounts = FM * (dose - ketamine amounts) at every time (IV), and with an
    # oral dose the presystemic part adds FM_FP * (1 - F_ORAL) * (absorbed amount).
    model = models["ketamine_kamp2020"]
    times = np.linspace(0.0, 48.0, 97)
    out = observed(model, events([(0, 2, 35.0, 0.5)], times, CL_NK=0.0, FM=fm))
    ketamine = out["CENT"] + out["PERIPH1"] + out["PERIPH2"]
    norketamine = out["NK_CENT"] + out["NK_PERIPH"]
    given = np.minimum(times / 0.5, 1.0) * 35.0
    np.testing.assert_allclose(norketamine, fm * (given - ketamine), rtol=1e-8, atol=1e-9)

    out = observed(model, events([(0, 1, 100.0, 0)], times, CL_NK=0.0, FM=fm))
    absorbed = 100.0 - out["DEPOT"]
    ketamine = out["CENT"] + out["PERIPH1"] + out["PERIPH2"]
    expected = 0.8 * (1 - 0.08) * absorbed + fm * (0.08 * absorbed - ketamine)
    np.testing.assert_allclose(out["NK_CENT"] + out["NK_PERIPH"], expected, rtol=1e-8, atol=1e-9)


def test_norketamine_exposure_matches_formation_over_clearance(models):
    # AUC(norketamine) = FM * dose / CL_NK (closed form for linear formation).
    model = models["ketamine_kamp2020"]
    times = np.concatenate([[0.0], np.geomspace(1e-3, 120.0, 3000)])
    out = observed(model, events([(0, 2, 35.0, 0)], times))
    auc = auc_to_infinity(out["TIME"], out["NORKETAMINE"]) / 1000.0   # mg h / L
    assert auc == pytest.approx(35.0 / 57.72, rel=2e-3)


@pytest.mark.parametrize("name", ["ketamine_kamp2020", "esketamine_otto2021", "ketamine_mg_pain"])
def test_concentrations_in_ng_and_nmol_per_ml_agree(models, name):
    model = models[name]
    out = observed(model, events([(0, 2, 35.0, 2.0)], [0.5, 1.0, 2.0, 4.0, 12.0]))
    np.testing.assert_allclose(out["KETAMINE_NMOL"],
                               convert(out["KETAMINE"].to_numpy(), "ng/mL", "nmol/mL",
                                       molar_mass=KETAMINE_MOLAR_MASS), rtol=1e-12)
    np.testing.assert_allclose(out["NORKETAMINE_NMOL"],
                               convert(out["NORKETAMINE"].to_numpy(), "ng/mL", "nmol/mL",
                                       molar_mass=NORKETAMINE_MOLAR_MASS), rtol=1e-12)


# --- S-ketamine (Otto 2021 / Fanta 2015) ------------------------------------------------

def test_otto_clearances_at_steady_state(models):
    # Css = R / (95.2 (WT/70)^0.75) for S-ketamine and FM R / (57.72 (WT/70)^0.75)
    # for S-norketamine (closed forms of the published allometric model).
    model = models["esketamine_otto2021"]
    for weight in (70.0, 50.0):
        out = observed(model, events([(0, 2, 20.0 * 400, 400)], [399.0], WT=weight))
        scale = (weight / 70.0) ** 0.75
        assert 20.0 / (out["KETAMINE"].iloc[0] / 1000.0) == pytest.approx(95.2 * scale, rel=1e-6)
        assert 20.0 / (out["NORKETAMINE"].iloc[0] / 1000.0) == pytest.approx(57.72 * scale, rel=1e-6)


def test_oral_bioavailability_and_fanta_norketamine_ratio(models):
    # Closed forms: AUC_oral / AUC_iv = F_ORAL = 0.08 (Fanta 2015); after an oral
    # dose AUC_NK / AUC_K = (F FM + (1 - F) FM_FP) / F x CL / CL_NK.
    # Published: Fanta 2015 simulated the norketamine/S-ketamine AUC ratio after oral
    # dosing at 16.5 (abstract); tolerance 25 % because FM_FP is an assumption and
    # Otto's S-norketamine disposition is not Fanta's.
    model = models["esketamine_otto2021"]
    times = np.concatenate([[0.0], np.geomspace(1e-3, 150.0, 3000)])
    iv = observed(model, events([(0, 2, 10.0, 0)], times))
    oral = observed(model, events([(0, 1, 10.0, 0)], times))
    auc_iv = auc_to_infinity(iv["TIME"], iv["KETAMINE"])
    auc_oral = auc_to_infinity(oral["TIME"], oral["KETAMINE"])
    assert auc_oral / auc_iv == pytest.approx(0.08, rel=2e-3)
    ratio = auc_to_infinity(oral["TIME"], oral["NORKETAMINE"]) / auc_oral
    assert ratio == pytest.approx((0.08 + 0.92 * 0.8) / 0.08 * 95.2 / 57.72, rel=2e-3)
    assert ratio == pytest.approx(16.5, rel=0.25)


@pytest.mark.parametrize("name, state, scale", [("esketamine_otto2021", "EFFECT", 1.0),
                                                ("ketamine_mg_pain", "KET_EFFECT", 0.5)])
def test_effect_site_half_life_is_olofsen_8_3_min(models, name, state, scale):
    # With all clearances set to 0 a bolus holds plasma constant, so the effect site
    # follows Ce = scale * Cp * (1 - exp(-ke0 t)) exactly: its half-time is t1/2ke0.
    # Published: Olofsen 2022, t1/2ke0 = 8.3 min. scale = FS_EQ for racemic ketamine.
    model = models[name]
    clearances = {"CL": 0.0, "Q1": 0.0, "Q2": 0.0} if name.startswith("esk") else {"CL": 0.0, "Q2": 0.0, "Q3": 0.0}
    minutes = np.arange(1.0, 41.0, 1.0)
    out = observed(model, events([(0, 2, 10.0, 0)], minutes / 60.0, **clearances))
    plateau = scale * out["KETAMINE"].iloc[0]
    np.testing.assert_allclose(out["KETAMINE"], out["KETAMINE"].iloc[0], rtol=1e-12)
    assert half_life_from_rise(minutes, out[state], plateau) == pytest.approx(8.3, rel=1e-4)


def test_magnesium_effect_site_half_life(models):
    # Same construction for the magnesium effect site (assumed t1/2 3 h).
    model = models["ketamine_mg_pain"]
    hours = np.arange(0.5, 12.5, 0.5)
    out = observed(model, events([(0, 8, 10.0, 0)], hours, CL_MG_LU=0.0, Q_MG_LU=0.0))
    plateau = out["MAGNESIUM"].iloc[0] - 0.74
    assert half_life_from_rise(hours, out["MG_EFFECT"], plateau) == pytest.approx(3.0, rel=1e-4)


@pytest.mark.parametrize("name, state, per_ng", [("esketamine_otto2021", "CHRONIC", 1.0),
                                                 ("ketamine_mg_pain", "NMDA_CHRONIC", 0.5 / 10.5)])
def test_chronic_effect_onset_and_offset_half_life_is_dahan_10_9_days(models, name, state, per_ng):
    # Onset: constant plasma (clearances 0 after a bolus): the slow compartment rises as
    # plateau * (1 - exp(-k t)). Offset: after a 20-day infusion, plasma ketamine is gone
    # within hours and the compartment decays as exp(-k t).
    # Published: Dahan 2011, onset/offset t1/2 = 10.9 d. per_ng converts plasma ng/mL
    # into the compartment's unit (ng/mL S-ketamine, or FS_EQ / C50 normalised units).
    model = models[name]
    clearances = {"CL": 0.0, "Q1": 0.0, "Q2": 0.0} if name.startswith("esk") else {"CL": 0.0, "Q2": 0.0, "Q3": 0.0}
    days = np.arange(1.0, 41.0, 1.0)
    out = observed(model, events([(0, 2, 10.0, 0)], days * 24.0, **clearances))
    plateau = per_ng * out["KETAMINE"].iloc[0]
    assert half_life_from_rise(days, out[state], plateau) == pytest.approx(10.9, rel=1e-4)

    days = np.arange(25.0, 61.0, 1.0)
    out = observed(model, events([(0, 2, 10.0 * 480, 480)], days * 24.0))
    assert half_life_from_decay(days, out[state]) == pytest.approx(10.9, rel=1e-3)


def test_sigtermans_2009_pain_at_the_end_of_week_1(models):
    # Sigtermans 2009 (Pain 145:304) / Dahan 2011: 100-h S-ketamine infusion, rate raised
    # from 5 to 20 mg/h/70 kg. ASSUMED schedule: 5, 10, 15 mg/h for 24 h each, then
    # 20 mg/h for 28 h. Published mean NRS at the end of week 1: 2.68 +- 0.51 (ketamine)
    # vs 5.45 +- 0.48 (placebo), ratio 0.49. The model's expected pain (mixture over
    # responders; the baseline cancels in the ratio) must be within 25 % of that ratio,
    # about the published standard errors.
    model = models["esketamine_otto2021"]
    doses = [(0, 2, 5.0 * 24, 24), (24, 2, 10.0 * 24, 24), (48, 2, 15.0 * 24, 24), (72, 2, 20.0 * 28, 28)]
    ketamine = observed(model, events(doses, [168.0]))["PAIN_EXPECTED"].iloc[0]
    # the placebo response starts at the subject's first record: put one at TIME 0
    placebo = observed(model, events([], [0.0, 168.0]))["PAIN_EXPECTED"].iloc[1]
    assert ketamine / placebo == pytest.approx(2.68 / 5.45, rel=0.25)


def test_pain_of_individual_responders_has_the_closed_form(models):
    # PAIN = PAIN0 (1 - placebo responder * 0.5 * PLACEBO) (1 - drug responder * RELIEF),
    # PLACEBO = 1 - 2^(-t / 1 d); U_RESP 0.1: both, 0.5: drug only, 0.9: neither.
    model = models["esketamine_otto2021"]
    times = np.array([6.0, 24.0, 72.0, 168.0, 500.0])
    placebo = 1.0 - 2.0 ** (-times / 24.0)
    for u, drug, plac in [(0.1, 1, 1), (0.5, 1, 0), (0.9, 0, 0)]:
        out = observed(model, events([(0, 2, 200.0, 24)], times, U_RESP=u, PAIN0=7.0))
        np.testing.assert_allclose(out["PLACEBO"], placebo, rtol=1e-9)
        relief = out["CHRONIC"] / (10.5 + out["CHRONIC"])
        expected = 7.0 * (1 - plac * 0.5 * placebo) * (1 - drug * relief)
        np.testing.assert_allclose(out["PAIN"], expected, rtol=1e-9)
        assert (out["DRUG_RESPONDER"] == drug).all() and (out["PLACEBO_RESPONDER"] == plac).all()
    mixture = 7.0 * (0.33 + (0.44 + 0.23 * (1 - 0.5 * placebo)) * (1 - relief))
    np.testing.assert_allclose(out["PAIN_EXPECTED"], mixture, rtol=1e-9)


def test_norketamine_antagonism_switch(models):
    # NK_ANTAG = 1: effective concentration (Ce,K - 0.79 Ce,NK) / MW (Olofsen 2012);
    # with the default 0 the effect is ketamine's alone.
    model = models["esketamine_otto2021"]
    times = [0.5, 1.0, 2.0, 3.0]
    off = observed(model, events([(0, 2, 20.0, 1.0)], times))
    on = observed(model, events([(0, 2, 20.0, 1.0)], times, NK_ANTAG=1.0))
    np.testing.assert_allclose(off["CE_ACTIVE"], off["EFFECT"] / KETAMINE_MOLAR_MASS, rtol=1e-12)
    expected = np.maximum(on["EFFECT"] - 0.79 * on["NK_EFFECT"], 0) / KETAMINE_MOLAR_MASS
    np.testing.assert_allclose(on["CE_ACTIVE"], expected, rtol=1e-12)
    np.testing.assert_allclose(on["ANALGESIA"], expected / 0.51 / (1 + expected / 0.51), rtol=1e-12)
    assert (on["ANALGESIA"] < off["ANALGESIA"]).all()
    np.testing.assert_allclose(off["P_PSYCHO"], on["P_PSYCHO"], rtol=1e-12)  # no NK in adverse events


# --- magnesium -------------------------------------------------------------------------

MG_CENTRAL = {"magnesium_du2019": 2, "magnesium_salinger2013": 2, "magnesium_lu2002": 2,
              "ketamine_mg_pain": 8}
# Typical baseline (mmol/L) and clearance of the excess (L/h) at the files' reference
# covariates, read from the publications (Du at 85 kg, SCr 0.8; Salinger at SCr 0.8; Lu has
# no covariates), for the closed form Css = baseline + rate / CL.
MG_BASELINE_AND_CLEARANCE = {"magnesium_du2019": (0.74, 3.72), "magnesium_salinger2013": (0.85, 4.81),
                             "magnesium_lu2002": (0.74, 5.0)}


@pytest.mark.parametrize("name", MAGNESIUM_PK_MODELS)
def test_brookfield_2016_steady_state_on_4_g_plus_2_g_per_h(models, name):
    # 4 g MgSO4.7H2O over 20 min then 2 g/h (4.06 mmol/g) for 200 h (> 20 terminal
    # half-lives; Brookfield measured at steady state). Closed form at steady state:
    # baseline + rate / CL (Du: 0.74 + 8.12/3.72 at 85 kg; Salinger: 0.85 + 8.12/4.81;
    # Lu: 0.74 + 8.12/5.0).
    # Published: Brookfield 2016, Css 7.2 mg/dL in pre-eclamptic women (5.1 otherwise);
    # all three sources studied pre-eclamptic women: within 25 % of 7.2 mg/dL.
    model = models[name]
    load, rate = 4.0 * MMOL_MG_PER_G_MGSO4_7H2O, 2.0 * MMOL_MG_PER_G_MGSO4_7H2O
    out = observed(model, events([(0, 2, load, 1 / 3), (1 / 3, 2, rate * 200, 200)], [200.0]))
    baseline, clearance = MG_BASELINE_AND_CLEARANCE[name]
    assert out["MAGNESIUM"].iloc[0] == pytest.approx(baseline + rate / clearance, rel=1e-4)
    np.testing.assert_allclose(out["MAGNESIUM_MGDL"],
                               convert(out["MAGNESIUM"].to_numpy(), "mmol/L", "mg/dL",
                                       molar_mass=MAGNESIUM_MOLAR_MASS), rtol=1e-12)
    assert out["MAGNESIUM_MGDL"].iloc[0] == pytest.approx(7.2, rel=0.25)
    assert 5.1 * 0.75 <= out["MAGNESIUM_MGDL"].iloc[0] <= 7.2 * 1.25


FUCHS_BUDER = {0.5: 1.24, 1.5: 0.95, 4.0: 0.82}  # h after the END of the dose -> plasma Mg mmol/L


def fuchs_buder_prediction(model, name, minutes=5.0):
    # Fuchs-Buder 1997 (J Neurosurg Anesthesiol 9:324, doi:10.1097/00008506-199710000-00006):
    # 20 non-pregnant neurosurgical patients, "i.v. bolus of 60 mg/kg MgSO4", plasma
    # 0.74 (baseline) -> 1.24 -> 0.95 -> 0.82 mmol/L at 30, 90 and 240 min "after the end of
    # the MgSO4 infusion". ASSUMED: the heptahydrate (4.06 mmol/g; the Swiss product,
    # Magnesiumsulfat Bichsel, is labelled as the heptahydrate; the anhydrous salt would
    # double the dose), a 70-kg patient (weights not in the abstract), infusion over 5 to 15
    # min (the same Geneva group gave 60 mg/kg over 15 min in 2010); baseline 0.74 mmol/L
    # as measured.
    dose = 0.060 * 70.0 * MMOL_MG_PER_G_MGSO4_7H2O  # 17.05 mmol
    end = minutes / 60.0
    frame = events([(0, MG_CENTRAL[name], dose, end)], [end + t for t in FUCHS_BUDER], WT=70.0, MG0=0.74)
    return observed(model, frame)


@pytest.mark.parametrize("name", ["magnesium_du2019", "magnesium_salinger2013"])
def test_fuchs_buder_1997_order_of_magnitude_and_shape(models, name):
    # What the two models with the smaller central volumes do reproduce of this
    # non-pregnant neurosurgical bolus: a fall after the peak and every level within 60 %.
    out = fuchs_buder_prediction(models[name], name)
    predicted, measured = out["MAGNESIUM"].to_numpy(), np.array(list(FUCHS_BUDER.values()))
    assert np.all(np.diff(predicted) < 0)
    np.testing.assert_allclose(predicted, measured, rtol=0.60)


@pytest.mark.parametrize("name", ["magnesium_lu2002", "ketamine_mg_pain"])
@pytest.mark.parametrize("minutes", [5.0, 15.0])
def test_fuchs_buder_1997_within_25_percent_with_lu_2002(models, name, minutes):
    # The published Lu 2002 parameters (the combined model's default magnesium PK), nothing
    # fitted to this study: +4 to +5/+17 to +18/+14 %.
    out = fuchs_buder_prediction(models[name], name, minutes)
    np.testing.assert_allclose(out["MAGNESIUM"], list(FUCHS_BUDER.values()), rtol=0.25)


@pytest.mark.xfail(strict=True, reason="known limitation: Du 2019 and Salinger 2013 (central volumes "
                   "12.7 and 18.4 L at 70 kg against Lu 2002's 24 L) over-predict this non-pregnant "
                   "bolus by 25-50 % (Du: +43/+48/+28 %, Salinger: +24/+43/+29 % at 30/90/240 min); "
                   "use magnesium_lu2002 for non-pregnant adults")
@pytest.mark.parametrize("name", ["magnesium_du2019", "magnesium_salinger2013"])
def test_fuchs_buder_1997_within_25_percent(models, name):
    out = fuchs_buder_prediction(models[name], name)
    np.testing.assert_allclose(out["MAGNESIUM"], list(FUCHS_BUDER.values()), rtol=0.25)


def test_lu_2002_profile_equals_the_matrix_exponential(models):
    # The file encodes Lu's two-compartment model: after a 15-min infusion of 17.05 mmol the
    # excess follows expm of the published rate matrix (scipy), to 1e-9.
    from scipy.linalg import expm

    cl, vc, vp, q = 5.0, 24.0, 25.0, 5.6
    rates = np.array([[-(cl + q) / vc, q / vp], [q / vc, -q / vp]])
    dose, duration = 17.05, 0.25
    augmented = np.zeros((3, 3))
    augmented[:2, :2], augmented[0, 2] = rates, dose / duration
    at_end = (expm(augmented * duration) @ [0.0, 0.0, 1.0])[:2]
    times = np.array([0.3, 0.5, 1.0, 2.0, 4.0, 8.0, 24.0])
    expected = np.array([(expm(rates * (t - duration)) @ at_end)[0] / vc for t in times])
    out = observed(models["magnesium_lu2002"], events([(0, 2, dose, duration)], times))
    np.testing.assert_allclose(out["MG_EXCESS"], expected, rtol=1e-9)
    np.testing.assert_allclose(out["MAGNESIUM"], 0.74 + expected, rtol=1e-9)


@pytest.mark.parametrize("state, output, ke0, emax, ec50", [("CE_SBP", "SBP_FALL", 0.76, 36.8, 0.75),
                                                            ("CE_DBP", "DBP_FALL", 0.5, 27.8, 0.88)])
def test_lu_2002_blood_pressure_effect_sites(models, state, output, ke0, emax, ec50):
    # With CL = Q = 0 a bolus holds the plasma excess constant, so the effect site rises as
    # C (1 - exp(-ke0 t)) and its half-time is ln 2 / ke0; the fall is Emax Ce / (EC50 + Ce).
    # Lu 2002: magnesium 2-4 mmol/L gives more than half the maximal fall.
    model = models["magnesium_lu2002"]
    hours = np.arange(0.25, 12.25, 0.25)
    out = observed(model, events([(0, 2, 24.0 * 1.26, 0)], hours, CL=0.0, Q=0.0))  # total 2.0 mmol/L
    np.testing.assert_allclose(out["MAGNESIUM"], 2.0, rtol=1e-12)
    assert half_life_from_rise(hours, out[state], 1.26) == pytest.approx(LN2 / ke0, rel=1e-4)
    np.testing.assert_allclose(out[output], emax * out[state] / (ec50 + out[state]), rtol=1e-12)
    assert out[output].iloc[-1] > emax / 2


def test_magnesium_effect_site_still_rises_at_4_h_like_csf(models):
    # Fuchs-Buder 1997: CSF magnesium 0.95 -> 1.00 -> 1.10 -> 1.13 mmol/L at 0, 30, 90,
    # 240 min while plasma fell; the assumed effect site must still be rising at 4 h.
    out = fuchs_buder_prediction(models["ketamine_mg_pain"], "ketamine_mg_pain")
    assert np.all(np.diff(out["MG_EFFECT"]) > 0)


@pytest.mark.parametrize("name", MAGNESIUM_PK_MODELS)
def test_intramuscular_bioavailability(models, name):
    # AUC of the excess = F dose / CL, so AUC_im / AUC_iv = F_IM = 0.862 (Salinger 2013).
    model = models[name]
    times = np.concatenate([[0.0], np.geomspace(1e-3, 400.0, 3000)])
    iv = observed(model, events([(0, 2, 20.0, 0)], times))
    im = observed(model, events([(0, 1, 20.0, 0)], times))
    ratio = auc_to_infinity(im["TIME"], im["MG_EXCESS"]) / auc_to_infinity(iv["TIME"], iv["MG_EXCESS"])
    assert ratio == pytest.approx(0.862, rel=2e-3)


@pytest.mark.parametrize("name", MAGNESIUM_MODELS)
def test_no_magnesium_dose_gives_exactly_the_baseline(models, name):
    model = models[name]
    out = observed(model, events([], np.arange(0.0, 841.0, 24.0)))
    baseline = raw(name)["covariates"]["MG0"]["value"]
    assert (out["MAGNESIUM"] == baseline).all()


# --- the combined model: the three Pickering arms ----------------------------------------

KETAMINE_DOSE = (0.5, 2, 35.0, 2.0)       # 0.5 mg/kg x 70 kg over 2 h, after magnesium
MAGNESIUM_DOSE = (0.0, 8, 3.0 * MMOL_MG_PER_G_MGSO4_7H2O, 0.5)  # 3 g MgSO4.7H2O over 30 min
DAYS_35 = np.arange(0.0, 841.0, 1.0)      # 35 days = 840 h, hourly


def test_combined_model_reuses_the_single_drug_models(models):
    # The same doses give the same ketamine, norketamine and magnesium as the
    # single-drug files (independently written), to integration accuracy.
    combined = observed(models["ketamine_mg_pain"], events([KETAMINE_DOSE, MAGNESIUM_DOSE], DAYS_35[:49]))
    kamp = observed(models["ketamine_kamp2020"], events([KETAMINE_DOSE], DAYS_35[:49]))
    lu = observed(models["magnesium_lu2002"], events([(0.0, 2, MAGNESIUM_DOSE[2], 0.5)], DAYS_35[:49]))
    du = observed(models["magnesium_du2019"], events([(0.0, 2, MAGNESIUM_DOSE[2], 0.5)], DAYS_35[:49], WT=70.0))
    for column in ("KETAMINE", "NORKETAMINE"):
        np.testing.assert_allclose(combined[column], kamp[column], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(combined["MAGNESIUM"], lu["MAGNESIUM"], rtol=1e-6)  # MG_SOURCE = 0 (default)
    with_du = observed(models["ketamine_mg_pain"], events([KETAMINE_DOSE, MAGNESIUM_DOSE], DAYS_35[:49], MG_SOURCE=1))
    np.testing.assert_allclose(with_du["MAGNESIUM"], du["MAGNESIUM"], rtol=1e-6)


def test_saline_arm_is_exactly_baseline_and_placebo(models):
    model = models["ketamine_mg_pain"]
    placebo = 1.0 - 2.0 ** (-DAYS_35 / 24.0)
    for u in (0.1, 0.5, 0.9):
        out = observed(model, events([], DAYS_35, U_RESP=u))
        assert (out["MAGNESIUM"] == 0.74).all()
        for column in ("KETAMINE", "NORKETAMINE", "CE_ACTIVE", "ANALGESIA", "DISSOCIATION",
                       "PSYCHO_KET", "P_MG_AE", "RELIEF", "NMDA_CHRONIC", "MG_EFFECT"):
            assert (out[column] == 0.0).all(), column
        background = raw("ketamine_mg_pain")["parameters"]["P_PSY0"]["value"]
        np.testing.assert_allclose(out["P_PSYCHO"], background, rtol=1e-12)   # the fitted background only
        responder = 1.0 if u < 0.23 else 0.0
        np.testing.assert_allclose(out["PAIN"], 6.8 * (1 - responder * 0.5 * placebo), rtol=1e-7)
        np.testing.assert_allclose(out["PAIN_EXPECTED"], 6.8 * (1 - 0.23 * 0.5 * placebo), rtol=1e-7)


def test_ketamine_arm_leaves_magnesium_at_baseline(models):
    out = observed(models["ketamine_mg_pain"], events([KETAMINE_DOSE], DAYS_35))
    assert (out["MAGNESIUM"] == 0.74).all()
    assert out["PSYCHO_KET"].max() > 0 and out["RELIEF"].max() > 0 and out["P_MG_AE"].max() == 0


def test_pickering_2020_arms(models):
    # Pickering 2020: AUC of daily NRS over 35 days, mean 187 (saline), 185 (ketamine),
    # 196 (ketamine + MgSO4) pain-score days, no difference between arms. The model's
    # expected AUC (typical subject, baseline 6.8) must be within 25 % of each, and like
    # the trial it must show no clinically relevant arm difference (< 10 % of the saline
    # AUC; Farrar 2001 puts clinical importance at about 30 %).
    model = models["ketamine_mg_pain"]
    arms = {"saline": ([], 187.0), "ketamine": ([KETAMINE_DOSE], 185.0),
            "ketamine + magnesium": ([KETAMINE_DOSE, MAGNESIUM_DOSE], 196.0)}
    auc = {}
    for arm, (doses, published) in arms.items():
        out = observed(model, events(doses, DAYS_35))
        auc[arm] = np.trapezoid(out["PAIN_EXPECTED"], out["TIME"]) / 24.0  # pain-score days
        assert auc[arm] == pytest.approx(published, rel=0.25), arm
    assert abs(auc["ketamine"] - auc["saline"]) < 0.10 * auc["saline"]
    assert abs(auc["ketamine + magnesium"] - auc["saline"]) < 0.10 * auc["saline"]


def test_interaction_parameter_sign_and_additivity(models):
    # ALPHA = 0: the chronic drive is linear in the drugs, so ketamine + magnesium
    # equals the sum of the single-drug drives (superposition). ALPHA > 0 raises it,
    # ALPHA < 0 lowers it; without magnesium ALPHA changes nothing.
    model = models["ketamine_mg_pain"]
    times = [6.0, 24.0, 168.0, 840.0]

    def chronic(doses, alpha):
        return observed(model, events(doses, times, ALPHA=alpha))["NMDA_CHRONIC"].to_numpy()

    both = chronic([KETAMINE_DOSE, MAGNESIUM_DOSE], 0.0)
    alone = chronic([KETAMINE_DOSE], 0.0) + chronic([MAGNESIUM_DOSE], 0.0)
    np.testing.assert_allclose(both, alone, rtol=1e-6)
    assert np.all(chronic([KETAMINE_DOSE, MAGNESIUM_DOSE], 2.0) > both)
    assert np.all(chronic([KETAMINE_DOSE, MAGNESIUM_DOSE], -0.5) < both)
    np.testing.assert_allclose(chronic([KETAMINE_DOSE], 5.0), chronic([KETAMINE_DOSE], 0.0), rtol=1e-9)


def test_adverse_event_probability_rises_with_dose(models):
    # Psychotomimetic event probability: the background without ketamine, increasing with dose; at
    # every time the fitted log-logistic of the arterial S-equivalent concentration (tests/test_adverse_events.py)
    model = models["ketamine_mg_pain"]
    parameters = raw("ketamine_mg_pain")["parameters"]
    c50, gamma, background = (parameters[name]["value"] for name in ("C50_AE", "GAM_AE", "P_PSY0"))
    peaks = []
    for mg_per_kg in (0.25, 0.5, 1.0):
        out = observed(model, events([(0.0, 2, mg_per_kg * 70.0, 2.0)], np.arange(0.0, 6.0, 0.05)))
        peaks.append(out["P_PSYCHO"].max())
        ratio = 0.5 * out["KETAMINE"] / KETAMINE_MOLAR_MASS / c50
        np.testing.assert_allclose(out["P_PSYCHO"], 1 - (1 - background) / (1 + ratio ** gamma), rtol=1e-12)
    assert background < peaks[0] < peaks[1] < peaks[2] < 1
