"""Regimen search (issue 18): the continuous window metric against closed forms, the search against an
analytic optimum, common random numbers, Monte Carlo intervals, and one-line errors."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

import pkpd
from pkpd._cli import main
from pkpd.study.search import search
from pkpd.metrics import window

from conftest import TEST_MODELS, write_pk1cmt_with_drugs

pytestmark = pytest.mark.models("pk1cmt", TEST_MODELS / "pk1cmt_iiv.toml")

V, CL = 20.0, 1.0          # pk1cmt's typical values (L, L/h)
K = CL / V


def bolus_plus_infusion(t, dose, rate, duration=np.inf):
    """pk1cmt, IV bolus `dose` (mg) at 0 plus `rate` (mg/h) from 0 to `duration`: concentration (mg/L)."""
    t = np.asarray(t, float)
    during = np.minimum(t, duration)
    infused = rate / CL * (1 - np.exp(-K * during)) * np.exp(-K * (t - during))
    return dose / V * np.exp(-K * t) + infused


# --- the window metric ------------------------------------------------------------------------------

def test_time_within_and_staying_within_match_the_closed_form_of_a_bolus_plus_infusion():
    """c(t) = D/V e^-kt + R/CL (1 - e^-kt) falls monotonically from 5 to 2 mg/L; the window 2.5-4 mg/L
    holds from t_4 to t_2.5 = ln((c0 - Css)/(c - Css))/k, and the output grid (every 6 h) holds none of
    those times: the metric must not read them off the grid."""
    dose, rate = 100.0, 2.0
    css, c0 = rate / CL, dose / V
    start, stop = 1.0, 20.0
    regimen = [pkpd.Dose(dose, "CENT"), pkpd.Dose(None, "CENT", rate=rate, duration=48.0)]
    coarse = np.arange(0.0, 25.0, 6.0)
    kinks = window.kinks_of(pkpd.Regimen(regimen), 0.0, 24.0)
    grid = window.evaluation_times(coarse, kinks, [(start, stop)])
    values = pkpd.simulate("pk1cmt", regimen, pkpd.Population(1, seed=0), grid).output("CP")
    enter, leave = (np.log((c0 - css) / (level - css)) / K for level in (4.0, 2.5))
    expected = (min(leave, stop) - max(enter, start)) / (stop - start)
    stays, fraction = window.window_metrics(grid, values, 2.5, 4.0, start, stop, kinks)
    assert fraction[0] == pytest.approx(expected, rel=1e-4)
    assert not stays[0]
    stays, fraction = window.window_metrics(grid, values, 2.0, 5.0, start, stop, kinks)
    assert stays[0] and fraction[0] == pytest.approx(1.0)
    assert bolus_plus_infusion(start, dose, rate) < 5.0 and bolus_plus_infusion(stop, dose, rate) > 2.0


def test_a_peak_between_evaluation_times_is_found_by_the_parabola():
    """An oral dose peaks at tmax = ln(KA/k)/(KA - k) = 3.153 h, between the evaluation times 3.1 and 3.2 h:
    the samples miss the top by 5e-5 of Cmax, the parabola's vertex by 3e-6; a window whose upper bound lies
    in between counts the subject as leaving it."""
    ka = 1.0
    tmax = np.log(ka / K) / (ka - K)
    cmax = 100.0 / V * ka / (ka - K) * (np.exp(-K * tmax) - np.exp(-ka * tmax))
    grid = window.evaluation_times(np.arange(0.0, 13.0, 1.0), [0.0], [(0.0, 12.0)])
    values = pkpd.simulate("pk1cmt", [pkpd.Dose(100.0, "DEPOT")], pkpd.Population(1, seed=0), grid).output("CP")
    sampled = values.max()
    low, high = window.extremes(grid, values, 0.0, 12.0, kinks=[0.0])
    assert cmax - sampled > 4e-5 * cmax
    assert abs(high[0] - cmax) < 5e-6 * cmax
    limit = cmax * (1 - 2e-5)
    assert sampled < limit  # the samples alone would call it within
    stays, _ = window.window_metrics(grid, values, 0.0, limit, 0.0, 12.0, [0.0])
    assert not stays[0]


def test_no_parabola_is_fitted_across_a_kink():
    """The peak of an infusion is at its end, a kink: it is exact, and the parabola through the corner
    would overshoot it."""
    times = np.array([0.0, 1.0, 2.0, 3.0])
    values = np.array([[0.0, 1.0, 2.0, 1.5]])   # rises to the end of an infusion at 2 h, then falls
    assert window.extremes(times, values, 0.0, 3.0, kinks=[0.0, 2.0])[1][0] == 2.0
    assert window.extremes(times, values, 0.0, 3.0, kinks=[])[1][0] > 2.0


def test_fraction_within_matches_each_subjects_closed_form():
    """With IIV the fraction of subjects within the window is checked subject by subject against
    c(t) = D/V_i e^-k_i t + R/CL_i (1 - e^-k_i t) from each subject's own parameters."""
    population = pkpd.Population(200, seed=7)
    found = search(TEST_MODELS / "pk1cmt_iiv.toml",
                   [pkpd.Dose(90.0, "CENT"), pkpd.Dose(None, "CENT", rate=12.0, duration=24.0)], population,
                   np.arange(0.0, 25.0, 4.0),
                   variables={"dose": {"set": "doses[0].amount", "values": ["90 mg"]}},
                   constraints=[{"metric": "fraction_within", "output": "CP", "window": ["1.8 mg/L", "3.6 mg/L"],
                                 "interval": ["1 h", "12 h"], "at_least": 0}],
                   objective={"maximise": "time_within", "output": "CP", "window": ["1.8 mg/L", "3.6 mg/L"],
                              "interval": ["1 h", "12 h"]})
    result = pkpd.simulate(TEST_MODELS / "pk1cmt_iiv.toml", found.regimen, population, [0.0, 1.0])
    weight = result.parameters["WT"].to_numpy()
    clearance = result.parameters["CL"].to_numpy() * (weight / 70) ** 0.75
    volume = result.parameters["V"].to_numpy() * weight / 70
    t = np.linspace(1.0, 12.0, 20001)[None, :]
    k = (clearance / volume)[:, None]
    c = 90.0 / volume[:, None] * np.exp(-k * t) + 12.0 / clearance[:, None] * (1 - np.exp(-k * t))
    inside = (c >= 1.8) & (c <= 3.6)
    row = found.table.iloc[0]
    assert 0.1 < inside.all(axis=1).mean() < 0.9  # the case discriminates
    assert row["fraction_within_CP (fraction)"] == pytest.approx(inside.all(axis=1).mean(), abs=1e-12)
    assert row["time_within_CP (fraction)"] == pytest.approx(inside.mean(), abs=2e-4)


def test_wilson_interval_matches_the_published_example():
    """Newcombe (Stat Med 1998;17:857), Table I: 81/263 -> 0.2553 to 0.3662 (95 %)."""
    low, high = window.wilson_interval(81, 263)
    assert (round(float(low), 4), round(float(high), 4)) == (0.2553, 0.3662)


# --- the search ---------------------------------------------------------------------------------------

def test_search_finds_the_analytic_optimum_of_a_loading_dose_and_rate():
    """Minimise the total dose D + 24 h x R of a bolus D and a 24-h infusion R keeping pk1cmt within
    2-3 mg/L from 0.5 to 12 h. The concentration is monotone, so the window holds iff it holds at both
    ends: a linear programme (scipy's linprog gives the continuous optimum) and, on the 101 x 81 grid,
    a brute-force optimum in closed form. The search (coarse grid then refinement, 8,181 points, budget
    250) must return that grid point, within one step of the continuous optimum."""
    start, stop, infusion = 0.5, 12.0, 24.0
    doses, rates = np.arange(0.0, 101.0, 1.0), np.arange(0.0, 4.0001, 0.05)
    ends = [bolus_plus_infusion(t, doses[:, None], rates[None, :], infusion) for t in (start, stop)]
    ok = np.all([(c >= 2.0) & (c <= 3.0) for c in ends], axis=0)
    total = np.where(ok, doses[:, None] + infusion * rates[None, :], np.inf)
    best = np.unravel_index(np.argmin(total), total.shape)
    assert np.sort(total.ravel())[1] > total[best] + 0.1  # one grid optimum
    matrix = [[np.exp(-K * t) / V, (1 - np.exp(-K * t)) / CL] for t in (start, stop)]
    continuous = linprog([1.0, infusion], A_ub=np.vstack([matrix, -np.array(matrix)]), b_ub=[3, 3, -2, -2],
                         bounds=[(0, None), (0, None)]).x

    found = search("pk1cmt", [pkpd.Dose(50.0, "CENT"), pkpd.Dose(None, "CENT", rate=1.0, duration=infusion)],
                   pkpd.Population(1, seed=0), np.arange(0.0, 24.5, 0.5), budget=250,
                   variables={"loading": {"set": "doses[0].amount", "from": "0 mg", "to": "100 mg", "step": "1 mg"},
                              "rate": {"set": "doses[1].rate", "from": "0 mg/h", "to": "4 mg/h", "step": "0.05 mg/h"}},
                   constraints=[{"metric": "fraction_within", "output": "CP", "window": ["2 mg/L", "3 mg/L"],
                                 "interval": ["30 min", "12 h"], "at_least": "100 %"}])
    assert found.feasible
    assert (found.values["loading"], found.values["rate"]) == (doses[best[0]], pytest.approx(rates[best[1]]))
    assert abs(found.values["loading"] - continuous[0]) <= 1.0 and abs(found.values["rate"] - continuous[1]) <= 0.05
    assert len(found.table) <= 250 and set(found.table["stage"]) == {"coarse", "refine"}
    assert found.table["total_dose (mg)"].iloc[found.chosen] == pytest.approx(total[best])


def _dose_search(**extra):
    return search(TEST_MODELS / "pk1cmt_iiv.toml", [pkpd.Dose(100.0, "CENT")], pkpd.Population(300, seed=3),
                  np.arange(0.0, 13.0, 1.0),
                  variables={"dose": {"set": "doses[0].amount", "from": "100 mg", "to": "300 mg", "step": "50 mg"}},
                  constraints=[{"metric": "cmax", "output": "CP", "statistic": "p95", "at_most": "8 mg/L"},
                               {"metric": "fraction_within", "output": "CP", "window": ["1 mg/L", "10 mg/L"],
                                "interval": ["0 h", "6 h"], "at_least": "50 %"}],
                  objective={"maximise": "auc", "output": "CP", "statistic": "mean"}, **extra)


def test_candidates_share_their_virtual_patients():
    """Common random numbers: the model is linear, so with the same subjects every candidate's 95th
    percentile of Cmax and mean AUC are exactly proportional to its dose (other subjects would move them
    by sampling noise, about 5 % here)."""
    table = _dose_search().table.sort_values("dose (mg)")
    for column in ("cmax_p95_CP (mg/L)", "auc_CP (mg/L*h)"):
        ratio = table[column] / table["dose (mg)"]
        assert np.ptp(ratio) < 1e-9 * ratio.mean()


def test_the_search_does_not_depend_on_chunking_or_an_executor():
    from conftest import PicklingExecutor

    plain = _dose_search().table
    executor = PicklingExecutor()
    elsewhere = _dose_search(executor=executor).table
    assert executor.tasks >= len(plain)
    pd.testing.assert_frame_equal(plain, elsewhere)


def test_final_candidates_carry_monte_carlo_intervals():
    """Every fraction has a Wilson interval; the final candidates a bootstrap interval of each other metric,
    which contains the point estimate; the chosen one is marked robust only if its interval meets the limit."""
    found = _dose_search()
    table = found.table
    assert table["fraction_within_CP low"].notna().all()
    finals = table[table["final"]]
    assert ((finals["auc_CP low"] <= finals["auc_CP (mg/L*h)"]) & (finals["auc_CP (mg/L*h)"] <= finals["auc_CP high"])).all()
    assert table.loc[~table["final"], "auc_CP low"].isna().all()
    chosen = table.iloc[found.chosen]
    assert chosen["chosen"] and chosen["feasible"]
    assert chosen["robust"] == (chosen["cmax_p95_CP high"] <= 8.0 and chosen["fraction_within_CP low"] >= 0.5)
    assert table.loc[table["feasible"], "auc_CP (mg/L*h)"].max() == chosen["auc_CP (mg/L*h)"]


def test_an_infeasible_problem_says_so_and_names_the_closest_candidate():
    found = search("pk1cmt", [pkpd.Dose(100.0, "CENT")], pkpd.Population(1, seed=0), np.arange(0.0, 25.0, 1.0),
                   variables={"dose": {"set": "doses[0].amount", "from": "50 mg", "to": "150 mg", "step": "50 mg"}},
                   constraints=[{"metric": "cmin", "output": "CP", "at_least": "5 mg/L"}])
    assert not found.feasible and found.chosen is None
    assert found.message.startswith("no candidate within the limits; closest: dose 150 mg")
    assert "misses median cmin of CP" in found.message
    assert not found.table["feasible"].any()


def test_a_choice_at_the_end_of_a_range_is_flagged():
    found = _dose_search()
    dose = found.values["dose"]
    assert dose in (100.0, 300.0) or not found.notes
    edge = search("pk1cmt", [pkpd.Dose(100.0, "CENT")], pkpd.Population(1, seed=0), np.arange(0.0, 25.0, 1.0),
                  variables={"dose": {"set": "doses[0].amount", "from": "50 mg", "to": "150 mg", "step": "50 mg"}},
                  objective={"maximise": "cmin", "output": "CP"})
    assert edge.values == {"dose": 150.0}
    assert edge.notes == ["dose = 150 mg is at the upper end of its range; the best regimen may lie beyond it: "
                          "widen search.variables.dose"]


# --- scenarios, pkpd run and errors ----------------------------------------------------------------

SCENARIO = """\
model = "pk1cmt.toml"
seed = 5
[population]
n = 20
[[arms]]
name = "load + maintain"
doses = [{ drug = "CENT", amount = "50 mg" }, { drug = "CENT", rate = "1 mg/h", duration = "12 h" }]
[outputs]
times = { start = "0 h", stop = "12 h", step = "1 h" }
variables = ["CP"]
[search]
budget = 40
[search.variables]
loading = { set = "doses[0].amount", from = "20 mg", to = "80 mg", step = "10 mg" }
rate = { set = "doses[1].rate", from = "0.5 mg/h", to = "3 mg/h", step = "0.5 mg/h" }
[[search.constraints]]
metric = "fraction_within"
output = "CP"
window = ["2 mg/L", "3.5 mg/L"]
interval = ["1 h", "12 h"]
at_least = "90 %"
[[search.constraints]]
metric = "total_dose"
at_most = "150 mg"
"""


def test_pkpd_run_writes_the_search_and_reports_the_chosen_regimen(tmp_path, capsys):
    write_pk1cmt_with_drugs(tmp_path)
    (tmp_path / "study.toml").write_text(SCENARIO)
    assert main(["run", str(tmp_path / "study.toml"), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    out = tmp_path / "out"
    table = pd.read_csv(out / "search.csv")
    assert len(table) <= 40 and table["chosen"].sum() == 1  # 7 x 6 = 42 points > budget: coarse, then refinement
    manifest = json.loads((out / "manifest.json").read_text())
    chosen = manifest["search"]["chosen"]["values"]
    row = table[table["chosen"]].iloc[0]
    assert (row["loading (mg)"], row["rate (mg/h)"]) == (chosen["loading"], chosen["rate"])
    arm = f"search best: loading {chosen['loading']:g} mg, rate {chosen['rate']:g} mg/h"
    assert arm in set(pd.read_csv(out / "summary.csv")["arm"])
    assert any(f["file"] == "search.png" for f in manifest["figures"])
    again = tmp_path / "again.toml"
    again.write_text('model = "pk1cmt.toml"\n' + (out / "search_arm.toml").read_text()
                     + '[outputs]\ntimes = { start = "0 h", stop = "12 h", step = "1 h" }\n')
    rerun = pkpd.run_scenario(pkpd.load_scenario(again))
    assert rerun.summary["arm"].iloc[0] == "search: load + maintain"
    assert pkpd.search(tmp_path / "study.toml").values == chosen  # the Python entry point, the same answer


def test_the_search_figure_shows_the_table(tmp_path):
    """The heat map's cells are the feasible candidates' objective (the default: total dose), the grey
    layer the infeasible ones, the outline the chosen one."""
    from pkpd.figures import search_figure

    write_pk1cmt_with_drugs(tmp_path)
    (tmp_path / "study.toml").write_text(SCENARIO)
    found = pkpd.search(tmp_path / "study.toml")
    axes = search_figure(found).axes[0]
    images = {image.get_label(): image.get_array() for image in axes.get_images()}
    loadings, rates = np.arange(20.0, 81.0, 10.0), np.arange(0.5, 3.01, 0.5)
    for _, row in found.table.iterrows():
        i, j = np.flatnonzero(loadings == row["loading (mg)"])[0], np.flatnonzero(rates == row["rate (mg/h)"])[0]
        if row["feasible"]:
            assert images["_objective"][i, j] == pytest.approx(row["total_dose (mg)"])
        else:
            assert images["_infeasible"][i, j] == 1 and images["_objective"].mask[i, j]
    chosen = found.table.iloc[found.chosen]
    box = next(p for p in axes.patches if p.get_label() == "_chosen")
    assert (box.get_y() + 0.5, box.get_x() + 0.5) == (
        np.flatnonzero(loadings == chosen["loading (mg)"])[0], np.flatnonzero(rates == chosen["rate (mg/h)"])[0])


@pytest.mark.parametrize("edit, message", [
    (("doses[0].amount", "doses[0].amout"), "study.toml: search.variables.loading.set: unknown dose field 'amout'; "
                                            "did you mean 'amount'?"),
    (("doses[1].rate", "doses[2].rate"), "study.toml: search.variables.rate.set: the arm has 2 dose(s) (doses[0] to "
                                         "doses[1]); got 'doses[2].rate'"),
    (('from = "20 mg", to = "80 mg"', 'from = "80 mg", to = "20 mg"'),
     "study.toml: search.variables.loading: bounds reversed: from (80 mg) must not exceed to (20 mg)"),
    (('from = "20 mg"', 'from = "0.2 mg/kg"'), "study.toml: search.variables.loading.from: unit mismatch: doses[0] "
                                              "is not per body weight; give an absolute unit, e.g. '10 mg'; got "
                                              "'0.2 mg/kg'"),
    (('step = "10 mg"', 'step = "10 min"'), "study.toml: search.variables.loading.step: must be an amount in units "
                                            "compatible with 'mg' (or per kg); got '10 min'"),
    (('metric = "total_dose"', 'metric = "total_doze"'), "study.toml: search.constraints[1].metric: unknown metric "
                                                         "'total_doze'; did you mean 'total_dose'?"),
    (('output = "CP"\nwindow', 'output = "CQ"\nwindow'), "study.toml: search.constraints[0].output: model 'pk1cmt' "
                                                         "has no output 'CQ'; outputs: CP"),
    (('interval = ["1 h", "12 h"]', 'interval = ["1 h", "13 h"]'),
     "study.toml: search.constraints[0].interval: must lie within the output times (0 to 12 h); got ['1 h', '13 h']"),
    (('at_least = "90 %"', 'at_least = "190 %"'), "study.toml: search.constraints[0].at_least: must be a fraction in "
                                                  "[0, 1] (or 0-100 %); got '190 %'"),
    (("budget = 40", "budgets = 40"), "study.toml: search.budgets: unknown key; did you mean 'budget'?"),
    (('metric = "total_dose"', 'metric = "adverse_event_rate"'),
     "study.toml: search.constraints[1].output: model 'pk1cmt' has no output of role adverse_event_probability"),
])
def test_bad_search_specs_fail_in_one_line_with_exit_2(tmp_path, capsys, edit, message):
    write_pk1cmt_with_drugs(tmp_path)
    old, new = edit
    assert old in SCENARIO
    (tmp_path / "study.toml").write_text(SCENARIO.replace(old, new, 1))
    assert main(["run", str(tmp_path / "study.toml"), "-o", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"error: {message}"
    assert not (tmp_path / "out").exists()


def test_an_infeasible_scenario_runs_and_says_so(tmp_path, capsys):
    write_pk1cmt_with_drugs(tmp_path)
    (tmp_path / "study.toml").write_text(SCENARIO.replace('at_most = "150 mg"', 'at_most = "30 mg"'))
    assert main(["run", str(tmp_path / "study.toml"), "-o", str(tmp_path / "out"), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "no candidate within the limits; closest: loading" in printed
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["search"]["feasible"] is False and "closest" in manifest["search"]


def test_durations_intervals_and_counts_are_searched_and_linked_fields_move_together():
    """A loading infusion's duration also moves the start of the maintenance doses (one variable, two
    fields, shown in the unit written: min); the interval and the number of maintenance doses are
    variables too. Every candidate's regimen is the template with exactly those fields changed."""
    regimen = [pkpd.Dose(40.0, "CENT", duration=0.5), pkpd.Dose(20.0, "CENT", time=0.5, every=12.0, count=2)]
    found = search("pk1cmt", regimen, pkpd.Population(1, seed=0), np.arange(0.0, 49.0, 1.0),
                   variables={"loading_time": {"set": ["doses[0].duration", "doses[1].start"],
                                               "values": ["30 min", "60 min"]},
                              "every": {"set": "doses[1].every", "values": ["8 h", "12 h"]},
                              "count": {"set": "doses[1].count", "from": 1, "to": 3}},
                   constraints=[{"metric": "cmin", "output": "CP", "interval": ["2 h", "30 h"], "at_least": "1 mg/L"}])
    assert len(found.table) == 2 * 2 * 3 and list(found.table.columns[2:5]) == [
        "loading_time (min)", "every (h)", "count (doses)"]
    loading, maintenance = found.regimen.doses
    assert loading.duration == maintenance.time == found.values["loading_time"] / 60
    assert (maintenance.every, maintenance.count) == (found.values["every"], found.values["count"])
    assert maintenance.amount == 20.0 and loading.amount == 40.0
    # every point was evaluated (12 <= budget): the choice is the least total dose among the feasible
    total = found.table["total_dose (mg)"]
    assert total.iloc[found.chosen] == total[found.table["feasible"]].min()


def test_a_search_without_adverse_events_has_no_tradeoff_figure(tmp_path):
    write_pk1cmt_with_drugs(tmp_path)
    (tmp_path / "study.toml").write_text(SCENARIO)
    assert [stem for stem, _, _ in pkpd.search(tmp_path / "study.toml").figures()] == ["search"]


def test_validate_counts_the_search_and_refuses_it_up_front_when_it_exceeds_the_memory_limit(tmp_path, capsys,
                                                                                               monkeypatch):
    """pkpd validate and pkpd run estimate the search (candidates x subjects x metrics kept, one candidate's
    simulation at a time) with the arms: 20,000 subjects pass a 2 GB limit, and fail a 200 MB one with the
    search named in the message, exit 2 and nothing written; so does pkpd.search from Python."""
    from pkpd.study.scenario import check_resources, load_scenario
    from pkpd.study.search_spec import search_resources

    write_pk1cmt_with_drugs(tmp_path)
    (tmp_path / "study.toml").write_text(SCENARIO.replace("n = 20", "n = 20000"))
    scenario = load_scenario(tmp_path / "study.toml")
    size, _, what = search_resources(scenario)
    assert what == ", search of 40 candidates x 20,000 subjects x 138 times"   # 13 times + 2 x 2 doses + 121
    assert 40 * 20000 * 2 * 8 < size < check_resources(scenario, max_memory="2GB")[0]
    assert main(["validate", str(tmp_path / "study.toml"), "--max-memory", "200MB"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: study.toml: 20,000 subjects x 1 arms") and "search of 40 candidates" in error
    assert main(["run", str(tmp_path / "study.toml"), "-o", str(tmp_path / "out"), "--max-memory", "200MB"]) == 2
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv("PKPD_MAX_MEMORY", "200MB")
    with pytest.raises(pkpd.ResourceError, match="^regimen search of 40 candidates x 20,000 subjects"):
        search("pk1cmt", [pkpd.Dose(100.0, "CENT")], pkpd.Population(20000, seed=0), np.arange(0.0, 13.0, 1.0),
               variables={"dose": {"set": "doses[0].amount", "from": "10 mg", "to": "400 mg", "step": "10 mg"}},
               constraints=[{"metric": "cmax", "output": "CP", "at_most": "8 mg/L"}])


def test_a_pain_auc_metric_is_in_score_times_days_as_in_the_run_tables(tmp_path):
    # issue 20: one unit for pain AUC everywhere, the search's metrics included; a constant score of 6
    # over 48 h is 12 score x days (closed form)
    from types import SimpleNamespace

    from pkpd.study.search import _per_subject
    from pkpd.study.search_spec import _metric_unit

    path = tmp_path / "pk1cmt_pain.toml"
    path.write_text((TEST_MODELS / "pk1cmt_iiv.toml").read_text().replace('name = "pk1cmt_iiv"', 'name = "pk1cmt_pain"')
                    .replace("[outputs]", '[outputs]\nPAIN = { expr = "6 + 0*CENT", unit = "NRS 0-10", role = "pain_score" }'))
    model = pkpd.load_model(path)
    population, times = pkpd.Population(3, seed=1), np.linspace(0.0, 48.0, 97)
    result = pkpd.simulate(model, [], population, times, progress=False)
    metric = SimpleNamespace(kind="auc", output="PAIN", interval=(0.0, 48.0))
    auc = _per_subject(metric, model, pkpd.Regimen([]), result, times, np.array([0.0]), population)
    assert auc == pytest.approx([12.0] * 3, rel=1e-12)
    assert _metric_unit("auc", model, "PAIN") == "NRS 0-10*d"
    assert _metric_unit("auc", model, "CP") == "mg/L*h"
