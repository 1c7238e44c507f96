"""The validation report (docs/validation.md): every comparison, its expected verdict, and no staleness.

The expected verdicts are those stated in tests/test_model_library.py and
tests/test_validation_ketamine.py before the report existed: Fuchs-Buder 1997 within 25 % with
Lu 2002 and outside it with Du 2019 (all three times) and Salinger 2013 (90 and 240 min; +24 % at
30 min is inside); Brookfield 2016 within 25 % with all three magnesium models; the venous ketamine
peak inside 100-250 ng/mL; the arterial/venous mean residence time of ketamine outside 25 % of Persson
2002 with both racemic models (the venous link has no mass); Pickering 2020, the CSF shape, Sigtermans
2009 and Simons 2022's own peaks listed as used to build.
"""

from pathlib import Path

import pytest

from pkpd import validation
from pkpd.validation import Comparison, Prediction

pytestmark = pytest.mark.models("magnesium_lu2002", "magnesium_du2019", "magnesium_salinger2013",
                                "ketamine_kamp2020", "ketamine_mg_pain", "esketamine_otto2021",
                                "esketamine_simons2022")

DOCS = Path(__file__).resolve().parent.parent / "docs"
KNOWN = "known failure"
BUILT = "used to build: not validation"
EXPECTED = [
    ("magnesium_lu2002", "MAGNESIUM", "pass"), ("magnesium_lu2002", "MAGNESIUM", "pass"),
    ("magnesium_lu2002", "MAGNESIUM", "pass"),
    ("magnesium_du2019", "MAGNESIUM", KNOWN), ("magnesium_du2019", "MAGNESIUM", KNOWN),
    ("magnesium_du2019", "MAGNESIUM", KNOWN),
    ("magnesium_salinger2013", "MAGNESIUM", "pass"), ("magnesium_salinger2013", "MAGNESIUM", KNOWN),
    ("magnesium_salinger2013", "MAGNESIUM", KNOWN),
    ("magnesium_du2019", "MAGNESIUM_MGDL", "pass"), ("magnesium_salinger2013", "MAGNESIUM_MGDL", "pass"),
    ("magnesium_lu2002", "MAGNESIUM_MGDL", "pass"),
    ("ketamine_kamp2020", "KETAMINE_VEN", "pass"), ("ketamine_mg_pain", "KETAMINE_VEN", "pass"),
    ("ketamine_kamp2020", "KETAMINE", KNOWN), ("ketamine_mg_pain", "KETAMINE", KNOWN),
    ("ketamine_mg_pain", "P_ANY_AE", "pass"), ("ketamine_mg_pain", "P_ANY_AE", "pass"),
    ("ketamine_mg_pain", "P_ANY_AE", KNOWN),
    ("ketamine_mg_pain", "PAIN_EXPECTED", BUILT), ("ketamine_mg_pain", "PAIN_EXPECTED", BUILT),
    ("ketamine_mg_pain", "PAIN_EXPECTED", BUILT),
    ("ketamine_mg_pain", "MG_EFFECT", BUILT), ("ketamine_mg_pain", "MG_EFFECT", BUILT),
    ("esketamine_otto2021", "PAIN_EXPECTED", BUILT),
    ("esketamine_simons2022", "KETAMINE", BUILT), ("esketamine_simons2022", "KETAMINE", BUILT),
]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("validation")
    assert validation.main([str(folder)]) == 0
    return folder, validation.generate(folder, figure_file=False)


def test_the_report_holds_every_comparison_with_its_expected_verdict(generated):
    _, predictions = generated
    found = [(p.comparison.model, p.comparison.output, p.verdict) for p in predictions]
    assert len(found) == len(EXPECTED)
    for (model, output, verdict), expected in zip(found, EXPECTED):
        assert (model, output) == expected[:2]
        assert verdict.startswith(expected[2]), (model, output, verdict)
    for p in predictions:
        assert p.low <= p.median <= p.high
        if p.verdict.startswith(KNOWN):   # the reason is in the table
            assert any(reason in p.verdict for reason in ("central volume", "magnesium term", "venous"))


def test_the_generator_writes_the_table_and_the_figure(generated):
    folder, predictions = generated
    text = (folder / "validation.md").read_text(encoding="utf-8")
    assert "No model parameter was tuned" in text and "python -m pkpd.validation" in text
    assert text.count("| known failure: ") == sum(p.verdict.startswith(KNOWN) for p in predictions)
    assert (folder / "validation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_committed_report_equals_a_fresh_generation(generated):
    folder, _ = generated
    assert (DOCS / "validation.md").read_text(encoding="utf-8") == (folder / "validation.md").read_text(encoding="utf-8"), \
        "docs/validation.md is stale: run `python -m pkpd.validation`"


def _verdict(typical, known_failure="", tolerance=0.25, observed_range=None):
    comparison = Comparison("r", "p", "m", "OUT", "t", [], (0.0,), ("at", 0.0), 1.0, "1", "source",
                            tolerance=tolerance, observed_range=observed_range, known_failure=known_failure)
    return Prediction(comparison, typical, typical, typical, typical, "label").verdict


def test_verdicts_never_hide_a_failure_or_a_changed_known_failure():
    assert _verdict(1.2) == "pass"
    assert _verdict(1.3) == "FAIL"
    assert _verdict(1.3, "why") == "known failure: why"
    assert _verdict(1.2, "why").startswith("unexpected pass")
    assert _verdict(0.74) == "FAIL"
    assert _verdict(2.0, tolerance=None, observed_range=(0.5, 2.5)) == "pass"
    assert _verdict(2.6, tolerance=None, observed_range=(0.5, 2.5)) == "FAIL"
