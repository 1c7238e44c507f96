"""The shipped search scenarios (issue 18): they load, validate and ask what their opening says."""

import numpy as np
import pytest

from conftest import ROOT
from pkpd._cli import main
from pkpd.study.scenario import load_scenario

pytestmark = pytest.mark.models("ketamine_mg_pain")


def test_the_chronic_pain_search_validates_and_asks_for_the_least_pain_under_25_percent_adverse_events(capsys):
    path = ROOT / "scenarios" / "ketamine_weekly_pain_search.toml"
    assert main(["validate", str(path)]) == 0
    assert "valid" in capsys.readouterr().out
    spec = load_scenario(path).search
    (limit,) = spec.constraints
    assert (limit.metric.kind, limit.metric.output, limit.at_most) == ("adverse_event_rate", "P_ANY_AE", 0.25)
    assert (spec.objective.kind, spec.objective.output, spec.sense) == ("auc", "PAIN_EXPECTED", 1)
    assert [v.name for v in spec.variables] == ["dose", "length"] and spec.size <= spec.budget


def test_the_tradeoff_figure_plots_every_candidate_the_feasible_region_and_the_choice():
    """The chronic-pain search in 12 patients: every candidate is one point (x its adverse-event rate, y its
    pain AUC, from search.csv's columns); the only limit is 25 % adverse events, so the shaded region ends at
    x = 25 % and holds exactly the feasible points; the square is the chosen candidate."""
    from pkpd.study.search import search_scenario
    from pkpd.figures import tradeoff_figure

    scenario = load_scenario(ROOT / "scenarios" / "ketamine_weekly_pain_search.toml").with_overrides(n=12)
    found = search_scenario(scenario, progress=False)
    table = found.table
    events, pain = 100 * table["adverse_event_rate_P_ANY_AE (fraction)"], table["pain_auc (NRS 0-10*d)"]
    ax = tradeoff_figure(found).axes[0]
    lines = {line.get_label(): np.column_stack(line.get_data()) for line in ax.get_lines()}
    feasible = table["feasible"].to_numpy()
    assert 0 < feasible.sum() < len(table)
    for label, rows in (("_feasible", feasible), ("_infeasible", ~feasible)):
        np.testing.assert_allclose(sorted(map(tuple, lines[label])), sorted(zip(events[rows], pain[rows])))
    region = next(p for p in ax.patches if p.get_label() == "_feasible_region")
    assert region.get_x() + region.get_width() == pytest.approx(25.0)
    inside = (events >= region.get_x()) & (events <= 25.0)
    assert (inside.to_numpy() == feasible).all()
    chosen = table.iloc[found.chosen]
    assert lines["_chosen"][0] == pytest.approx([100 * chosen["adverse_event_rate_P_ANY_AE (fraction)"],
                                                 chosen["pain_auc (NRS 0-10*d)"]])
    assert lines["_chosen_interval_y"][:, 1] == pytest.approx([chosen["pain_auc low"], chosen["pain_auc high"]])
    assert [stem for stem, _, _ in found.figures()] == ["search", "search_tradeoff"]
