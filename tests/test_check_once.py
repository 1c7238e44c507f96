"""Check once, at the boundary: what `pkpd run` refuses, `pkpd validate` refuses, with the same line.

Also the values checked when built: :class:`SolverOptions` and :class:`pkpd.Dose`.
"""

import dataclasses

import pytest

import pkpd
from pkpd._cli import main
from pkpd._options import SolverOptions
from pkpd.study.scenario import load_scenario

pytestmark = pytest.mark.models("ketamine_mg_pain")

BASE = """model = "ketamine_mg_pain"
[population]
n = 4
[[arms]]
name = "saline"
doses = []
[[arms]]
name = "ketamine"
doses = [{ drug = "ketamine", amount = "0.5 mg/kg", duration = "2 h" }]
[outputs]
times = { start = "0 h", stop = "4 h", step = "1 h" }
"""
TRIAL = """[trial]
period = "7 d"
baseline = "7 d"
n = [4]
replicates = 2
endpoint = { type = "auc", output = "PAIN", days = [1, 7] }
"""

#: name -> (scenario text, how the one line both commands print after "error: " begins).
BAD = {
    "covariates_string": (BASE.replace("n = 4\n", 'n = 4\ncovariates = "healthy"\n'),
                          "s.toml: population.covariates: must be a non-empty table of covariates"),
    "covariate_distribution": (BASE.replace("n = 4\n", 'n = 4\ncovariates = { WT = { distribution = "gamma" } }\n'),
                               ("s.toml: population.covariates.WT.distribution: must be one of 'normal', "
                               "'lognormal', 'uniform', 'categorical', 'constant'; got 'gamma'")),
    "correlations_unknown_name": (
        BASE.replace("n = 4\n", 'n = 4\ncovariates = { WT = { distribution = "normal", mean = 70, sd = 10 } }\n'
                                'correlations = { names = ["WT", "AGE"], matrix = [[1, 0.5], [0.5, 1]] }\n'),
        "s.toml: population.correlations.names[1]: no covariate named 'AGE'"),
    "rtol_not_below_one": (BASE + "[solver]\nrtol = 2\n", "s.toml: solver.rtol: must be in (0, 1); got 2"),
    "atol_negative": (BASE + "[solver]\natol = -1e-9\n", "s.toml: solver.atol: must be positive; got -1e-09"),
    "unknown_method": (BASE + '[solver]\nmethod = "rk4"\n',
                       "s.toml: solver.method: must be one of auto, exact, rk45, rosenbrock; got 'rk4'"),
    "negative_dose": (BASE.replace('"0.5 mg/kg"', '"-0.5 mg/kg"'),
                      "s.toml: arms[1].doses[0].amount: must be positive; got '-0.5 mg/kg'"),
    "count_without_every": (BASE.replace('duration = "2 h" }', 'duration = "2 h", count = 3 }'),
                            "s.toml: arms[1].doses[0].every: is required when count > 1 or until is given"),
    "zero_count": (BASE.replace('duration = "2 h" }', 'duration = "2 h", count = 0 }'),
                   "s.toml: arms[1].doses[0].count: must be an integer >= 1; got 0"),
    "unknown_output": (BASE.replace('step = "1 h" }', 'step = "1 h" }\nvariables = ["KET"]'),
                       "s.toml: outputs.variables[0]: model 'ketamine_mg_pain' has no output 'KET'"),
    "sweep_without_drug": (BASE + '[sweep]\namount = ["1 mg/kg"]\n', ("s.toml: sweep.drug: is required when dose "
                                                                      "keys are swept")),
    "sweep_unknown_parameter": (BASE + "[sweep]\nparameters = { NOPE = [1, 2] }\n",
                                "s.toml: sweep.parameters.NOPE: model 'ketamine_mg_pain' has no parameter 'NOPE'"),
    "trial_unknown_key": (BASE + TRIAL + "replicate = 3\n",
                          "s.toml: trial.replicate: unknown key; did you mean 'replicates'?"),
    "trial_unknown_arm": (BASE + TRIAL + 'arms = ["saline", "ketamin"]\n',
                          "s.toml: trial.arms[1]: no arm named 'ketamin' (arms: saline, ketamine)"),
    "trial_bad_versus": (BASE + TRIAL + 'versus = "placebo"\n',
                         "s.toml: trial.versus: no arm named 'placebo' (arms: saline, ketamine)"),
    "trial_bad_dropout": (BASE + TRIAL + "dropout = 1.5\n",
                          "s.toml: trial.dropout: must be a probability in [0, 1); got 1.5"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_validate_rejects_what_run_rejects_with_the_same_line(name, tmp_path, capsys):
    text, expected = BAD[name]
    path = tmp_path / "s.toml"
    path.write_text(text)
    outdir = tmp_path / "out"
    assert main(["validate", str(path)]) == 2
    validated = capsys.readouterr()
    assert main(["run", str(path), "-o", str(outdir), "--quiet"]) == 2
    ran = capsys.readouterr()
    assert validated.err == ran.err and ran.err.startswith(f"error: {expected}") and ran.err.count("\n") == 1
    assert validated.out == ran.out == ""
    assert not outdir.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_the_good_base_scenarios_validate(tmp_path, capsys):
    path = tmp_path / "s.toml"
    for text in (BASE, BASE + TRIAL):
        path.write_text(text)
        assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.count("s.toml: valid") == 2


def test_trial_designs_parsed_once_at_load_and_left_unchanged(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(BASE + TRIAL + 'versus = "saline"\n')
    scenario = load_scenario(path)
    raw = dict(scenario.trial)
    [design] = scenario.designs
    assert design.arms == ["saline", "ketamine"] and design.replicates == 2
    assert scenario.trial == raw  # the raw section is never rewritten
    assert load_scenario(tmp_path.joinpath("s.toml")).designs == scenario.designs
    path.write_text(BASE)
    assert load_scenario(path).designs == []


def test_solver_options_defaults_and_rules():
    options = SolverOptions()
    assert (options.method, options.rtol, options.atol, options.max_steps) == ("auto", 1e-8, 1e-10, 100_000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.rtol = 1e-6
    for field, value, rule in [("rtol", 1.0, "must be in (0, 1)"), ("rtol", True, "must be in (0, 1)"),
                               ("atol", 0.0, "must be positive"), ("atol", float("inf"), "must be positive"),
                               ("max_steps", 2.5, "must be a positive integer"),
                               ("method", "euler", "must be one of auto, exact, rk45, rosenbrock")]:
        with pytest.raises(pkpd.PkpdError) as caught:
            SolverOptions(**{field: value})
        assert (caught.value.key, caught.value.rule, caught.value.value) == (field, rule, value)


def test_every_default_refers_to_solver_options():
    import inspect

    from pkpd._engine import run_stream
    from pkpd._simulate_data import simulate_data_file

    for function in (pkpd.simulate, pkpd.simulate_summary, pkpd.simulate_data, simulate_data_file, run_stream):
        parameters = inspect.signature(function).parameters
        for name in ("method", "rtol", "atol", "max_steps"):
            assert parameters[name].default == getattr(SolverOptions, name), (function.__name__, name)


@pytest.mark.parametrize("fields, key, rule", [
    ({"amount": -1.0}, "amount", "must be positive"),
    ({"amount": float("nan")}, "amount", "must be a finite number"),
    ({"amount": 1.0, "duration": -2.0}, "duration", "must not be negative"),
    ({"amount": 1.0, "rate": 0.0}, "rate", "must be positive"),
    ({"amount": 1.0, "count": 0}, "count", "must be an integer >= 1"),
    ({"amount": 1.0, "count": 2.0}, "count", "must be an integer >= 1"),
    ({"amount": 1.0, "count": 3}, "every", "is required when count > 1 or until is given"),
    ({"amount": 1.0, "until": 24.0}, "every", "is required when count > 1 or until is given"),
    ({"amount": 1.0, "every": 0.0, "count": 2}, "every", "must be positive"),
    ({"amount": 1.0, "time": float("inf")}, "time", "must be a finite number"),
    ({"amount": 1.0, "per_weight": "yes"}, "per_weight", "must be true or false"),
    ({"amount": None}, "amount", "is required (or give a rate and a duration)"),
    ({"amount": None, "rate": 2.0}, "duration", "is required: an infusion by rate needs an amount or a duration"),
])
def test_a_dose_is_checked_when_built(fields, key, rule):
    amount = fields.pop("amount")
    with pytest.raises(pkpd.PkpdError) as caught:
        pkpd.Dose(amount, "CENT", **fields)
    assert (caught.value.key, caught.value.rule) == (key, rule)
    with pytest.raises(pkpd.PkpdError) as caught:
        pkpd.Dose(amount, "CENT", label="arms[2].doses[1]", **fields)
    assert caught.value.key == f"arms[2].doses[1].{key}"


def test_good_doses_build():
    assert pkpd.Dose(None, "CENT", rate=2.0, duration=3.0).administrations() == 1
    assert pkpd.Dose(1.0, "CENT", every=12.0, until=48.0).administrations() == 4
    assert pkpd.Dose(1.0, "CENT", time=-1.0, every=12.0, count=3).start_times().tolist() == [-1.0, 11.0, 23.0]
