"""Compilation happens once per model source; the command line writes what the contract says."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd

import pkpd
from conftest import ROOT
from pkpd._cli import main

EXAMPLE = ROOT / "scenarios" / "data" / "example_pk1cmt.csv"

PROBE = """
import json, sys
import pandas as pd
import pkpd
model = pkpd.load_model("pk1cmt")
pkpd.simulate_data(model, pd.read_csv(sys.argv[1]))
stats = model.module.run_population.stats
print(json.dumps({"hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values())}))
"""


def test_second_process_loads_the_model_without_compiling(tmp_path):
    # make sure this process has compiled (or loaded) pk1cmt, then ask a fresh process
    pkpd.simulate_data("pk1cmt", pd.read_csv(EXAMPLE))
    run = subprocess.run([sys.executable, "-c", PROBE, str(EXAMPLE)], capture_output=True, text=True, check=True)
    stats = json.loads(run.stdout.strip().splitlines()[-1])
    assert stats == {"hits": 1, "misses": 0}


def test_changed_model_source_gets_its_own_cache_entry(tmp_path):
    text = (ROOT / "models" / "pk1cmt.toml").read_text()
    changed = tmp_path / "pk1cmt_changed.toml"
    changed.write_text(text.replace('name = "pk1cmt"', 'name = "pk1cmt_changed"'))
    a, b = pkpd.load_model("pk1cmt"), pkpd.load_model(changed)
    assert a.hash != b.hash


def test_simulate_command_writes_one_row_per_record(tmp_path, capsys):
    out = tmp_path / "out.csv"
    assert main(["simulate", "pk1cmt", str(EXAMPLE), "-o", str(out)]) == 0
    data = pd.read_csv(EXAMPLE)
    result = pd.read_csv(out)
    assert list(result.columns) == ["ID", "TIME", "EVID", "CMT", "CP", "DEPOT", "CENT"]
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
