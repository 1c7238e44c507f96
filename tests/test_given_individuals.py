"""Population.from_table: given individuals (covariates and individual parameters) simulated as given."""

import numpy as np
import pandas as pd
import pytest

import pkpd
from conftest import TEST_MODELS

pytestmark = pytest.mark.models(TEST_MODELS / "pk1cmt_iiv.toml")

MODEL = TEST_MODELS / "pk1cmt_iiv.toml"
TIMES = np.array([0.0, 0.5, 1.0, 2.0, 6.0, 12.0, 24.0])
BOLUS = [pkpd.Dose(1.0, "CENT", per_weight=True)]      # 1 mg/kg into the central compartment


def table():
    return pd.DataFrame({"ID": [11, 4, 27], "WT": [55.0, 70.0, 102.0], "CL": [3.1, 4.0, 6.2],
                         "V": [22.0, 30.0, 41.0], "KA": [0.7, 1.0, 1.6]})


def test_given_parameters_and_covariates_are_simulated_as_given():
    given = table()
    population = pkpd.Population.from_table(given)
    assert population.subject_ids.tolist() == [11, 4, 27] and population.given == ("WT", "CL", "V", "KA")
    result = pkpd.simulate(MODEL, BOLUS, population, TIMES, method="exact")
    # closed form of a bolus into one compartment, with the model's allometry on the given values
    weight = given["WT"].to_numpy()[:, None]
    clearance = given["CL"].to_numpy()[:, None] * (weight / 70.0) ** 0.75
    volume = given["V"].to_numpy()[:, None] * weight / 70.0
    expected = weight / volume * np.exp(-clearance / volume * TIMES)
    np.testing.assert_allclose(result.output("CP"), expected, rtol=1e-12)
    for name in ("CL", "V", "KA", "WT"):
        assert np.array_equal(result.parameters[name].to_numpy(), given[name].to_numpy())
    assert np.isnan(result.etas).all()       # no random effect on a given value


def test_parameters_not_given_take_the_random_effects_of_a_drawn_population():
    given = table()[["ID", "WT", "CL"]]
    result = pkpd.simulate(MODEL, BOLUS, pkpd.Population.from_table(given, seed=5), TIMES)
    drawn = pkpd.simulate(MODEL, BOLUS, pkpd.Population(covariates={"WT": {"distribution": "normal", "mean": 70.0,
                                                                              "sd": 10.0}},
                                                        seed=5, subject_ids=np.array([11, 4, 27])), TIMES)
    assert np.array_equal(result.parameters["CL"].to_numpy(), given["CL"].to_numpy())
    for name in ("V", "KA"):    # the same (seed, ID) streams as any population's
        assert np.array_equal(result.parameters[name].to_numpy(), drawn.parameters[name].to_numpy())
    assert np.isnan(result.etas[:, 0]).all() and np.array_equal(result.etas[:, 1:], drawn.etas[:, 1:])


def test_a_subset_keeps_the_given_values():
    population = pkpd.Population.from_table(table())
    part = pkpd.simulate(MODEL, BOLUS, population.subset(1, 3), TIMES)
    whole = pkpd.simulate(MODEL, BOLUS, population, TIMES)
    assert np.array_equal(part.values, whole.values[1:3])


@pytest.mark.parametrize("change, message", [
    (lambda t: t.assign(ID=[11, 4, 11]), r"^patients\.csv, row 4, column ID: must be distinct: row 4 repeats row 2; "
                                         r"got 11$"),
    (lambda t: t.assign(ID=[1.5, 2, 3]), r"^patients\.csv, row 2, column ID: must be a non-negative integer; got 1\.5$"),
    (lambda t: t.assign(CL=["3.1", "fast", "6.2"]), r"^patients\.csv, row 3, column CL: must be a number; got 'fast'$"),
    (lambda t: t.assign(V=[22.0, None, 41.0]), r"^patients\.csv, row 3, column V: must not be empty$"),
    (lambda t: t.assign(V=[22.0, np.inf, 41.0]), r"^patients\.csv, row 3, column V: must be finite; got inf$"),
    (lambda t: t.iloc[:0], r"^patients\.csv: must have at least one row \(a subject\)$"),
    (lambda t: t[["ID"]], r"^patients\.csv: has no column besides the IDs: give covariates or parameters$"),
])
def test_a_bad_table_is_refused_in_one_line(change, message):
    with pytest.raises(pkpd.PkpdError, match=message):
        pkpd.Population.from_table(change(table()), source="patients.csv")


def test_missing_and_unknown_columns_are_refused_in_one_line():
    with pytest.raises(pkpd.PkpdError, match=r"^patients\.csv, column SCR: is missing; the table has: ID, WT, CL, V, KA$"):
        pkpd.Population.from_table(table(), required=["WT", "SCR"], source="patients.csv")
    with pytest.raises(pkpd.PkpdError, match=r"^patients\.csv, column SUBJECT: is missing"):
        pkpd.Population.from_table(table(), id_column="SUBJECT", source="patients.csv")
    population = pkpd.Population.from_table(table().rename(columns={"CL": "CLL"}))
    with pytest.raises(pkpd.PkpdError, match=r"^column CLL: is not a parameter or covariate of model 'pk1cmt_iiv'; "
                                             r"did you mean 'CL'\?$"):
        pkpd.simulate(MODEL, BOLUS, population, TIMES)
