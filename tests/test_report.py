"""``pkpd report``: one self-contained HTML file and its PDF, checked in a real browser.

The report of one tiny run (magnesium alone, 6 subjects, a coarse grid) is built once per
module. The browser tests load it in headless Chromium and assert what a reader relies on:
every figure decoded, no console error, a page that is not blank; the PDF's pages and text.
Without Chromium (``apt-get install chromium``; ``.ci/run`` installs it) they skip, saying so.
"""

import dataclasses
import json
import shutil
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pkpd._cli import main
from pkpd.model import load_model
from pkpd.study.run import run_scenario
from pkpd.study.scenario import load_scenario
from pkpd.report import build_report, pdf_pages, render_html
from pkpd.report._browser import Browser, find_browser
from pkpd.report._diagram import diagram_figure, model_graph
from pkpd.report._folder import RunFolder
from pkpd.report._sections import sample_size_needed

pytestmark = pytest.mark.models("magnesium_lu2002")

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
needs_browser = pytest.mark.skipif(find_browser() is None,
                                   reason="no Chromium found: install it (apt-get install chromium; .ci/run does) "
                                          "or set PKPD_CHROMIUM")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A tiny run of scenarios/magnesium_alone.toml (6 subjects, every 6th output time), no report yet."""
    scenario = load_scenario(SCENARIOS / "magnesium_alone.toml").with_overrides(n=6)
    scenario = dataclasses.replace(scenario, times=scenario.times[::6])
    outdir = tmp_path_factory.mktemp("report") / "run"
    run_scenario(scenario, outdir, progress=False)
    return outdir


@pytest.fixture(scope="module")
def report(run_folder, tmp_path_factory):
    """The run folder (a copy) with its report: HTML and, where Chromium is, the PDF."""
    folder = tmp_path_factory.mktemp("reported") / "run"
    shutil.copytree(run_folder, folder)
    return build_report(folder, pdf=find_browser() is not None)


def copy_of(run_folder, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(run_folder, target)
    return target


def html_of(report):
    return report.html.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# content


def test_report_is_one_self_contained_file(report):
    html = html_of(report)
    assert "<script" not in html and "<link" not in html
    sources = [part.split('"', 1)[0] for part in html.split(' src="')[1:]]
    assert sources and all(src.startswith("data:image/") for src in sources)
    manifest = json.loads((report.html.parent / "manifest.json").read_text())
    assert len(sources) == len(manifest["figures"]) + 1          # every figure and the model diagram
    assert {"report.html", "report.pdf"} & set(manifest["output_files"]) == (
        {"report.html", "report.pdf"} if report.pdf else {"report.html"})


def test_report_has_question_answer_regimen_model_population_and_reproducibility(report):
    html = html_of(report)
    manifest = json.loads((report.html.parent / "manifest.json").read_text())
    assert "How high and for how long does serum magnesium rise after magnesium sulfate alone?" in html
    assert 'class="answer"' in html and "median peak magnesium, total, plasma" in html
    resolved = manifest["arms"][1]["doses"][0]["resolved"]          # 60 mg/kg MgSO4·7H2O: mmol/kg and mmol
    assert f"{resolved['amount_per_kg']:.4g} mmol/kg" in html
    assert f"{resolved['amount_at_median_weight']:.4g} mmol" in html
    model = load_model("magnesium_lu2002")
    for name, parameter in model.parameters.items():      # every parameter with value, unit and source
        row = html.split(f"<tr><td><code>{name}</code></td>", 1)[1].split("</tr>", 1)[0]
        assert f"{parameter.value:.6g}" in row and parameter.unit.replace("/", "/") in row
    for compartment, equation in model.odes.items():
        assert equation in html
    assert "Assumptions" in html and "pregnant" in html.lower()
    assert "Population" in html and "lognormal mean 79 sd 19, 40-160" in html
    assert manifest["scenario"]["sha256"] in html and manifest["model"]["sha256"] in html
    assert f"seed {manifest['seed']}" in html and "pkpd run run/inputs/magnesium_alone.toml" in html
    assert "doi.org/10." in html                              # references, linked


def test_sections_appear_when_the_run_has_their_table(run_folder, tmp_path):
    folder = copy_of(run_folder, tmp_path)
    html = render_html(RunFolder.open(folder))
    for title in ("Trial power", "Regimen search", "Parameter uncertainty"):
        assert title not in html
    power = pd.DataFrame({"comparison": ["A vs B"] * 3, "n_total": [10, 20, 40], "power": [0.2, 0.5, 0.7],
                          "power_low": [0.1, 0.4, 0.6], "power_high": [0.3, 0.6, 0.8]})
    power.to_csv(folder / "power.csv", index=False)
    pd.DataFrame({"candidate": ["1 mg/kg"], "meets_target": [True]}).to_csv(folder / "search.csv", index=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["output_files"] += ["power.csv", "search.csv"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    html = render_html(RunFolder.open(folder))
    assert "Trial power" in html and "80 % not reached in the grid (at most 70 % at 40 subjects)" in html
    assert "Regimen search" in html and "1 mg/kg" in html
    assert "Parameter uncertainty" not in html


def test_sample_size_needed_is_the_smallest_n_reaching_the_target():
    power = pd.DataFrame({"comparison": ["a"] * 3 + ["b"] * 2, "n_total": [40, 10, 20, 10, 20],
                          "power": [0.95, 0.5, 0.81, 0.1, 0.3]})
    found = sample_size_needed(power)
    assert found["a"].startswith("20 subjects in total reach 80 %")
    assert found["b"] == "80 % not reached in the grid (at most 30 % at 20 subjects)"


# ---------------------------------------------------------------------------
# the model diagram, read off the equations


def test_diagram_flows_and_eliminations_follow_the_equations():
    graph = model_graph(load_model("pk2cmt"))
    assert {(a, b) for a, b, _ in graph["flows"]} == {("DEPOT", "CENT"), ("CENT", "PERIPH"), ("PERIPH", "CENT")}
    assert graph["eliminated"] == ["CENT"]                # CL/V2*CENT leaves; Q moves mass between compartments
    # ketamine_mg_pain: ketamine is all converted to norketamine (FM = 1), which is eliminated; the oral depot
    # loses its first-pass fraction; effect sites hold no mass
    graph = model_graph(load_model("ketamine_mg_pain"), ["KETAMINE", "P_PSYCHO"])
    assert "KET_CENT" not in graph["eliminated"] and {"NK_CENT", "MG_CENT", "KET_DEPOT"} <= set(graph["eliminated"])
    assert ("KET_CENT", "KET_EFFECT", "signal") in graph["flows"]
    assert ("KET_CENT", "NK_CENT", "mass") in graph["flows"]
    assert dict(graph["outputs"]) == {"KETAMINE": ["KET_CENT"], "P_PSYCHO": ["KET_CENT"]}  # arterial exposure
    assert ("magnesium / magnesium_sulfate intramuscular (F = F_IM_MG)", "MG_DEPOT") in graph["doses"]
    figure = diagram_figure(load_model("pk2cmt"))
    gids = {artist.get_gid() for artist in figure.axes[0].get_children() if artist.get_gid()}
    assert {"compartment|DEPOT", "flow|DEPOT|CENT", "elimination|CENT", "output|CP"} <= gids


# ---------------------------------------------------------------------------
# in a real browser


@needs_browser
def test_report_in_chromium_loads_every_figure_without_console_errors(report, tmp_path):
    with Browser() as browser:
        state = browser.open(report.html)
        images = browser.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth, i.alt])")
        screenshot = browser.screenshot()
    assert images and all(complete and width > 0 for complete, width, _ in images), images
    assert state.exceptions == [] and [m for m in state.console if m[0] in ("error", "warning")] == []
    pixels = np.asarray(Image.open(BytesIO(screenshot)).convert("L"))
    assert pixels.shape[0] > 2000 and (pixels < 128).mean() > 0.005   # text and figures drawn, not a blank page


@needs_browser
def test_browser_check_sees_a_broken_figure_and_a_console_error(tmp_path):
    """The check above can fail: a missing image and a script error are reported."""
    page = tmp_path / "broken.html"
    page.write_text('<html><body><img src="missing.png"><script>console.error("boom")</script></body></html>')
    with Browser() as browser:
        state = browser.open(page)
        images = browser.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth])")
    assert images == [[True, 0]]
    assert ("error", "boom") in state.console


@needs_browser
def test_pdf_pages_and_text(report):
    pypdf = pytest.importorskip("pypdf", reason="pypdf (the test extra) reads the PDF's text")
    reader = pypdf.PdfReader(report.pdf)
    assert len(reader.pages) == report.pages == pdf_pages(report.pdf.read_bytes())
    assert 3 <= len(reader.pages) <= 30
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    for expected in ("How high and for how long does serum magnesium rise", "Regimens", "Model",
                     "Reproducibility", "Figure 1.", "magnesium_alone.toml, seed 3"):
        assert expected in text


# ---------------------------------------------------------------------------
# the command and its errors


def test_report_command_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is not a pkpd run output" in err and str(tmp_path) in err


def test_report_command_refuses_an_output_of_an_older_pkpd(run_folder, tmp_path, capsys):
    folder = copy_of(run_folder, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["report_inputs"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert main(["report", str(folder), "--no-pdf"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "written by an older pkpd" in err
    assert not (folder / "report.html").exists()


def test_report_command_writes_and_refuses_to_overwrite_without_force(run_folder, tmp_path, capsys):
    folder = copy_of(run_folder, tmp_path)
    assert main(["report", str(folder), "--no-pdf"]) == 0
    assert f"wrote {folder / 'report.html'}" in capsys.readouterr().out
    assert main(["report", str(folder), "--no-pdf"]) == 2
    assert "report exists; pass --force" in capsys.readouterr().err
    assert main(["report", str(folder), "--no-pdf", "--force"]) == 0


def test_a_failed_report_leaves_the_folder_as_it_was(run_folder, tmp_path, monkeypatch):
    folder = copy_of(run_folder, tmp_path)
    before = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}
    from pkpd.report import _browser

    def broken(*args, **kwargs):
        raise _browser.BrowserError("stopped answering")

    monkeypatch.setattr(_browser.Browser, "__init__", broken)
    with pytest.raises(Exception, match="cannot print the PDF: stopped answering"):
        build_report(folder)
    after = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}
    assert after == before                      # no report, no temporary, the manifest unchanged


def test_run_with_report_then_force_replaces_the_folder(tmp_path, capsys):
    """`pkpd run --report` lists the report in the manifest, so `--force` may replace the folder."""
    scenario = tmp_path / "s.toml"
    scenario.write_text((SCENARIOS / "magnesium_alone.toml").read_text().replace('step = "5 min"', 'step = "2 h"'))
    outdir = tmp_path / "out"
    command = ["run", str(scenario), "-o", str(outdir), "--n", "3", "--no-figures", "--quiet", "--report"]
    if find_browser() is None:
        pytest.skip("no Chromium found: `pkpd run --report` prints a PDF")
    assert main(command) == 0
    assert (outdir / "report.html").is_file() and (outdir / "report.pdf").is_file()
    assert main(command + ["--force"]) == 0


# ---------------------------------------------------------------------------
# the model at a glance: pkpd show, and tables in Jupyter


def test_show_prints_equations_parameters_and_sources(capsys):
    assert main(["show", "magnesium_lu2002"]) == 0
    out = capsys.readouterr().out
    model = load_model("magnesium_lu2002")
    for compartment, equation in model.odes.items():
        assert f"{compartment:14s} d/dt = {equation}" in out
    for name, parameter in model.parameters.items():
        assert f"{name:12s} {parameter.value:g} {parameter.unit}," in out and parameter.source in out
    assert main(["show", "no_such_model"]) == 2


def test_model_and_result_display_as_tables_in_jupyter(run_folder):
    model = load_model("magnesium_lu2002")
    page = model._repr_html_()
    assert page.count("<table") == 3 and all(f"<td>{name}</td>" in page for name in model.parameters)
    from pkpd import Population, simulate
    from pkpd.events.regimen import Dose

    result = simulate(model, [Dose(12.18, "CENT", duration=0.5)], Population(4, seed=1), np.arange(0.0, 6.0, 0.5))
    page = result._repr_html_()
    peaks = result.output("MAGNESIUM").max(axis=1)
    assert "4 subjects, 12 times from 0 to 5.5 h" in page and f"{np.median(peaks):.4g} (" in page
