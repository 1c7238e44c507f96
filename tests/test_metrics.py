"""Tests of exposure metrics and percentiles over subjects (pkpd.metrics).

Oracles: hand-computed values on small profiles, closed forms of a
one-compartment IV infusion and of a mono-exponential decline, an independent
numpy implementation of the linear-up/log-down rule, and numpy.percentile.
"""

import math
import pickle

import numba
import numpy as np
import pytest

from pkpd._errors import PkpdError
from pkpd.metrics import PercentileAccumulator, exposure_metrics, exposure_table, percentiles
from pkpd.metrics.kernels import exposure_kernel

# --------------------------------------------------------------------------
# Hand-computed profile: times 0, 1, 2, 3 h; concentrations 0, 4, 2, 1
# --------------------------------------------------------------------------

HAND_TIMES = np.array([0.0, 1.0, 2.0, 3.0])
HAND_VALUES = np.array([[0.0, 4.0, 2.0, 1.0]])


def test_hand_profile_all_metrics():
    metrics = exposure_metrics(HAND_TIMES, HAND_VALUES, thresholds=[3.0], windows=[(1.5, 3.0)])
    assert metrics["cmax"][0] == 4.0
    assert metrics["tmax"][0] == 1.0
    assert metrics["cmin"][0] == 0.0
    # linear up 0 -> 4 (area 2), log down 4 -> 2 and 2 -> 1 (area c1 - c2 over ln 2 each)
    expected_auc = 2.0 + 2.0 / math.log(2.0) + 1.0 / math.log(2.0)
    assert metrics["auc"][0] == pytest.approx(expected_auc, rel=1e-14)
    assert metrics["cavg"][0] == pytest.approx(expected_auc / 3.0, rel=1e-14)
    # above 3: from 0.75 h (rising line) to 1.5 h (line from 4 to 2)
    assert metrics["time_above"][0, 0] == pytest.approx(0.75, abs=1e-15)
    # within [1.5, 3]: 0.375 -> 0.75 h rising, then 1.5 -> 2.5 h falling
    assert metrics["time_within"][0, 0] == pytest.approx(1.375, abs=1e-15)


def test_hand_profile_interval_between_samples():
    metrics = exposure_metrics(HAND_TIMES, HAND_VALUES, interval=(0.5, 2.5), thresholds=[3.0])
    # value at 0.5 h on the rising line: 2; at 2.5 h on the exponential 2 -> 1: sqrt(2)
    assert metrics["cmax"][0] == 4.0
    assert metrics["tmax"][0] == 1.0
    assert metrics["cmin"][0] == pytest.approx(math.sqrt(2.0), rel=1e-14)
    expected_auc = 0.5 * (2.0 + 4.0) / 2 + 2.0 / math.log(2.0) + (2.0 - math.sqrt(2.0)) / math.log(2.0)
    assert metrics["auc"][0] == pytest.approx(expected_auc, rel=1e-14)
    assert metrics["cavg"][0] == pytest.approx(expected_auc / 2.0, rel=1e-14)
    assert metrics["time_above"][0, 0] == pytest.approx(0.75, abs=1e-15)


def test_interval_within_one_segment_is_clipped_at_both_ends():
    # only the first and last segments are clipped: here they are the same one, 4 -> 2 on [1, 2] h,
    # c(t) = 4 * 2**-(t - 1) on the log-down interpolant
    metrics = exposure_metrics(HAND_TIMES, HAND_VALUES, interval=(1.25, 1.75), thresholds=[3.0], windows=[(2.5, 3.5)])
    assert metrics["cmax"][0] == pytest.approx(4.0 * 2.0**-0.25, rel=1e-14)
    assert metrics["tmax"][0] == 1.25
    assert metrics["cmin"][0] == pytest.approx(4.0 * 2.0**-0.75, rel=1e-14)
    assert metrics["auc"][0] == pytest.approx(4.0 / math.log(2.0) * (2.0**-0.25 - 2.0**-0.75), rel=1e-14)
    assert metrics["time_above"][0, 0] == pytest.approx(0.25, abs=1e-15)    # the line 4 -> 2 crosses 3 at 1.5 h
    assert metrics["time_within"][0, 0] == pytest.approx(0.5, abs=1e-15)    # 3.5 at 1.25 h, 2.5 at 1.75 h
    on_samples = exposure_metrics(HAND_TIMES, HAND_VALUES, interval=(1.0, 2.0))
    assert (on_samples["cmax"][0], on_samples["tmax"][0], on_samples["cmin"][0]) == (4.0, 1.0, 2.0)
    assert on_samples["auc"][0] == pytest.approx(2.0 / math.log(2.0), rel=1e-14)


def test_tmax_is_first_time_of_maximum_and_bounds_count():
    times = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    values = np.array([[0.0, 5.0, 5.0, 1.0, 5.0], [7.0, 5.0, 5.0, 1.0, 0.0]])
    metrics = exposure_metrics(times, values)
    np.testing.assert_array_equal(metrics["tmax"], [1.0, 0.0])
    np.testing.assert_array_equal(metrics["cmax"], [5.0, 7.0])
    np.testing.assert_array_equal(metrics["cmin"], [0.0, 0.0])


# --------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------


def test_log_down_exact_on_mono_exponential():
    generator = np.random.default_rng(7)
    times = np.concatenate([[0.0], np.sort(generator.uniform(0.0, 24.0, 40)), [24.0]])
    initial, rate = 250.0, np.array([[0.1], [0.35], [1.2]])  # ng/mL, 1/h
    values = initial * np.exp(-rate * times)
    rate = rate[:, 0]

    def exact_area(start, stop):
        return initial / rate * (np.exp(-rate * start) - np.exp(-rate * stop))

    whole = exposure_metrics(times, values)
    np.testing.assert_allclose(whole["auc"], exact_area(0.0, 24.0), rtol=1e-12, atol=0)
    start, stop = 1.2345, 17.891  # both between samples
    part = exposure_metrics(times, values, interval=(start, stop))
    np.testing.assert_allclose(part["auc"], exact_area(start, stop), rtol=1e-12, atol=0)
    np.testing.assert_allclose(part["cmax"], initial * np.exp(-rate * start), rtol=1e-12)
    np.testing.assert_allclose(part["cmin"], initial * np.exp(-rate * stop), rtol=1e-12)
    np.testing.assert_array_equal(part["tmax"], start)


def _infusion(times, dose, duration, volume, rate_constant):
    """Concentration of a 1-compartment IV infusion (closed form)."""
    rate = dose / duration
    plateau = rate / (rate_constant * volume)
    during = np.minimum(times, duration)
    after = np.maximum(times - duration, 0.0)
    return plateau * (1.0 - np.exp(-rate_constant * during)) * np.exp(-rate_constant * after)


def _crossings(level, dose, duration, volume, rate_constant):
    """Rising and falling times where the infusion profile crosses ``level``."""
    plateau = dose / duration / (rate_constant * volume)
    peak = plateau * (1.0 - np.exp(-rate_constant * duration))
    rising = -np.log1p(-level / plateau) / rate_constant
    falling = duration + np.log(peak / level) / rate_constant
    return rising, falling


# Ketamine-like: 35 mg (0.5 mg/kg x 70 kg) = 35000 ug over 2 h; ug/L = ng/mL.
DOSE, DURATION = 35000.0, 2.0
VOLUMES = np.array([200.0, 150.0, 120.0])  # L
RATE_CONSTANTS = np.array([0.4, 0.25, 0.6])  # 1/h
STEP = 0.05  # h


@pytest.fixture(scope="module")
def infusion():
    times = np.concatenate(
        [np.linspace(0.0, DURATION, 41), DURATION + np.linspace(0.0, 46.0, 921)[1:]]
    )
    values = _infusion(times, DOSE, DURATION, VOLUMES[:, None], RATE_CONSTANTS[:, None])
    return times, values


def test_infusion_cmax_tmax(infusion):
    times, values = infusion
    metrics = exposure_metrics(times, values)
    expected = (DOSE / DURATION) / (RATE_CONSTANTS * VOLUMES) * (1.0 - np.exp(-RATE_CONSTANTS * DURATION))
    np.testing.assert_allclose(metrics["cmax"], expected, rtol=1e-13)
    np.testing.assert_array_equal(metrics["tmax"], DURATION)


def test_infusion_auc_to_infinity(infusion):
    times, values = infusion
    metrics = exposure_metrics(times, values)
    # terminal log-linear slope from the last three samples, then extrapolate the tail
    slope = -np.polyfit(times[-3:], np.log(values[:, -3:]).T, 1)[0]
    np.testing.assert_allclose(slope, RATE_CONSTANTS, rtol=1e-9)
    auc_infinity = metrics["auc"] + values[:, -1] / slope
    clearance = RATE_CONSTANTS * VOLUMES
    error = auc_infinity - DOSE / clearance
    # log-down and the tail are exact; linear-up on the concave rise errs by
    # (h^2/12) (c'(T) - c'(0)) + O(h^4), with c'(t) = (R/V) exp(-k t)
    slope_at_start = DOSE / DURATION / VOLUMES
    predicted = STEP**2 / 12.0 * slope_at_start * (np.exp(-RATE_CONSTANTS * DURATION) - 1.0)
    np.testing.assert_allclose(error, predicted, rtol=1e-3)
    assert np.all(np.abs(error) <= STEP**2 / 12.0 * slope_at_start)


def test_infusion_time_above_and_within(infusion):
    times, values = infusion
    low, high = 10.0, 100.0  # ng/mL: above the analgesic C50, below a psychotomimetic level
    metrics = exposure_metrics(times, values, thresholds=[low], windows=[(low, high)])
    rise_low, fall_low = _crossings(low, DOSE, DURATION, VOLUMES, RATE_CONSTANTS)
    rise_high, fall_high = _crossings(high, DOSE, DURATION, VOLUMES, RATE_CONSTANTS)
    expected_above = fall_low - rise_low
    expected_within = (rise_high - rise_low) + (fall_low - fall_high)
    # linear crossing: |dt| <= h^2/8 max|c''| / min|c'| = h^2/8 k exp(k h) per crossing
    per_crossing = STEP**2 / 8.0 * RATE_CONSTANTS * np.exp(RATE_CONSTANTS * STEP)
    assert np.all(np.abs(metrics["time_above"][:, 0] - expected_above) <= 2 * per_crossing)
    assert np.all(np.abs(metrics["time_within"][:, 0] - expected_within) <= 4 * per_crossing)


# --------------------------------------------------------------------------
# Properties and an independent implementation
# --------------------------------------------------------------------------


def _random_profiles(seed, n_subjects=50, n_times=30):
    generator = np.random.default_rng(seed)
    times = np.cumsum(generator.uniform(0.1, 2.0, n_times))
    values = generator.lognormal(2.0, 1.0, (n_subjects, n_times))
    values[generator.random(values.shape) < 0.1] = 0.0
    values[generator.random(values.shape) < 0.05] *= -0.1  # residual error below zero
    return times, values


def _reference_auc(times, values):
    """Linear-up/log-down AUC over the whole grid, in plain numpy."""
    first, second = values[:, :-1], values[:, 1:]
    widths = np.diff(times)
    falling = (first > second) & (second > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_area = widths * (first - second) / np.log(first / second)
    return np.where(falling, log_area, widths * (first + second) / 2).sum(axis=1)


def test_auc_matches_independent_implementation():
    times, values = _random_profiles(seed=1)
    metrics = exposure_metrics(times, values)
    np.testing.assert_allclose(metrics["auc"], _reference_auc(times, values), rtol=1e-12)
    np.testing.assert_array_equal(metrics["cmax"], values.max(axis=1))
    np.testing.assert_array_equal(metrics["cmin"], values.min(axis=1))
    np.testing.assert_array_equal(metrics["tmax"], times[values.argmax(axis=1)])


def test_auc_additive_over_adjacent_intervals():
    times, values = _random_profiles(seed=2)
    start, middle, stop = times[0] + 0.37, times[12] + 0.41, times[-1] - 0.13
    whole = exposure_metrics(times, values, interval=(start, stop), thresholds=[5.0])
    first = exposure_metrics(times, values, interval=(start, middle), thresholds=[5.0])
    second = exposure_metrics(times, values, interval=(middle, stop), thresholds=[5.0])
    np.testing.assert_allclose(whole["auc"], first["auc"] + second["auc"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        whole["time_above"], first["time_above"] + second["time_above"], rtol=1e-12, atol=1e-12
    )
    np.testing.assert_array_equal(whole["cmax"], np.maximum(first["cmax"], second["cmax"]))
    np.testing.assert_array_equal(whole["cmin"], np.minimum(first["cmin"], second["cmin"]))


def test_time_above_low_splits_into_within_and_above_high():
    times, values = _random_profiles(seed=3)
    low, high = 3.0, 12.0
    metrics = exposure_metrics(times, values, thresholds=[low, high], windows=[(low, high)])
    above_low, above_high = metrics["time_above"].T
    np.testing.assert_allclose(above_low, metrics["time_within"][:, 0] + above_high, atol=1e-12)
    total = times[-1] - times[0]
    assert np.all((metrics["time_within"] >= 0) & (metrics["time_within"] <= total + 1e-12))


# --------------------------------------------------------------------------
# Edge cases
# --------------------------------------------------------------------------


def test_all_zero_profile():
    times = np.linspace(0.0, 10.0, 11)
    metrics = exposure_metrics(times, np.zeros((2, 11)), thresholds=[0.0, 1.0], windows=[(0.0, 1.0)])
    for name in ("cmax", "cmin", "auc", "cavg"):
        np.testing.assert_array_equal(metrics[name], 0.0)
    np.testing.assert_array_equal(metrics["tmax"], 0.0)
    np.testing.assert_array_equal(metrics["time_above"], 0.0)  # strictly above
    np.testing.assert_array_equal(metrics["time_within"], 10.0)  # closed window


def test_threshold_never_reached_and_always_exceeded():
    times = np.linspace(0.0, 4.0, 5)
    values = np.array([5.0, 8.0, 6.0, 5.5, 5.1])
    metrics = exposure_metrics(times, values, thresholds=[100.0, 1.0], windows=[(50.0, 60.0)])
    np.testing.assert_array_equal(metrics["time_above"], [[0.0, 4.0]])
    np.testing.assert_array_equal(metrics["time_within"], [[0.0]])


def test_one_subject_as_1d_and_no_subjects():
    metrics = exposure_metrics(HAND_TIMES, HAND_VALUES[0])
    assert metrics["auc"].shape == (1,)
    empty = exposure_metrics(HAND_TIMES, np.empty((0, 4)), thresholds=[1.0])
    assert empty["auc"].shape == (0,) and empty["time_above"].shape == (0, 1)


# --------------------------------------------------------------------------
# Bad input: one-line messages naming the argument, the rule and the value
# --------------------------------------------------------------------------


def _decreasing_times():
    times = np.arange(10.0)
    times[7] = 3.0
    return times


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"values": [[1.0, np.nan, 2.0, 3.0]]}, "values must be finite; got nan at subject 0, time index 1"),
        ({"values": [[1.0, 2.0, 3.0]]}, r"values must have shape \(n_subjects, 4\) to match times; got \(1, 3\)"),
        ({"times": [0.0, 1.0, np.nan, 3.0]}, "times must be finite; got nan at index 2"),
        ({"times": [0.0, 1.0, 1.0, 3.0]}, "times must be increasing; got 1 after 1 at index 2"),
        ({"times": [0.0]}, "times must hold at least 2 samples; got 1"),
        ({"windows": [(150, 10)]}, r"windows\[0\]: low \(150\) must be below high \(10\)"),
        ({"windows": (10, 150)}, r"windows\[0\] must be a \(low, high\) pair; got 10"),
        ({"thresholds": [1.0, np.inf]}, r"thresholds\[1\] must be finite; got inf"),
        ({"thresholds": [1.0, 2.0, 1.0]}, r"thresholds\[2\] \(1\) must be distinct; it repeats thresholds\[0\]"),
        ({"interval": (2.0, 1.0)}, r"interval: start \(2\) must be below stop \(1\)"),
        ({"interval": (-1.0, 1.0)}, r"interval: start \(-1\) must not precede times\[0\] \(0\)"),
        ({"interval": (1.0, 3.5)}, r"interval: stop \(3.5\) must not exceed times\[-1\] \(3\)"),
        ({"interval": 3.0}, r"interval must be a \(start, stop\) pair of times; got 3.0"),
    ],
)
def test_bad_input_messages(arguments, message):
    call = {"times": HAND_TIMES, "values": HAND_VALUES, **arguments}
    with pytest.raises(ValueError, match=f"^{message}$") as raised:
        exposure_metrics(call.pop("times"), call.pop("values"), **call)
    assert isinstance(raised.value, PkpdError)


def test_decreasing_times_message_names_index():
    with pytest.raises(ValueError, match=r"^times must be increasing; got 3 after 6 at index 7$"):
        exposure_metrics(_decreasing_times(), np.ones((1, 10)))


# --------------------------------------------------------------------------
# Table with units
# --------------------------------------------------------------------------


def test_exposure_table_columns_and_units(infusion):
    times, values = infusion
    table = exposure_table(
        times, values, concentration_unit="ng/mL", thresholds=[10.0], windows=[(10.0, 150.0)],
        subject_ids=[101, 102, 103],
    )
    assert list(table.columns) == [
        "cmax", "tmax", "cmin", "auc", "cavg", "time_above_10", "time_within_10_150",
    ]
    assert list(table.index) == [101, 102, 103] and table.index.name == "ID"
    assert table.attrs["units"] == {
        "cmax": "ng/mL", "tmax": "h", "cmin": "ng/mL", "auc": "ng/mL*h", "cavg": "ng/mL",
        "time_above_10": "h", "time_within_10_150": "h",
    }
    assert table.attrs["interval"] == (0.0, 48.0)
    metrics = exposure_metrics(times, values, thresholds=[10.0])
    np.testing.assert_array_equal(table["auc"], metrics["auc"])
    np.testing.assert_array_equal(table["time_above_10"], metrics["time_above"][:, 0])


# --------------------------------------------------------------------------
# The kernel as jitted code
# --------------------------------------------------------------------------


def test_kernel_callable_from_user_jitted_code_and_compiled_once():
    @numba.njit
    def user_auc(times, values):
        n_subjects = values.shape[0]
        empty = np.empty(0)
        cmax = np.empty(n_subjects)
        tmax = np.empty(n_subjects)
        cmin = np.empty(n_subjects)
        auc = np.empty(n_subjects)
        above, within = np.empty((n_subjects, 0)), np.empty((n_subjects, 0))
        first_segment = np.int64(0)  # a literal 0 would compile a literal-typed variant
        exposure_kernel(times, values, times[0], times[-1], first_segment, times.size - 1,
                         empty, empty, empty, cmax, tmax, cmin, auc, above, within)
        return auc

    times, values = _random_profiles(seed=4)
    np.testing.assert_allclose(user_auc(times, values), _reference_auc(times, values), rtol=1e-12)
    exposure_metrics(times, values[:3], interval=(times[1] + 0.1, times[5]), thresholds=[1, 2])
    exposure_metrics(HAND_TIMES, HAND_VALUES, windows=[(1, 2)])
    assert len(exposure_kernel.signatures) == 1


# --------------------------------------------------------------------------
# Percentiles: exact path
# --------------------------------------------------------------------------


@pytest.mark.parametrize("quantiles", [(5, 25, 50, 75, 95), (0, 2.5, 33.3, 97.5, 100)])
def test_exact_percentiles_equal_numpy_linear(quantiles):
    generator = np.random.default_rng(5)
    values = generator.lognormal(1.0, 0.8, (1001, 17))
    expected = np.percentile(values, quantiles, axis=0, method="linear")
    np.testing.assert_array_equal(percentiles(values, quantiles), expected)
    assert percentiles(values).shape == (5, 17)


def test_exact_percentiles_hand_values():
    values = np.array([[1.0, -4.0], [2.0, 0.0], [3.0, 4.0], [4.0, 8.0], [5.0, 100.0]])
    np.testing.assert_allclose(percentiles(values, [0, 25, 50, 90, 100]),
                               [[1, -4], [2, 0], [3, 4], [4.6, 63.2], [5, 100]], rtol=1e-15)


# --------------------------------------------------------------------------
# Percentiles: streaming sketch
# --------------------------------------------------------------------------

N_LARGE = 200_000
ALPHA = 0.005


@pytest.fixture(scope="module")
def large_sample():
    """Log-normal columns of various spreads and scales; one with 10 % zeros."""
    generator = np.random.default_rng(2020)
    sigmas = np.array([0.1, 0.3, 0.5, 1.0, 1.5, 2.0, 0.8])
    medians = np.array([1e-3, 0.1, 1.0, 10.0, 120.0, 1e4, 30.0])
    values = medians * np.exp(sigmas * generator.standard_normal((N_LARGE, sigmas.size)))
    values[generator.random(N_LARGE) < 0.1, -1] = 0.0
    return values


def _fill(values, chunk_size, relative_accuracy=ALPHA, **options):
    accumulator = PercentileAccumulator(values.shape[1], relative_accuracy=relative_accuracy, **options)
    for begin in range(0, values.shape[0], chunk_size):
        accumulator.add(values[begin:begin + chunk_size])
    return accumulator


def _assert_same_state(first, second):
    state_1, state_2 = first.state(), second.state()
    assert state_1["n_subjects"] == state_2["n_subjects"]
    np.testing.assert_array_equal(state_1["zero_counts"], state_2["zero_counts"])
    for sign in ("positive", "negative"):
        if state_1[sign] is None or state_2[sign] is None:
            assert state_1[sign] is None and state_2[sign] is None
            continue
        for array_1, array_2 in zip(state_1[sign], state_2[sign]):
            np.testing.assert_array_equal(array_1, array_2)


def test_sketch_within_relative_bound_on_lognormal(large_sample):
    quantiles = (0, 5, 25, 50, 75, 95, 100)
    accumulator = _fill(large_sample, chunk_size=25_000, quantiles=quantiles)
    estimate = accumulator.result()
    exact = np.percentile(large_sample, quantiles, axis=0, method="linear")
    np.testing.assert_array_equal(accumulator.collapse_floor(), 0.0)
    error = np.abs(estimate - exact)
    assert np.all(error <= ALPHA * np.abs(exact) * (1 + 1e-9))
    assert error.max() > 0  # it is a sketch, not a copy
    np.testing.assert_array_equal(estimate[:2, -1], 0.0)  # zeros counted exactly


def test_sketch_bound_with_both_signs():
    generator = np.random.default_rng(11)
    values = generator.normal(0.5, 1.0, (20_001, 3)) * [1.0, 10.0, 1e-3]
    quantiles = np.array([1, 5, 25, 50, 75, 95, 99.0])
    estimate = _fill(values, chunk_size=4_000, quantiles=quantiles).result()
    exact = np.percentile(values, quantiles, axis=0, method="linear")
    ordered = np.sort(values, axis=0)
    position = quantiles[:, None] / 100 * (values.shape[0] - 1)
    rank = np.floor(position).astype(int)
    weight = position - rank
    columns = np.arange(3)
    bound = ALPHA * ((1 - weight) * np.abs(ordered[rank, columns])
                     + weight * np.abs(ordered[rank + 1, columns]))
    assert np.all(np.abs(estimate - exact) <= bound * (1 + 1e-9))


def test_sketch_collapse_floor_bound_on_washed_out_tail():
    """48 h after an infusion, fast eliminators sit 30 decades below the rest."""
    generator = np.random.default_rng(3)
    rate = generator.lognormal(math.log(0.4), 0.3, 50_000)
    values = (100.0 * np.exp(-np.outer(rate, [1.0, 12.0, 48.0])))
    accumulator = _fill(values, chunk_size=10_000)
    floor = accumulator.collapse_floor()
    assert floor[0] == 0.0 and floor[-1] > 0.0
    exact = np.percentile(values, accumulator.quantiles, axis=0, method="linear")
    error = np.abs(accumulator.result() - exact)
    assert np.all(error <= ALPHA * np.abs(exact) * (1 + 1e-9) + floor)


def test_sketch_merge_of_halves_equals_one_pass(large_sample):
    one_pass = _fill(large_sample, chunk_size=50_000)
    first = _fill(large_sample[:N_LARGE // 2], chunk_size=30_000)
    second = _fill(large_sample[N_LARGE // 2:], chunk_size=7_000)
    first.merge(second)
    _assert_same_state(first, one_pass)
    np.testing.assert_array_equal(first.result(), one_pass.result())


def test_sketch_merge_order_and_pickling_with_negatives_and_collapse():
    generator = np.random.default_rng(9)
    values = np.exp(generator.normal(0.0, 15.0, (6_000, 4))) * generator.choice([-1, 1], (6_000, 4))
    values[::7] = 0.0
    parts = [_fill(values[begin:begin + 1_500], chunk_size=500) for begin in range(0, 6_000, 1_500)]
    forward, backward = PercentileAccumulator(4), PercentileAccumulator(4)
    for part in parts:
        forward.merge(pickle.loads(pickle.dumps(part)))
    for part in reversed(parts):
        backward.merge(part)
    one_pass = _fill(values[::-1], chunk_size=6_000)
    assert one_pass.collapse_floor().min() > 0  # the window collapsed
    _assert_same_state(forward, one_pass)
    _assert_same_state(backward, one_pass)


def test_sketch_memory_does_not_grow_with_subjects(large_sample):
    small = _fill(large_sample[:1_000], chunk_size=1_000)
    large = _fill(large_sample, chunk_size=50_000)
    assert small.nbytes == large.nbytes
    assert large.nbytes < 8 * large_sample.shape[1] * (2048 + 8)


def test_sketch_bad_input():
    accumulator = PercentileAccumulator(4)
    with pytest.raises(ValueError, match=r"^PercentileAccumulator.result: no subjects have been added$"):
        accumulator.result()
    with pytest.raises(ValueError, match=r"^chunk must have shape \(n_subjects, 4\) to match times; got \(2, 3\)$"):
        accumulator.add(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^chunk must be finite; got nan at subject 1, time index 0$"):
        accumulator.add([[1.0, 2.0, 3.0, 4.0], [np.nan, 2.0, 3.0, 4.0]])
    with pytest.raises(ValueError, match=r"^merge: other.relative_accuracy \(0.01\) must equal"):
        accumulator.merge(PercentileAccumulator(4, relative_accuracy=0.01))
    with pytest.raises(ValueError, match=r"^relative_accuracy must be within \(0, 1\); got 1.5$"):
        PercentileAccumulator(4, relative_accuracy=1.5)
    with pytest.raises(ValueError, match=r"^quantiles\[1\] must be a percent within \[0, 100\]; got 101$"):
        PercentileAccumulator(4, quantiles=[5, 101])
