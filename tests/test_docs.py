"""The documentation site (docs/): it builds with warnings as errors, and its generated pages
hold what the package defines: every public name, every library model, every scenario key.

The model pages are checked against the model files read here with tomllib, not against
what pkpd.load_model (which the pages are generated from) makes of them.
Without Sphinx and MyST (``pip install -e '.[docs]'``) the tests skip, saying so.
"""

import html
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import pkpd
from pkpd._keys import Keys

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sphinx") is None or importlib.util.find_spec("myst_parser") is None,
    reason="Sphinx and myst-parser are not installed (pip install -e '.[docs]'): the documentation is not built")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site: ``sphinx-build -W -b html docs OUT`` in a fresh process and folder."""
    out = tmp_path_factory.mktemp("docs-html")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, f"sphinx-build failed or warned:\n{done.stderr}"
    return out


def text_of(path):
    """The visible text of an HTML page, whitespace collapsed, typographic quotes made plain."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", path.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))
    return text.translate(str.maketrans("\u2018\u2019\u201c\u201d", "''\"\""))


def test_api_page_documents_every_public_name(site):
    page = (site / "_generated" / "api.html").read_text(encoding="utf-8")
    documented = set(re.findall(r'<dt class="sig sig-object py" id="pkpd\.(\w+)"', page))
    public = set(pkpd.__all__) - {"__version__"}
    assert public - documented == set()
    assert pkpd.__version__ in text_of(site / "_generated" / "api.html")
    # the numpy docstring sections are rendered (napoleon), not shown as raw text
    assert "Parameters :" in text_of(site / "_generated" / "api.html")
    assert ".. py:function::" not in page


@pytest.mark.parametrize("name", pkpd.library_models())
def test_each_library_model_has_its_page(site, name):
    page = site / "_generated" / "models" / f"{name}.html"
    assert page.exists(), f"no page for library model {name}"
    text = text_of(page)
    spec = tomllib.loads((ROOT / "models" / f"{name}.toml").read_text(encoding="utf-8"))
    for section in ("Compartments", "Parameters", "Outputs"):
        assert section in text
    for compartment, item in spec["compartments"].items():
        assert f"{item['number']} {compartment}" in text
    for parameter, item in spec["parameters"].items():
        # name, value (as the page prints it) and unit, then its description and source
        assert f"{parameter} {float(item['value']):g} {item['unit']}" in text, parameter
        assert " ".join(item["source"].split()) in text
    for level, block in spec.get("variability", {}).items():
        for i, parameter in enumerate(block["parameters"]):
            assert f"{level.upper()} {parameter} " in text and f" {block['omega'][i][i]:g} " in text, parameter
    for drug, item in spec.get("drugs", {}).items():
        for route, compartment in item.get("routes", {}).items():
            assert f"{route}: {compartment}" in text, drug
    for output, item in spec["outputs"].items():
        row = [output, item["unit"], item.get("role", "other")]
        if item.get("role") == "concentration":
            row += [item["analyte"], item["matrix"]]
        assert " ".join(row) in text, output


def test_a_parameter_uncertainty_is_on_its_model_page(site):
    text = text_of(site / "_generated" / "models" / "ketamine_kamp2020.html")
    # models/ketamine_kamp2020.toml: CL's 95 % range 73.4-95.7 L/h
    assert "log-normal, 2.5-97.5 % 73.4-95.7" in text


def documented_sections():
    """SECTIONS of docs/_ext/pkpd_docs.py: the allowed-key lists the key references show."""
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        return importlib.import_module("pkpd_docs").SECTIONS
    finally:
        sys.path.remove(str(DOCS / "_ext"))


@pytest.mark.parametrize("kind, page", [("scenario", "_generated/scenario_keys.html"), ("model", "models/README.html")])
def test_key_references_list_every_allowed_key(site, kind, page):
    text = text_of(site / page)
    for path, module, constant, _ in documented_sections()[kind]:
        keys = getattr(importlib.import_module(module), constant)
        # then the keys the table requires, read from the list the checker reads (pkpd._keys.Keys)
        required = keys.requirement() if isinstance(keys, Keys) else "-"
        assert f"{path} {', '.join(keys)} {required} " in text, path


def test_key_references_say_which_keys_are_required(site):
    text = text_of(site / "_generated" / "scenario_keys.html")
    assert "arms[i].doses[j] drug, amount, " in text
    assert ("route drug; amount (or give a rate and a duration); every (when count > 1 or until is given) one dose"
            in text)
    assert "outputs.times start, stop, step start; stop; step the output time grid" in text
    text = text_of(site / "models" / "README.html")
    assert ("assumption, allowed, uncertainty value; unit; description; source one fixed parameter" in text)
    assert "matrix (for an output of role concentration); event (for an output of role adverse_event_probability)" in text


# allowed-key lists that are not tables of their own: METRIC_KEYS is part of CONSTRAINT_KEYS and OBJECTIVE_KEYS
NOT_TABLES = {("pkpd.study.search_spec", "METRIC_KEYS")}


@pytest.mark.parametrize("kind, modules", [
    ("scenario", ["pkpd.study.scenario", "pkpd.study.trial_design", "pkpd.study.search_spec", "pkpd.study.draws",
                  "pkpd.study.sensitivity_options"]),
    ("model", ["pkpd.model.loading", "pkpd._uncertainty"])])
def test_every_allowed_key_list_is_documented(kind, modules):
    """A new ``*_KEYS`` list in a checker must get its row in the key reference."""
    documented = {(module, constant) for _, module, constant, _ in documented_sections()[kind]}
    defined = {(module, name) for module in modules for name in vars(importlib.import_module(module))
               if name.endswith("_KEYS") and name != "_ROLE_KEYS"} - NOT_TABLES
    if kind == "model":
        defined.add(("pkpd.model.loading", "_SECTIONS"))
    assert defined == documented


def test_existing_documents_are_pages(site):
    for page, heading in [("getting_started.html", "What it does"), ("models/README.html", "Model files"),
                          ("validation.html", "Validation"), ("report.html", "pkpd report")]:
        assert heading in text_of(site / page), page
    for image in ("pickering2020_pain.png", "validation.png"):   # README's and validation.md's figures
        assert (site / "_images" / image).exists(), image
