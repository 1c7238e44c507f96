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
    assert list(out.columns[:4]) == ["ID", "TIME", "EVID", "CMT"]
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
    assert out["EVID"].tolist() == [1, 0, 0]
    assert out["DEPOT"].iloc[0] == 100 and out["CP"].iloc[1] > 0


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
