"""Simulation from a NONMEM data set as a trial template (issue 17): variability per ID and
OCC, replicates and seeds, the $TABLE-like output, NONMEM data conventions, chunked files.

Statistical checks use a fixed seed and a 99.9 % sampling interval stated next to them
(as in test_population.py); no tolerance was tuned to the numbers drawn. The typical
prediction is checked against the Bateman function, an oracle independent of the engine.
"""

import csv
import json
import math
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import pkpd
from pkpd._cli import main
from pkpd._simulate_data import simulate_data_file

IIV_MODEL = Path(__file__).resolve().parent / "models" / "pk1cmt_iiv.toml"
pytestmark = pytest.mark.models(str(IIV_MODEL), "pk1cmt")

OMEGA = np.array([[0.09, 0.03, 0.0], [0.03, 0.04, 0.0], [0.0, 0.0, 0.25]])  # CL, V, KA in pk1cmt_iiv.toml
TYPICAL = {"CL": 4.0, "V": 30.0, "KA": 1.0}
ADDITIVE, PROPORTIONAL = 0.05, 0.1  # [residual.CP] of pk1cmt_iiv.toml
TIMES = (0.5, 2.0, 6.0)


def trial(n_subjects, times=TIMES, weights=(70.0, 50.0), first_id=1):
    """n subjects, each an oral 100 mg dose at 0 h then observations; WT alternates."""
    ids = np.arange(first_id, first_id + n_subjects)
    per = 1 + len(times)
    frame = pd.DataFrame({"ID": np.repeat(ids, per),
                          "TIME": np.tile([0.0, *times], n_subjects),
                          "AMT": np.tile([100.0] + [0.0] * len(times), n_subjects),
                          "CMT": np.tile([1] + [2] * len(times), n_subjects),
                          "EVID": np.tile([1] + [0] * len(times), n_subjects),
                          "WT": np.repeat(np.resize(weights, n_subjects), per)})
    return frame


def bateman(time, dose, cl, v, ka):
    k = cl / v
    return dose * ka / (v * (ka - k)) * (np.exp(-k * time) - np.exp(-ka * time))


def assert_variance_in_interval(values, variance):
    """Known mean 0: n * mean(x^2) / variance ~ chi-square(n); 99.9 % interval."""
    low, high = stats.chi2.ppf([0.0005, 0.9995], values.size) / values.size * variance
    assert low < np.mean(values ** 2) < high, (np.mean(values ** 2), variance)


# --------------------------------------------------------------- variability


def test_log_parameters_and_residuals_have_the_model_variances_over_20000_subjects():
    data = trial(20_000)
    out = pkpd.simulate_data(IIV_MODEL, data, seed=17, return_etas=True)
    first = out[data["EVID"].to_numpy() == 1]
    for index, name in enumerate(("CL", "V", "KA")):
        log_parameter = np.log(first[f"IND_{name}"].to_numpy()) - math.log(TYPICAL[name])
        assert_variance_in_interval(log_parameter, OMEGA[index, index])
        np.testing.assert_allclose(log_parameter, first[f"ETA_{name}"], atol=1e-12)
    # covariance of log CL and log V: mean(x y) ~ N(cov, (var_x var_y + cov^2) / n); 99.9 % interval
    x, y = (np.log(first[f"IND_{p}"].to_numpy() / TYPICAL[p]) for p in ("CL", "V"))
    standard_error = math.sqrt((OMEGA[0, 0] * OMEGA[1, 1] + OMEGA[0, 1] ** 2) / x.size)
    assert abs(np.mean(x * y) - OMEGA[0, 1]) < stats.norm.ppf(0.9995) * standard_error
    observations = out[data["EVID"].to_numpy() == 0]
    ipred = observations["IPRED"].to_numpy()
    standardised = (observations["DV"].to_numpy() - ipred) / np.sqrt(ADDITIVE ** 2 + (PROPORTIONAL * ipred) ** 2)
    assert_variance_in_interval(standardised, 1.0)
    assert out["DV"][data["EVID"].to_numpy() == 1].isna().all()  # no observation on dose records


def test_occasions_draw_their_own_kappas():
    # magnesium_du2019: IOV on CL; OCC 1 and 2 in one subject, OCC 2 again in another
    data = pd.DataFrame({"ID": [1, 1, 1, 1, 2, 2], "TIME": [0.0, 1.0, 24.0, 25.0, 0.0, 1.0],
                         "AMT": [4.0, 0, 4.0, 0, 4.0, 0], "CMT": [2, 2, 2, 2, 2, 2], "OCC": [1, 1, 2, 2, 2, 2]})
    out = pkpd.simulate_data("magnesium_du2019", data, seed=3, return_etas=True, variability="iiv")
    kappa = out["KAPPA_CL"].to_numpy()
    assert kappa[0] == kappa[1] and kappa[2] == kappa[3] and kappa[0] != kappa[2]
    assert kappa[4] != kappa[2]  # another subject, the same occasion number
    np.testing.assert_allclose(np.log(out["IND_CL"] / 3.72), out["ETA_CL"] + out["KAPPA_CL"], atol=1e-12)
    without = pkpd.simulate_data("magnesium_du2019", data.drop(columns="OCC"), seed=3, return_etas=True)
    assert "KAPPA_CL" in without and (without["KAPPA_CL"] == 0).all()  # no OCC column: no IOV


def test_random_effects_apply_per_subject_to_parameter_values_that_repeat_and_change():
    """The engine gets a row of parameter values per run of records that repeat them. Two subjects
    with the same values (one row, were rows shared across subjects), CL changing within the
    second: every record's individual CL must be its own CL times its subject's exp(ETA_CL), and
    each subject's concentrations the closed form with its own CL and V (an IV bolus into CENT)."""
    records = {"TIME": [0.0, 1.0, 2.0, 3.0], "AMT": [100.0, 0, 0, 0], "CMT": [2, 2, 2, 2], "EVID": [1, 0, 0, 0]}
    data = pd.concat([pd.DataFrame({"ID": subject, **records, "CL": cl}) for subject, cl in
                      ((1, [4.0, 4.0, 4.0, 4.0]), (2, [4.0, 4.0, 4.0, 8.0]))], ignore_index=True)
    out = pkpd.simulate_data(IIV_MODEL, data, seed=4, return_etas=True, variability="iiv")
    np.testing.assert_allclose(out["IND_CL"], data["CL"] * np.exp(out["ETA_CL"]), rtol=1e-15)
    np.testing.assert_allclose(out["IND_V"], TYPICAL["V"] * np.exp(out["ETA_V"]), rtol=1e-15)
    assert out.groupby("ID")["ETA_CL"].nunique().tolist() == [1, 1] and out["ETA_CL"].nunique() == 2
    for subject in (1, 2):
        rows = out[(out["ID"] == subject) & (out["TIME"] <= 2.0)]   # CL of subject 2 changes after 2 h
        cl, v = rows["IND_CL"].iloc[0], rows["IND_V"].iloc[0]
        np.testing.assert_allclose(rows["IPRED"], 100.0 / v * np.exp(-cl / v * rows["TIME"]), rtol=1e-9)


@pytest.mark.models("magnesium_du2019")
def test_integer_mdv_and_occ_columns_are_checked():
    data = trial(2).assign(MDV=0, OCC=1)
    for column, value, message in (("MDV", 2, "must be 0 or 1; got '2'"), ("MDV", -1, "must be 0 or 1; got '-1'"),
                                   ("OCC", 1000, "must be an integer from 0 to 999; got '1000'"),
                                   ("OCC", -1, "must be an integer from 0 to 999; got '-1'")):
        broken = data.copy()
        broken.loc[5, column] = value
        assert broken[column].dtype == np.int64
        with pytest.raises(pkpd.DataError, match=f"^data, row 7, column {column}: {message}$"):
            pkpd.simulate_data("magnesium_du2019" if column == "OCC" else IIV_MODEL, broken)


# --------------------------------------------------------------- replicates


def test_replicates_are_numbered_different_and_reproducible():
    data = trial(6)
    out = pkpd.simulate_data(IIV_MODEL, data, replicates=3, seed=5)
    assert out["REP"].tolist() == [1] * len(data) + [2] * len(data) + [3] * len(data)
    ipred = out["IPRED"].to_numpy().reshape(3, len(data))
    obs = data["EVID"].to_numpy() == 0
    assert not np.any(ipred[0, obs] == ipred[1, obs]) and not np.any(ipred[1, obs] == ipred[2, obs])
    pd.testing.assert_frame_equal(out, pkpd.simulate_data(IIV_MODEL, data, replicates=3, seed=5))
    assert not np.array_equal(out["IPRED"], pkpd.simulate_data(IIV_MODEL, data, replicates=3, seed=6)["IPRED"])
    # replicate 2 alone is replicate 2 of the three; PRED is the same in every replicate
    np.testing.assert_array_equal(out["PRED"].to_numpy().reshape(3, -1), np.tile(out["PRED"][:len(data)], (3, 1)))


def test_results_do_not_depend_on_threads_or_chunks():
    data = trial(20)
    numba.set_num_threads(1)
    try:
        one = pkpd.simulate_data(IIV_MODEL, data, replicates=2, seed=9, chunk_records=len(data))
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    if numba.config.NUMBA_NUM_THREADS >= 2:
        numba.set_num_threads(2)
    two = pkpd.simulate_data(IIV_MODEL, data, replicates=2, seed=9, chunk_records=len(data))
    pd.testing.assert_frame_equal(one, two)
    for chunk in (1, 9):
        pd.testing.assert_frame_equal(one, pkpd.simulate_data(IIV_MODEL, data, replicates=2, seed=9,
                                                              chunk_records=chunk))


def test_a_subjects_draws_depend_on_its_id_not_on_the_others():
    data = trial(10)
    whole = pkpd.simulate_data(IIV_MODEL, data, seed=2)
    alone = pkpd.simulate_data(IIV_MODEL, data[data["ID"] == 7].reset_index(drop=True), seed=2)
    np.testing.assert_array_equal(alone["DV"], whole.loc[data["ID"] == 7, "DV"])


# --------------------------------------------------------------- predictions


def test_pred_is_the_typical_subject_bateman_prediction():
    data = trial(2, times=(0.25, 1.0, 3.0, 12.0))
    out = pkpd.simulate_data(IIV_MODEL, data, seed=1)
    obs = (data["EVID"] == 0).to_numpy()
    weight = data["WT"].to_numpy()[obs]
    expected = bateman(data["TIME"].to_numpy()[obs], 100.0, 4.0 * (weight / 70) ** 0.75, 30.0 * weight / 70, 1.0)
    np.testing.assert_allclose(out["PRED"].to_numpy()[obs], expected, rtol=1e-10)
    assert not np.allclose(out["IPRED"].to_numpy()[obs], expected)


def test_without_variability_ipred_and_dv_equal_pred():
    data = trial(3)
    obs = (data["EVID"] == 0).to_numpy()
    none = pkpd.simulate_data(IIV_MODEL, data, variability="none", replicates=2)
    np.testing.assert_array_equal(none["IPRED"], none["PRED"])
    np.testing.assert_array_equal(none["DV"].to_numpy()[np.tile(obs, 2)], none["PRED"].to_numpy()[np.tile(obs, 2)])
    iiv = pkpd.simulate_data(IIV_MODEL, data, variability="iiv")
    np.testing.assert_array_equal(iiv["DV"][obs], iiv["IPRED"][obs])
    assert not np.array_equal(iiv["IPRED"][obs], iiv["PRED"][obs])


def test_model_without_residual_takes_its_first_output_or_the_one_asked():
    data = trial(1).drop(columns="WT")
    out = pkpd.simulate_data("pk1cmt", data, amounts=True)
    assert out.attrs["dv"] == "CP" and list(out.columns[-6:]) == ["IPRED", "PRED", "DV", "CP", "DEPOT", "CENT"]
    np.testing.assert_array_equal(out["IPRED"], out["CP"])
    with pytest.raises(pkpd.PkpdError, match=r"^dv: model 'pk1cmt' has no output 'CC' \(outputs: CP\)$"):
        pkpd.simulate_data("pk1cmt", data, dv="CC")


# --------------------------------------------------------------- the table


TEMPLATE = ("C,ID,TIME,AMT,MDV,DV,WT,NOTE\n"
            ".,1,0,1e2,1,.,70,first dose\n"
            ".,1,0.50, 0 ,0,3.20,070,\n"
            "C,1,0.75,.,0,9,70,commented out\n"
            ".,1,2,.,0,4.10 ,70,\"a, quoted\"\n"
            "# a free comment\n"
            ".,1,3,0,1,.,70,missing DV\n"
            "\n"
            ".,2,0,100,1,.,50,\n"
            "@,2,1,0,0,1,50,\n"
            ".,2,4,0,0,2,50.0,\n")


def _rows(path):
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.reader(stream))


def test_input_columns_are_carried_through_as_written(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text(TEMPLATE)
    out = tmp_path / "out.csv"
    assert main(["simulate", str(IIV_MODEL), str(data), "-o", str(out), "--replicates", "2"]) == 0, \
        capsys.readouterr().err
    written = _rows(out)
    kept = [row for row in _rows(data)[1:] if row and row[0] not in ("C", "@") and not row[0].startswith("#")]
    header = _rows(data)[0]
    assert written[0][:len(header)] == ["C", "ID", "TIME", "AMT", "MDV", "DV_IN", "WT", "NOTE"]
    assert written[0][len(header):] == ["REP", "IPRED", "PRED", "DV", "CP"]
    assert [row[:len(header)] for row in written[1:]] == kept + kept  # byte-identical cells, input order
    assert [row[len(header)] for row in written[1:]] == ["1"] * 6 + ["2"] * 6
    table = pd.read_csv(out)
    # MDV = 1 without EVID: EVID 2, no dose (AMT 0), no observation (DV empty)
    assert table["DV"].isna().tolist() == [True, False, False, True, True, False] * 2
    assert json.loads((tmp_path / "out.units.json").read_text())["units"]["IPRED"] == "mg/L"


def test_comment_rows_inside_a_subject_change_nothing():
    lines = TEMPLATE.splitlines()
    clean = "\n".join([lines[0]] + [line for line in lines[1:] if line and line[0] not in "C#@"]) + "\n"
    with_comments = pd.read_csv(__import__("io").StringIO(TEMPLATE), dtype=str, keep_default_na=False,
                                skip_blank_lines=False)
    without = pd.read_csv(__import__("io").StringIO(clean), dtype=str, keep_default_na=False)
    a = pkpd.simulate_data(IIV_MODEL, with_comments, seed=4)
    b = pkpd.simulate_data(IIV_MODEL, without, seed=4)
    pd.testing.assert_frame_equal(a, b)


def test_comment_rows_at_any_chunk_boundary_change_nothing():
    """In-memory data sets are cut into chunks at ID boundaries after dropping comment rows."""
    data = trial(6, weights=(70.0, 50.0, 61.5)).astype(str)
    expected = pkpd.simulate_data(IIV_MODEL, data, replicates=2, seed=3)
    lines = [("#", "text", "", "", "", ""), ("", "", "", "", "", "")]
    rows = []
    for index, row in enumerate(data.itertuples(index=False)):
        rows.append(tuple(row))
        if index % 3 == 1:  # comment or blank rows inside and between subjects
            rows.append(lines[index % 2])
    commented = pd.DataFrame(rows, columns=data.columns)
    for chunk in (1, 2, 3, 5, 7, len(commented)):
        out = pkpd.simulate_data(IIV_MODEL, commented, replicates=2, seed=3, chunk_records=chunk)
        pd.testing.assert_frame_equal(out, expected)


def test_the_output_shares_no_memory_with_the_input_or_between_its_columns():
    data = trial(3)
    before = data.copy()
    out = pkpd.simulate_data("pk1cmt", data, variability="none")
    assert out.index.equals(pd.RangeIndex(len(data)))
    pred, cp = out["PRED"].copy(), out["CP"].copy()
    out.iloc[1, out.columns.get_loc("IPRED")] = -1.0
    out.iloc[1, out.columns.get_loc("WT")] = -1.0
    pd.testing.assert_frame_equal(data, before)
    pd.testing.assert_series_equal(out["PRED"], pred)
    pd.testing.assert_series_equal(out["CP"], cp)


def test_units_are_in_attrs_and_beside_the_table():
    out = pkpd.simulate_data(IIV_MODEL, trial(1), return_etas=True)
    units = out.attrs["units"]
    assert units["TIME"] == "h" and units["AMT"] == "mg" and units["WT"] == "kg"
    assert units["DV"] == units["PRED"] == units["CP"] == "mg/L"
    assert units["IND_CL"] == "L/h" and units["ETA_CL"] == "1"


def test_chunked_file_equals_one_chunk_and_parquet_equals_csv(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text(TEMPLATE + "".join(f".,{i},0,100,1,.,60,\n.,{i},1,0,0,.,60,\n" for i in range(3, 9)))
    options = dict(replicates=3, seed=8, return_etas=True)
    simulate_data_file(IIV_MODEL, data, tmp_path / "whole.csv", **options)
    simulate_data_file(IIV_MODEL, data, tmp_path / "chunked.csv", chunk_records=4, **options)
    assert (tmp_path / "whole.csv").read_bytes() == (tmp_path / "chunked.csv").read_bytes()
    pytest.importorskip("pyarrow")
    simulate_data_file(IIV_MODEL, data, tmp_path / "out.parquet", chunk_records=4, **options)
    parquet = pd.read_parquet(tmp_path / "out.parquet")
    text = pd.read_csv(tmp_path / "whole.csv", dtype=str, keep_default_na=False)
    assert list(parquet.columns) == list(text.columns)
    assert parquet["WT"].tolist() == text["WT"].tolist()  # input cells as text
    np.testing.assert_allclose(parquet["DV"].to_numpy(float), pd.read_csv(tmp_path / "whole.csv")["DV"], rtol=1e-9)
    assert (tmp_path / "out.units.json").is_file()


def test_parquet_without_pyarrow_is_refused(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    data = tmp_path / "d.csv"
    data.write_text("ID,TIME,AMT,CMT\n1,0,100,1\n1,1,0,2\n")
    code = main(["simulate", "pk1cmt", str(data), "-o", str(tmp_path / "o.parquet")])
    err = capsys.readouterr().err
    assert code == 2 and "writing Parquet needs pyarrow" in err and "pkpd[parquet]" in err
    assert list(tmp_path.iterdir()) == [data]


# --------------------------------------------------------------- bad input


def _refused(tmp_path, capsys, text, *options, model="pk1cmt"):
    """Run `pkpd simulate` on `text`; return its one error line, asserting exit 2 and nothing written."""
    data = tmp_path / "d.csv"
    data.write_text(text)
    code = main(["simulate", str(model), str(data), "-o", str(tmp_path / "o.csv"), *options])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]
    return err


def test_malformed_amt_without_evid_names_the_file_row(tmp_path, capsys):
    err = _refused(tmp_path, capsys, "ID,TIME,AMT,CMT\n# comment\n1,0,100,1\n\n1,1,1O0,1\n1,2,0,2\n")
    assert err == "error: d.csv, row 5, column AMT: must be a number; got '1O0'"


def test_errors_after_the_first_chunk_name_the_file_row(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("ID,TIME,AMT,CMT\n" + "".join(f"{i},0,100,1\n{i},1,0,2\n" for i in range(1, 6)) + "6,1,-5,1\n")
    with pytest.raises(pkpd.DataError, match=r"^d.csv, row 12, column AMT: must not be negative; got -5$"):
        simulate_data_file("pk1cmt", data, tmp_path / "o.csv", chunk_records=3)
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "o.units.json").exists()


@pytest.mark.parametrize("text, message", [
    ("ID,TIME,AMT,CMT,REP\n1,0,100,1,1\n", "d.csv: column REP: pkpd writes the replicate number as REP; "
                                            "rename or drop the input's REP column"),
    ("ID,TIME,DATE,AMT\n1,0,2024-01-01,100\n", "d.csv: column DATE: clock dates and times are not supported "
                                               "(NONMEM's DATE); give TIME as the time elapsed, in h, and drop DATE"),
    ("ID,TIME,AMT,IPRED\n1,0,100,1\n", "d.csv: column IPRED: pkpd writes a column of that name"),
    ("ID,TIME,AMT,MDV\n1,0,100,1\n1,1,0,2\n", "d.csv, row 3, column MDV: must be 0 or 1; got '2'"),
])
def test_header_and_cell_refusals(tmp_path, capsys, text, message):
    assert _refused(tmp_path, capsys, text).startswith(f"error: {message}")


def test_random_effects_need_one_integer_id_per_subject(tmp_path, capsys):
    err = _refused(tmp_path, capsys, "ID,TIME,AMT,CMT\n1,0,100,1\n2,0,100,1\n1,5,0,2\n", model=IIV_MODEL)
    assert err.startswith("error: d.csv, row 4, column ID: ID 1 comes back after other IDs (first at row 2)")
    err = _refused(tmp_path, capsys, "ID,TIME,AMT,CMT\n1.5,0,100,1\n", model=IIV_MODEL)
    assert err.startswith("error: d.csv, row 2, column ID: random effects are drawn per ID and need an integer ID")
    # typical values need no random streams: both data sets run
    data = pd.DataFrame({"ID": [1, 2, 1], "TIME": [0.0, 0.0, 5.0], "AMT": [100.0, 100.0, 0.0], "CMT": [1, 1, 2]})
    assert len(pkpd.simulate_data(IIV_MODEL, data, variability="none")) == 3


def test_replicates_beyond_memory_are_refused_up_front(tmp_path, capsys):
    with pytest.raises(pkpd.PkpdError, match=r"^data: 4 records x 100000000 replicates: would need about .* GB "
                                             r"of memory, above the limit of 1 GB"):
        pkpd.simulate_data(IIV_MODEL, trial(1), replicates=10 ** 8, max_memory="1GB")
    err = _refused(tmp_path, capsys, "ID,TIME,AMT,CMT\n1,0,100,1\n1,1,0,2\n", "--replicates", "1000",
                   "--max-memory", "10kB")
    assert "d.csv: 2 records x 1000 replicates at a time: would need about" in err
