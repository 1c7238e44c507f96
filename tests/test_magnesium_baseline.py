"""Magnesium baseline MG0: a covariate of every magnesium model, drawn per subject by a population.

The magnesium models describe the EXCESS over baseline (a linear model on the change from
baseline), so a subject's absolute magnesium is MG0 + excess: a higher MG0 shifts the whole
profile by exactly the difference, and the excess does not depend on MG0 at all.
"""

import numpy as np
import pytest

from conftest import ROOT
from pkpd.study.run import simulate_arms
from pkpd.study.scenario import load_scenario

pytestmark = pytest.mark.models("ketamine_mg_pain", "magnesium_lu2002")

PICKERING = """
model = "ketamine_mg_pain"
seed = 11
[population]
n = 6
{covariates}
[[arms]]
name = "ketamine + MgSO4"
doses = [
  {{ drug = "magnesium", amount = "3 g MgSO4·7H2O", duration = "30 min" }},
  {{ drug = "ketamine", amount = "0.5 mg/kg", duration = "2 h", start = "30 min" }},
]
[outputs]
times = {{ start = "0 h", stop = "24 h", step = "1 h" }}
variables = ["MAGNESIUM", "KETAMINE", "P_PSYCHO"]
"""
WEIGHT = 'WT = { distribution = "lognormal", mean = 79.0, sd = 19.0, min = 40.0, max = 160.0 }'


def run(tmp_path, covariates):
    path = tmp_path / "scenario.toml"
    path.write_text(PICKERING.format(covariates=covariates), encoding="utf-8")
    scenario = load_scenario(path)
    population = scenario.make_population()
    return population, simulate_arms(scenario, population, progress=False)["ketamine + MgSO4"]


def test_default_baseline_is_the_models_value(tmp_path):
    _, result = run(tmp_path, f"[population.covariates]\n{WEIGHT}")
    magnesium = result.output("MAGNESIUM")
    assert (magnesium[:, 0] == 0.74).all()           # before the infusion: exactly the default MG0
    assert (magnesium[:, 1:] > 0.74).all()           # magnesium given: above it


def test_a_higher_baseline_shifts_absolute_magnesium_by_exactly_that_much(tmp_path):
    _, default = run(tmp_path, f"[population.covariates]\n{WEIGHT}")
    _, higher = run(tmp_path, f"[population.covariates]\n{WEIGHT}\n"
                              'MG0 = { distribution = "constant", value = 0.92 }')
    shift = higher.output("MAGNESIUM") - default.output("MAGNESIUM")
    np.testing.assert_allclose(shift, 0.92 - 0.74, rtol=0, atol=1e-12)
    # nothing else moves: ketamine and its effects do not depend on the magnesium baseline
    np.testing.assert_array_equal(higher.output("KETAMINE"), default.output("KETAMINE"))
    np.testing.assert_array_equal(higher.output("P_PSYCHO"), default.output("P_PSYCHO"))


def test_a_drawn_baseline_is_each_subjects_own(tmp_path):
    _, default = run(tmp_path, f"[population.covariates]\n{WEIGHT}")
    population, drawn = run(tmp_path, f"[population.covariates]\n{WEIGHT}\n"
                                      'MG0 = { distribution = "normal", mean = 0.82, sd = 0.094 }')
    baseline = population.covariates["MG0"].to_numpy()
    assert np.unique(baseline).size == baseline.size  # one draw per subject
    # independent calculation: absolute = own baseline + the excess of the default run (excess - 0.74)
    expected = baseline[:, None] + (default.output("MAGNESIUM") - 0.74)
    np.testing.assert_allclose(drawn.output("MAGNESIUM"), expected, rtol=0, atol=1e-12)


def test_surgical_scenario_draws_the_baseline_from_its_population():
    scenario = load_scenario(ROOT / "scenarios" / "magnesium_surgical.toml").with_overrides(n=400)
    population = scenario.make_population()
    baseline = population.covariates["MG0"].to_numpy()
    # celiotomy patients (LITERATURE-3.md section 6): mean 0.82 mmol/L, 10 % below 0.70
    assert baseline.mean() == pytest.approx(0.82, abs=0.015)
    assert np.mean(baseline < 0.70) == pytest.approx(0.10, abs=0.04)
