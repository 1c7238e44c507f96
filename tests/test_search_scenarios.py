"""The shipped search scenarios (issue 18): they load, validate and ask what their opening says."""

import pytest

from conftest import ROOT
from pkpd._cli import main
from pkpd._scenario import load_scenario

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
