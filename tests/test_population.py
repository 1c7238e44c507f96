"""Tests of virtual populations (pkpd.population).

Every statistical check uses a fixed seed (so it is deterministic) and a
99.9 % sampling interval stated next to it; no tolerance was tuned to the
numbers drawn.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from pkpd import PopulationError
from pkpd.population import (
    FEMALE,
    MALE,
    Population,
    add_derived_covariates,
    add_residual_error,
    apply_random_effects,
    body_mass_index,
    cockcroft_gault,
    default_neuropathic_pain_correlations,
    default_neuropathic_pain_covariates,
    omega_cholesky,
    sample_covariates,
    sample_iiv,
    sample_iov,
)

Z_999 = stats.norm.ppf(1 - 0.001 / 2)  # two-sided 99.9 % normal quantile, 3.29
P_VALUE_FLOOR = 1e-3
N_SUBJECTS = 20_000
OMEGA = np.array([[0.09, 0.03, 0.0, 0.0],
                  [0.03, 0.16, -0.04, 0.0],
                  [0.0, -0.04, 0.25, 0.0],
                  [0.0, 0.0, 0.0, 0.0]])  # last eta switched off (variance 0)


# --- interval helpers (sampling theory) --------------------------------------------

def assert_variance_in_interval(values, variance):
    """Known mean 0: n * mean(x^2) / variance ~ chi-square(n); 99.9 % interval."""
    size = values.size
    low, high = stats.chi2.ppf([0.0005, 0.9995], size) / size * variance
    assert low < np.mean(values ** 2) < high, (np.mean(values ** 2), variance)


def assert_covariance_in_interval(first, second, variance_first, variance_second, covariance):
    """Known means 0: mean(x y) is approximately normal with mean cov and variance
    (var_x var_y + cov^2) / n (normal approximation; Isserlis); 99.9 % interval."""
    standard_error = math.sqrt((variance_first * variance_second + covariance ** 2) / first.size)
    assert abs(np.mean(first * second) - covariance) < Z_999 * standard_error


def assert_correlation_in_interval(first, second, correlation):
    """Fisher z: atanh(r) ~ N(atanh(rho), 1 / (n - 3)); 99.9 % interval."""
    r = np.corrcoef(first, second)[0, 1]
    assert abs(np.arctanh(r) - np.arctanh(correlation)) < Z_999 / math.sqrt(first.size - 3), r


def assert_count_in_binomial_interval(count, size, probability):
    """Binomial(n, p) central 99.9 % interval."""
    low, high = stats.binom.ppf([0.0005, 0.9995], size, probability)
    assert low <= count <= high, (count, size * probability)


def assert_message(error_info, *fragments):
    message = str(error_info.value)
    assert isinstance(error_info.value, ValueError)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# --- inter-individual variability ----------------------------------------------------

@pytest.fixture(scope="module")
def etas():
    return sample_iiv(OMEGA, N_SUBJECTS, seed=2020)


def test_etas_have_declared_variances(etas):
    assert etas.shape == (N_SUBJECTS, 4)
    for index in range(3):
        assert_variance_in_interval(etas[:, index], OMEGA[index, index])


def test_etas_have_declared_covariances(etas):
    for row, column in ((0, 1), (1, 2), (0, 2)):
        assert_covariance_in_interval(etas[:, row], etas[:, column], OMEGA[row, row],
                                      OMEGA[column, column], OMEGA[row, column])


def test_zero_variance_eta_is_exactly_zero(etas):
    assert np.all(etas[:, 3] == 0.0)


def test_etas_are_normal(etas):
    for index in range(3):
        scaled = etas[:, index] / math.sqrt(OMEGA[index, index])
        assert stats.kstest(scaled, "norm").pvalue > P_VALUE_FLOOR


def test_cholesky_factor_reproduces_omega():
    factor = omega_cholesky(OMEGA)
    assert np.allclose(factor @ factor.T, OMEGA, rtol=0, atol=1e-15)
    assert np.array_equal(factor, np.tril(factor))


def test_diagonal_omega_given_as_vector():
    assert np.array_equal(sample_iiv([0.09, 0.16], 10, seed=1),
                          sample_iiv(np.diag([0.09, 0.16]), 10, seed=1))


def test_iiv_chunks_are_bit_identical(etas):
    ids = np.arange(N_SUBJECTS)
    pieces = [sample_iiv(OMEGA, seed=2020, subject_ids=chunk) for chunk in np.array_split(ids, 7)]
    assert np.array_equal(np.concatenate(pieces), etas)


def test_no_variability_gives_zeros():
    assert np.array_equal(sample_iiv(OMEGA, 5, seed=1, variability=False), np.zeros((5, 4)))
    assert np.array_equal(sample_iov(OMEGA, 5, 2, seed=1, variability=False), np.zeros((5, 2, 4)))


# --- inter-occasion variability ------------------------------------------------------

def test_iov_variances_per_occasion_and_independence_between_occasions():
    omega_iov = [[0.056, 0.01], [0.01, 0.04]]
    kappas = sample_iov(omega_iov, N_SUBJECTS, 3, seed=7)
    assert kappas.shape == (N_SUBJECTS, 3, 2)
    for occasion in range(3):
        assert_variance_in_interval(kappas[:, occasion, 0], 0.056)
        assert_variance_in_interval(kappas[:, occasion, 1], 0.04)
        assert_covariance_in_interval(kappas[:, occasion, 0], kappas[:, occasion, 1],
                                      0.056, 0.04, 0.01)
    assert_correlation_in_interval(kappas[:, 0, 0], kappas[:, 1, 0], 0.0)
    assert_correlation_in_interval(kappas[:, 1, 0], kappas[:, 2, 0], 0.0)


def test_adding_occasions_keeps_earlier_ones_and_iiv():
    ids = np.arange(1000)
    two = sample_iov([0.05], n_occasions=2, seed=3, subject_ids=ids)
    three = sample_iov([0.05], n_occasions=3, seed=3, subject_ids=ids)
    assert np.array_equal(two, three[:, :2])
    chunked = np.concatenate([sample_iov([0.05], n_occasions=3, seed=3, subject_ids=chunk)
                              for chunk in np.array_split(ids, 3)])
    assert np.array_equal(chunked, three)


# --- applying random effects ---------------------------------------------------------

def test_apply_random_effects_forms():
    etas = np.array([[0.1, -2.0, 0.5], [0.0, 0.0, 0.0]])
    individual = apply_random_effects([4.0, 50.0, 0.8], etas, ["exp", "additive", "logit"])
    assert individual[0, 0] == 4.0 * np.exp(0.1)
    assert individual[0, 1] == 48.0
    assert individual[0, 2] == pytest.approx(special.expit(special.logit(0.8) + 0.5), rel=1e-15)
    assert individual[1].tolist() == pytest.approx([4.0, 50.0, 0.8], rel=1e-15)


def test_apply_random_effects_with_per_subject_typical_values():
    typical = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    etas = np.full((3, 2), 0.2)
    assert np.array_equal(apply_random_effects(typical, etas), typical * np.exp(0.2))


def test_exp_form_makes_log_normal_parameters(etas):
    clearance = apply_random_effects([3.72, 15.4, 1.0, 2.0], etas, "exp")
    assert np.allclose(np.log(clearance[:, 0] / 3.72), etas[:, 0], rtol=0, atol=1e-14)
    assert np.all(clearance[:, 3] == 2.0)


# --- residual error ----------------------------------------------------------------

def test_combined_residual_error_has_declared_variance():
    prediction, additive_sd, proportional_sd = 100.0, 5.0, 0.12
    ipred = np.full((N_SUBJECTS, 5), prediction)
    observed = add_residual_error(ipred, additive_sd, proportional_sd, seed=11)
    variance = (prediction * proportional_sd) ** 2 + additive_sd ** 2
    assert_variance_in_interval((observed - ipred).ravel(), variance)


def test_additive_and_proportional_errors_are_normal():
    ipred = np.full((N_SUBJECTS, 2), 50.0)
    additive = add_residual_error(ipred, additive_sd=2.0, seed=4)
    proportional = add_residual_error(ipred, proportional_sd=0.2, seed=4)
    assert stats.kstest(((additive - 50.0) / 2.0).ravel(), "norm").pvalue > P_VALUE_FLOOR
    assert stats.kstest(((proportional / 50.0 - 1) / 0.2).ravel(), "norm").pvalue > P_VALUE_FLOOR


def test_residual_error_is_deterministic_per_subject_and_time_index():
    ipred = np.linspace(1, 100, 300 * 10).reshape(300, 10)
    whole = add_residual_error(ipred, 0.5, 0.1, seed=8)
    assert np.array_equal(add_residual_error(ipred[:, :4], 0.5, 0.1, seed=8), whole[:, :4])
    assert np.array_equal(
        add_residual_error(ipred[:, 4:], 0.5, 0.1, seed=8, first_time_index=4), whole[:, 4:])
    chunked = np.concatenate([
        add_residual_error(ipred[start:stop], 0.5, 0.1, seed=8,
                           subject_ids=np.arange(start, stop))
        for start, stop in ((0, 100), (100, 101), (101, 300))])
    assert np.array_equal(chunked, whole)
    other_output = add_residual_error(ipred, 0.5, 0.1, seed=8, stream="residual/CNK")
    assert not np.any(other_output == whole)


def test_residual_error_switched_off():
    ipred = np.ones((3, 2))
    assert np.array_equal(add_residual_error(ipred, 1.0, 1.0, seed=1, variability=False), ipred)


# --- covariate distributions -------------------------------------------------------

def test_truncation_bounds_are_never_crossed():
    spec = {
        "NARROW": {"distribution": "normal", "mean": 70, "sd": 20, "min": 65, "max": 75},
        "UPPER_TAIL": {"distribution": "normal", "mean": 0, "sd": 1, "min": 4, "max": 4.5},
        "LOWER_TAIL": {"distribution": "normal", "mean": 0, "sd": 1, "min": -6, "max": -5},
        "ONE_SIDED": {"distribution": "normal", "mean": 46, "sd": 12, "min": 18},
        "LOG": {"distribution": "lognormal", "mean": 0.8, "sd": 0.4, "min": 0.5, "max": 0.6},
        "LOG_TAIL": {"distribution": "lognormal", "meanlog": 0, "sdlog": 0.1, "min": 1.6},
        "FLAT": {"distribution": "uniform", "min": -1, "max": 2},
    }
    frame = sample_covariates(spec, n=100_000, seed=99)
    for name, settings in spec.items():
        values = frame[name].to_numpy()
        assert np.all(np.isfinite(values))
        assert values.min() >= settings.get("min", -np.inf), name
        assert values.max() <= settings.get("max", np.inf), name


def test_truncated_normal_follows_its_distribution():
    spec = {"X": {"distribution": "normal", "mean": 46, "sd": 12, "min": 18, "max": 85},
            "TAIL": {"distribution": "normal", "mean": 0, "sd": 1, "min": 3, "max": 5}}
    frame = sample_covariates(spec, n=50_000, seed=5)
    expected = stats.truncnorm((18 - 46) / 12, (85 - 46) / 12, loc=46, scale=12)
    assert stats.kstest(frame["X"], expected.cdf).pvalue > P_VALUE_FLOOR
    assert stats.kstest(frame["TAIL"], stats.truncnorm(3, 5).cdf).pvalue > P_VALUE_FLOOR


def test_truncated_lognormal_follows_its_distribution():
    spec = {"WT": {"distribution": "lognormal", "mean": 79, "sd": 19, "min": 45, "max": 130}}
    values = sample_covariates(spec, n=50_000, seed=6)["WT"].to_numpy()
    sdlog = math.sqrt(math.log1p((19 / 79) ** 2))
    meanlog = math.log(79) - sdlog ** 2 / 2
    expected = stats.truncnorm((math.log(45) - meanlog) / sdlog,
                               (math.log(130) - meanlog) / sdlog, loc=meanlog, scale=sdlog)
    assert stats.kstest(np.log(values), expected.cdf).pvalue > P_VALUE_FLOOR


def test_untruncated_lognormal_has_declared_natural_scale_mean():
    values = sample_covariates({"WT": {"distribution": "lognormal", "mean": 79, "sd": 19}},
                               n=N_SUBJECTS, seed=12)["WT"]
    # Sample mean ~ N(79, 19^2 / n) (central limit theorem); 99.9 % interval.
    assert abs(values.mean() - 79) < Z_999 * 19 / math.sqrt(N_SUBJECTS)


def test_categorical_frequencies():
    spec = {"GROUP": {"distribution": "categorical", "values": [1, 2, 3],
                      "probabilities": [0.2, 0.5, 0.3]}}
    values = sample_covariates(spec, n=N_SUBJECTS, seed=13)["GROUP"].to_numpy()
    assert set(np.unique(values)) == {1, 2, 3}
    for value, probability in ((1, 0.2), (2, 0.5), (3, 0.3)):
        assert_count_in_binomial_interval(np.sum(values == value), N_SUBJECTS, probability)


def test_constant_covariate():
    frame = sample_covariates({"WT": {"distribution": "constant", "value": 70}}, n=4, seed=1)
    assert frame["WT"].tolist() == [70.0] * 4


def test_copula_correlations_match():
    names = ["A", "B", "C"]
    matrix = [[1.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 1.0]]
    spec = {name: {"distribution": "normal", "mean": 10, "sd": 2} for name in names}
    spec["C"] = {"distribution": "lognormal", "meanlog": 0, "sdlog": 0.5}
    frame = sample_covariates(spec, {"names": names, "matrix": matrix}, n=N_SUBJECTS, seed=21)
    scores = [frame["A"], frame["B"], np.log(frame["C"])]  # normal scale of each covariate
    for row, column in ((0, 1), (0, 2), (1, 2)):
        assert_correlation_in_interval(scores[row], scores[column], matrix[row][column])


def test_covariates_without_correlation_are_independent():
    frame = Population(N_SUBJECTS, seed=22).covariates
    assert_correlation_in_interval(frame["AGE"], frame["WT"], 0.0)
    assert_correlation_in_interval(frame["AGE"], frame["SCR"], 0.0)


def test_adding_a_covariate_keeps_the_others():
    base = {"AGE": {"distribution": "normal", "mean": 46, "sd": 12},
            "SEX": {"distribution": "categorical", "values": [0, 1], "probabilities": [0.3, 0.7]}}
    extended = base | {"SCR": {"distribution": "lognormal", "mean": 0.8, "sd": 0.2}}
    first = sample_covariates(base, n=500, seed=3)
    second = sample_covariates(extended, n=500, seed=3)
    pd.testing.assert_frame_equal(first, second[["AGE", "SEX"]], check_exact=True)


# --- derived covariates ------------------------------------------------------------

def test_cockcroft_gault_against_hand_computed_values():
    # Man, 60 y, 80 kg, SCr 1.2 mg/dL: (140 - 60) * 80 / (72 * 1.2) = 6400 / 86.4 mL/min.
    assert cockcroft_gault(60, 80, 1.2, False) == pytest.approx(74.07407407407408, rel=1e-14)
    # Woman, 46 y, 79 kg, SCr 0.8: 0.85 * 94 * 79 / 57.6 = 109.5850694... mL/min.
    assert cockcroft_gault(46, 79, 0.8, True) == pytest.approx(109.58506944444444, rel=1e-14)


def test_body_mass_index_and_derived_columns():
    frame = pd.DataFrame({"AGE": [60.0, 46.0], "WT": [80.0, 79.0], "SCR": [1.2, 0.8],
                          "SEX": [MALE, FEMALE], "HT": [180.0, 165.0]})
    derived = add_derived_covariates(frame)
    assert derived["CRCL"].to_numpy() == pytest.approx([74.07407407407408, 109.58506944444444])
    assert derived["BMI"].to_numpy() == pytest.approx([80 / 1.8 ** 2, 79 / 1.65 ** 2])
    assert body_mass_index(81, 180) == pytest.approx(25.0)


# --- the default population ----------------------------------------------------------

@pytest.fixture(scope="module")
def default_population():
    return Population(N_SUBJECTS, seed=2020)


def test_default_population_columns_and_bounds(default_population):
    frame = default_population.covariates
    assert list(frame.columns) == ["AGE", "SEX", "WT", "HT", "SCR", "CRCL", "BMI"]
    for name, spec in default_neuropathic_pain_covariates().items():
        if "min" in spec:
            assert frame[name].min() >= spec["min"] and frame[name].max() <= spec["max"]
        assert spec["source"], name  # every entry says where it comes from
    assert set(frame["SEX"]) == {MALE, FEMALE}


def test_default_population_is_mostly_women(default_population):
    females = int(np.sum(default_population.covariates["SEX"] == FEMALE))
    assert_count_in_binomial_interval(females, N_SUBJECTS, 22 / 30)


def test_default_age_matches_literature_after_truncation(default_population):
    # Dahan 2011 ketamine arm: 46 +- 12 y, truncated to the assumed 18-85 y.
    expected = stats.truncnorm((18 - 46) / 12, (85 - 46) / 12, loc=46, scale=12)
    age = default_population.covariates["AGE"]
    # Sample mean ~ N(mean, var / n) (central limit theorem); 99.9 % interval.
    assert abs(age.mean() - expected.mean()) < Z_999 * expected.std() / math.sqrt(N_SUBJECTS)


def test_default_weight_height_rank_correlation(default_population):
    # Each marginal is a monotone map of its copula score, so Spearman's rho equals the
    # Gaussian copula's (6 / pi) * asin(rho / 2); Fisher z with the Fieller-Hartley-Pearson
    # variance 1.06 / (n - 3); 99.9 % interval.
    rho = default_neuropathic_pain_correlations()["matrix"][0][1]
    expected = 6 / math.pi * math.asin(rho / 2)
    frame = default_population.covariates
    observed = stats.spearmanr(frame["WT"], frame["HT"]).statistic
    tolerance = Z_999 * math.sqrt(1.06 / (N_SUBJECTS - 3))
    assert abs(np.arctanh(observed) - np.arctanh(expected)) < tolerance


def test_default_population_derives_cockcroft_gault(default_population):
    frame = default_population.covariates
    expected = cockcroft_gault(frame["AGE"], frame["WT"], frame["SCR"], frame["SEX"] == FEMALE)
    assert np.array_equal(frame["CRCL"].to_numpy(), expected)


# --- Population: determinism and chunking -------------------------------------------

def test_same_seed_same_population_and_other_seed_differs():
    first = Population(2000, seed=5).covariates
    pd.testing.assert_frame_equal(first, Population(2000, seed=5).covariates, check_exact=True)
    other = Population(2000, seed=6).covariates
    assert not np.any(first["WT"].to_numpy() == other["WT"].to_numpy())


def test_population_chunks_are_bit_identical():
    whole = Population(1000, seed=31)
    chunks = [Population(subject_ids=ids, seed=31) for ids in np.array_split(np.arange(1000), 5)]
    combined = pd.concat([chunk.covariates for chunk in chunks])
    assert np.array_equal(combined.to_numpy(), whole.covariates.to_numpy())
    pd.testing.assert_frame_equal(combined, whole.covariates, check_exact=True)
    pd.testing.assert_frame_equal(whole.subset(200, 400).covariates, chunks[1].covariates,
                                  check_exact=True)
    assert np.array_equal(whole.subset(200, 400).subject_ids, np.arange(200, 400))


def test_population_random_effects_follow_subjects():
    whole = Population(1000, seed=31)
    part = whole.subset(600, 1000)
    assert np.array_equal(part.sample_iiv(OMEGA), whole.sample_iiv(OMEGA)[600:])
    assert np.array_equal(part.sample_iov([0.05], 3), whole.sample_iov([0.05], 3)[600:])
    ipred = np.ones((1000, 4))
    assert np.array_equal(part.add_residual_error(ipred[600:], 0.1, 0.1),
                          whole.add_residual_error(ipred, 0.1, 0.1)[600:])


def test_million_subjects_and_a_chunk_at_the_end():
    whole = Population(1_000_000, seed=2020)
    assert len(whole) == 1_000_000
    tail = Population(subject_ids=np.arange(999_990, 1_000_000), seed=2020)
    pd.testing.assert_frame_equal(whole.subset(999_990, 1_000_000).covariates, tail.covariates,
                                  check_exact=True)
    array = whole.covariate_array(["WT", "CRCL"])
    assert array.shape == (1_000_000, 2) and array.flags.c_contiguous


# --- resampling real patients --------------------------------------------------------

@pytest.fixture
def patients():
    size = 40
    return pd.DataFrame({
        "ID": np.arange(101, 101 + size),
        "AGE": np.linspace(25, 75, size),
        "WT": np.linspace(50, 110, size),
        "SEX": np.arange(size) % 2,
        "SCR": np.linspace(0.6, 1.4, size),
    })


def test_resampling_patients_from_csv(tmp_path, patients):
    path = tmp_path / "patients.csv"
    patients.to_csv(path, index=False)
    population = Population(N_SUBJECTS, seed=17, csv=path, required=["WT", "SCR", "CRCL"])
    frame = population.covariates
    rows = frame["SOURCE_ROW"].to_numpy()
    assert np.array_equal(frame["SOURCE_ID"].to_numpy(), patients["ID"].to_numpy()[rows])
    assert np.array_equal(frame["WT"].to_numpy(), patients["WT"].to_numpy()[rows])
    expected_crcl = cockcroft_gault(frame["AGE"], frame["WT"], frame["SCR"], frame["SEX"] == 1)
    assert np.array_equal(frame["CRCL"].to_numpy(), expected_crcl)
    # Rows drawn with equal probability: chi-square goodness of fit, p-value floor.
    assert stats.chisquare(np.bincount(rows, minlength=len(patients))).pvalue > P_VALUE_FLOOR


def test_resampling_chunks_are_bit_identical(patients):
    whole = Population(500, seed=17, csv=patients)
    part = Population(subject_ids=np.arange(250, 500), seed=17, csv=patients)
    pd.testing.assert_frame_equal(whole.subset(250, 500).covariates, part.covariates,
                                  check_exact=True)


# --- validation: one-line messages naming key, rule and value -----------------------

def test_min_above_max_names_the_covariate():
    spec = {"WT": {"distribution": "normal", "mean": 79, "sd": 19, "min": 130, "max": 45}}
    with pytest.raises(PopulationError) as error:
        Population(10, spec, seed=1)
    assert str(error.value) == "population.covariates.WT: min (130) must be below max (45)"


def test_omega_not_positive_definite():
    with pytest.raises(PopulationError) as error:
        sample_iiv([[0.09, 0.1], [0.1, 0.09]], 10, seed=1)
    assert str(error.value) == "omega: not positive definite (eigenvalue -0.01)"


def test_negative_variance():
    with pytest.raises(PopulationError) as error:
        sample_iiv([[0.09, 0.0], [0.0, -0.1]], 10, seed=1)
    assert str(error.value) == "omega[1][1]: variance must be >= 0; got -0.1"


def test_missing_csv_column(tmp_path, monkeypatch, patients):
    monkeypatch.chdir(tmp_path)
    patients.drop(columns="SCR").to_csv("patients.csv", index=False)
    with pytest.raises(PopulationError) as error:
        Population(10, seed=1, csv="patients.csv", required=["WT", "SCR"])
    assert str(error.value) == "patients.csv: missing required covariate column 'SCR'"


@pytest.mark.parametrize("omega, fragments", [
    ([[0.1, 0.02], [0.03, 0.1]], ["omega[0][1]: must equal omega[1][0] (symmetric)", "0.02"]),
    ([[0.1, 0.0, 0.0]], ["omega: must be a square matrix; got shape (1, 3)"]),
    ([[0.1, np.nan], [np.nan, 0.1]], ["omega[0][1]: must be finite"]),
    ([[0.0, 0.01], [0.01, 0.1]], ["omega[0][1]: covariance must be 0 when variance omega[0][0]"]),
    ([["a"]], ["omega: must be a matrix of numbers"]),
])
def test_bad_omega(omega, fragments):
    with pytest.raises(PopulationError) as error:
        omega_cholesky(omega)
    assert_message(error, *fragments)


def test_bad_omega_iov_is_named():
    with pytest.raises(PopulationError) as error:
        sample_iov([-0.05], 10, 2, seed=1)
    assert_message(error, "omega_iov[0][0]: variance must be >= 0; got -0.05")


WT = "population.covariates.WT"


@pytest.mark.parametrize("spec, fragments", [
    ({"distribution": "gamma"}, [f"{WT}.distribution: must be one of", "'gamma'"]),
    ({"distribution": "normal", "mean": 79, "sd": -3}, [f"{WT}.sd: must be > 0; got -3"]),
    ({"distribution": "normal", "mean": 79}, [f"{WT}: missing key 'sd'"]),
    ({"distribution": "normal", "mean": 79, "sd": 19, "meen": 1}, [f"{WT}: unknown key 'meen'"]),
    ({"distribution": "normal", "mean": "heavy", "sd": 19},
     [f"{WT}.mean: must be a finite number"]),
    ({"distribution": "normal", "mean": 70, "sd": 1, "min": 200, "max": 300},
     [f"{WT}: [min, max] holds almost no probability"]),
    ({"distribution": "lognormal", "mean": 79, "sd": 19, "meanlog": 4.3},
     [f"{WT}: lognormal needs either mean and sd"]),
    ({"distribution": "lognormal", "mean": 79, "sd": 19, "min": -5}, [f"{WT}.min: must be >= 0"]),
    ({"distribution": "uniform", "min": 100, "max": 50},
     [f"{WT}: min (100) must be below max (50)"]),
    ({"distribution": "categorical", "values": [0, 1], "probabilities": [0.5, 0.4]},
     [f"{WT}.probabilities: must sum to 1; got 0.9"]),
    ({"distribution": "categorical", "values": [0, 1], "probabilities": [0.5, -0.5]},
     [f"{WT}.probabilities[1]: must be >= 0; got -0.5"]),
    ({"distribution": "categorical", "values": [0, 1, 2], "probabilities": [0.5, 0.5]},
     [f"{WT}: values (3) and probabilities (2)"]),
    ({"distribution": "categorical", "values": [1, 1], "probabilities": [0.5, 0.5]},
     [f"{WT}.values: must be distinct"]),
    ("heavy", [f"{WT}: must be a table of distribution settings"]),
])
def test_bad_covariate_spec(spec, fragments):
    with pytest.raises(PopulationError) as error:
        Population(10, {"WT": spec}, seed=1)
    assert_message(error, *fragments)


NORMALS = {name: {"distribution": "normal", "mean": 0, "sd": 1} for name in ("A", "B")}
SEX_SPEC = {"distribution": "categorical", "values": [0, 1], "probabilities": [0.5, 0.5]}


@pytest.mark.parametrize("covariates, correlations, fragments", [
    (NORMALS, {"names": ["A", "B"], "matrix": [[1, 1.2], [1.2, 1]]},
     ["population.correlations.matrix[0][1]: must be in [-1, 1]; got 1.2"]),
    (NORMALS | {"C": NORMALS["A"]},
     {"names": ["A", "B", "C"], "matrix": [[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]]},
     ["population.correlations.matrix: not positive definite (eigenvalue"]),
    (NORMALS, {"names": ["A", "Z"], "matrix": [[1, 0], [0, 1]]},
     ["population.correlations.names[1]: no covariate named 'Z'"]),
    (NORMALS | {"SEX": SEX_SPEC}, {"names": ["A", "SEX"], "matrix": [[1, 0], [0, 1]]},
     ["population.correlations.names[1]: 'SEX' is not continuous"]),
    (NORMALS, {"names": ["A", "B"], "matrix": [[2, 0], [0, 1]]},
     ["population.correlations.matrix[0][0]: must be 1; got 2"]),
    (NORMALS, {"names": ["A", "B"], "matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]},
     ["population.correlations.matrix: shape (3, 3) does not match 2 names"]),
    (NORMALS, {"names": ["A", "B"]}, ["population.correlations: must be a table with exactly"]),
])
def test_bad_correlations(covariates, correlations, fragments):
    with pytest.raises(PopulationError) as error:
        Population(10, covariates, correlations, seed=1)
    assert_message(error, *fragments)


def test_bad_population_arguments(patients):
    cases = [
        (lambda: Population(0, seed=1), "population.n: must be a positive integer; got 0"),
        (lambda: Population(2.5, seed=1), "population.n: must be a positive integer; got 2.5"),
        (lambda: Population(10, seed=-1), "population.seed: must be in [0, 2**64 - 1]; got -1"),
        (lambda: Population(10, seed="x"), "population.seed: must be an integer"),
        (lambda: Population(10, NORMALS, seed=1, csv=patients),
         "population: give covariates or csv, not both"),
        (lambda: Population(10, NORMALS, seed=1, required=["CRCL"]),
         "population: missing required covariate 'CRCL'"),
        (lambda: Population(3, seed=1, subject_ids=[0, 1]),
         "population.n: 3 does not match len(subject_ids) = 2"),
        (lambda: Population(seed=1, subject_ids=[-1, 0]),
         "subject_ids: must be in [0, 2**63 - 1]; got -1"),
        (lambda: Population(seed=1, subject_ids=[3, 3]), "subject_ids: must be distinct"),
    ]
    for build, message in cases:
        with pytest.raises(PopulationError) as error:
            build()
        assert_message(error, message)


def test_bad_patient_tables(tmp_path, patients):
    micromolar = patients.assign(SCR=patients["SCR"] * 88.42)
    with pytest.raises(PopulationError) as error:
        Population(10, seed=1, csv=micromolar)
    assert_message(error, "csv: column 'SCR' must be in mg/dL", "µmol/L")

    gaps = patients.astype({"WT": float})
    gaps.loc[5, "WT"] = np.nan
    with pytest.raises(PopulationError) as error:
        Population(10, seed=1, csv=gaps, required=["WT"])
    assert_message(error, "csv: column 'WT' has 1 missing values (first at data row 6)")

    sex_one_two = patients.assign(SEX=patients["SEX"] + 1)
    with pytest.raises(PopulationError) as error:
        Population(10, seed=1, csv=sex_one_two)
    assert_message(error, "csv: column 'SEX' must be 0 (male) or 1 (female); got 2")

    with pytest.raises(PopulationError) as error:
        Population(10, seed=1, csv=tmp_path / "absent.csv")
    assert_message(error, "absent.csv: cannot read patient table")

    text = patients.assign(WT="heavy")
    with pytest.raises(PopulationError) as error:
        Population(10, seed=1, csv=text, required=["WT"])
    assert_message(error, "csv: column 'WT' must be numeric")


def test_bad_random_effect_and_residual_arguments():
    cases = [
        (lambda: apply_random_effects([1.0, 2.0], np.zeros((3, 2)), ["exp", "log"]),
         "forms[1]: must be one of 'exp', 'additive', 'logit'; got 'log'"),
        (lambda: apply_random_effects([1.5], np.zeros((3, 1)), "logit"),
         "typical[0]: logit form needs 0 < value < 1; got 1.5"),
        (lambda: apply_random_effects([1.0, 2.0, 3.0], np.zeros((3, 2))),
         "typical: shape (3,) does not match etas (3, 2)"),
        (lambda: apply_random_effects([1.0], np.zeros((3, 1)), ["exp", "exp"]),
         "forms: need one per parameter (1); got 2"),
        (lambda: add_residual_error(np.ones((2, 2)), -1.0, seed=1),
         "additive_sd: must be >= 0; got -1"),
        (lambda: add_residual_error(np.ones((2, 2)), 0.0, math.inf, seed=1),
         "proportional_sd: must be a finite number; got inf"),
        (lambda: add_residual_error(np.ones((2, 2)), 1.0, seed=1, subject_ids=[0, 1, 2]),
         "ipred.shape[0]: 2 does not match len(subject_ids) = 3"),
        (lambda: sample_iov([0.05], 10, 0, seed=1), "n_occasions: must be a positive integer"),
        (lambda: sample_iiv([0.05], seed=1), "n: give n or subject_ids"),
    ]
    for build, message in cases:
        with pytest.raises(PopulationError) as error:
            build()
        assert_message(error, message)
