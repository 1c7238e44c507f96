"""Input that used to crash, mislead or exhaust the machine: data headers and cells,
scenario encodings and seeds, sweep-name format strings, resolved doses and resource
estimates made before anything is allocated.

Every refusal is one line through the command line (exit 2, no traceback). The
resource tests refuse before allocating, so they take milliseconds.
"""

import json

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd._cli import main

pytestmark = pytest.mark.models("ketamine_kamp2020", "pk1cmt")

DATA = "ID,TIME,EVID,AMT,CMT\n1,0,1,100,1\n1,1,0,0,2\n1,2,0,0,2\n"


def _cli_error(capsys, argv):
    """Run the command line; return its one error line (asserting exit 2 and no traceback)."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def _simulate_csv(tmp_path, capsys, text, name="d.csv"):
    data = tmp_path / name
    data.write_text(text)
    return main(["simulate", "pk1cmt", str(data), "-o", str(tmp_path / "out.csv")]), capsys.readouterr()


# ---------------------------------------------------------------- data sets


def test_header_names_padded_with_spaces_are_read(tmp_path, capsys):
    code, output = _simulate_csv(tmp_path, capsys, DATA.replace("ID,TIME,", " ID , TIME ,", 1))
    assert code == 0, output.err
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns[:3]) == ["ID", "TIME", "EVID"]  # names stripped, cells as written
    assert out["CP"].iloc[1] > 0


def test_padded_header_in_a_dataframe():
    data = pd.read_csv(__import__("io").StringIO(DATA)).rename(columns={"TIME": "TIME ", "ID": " ID"})
    out = pkpd.simulate_data("pk1cmt", data)
    assert out["TIME"].tolist() == [0, 1, 2] and out["CP"].iloc[1] > 0


def test_id_and_lowercase_id_columns_are_ambiguous(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("ID,id,TIME,EVID,AMT,CMT\n1,2,0,1,100,1\n1,2,1,0,0,2\n")
    err = _cli_error(capsys, ["simulate", "pk1cmt", str(data), "-o", str(tmp_path / "o.csv")])
    assert "d.csv: columns 'ID' and 'id' both name ID" in err


def test_repeated_amt_column_is_refused(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("ID,TIME,EVID,AMT,CMT,AMT\n1,0,1,100,1,5\n1,1,0,0,2,0\n")
    err = _cli_error(capsys, ["simulate", "pk1cmt", str(data), "-o", str(tmp_path / "o.csv")])
    assert "d.csv: column AMT appears twice (columns 4 and 6)" in err
    # the same file read by pandas in Python: the second AMT became AMT.1
    with pytest.raises(pkpd.DataError, match="'AMT.1' looks like a second AMT column"):
        pkpd.simulate_data("pk1cmt", pd.read_csv(data))


def test_data_without_evid_infers_it_from_amt(tmp_path, capsys):
    code, output = _simulate_csv(tmp_path, capsys, "ID,TIME,AMT,CMT\n1,0,100,1\n1,1,0,2\n1,2,.,2\n")
    assert code == 0, output.err
    out = pd.read_csv(tmp_path / "out.csv")
    assert "EVID" not in out  # the input's columns only, as NONMEM's $TABLE
    assert out["IPRED"].iloc[1] > 0 and out["DV"].notna().tolist() == [False, True, True]


def test_empty_cell_is_reported_as_empty_not_nan(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text(DATA + ",3,0,0,2\n")
    err = _cli_error(capsys, ["simulate", "pk1cmt", str(data), "-o", str(tmp_path / "o.csv")])
    assert err == "error: d.csv, row 5, column ID: must not be empty; got empty"
    data.write_text(DATA.replace("1,0,1,100,1", "1,0,1,,1"))
    err = _cli_error(capsys, ["simulate", "pk1cmt", str(data), "-o", str(tmp_path / "o.csv")])
    assert err.endswith("row 2, column AMT: a dose record (EVID 1 or 4) needs AMT > 0; got empty")
    assert "nan" not in err


def test_infinite_cell_is_shown_as_written():
    data = pd.DataFrame({"ID": [1, 1], "TIME": ["0", "inf"], "AMT": [100, 0], "CMT": [1, 2]})
    with pytest.raises(pkpd.DataError, match=r"row 3, column TIME: must be finite; got inf$"):
        pkpd.simulate_data("pk1cmt", data)


def test_negative_cmt_is_refused_not_made_positive(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text(DATA.replace("1,1,0,0,2", "1,1,0,0,-2"))
    err = _cli_error(capsys, ["simulate", "pk1cmt", str(data), "-o", str(tmp_path / "o.csv")])
    assert "d.csv, row 3, column CMT: must not be negative" in err and err.endswith("got -2")


# ---------------------------------------------------------------- resources


def test_huge_addl_is_refused_before_expansion(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("ID,TIME,EVID,AMT,CMT,II,ADDL\n1,0,1,100,1,1,1000000000\n1,1,0,0,2,0,0\n")
    err = _cli_error(capsys, ["simulate", "pk1cmt", str(data), "-o", str(tmp_path / "o.csv")])
    assert "d.csv: ADDL expands 2 records to 1e+09" in err and "--max-memory" in err
    frame = pd.DataFrame({"ID": [1, 1], "TIME": [0.0, 1.0], "AMT": [100.0, 0], "CMT": [1, 2],
                          "II": [1.0, 0], "ADDL": [1000, 0]})
    with pytest.raises(pkpd.PkpdError, match="ADDL expands 2 records to 1e\\+03: would need about 257 kB"):
        pkpd.simulate_data("pk1cmt", frame, max_memory="100kB")
    assert len(pkpd.simulate_data("pk1cmt", frame, max_memory="1MB")) == 2


# ---------------------------------------------------------------- scenarios

SCENARIO = """model = "ketamine_kamp2020"
seed = 1
[population]
n = 5
[[arms]]
name = "a"
doses = [{ drug = "ketamine", amount = "0.5 mg/kg", duration = "1 h" }]
[outputs]
times = { start = "0 h", stop = "2 h", step = "1 h" }
"""


def _scenario(tmp_path, text=SCENARIO, name="s.toml"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_scenario_with_a_byte_order_mark_is_read(tmp_path, capsys):
    path = _scenario(tmp_path, b"\xef\xbb\xbf" + SCENARIO.encode())
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    assert pkpd.load_scenario(path).hash == pkpd.load_scenario(_scenario(tmp_path, name="plain.toml")).hash


def test_scenario_not_utf8_is_one_line_naming_the_file(tmp_path, capsys):
    path = _scenario(tmp_path, b'description = "caf\xe9"\n' + SCENARIO.encode())
    err = _cli_error(capsys, ["validate", str(path)])
    assert err == "error: s.toml: not UTF-8 text (byte 0xe9 at offset 18); save the file as UTF-8"


def test_deeply_nested_scenario_is_one_line(tmp_path, capsys):
    path = _scenario(tmp_path, "x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    err = _cli_error(capsys, ["validate", str(path)])
    assert err == "error: s.toml: not valid TOML (arrays or tables nested too deeply)"


@pytest.mark.parametrize("seed", ["-1", "18446744073709551616", "1.5", "true"])
def test_seed_rule_is_the_same_for_validate_and_run(tmp_path, capsys, seed):
    path = _scenario(tmp_path, SCENARIO.replace("seed = 1", f"seed = {seed}"))
    assert "s.toml: seed: must be an integer in [0, 2**64 - 1]" in _cli_error(capsys, ["validate", str(path)])
    assert "s.toml: seed: must be an integer" in _cli_error(capsys, ["run", str(path), "-o", str(tmp_path / "o")])


def test_largest_seed_is_valid_and_seed_option_follows_the_same_rule(tmp_path, capsys):
    path = _scenario(tmp_path, SCENARIO.replace("seed = 1", f"seed = {2 ** 64 - 1}"))
    assert main(["validate", str(path)]) == 0
    err = _cli_error(capsys, ["run", str(path), "--seed", str(2 ** 64), "-o", str(tmp_path / "o")])
    assert err == "error: --seed: must be an integer in [0, 2**64 - 1]; got 18446744073709551616"


SWEEP = """model = "ketamine_kamp2020"
[sweep]
drug = "ketamine"
name = "NAME"
amount = ["0.5 mg/kg", "1 mg/kg"]
duration = "1 h"
[outputs]
times = { start = "0 h", stop = "2 h", step = "1 h" }
"""


@pytest.mark.parametrize("template", ["{amount.__class__}", "{amount[0]}", "{amount!r}", "{amount:{duration}}",
                                      "{0}", "{}"])
def test_sweep_name_cannot_reach_attributes(tmp_path, capsys, template):
    path = _scenario(tmp_path, SWEEP.replace("NAME", template))
    assert "s.toml: sweep.name: " in _cli_error(capsys, ["validate", str(path)])


def test_sweep_name_with_simple_format_specs(tmp_path):
    scenario = pkpd.load_scenario(_scenario(tmp_path, SWEEP.replace("NAME", "{amount:>10} over {duration}")))
    assert [arm.name for arm in scenario.arms] == [" 0.5 mg/kg over 1 h", "   1 mg/kg over 1 h"]


def test_sweep_of_a_million_arms_is_refused_before_making_them(tmp_path, capsys):
    values = ", ".join(f'"{i} h"' for i in range(1, 101))
    text = SWEEP.replace('name = "NAME"\n', "").replace('duration = "1 h"', f"duration = [{values}]\nevery = [{values}]")
    text = text.replace('amount = ["0.5 mg/kg", "1 mg/kg"]', f"amount = [{values.replace(' h', ' mg')}]")
    err = _cli_error(capsys, ["validate", str(_scenario(tmp_path, text))])
    assert "s.toml: sweep: gives 1,000,000 arms (100 amount x 100 duration x 100 every); at most 10,000" in err


@pytest.mark.parametrize("change, estimate", [
    (("n = 5", "n = 1000000000"), "s.toml: 1,000,000,000 subjects x 1 arms x 3 output times"),
    (('duration = "1 h" }', 'duration = "1 h", every = "1 h", count = 1000000000 }'), "(+ up to 1e+09 doses)"),
    (('duration = "1 h" }', 'duration = "1 h", every = "1 s", until = "36500 d" }'), "(+ up to 3.15e+09 doses)"),
])
def test_validate_refuses_runs_too_large_for_memory(tmp_path, capsys, change, estimate):
    path = _scenario(tmp_path, SCENARIO.replace(*change).replace("n = 5\n", "n = 100\n"))
    err = _cli_error(capsys, ["validate", str(path)])
    assert estimate in err and "TB of memory" in err and "--max-memory SIZE" in err


def test_run_refuses_before_allocating_and_writes_nothing(tmp_path, capsys):
    path = _scenario(tmp_path)
    err = _cli_error(capsys, ["run", str(path), "--n", "1000000000", "-o", str(tmp_path / "out")])
    assert "s.toml: 1,000,000,000 subjects x 1 arms" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_max_memory_option_sets_the_limit(tmp_path, capsys):
    grid = SCENARIO.replace("n = 5", "n = 1000").replace('stop = "2 h", step = "1 h"', 'stop = "36500 d", step = "5 h"')
    path = _scenario(tmp_path, grid)
    err = _cli_error(capsys, ["validate", str(path), "--max-memory", "8GB"])
    # 175,201 grid times and the end of the 1-h infusion (pkpd.study.scenario.with_dose_times)
    assert "1,000 subjects x 1 arms x 175,202 output times" in err and "above the limit of 8 GB" in err
    assert main(["validate", str(path), "--max-memory", "1TB"]) == 0
    assert "above the limit of 1 kB" in _cli_error(capsys, ["validate", str(_scenario(tmp_path, name="small.toml")),
                                                          "--max-memory", "1kB"])
    assert "--max-memory: must be a size" in _cli_error(capsys, ["validate", str(path), "--max-memory", "lots"])


def test_environment_sets_the_limit(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PKPD_MAX_MEMORY", "1kB")
    assert "above the limit of 1 kB" in _cli_error(capsys, ["validate", str(_scenario(tmp_path))])


def test_simulate_refuses_a_huge_population_or_regimen_before_allocating():
    times = np.arange(0.0, 24.0)
    with pytest.raises(pkpd.PkpdError, match=r"^1000000000 subjects x 25 records .* TB of memory"):
        pkpd.simulate("pk1cmt", [pkpd.Dose(100.0, "DEPOT")], 10 ** 9, times)
    with pytest.raises(pkpd.PkpdError, match=r"1e\+09 doses\): would need about"):
        pkpd.simulate("pk1cmt", [pkpd.Dose(100.0, "DEPOT", every=1.0, count=10 ** 9)], pkpd.Population(10, seed=1), times)
    with pytest.raises(pkpd.PkpdError, match="above the limit of 1 kB"):
        pkpd.simulate("pk1cmt", [pkpd.Dose(100.0, "DEPOT")], 10, times, max_memory="1kB")


# ---------------------------------------------------------------- resolved doses


def test_mg_where_mg_per_kg_was_meant_warns_in_validate(tmp_path, capsys):
    path = _scenario(tmp_path, SCENARIO.replace('amount = "0.5 mg/kg", duration = "1 h"', 'amount = "0.5 mg"'))
    assert main(["validate", str(path)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: s.toml: arms[0].doses[0]: ketamine amount 0.5 mg (0.00")
    assert "below the model's documented range 0.1 mg/kg to 1.2 mg/kg; did you mean 0.5 mg/kg?" in err[0]


@pytest.mark.parametrize("dose, word", [('amount = "50 mg/kg"', "above"),
                                        ('amount = "0.5 mg", duration = "2 h"', "below"),
                                        ('rate = "0.2 mg/h", duration = "100 h"', "below")])
def test_doses_far_outside_the_documented_range_warn(tmp_path, capsys, dose, word):
    path = _scenario(tmp_path, SCENARIO.replace('amount = "0.5 mg/kg", duration = "1 h"', dose))
    assert main(["validate", str(path)]) == 0
    assert f"x {word} the model's documented range" in capsys.readouterr().err


def test_library_scenarios_have_no_dose_warnings(capsys):
    from conftest import ROOT

    for path in sorted((ROOT / "scenarios").glob("*.toml")):
        assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().err == ""


def test_run_prints_and_records_resolved_doses(tmp_path, capsys):
    text = SCENARIO.replace('amount = "0.5 mg/kg", duration = "1 h"', 'amount = "0.5 mg", duration = "2 h"')
    path = _scenario(tmp_path, text)
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--no-figures"]) == 0
    output = capsys.readouterr()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    resolved = manifest["arms"][0]["doses"][0]["resolved"]
    weight = resolved["median_weight_kg"]
    assert resolved["amount_at_median_weight"] == 0.5 and resolved["rate_at_median_weight"] == 0.25
    assert resolved["amount_per_kg"] == pytest.approx(0.5 / weight)
    assert resolved["rate_per_kg"] == pytest.approx(0.25 / weight)
    assert resolved["written"] == "0.5 mg over 2 h"
    line = f"ketamine 0.5 mg over 2 h -> 0.5 mg = {0.5 / weight:.4g} mg/kg at the median weight {weight:.3g} kg; rate 0.25 mg/h"
    assert line in output.out
    assert manifest["warnings"] == [output.err.strip().splitlines()[0][len("warning: "):]]
    assert "did you mean 0.5 mg/kg?" in manifest["warnings"][0]


def test_dose_range_in_a_model_must_be_per_kg(tmp_path):
    from conftest import ROOT

    text = (ROOT / "models" / "pk1cmt.toml").read_text()
    model = tmp_path / "m.toml"
    model.write_text(text + '\n[drugs]\nd = { compartment = "CENT", dose_range = { amount = ["1 mg", "2 mg"], '
                            'source = "x" } }\n')
    with pytest.raises(pkpd.ModelError, match=r"m.toml: drugs.d.dose_range.amount: must be per kg"):
        pkpd.load_model(model)


@pytest.mark.parametrize("name", ["a\\rb", "a\\nb", "a\\tb", "   "])
def test_arm_names_must_be_printable_on_one_line(tmp_path, capsys, name):
    # a bare carriage return is not quoted by pandas' CSV writer: it would split a table row
    path = _scenario(tmp_path, SCENARIO.replace('name = "a"', f'name = "{name}"'))
    assert "s.toml: arms[0].name: must be printable text on one line" in _cli_error(capsys, ["validate", str(path)])


def test_sweep_name_must_be_printable_on_one_line(tmp_path, capsys):
    path = _scenario(tmp_path, SWEEP.replace("NAME", "{amount}\\r{duration}"))
    assert "s.toml: sweep.name: must be printable text on one line" in _cli_error(capsys, ["validate", str(path)])
