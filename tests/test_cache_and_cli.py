"""Compilation happens once: the engine per installation, each model's functions per model source;
the command line writes what the contract says."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from conftest import ROOT
from pkpd import _warm
from pkpd._cli import main
from pkpd.model import cache, generated_location, is_compiled
from pkpd._warm import warm

EXAMPLE = ROOT / "scenarios" / "data" / "example_pk1cmt.csv"

PROBE = """
import json, sys
import pandas as pd
import pkpd
from pkpd.engine import run_population
model = pkpd.load_model("pk1cmt")
pkpd.simulate_data(model, pd.read_csv(sys.argv[1]))
stats = run_population.stats
functions = model.module.COMPILED.values()
print(json.dumps({"hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values()),
                  "model hits": sum(f.cache_hits for f in functions)}))
"""


def cache_files(model):
    """{name: (size, mtime)} of the model's generated module and Numba's cache files for it."""
    _, module_name, file = generated_location(model)
    files = [file, *(file.parent / "__pycache__").glob(f"{module_name}.*")]
    return {f.name: (f.stat().st_size, f.stat().st_mtime_ns) for f in files}


@pytest.mark.models("pk1cmt")
def test_second_process_loads_the_model_without_compiling(tmp_path):
    # make sure this process has compiled (or loaded) pk1cmt, then ask a fresh process
    pkpd.simulate_data("pk1cmt", pd.read_csv(EXAMPLE))
    model = pkpd.load_model("pk1cmt")
    assert is_compiled(model)
    before = cache_files(model)
    run = subprocess.run([sys.executable, "-c", PROBE, str(EXAMPLE)], capture_output=True, text=True, check=True)
    stats = json.loads(run.stdout.strip().splitlines()[-1])
    assert stats == {"hits": 1, "misses": 0, "model hits": 8}   # the engine and the eight model functions
    assert cache_files(model) == before  # nothing rewritten or added


def module_name(model):
    return generated_location(model)[1]


def test_cache_key_changes_with_what_changes_the_machine_code(tmp_path, monkeypatch):
    # The compiled module is keyed by the model's text, Numba's version and the code generator's
    # version (not by the engine's source: the engine is compiled apart, once); a copy of the file
    # elsewhere, a reload or other parameter values (they reach the engine as data) reuse it.
    text = (ROOT / "models" / "pk1cmt.toml").read_text()
    model = pkpd.load_model("pk1cmt")
    key = module_name(model)
    (tmp_path / "pk1cmt.toml").write_text(text)
    assert module_name(pkpd.load_model(tmp_path / "pk1cmt.toml")) == key
    assert module_name(pkpd.load_model("pk1cmt")) == key
    assert module_name(model.with_parameters({"CL": 3.0})) == key

    changed = tmp_path / "changed" / "pk1cmt.toml"
    changed.parent.mkdir()
    changed.write_text(text.replace('"KA*DEPOT - CL/V*CENT"', '"KA*DEPOT - 1.5*CL/V*CENT"'))
    other = pkpd.load_model(changed)
    assert module_name(other) != key and not is_compiled(other)

    keys = {key}
    monkeypatch.setattr(cache.numba, "__version__", "0.0.0")
    keys.add(module_name(model))
    monkeypatch.undo()
    monkeypatch.setattr(cache, "CODEGEN_VERSION", cache.CODEGEN_VERSION + "-next")
    keys.add(module_name(model))
    monkeypatch.undo()
    assert len(keys) == 3
    assert module_name(model) == key


@pytest.mark.models("pk1cmt")
def test_simulate_command_writes_one_row_per_record(tmp_path, capsys):
    out = tmp_path / "out.csv"
    assert main(["simulate", "pk1cmt", str(EXAMPLE), "-o", str(out)]) == 0
    data = pd.read_csv(EXAMPLE)
    result = pd.read_csv(out)
    assert list(result.columns) == list(data.columns) + ["REP", "IPRED", "PRED", "DV", "CP"]
    assert len(result) == len(data)
    np.testing.assert_array_equal(result["TIME"], data["TIME"])
    # subject 2 is reset at 48 h and put at oral steady state: CP is positive just after
    assert result.loc[(result.ID == 2) & (result.TIME == 50), "CP"].iloc[0] > 0
    assert "wrote" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*.tmp*"))


def test_models_command_lists_library(capsys):
    assert main(["models"]) == 0
    listed = capsys.readouterr().out
    for name in ("pk1cmt", "pk2cmt", "pk3cmt"):
        assert name in listed


@pytest.mark.parametrize("arguments", [["--collect-only", "tests/test_reference.py"],
                                       ["tests/test_trial.py", "-k", "williams_design"]],
                         ids=["collect_only", "selected_test_without_models"])
def test_pytest_compiles_no_model_the_selected_tests_do_not_run(arguments, tmp_path):
    # models are warmed after selection, only when tests run, only those the selected tests declare
    cache = tmp_path / "cache"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *arguments], cwd=ROOT,
                         env={**os.environ, "PKPD_CACHE_DIR": str(cache)}, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert not cache.exists() or not any(cache.rglob("*"))


def test_warm_reports_each_failing_worker_with_its_output(tmp_path):
    missing = tmp_path / "missing.toml"
    broken = tmp_path / "broken.toml"
    broken.write_text('[model]\nname = "broken"\n[compartments]\nCENT = { number = 1 }\n[odes]\nCENT = "-K*CENT"\n')
    failures = warm([str(missing), str(broken)], jobs=2)
    assert sorted(f.models for f in failures) == sorted([(str(missing),), (str(broken),)])
    for failure in failures:
        assert failure.returncode == 1
        assert Path(failure.models[0]).name in failure.output and "Traceback" in failure.output
    assert "odes.CENT: unknown name 'K'" in next(f.output for f in failures if f.models == (str(broken),))


def test_warm_worker_compiles_the_other_models_after_a_failure(monkeypatch, capsys):
    compiled = []

    def compile_model(model):
        if model == "broken":
            raise pkpd.ModelError("broken.toml: odes.CENT: unknown name 'K'")
        compiled.append(model)

    monkeypatch.setattr(_warm, "compile_model", compile_model)
    assert _warm.main(["--jobs", "1", "broken", "pk1cmt", "pk2cmt"]) == 1
    assert compiled == ["pk1cmt", "pk2cmt"]
    assert "broken: could not be compiled" in capsys.readouterr().err


def test_the_engine_cache_key_covers_every_engine_module(monkeypatch):
    # run_population's compiled code contains every engine function it calls, but Numba keys its
    # disk cache by subject.py alone: the digest of all engine modules is a closure variable of
    # run_population, which Numba's cache key includes, so an edit of integrate.py recompiles
    from pkpd.engine import run_population, subject

    key = subject._engine_source_key()
    assert [cell.cell_contents for cell in run_population.py_func.__closure__] == [key]
    read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read_bytes(self) + (
        b"\n# an edit\n" if self.name == "integrate.py" else b""))
    assert subject._engine_source_key() != key
