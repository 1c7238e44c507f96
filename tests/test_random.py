"""Tests of the counter-based per-subject random streams (pkpd._random).

Statistical checks use fixed seeds, so they are deterministic; their
thresholds are sampling-theory quantiles at the 99.9 % level (p-value floor
1e-3, or |r| below z_0.9995 / sqrt(n) for a correlation that should be 0).
"""

import hashlib

import numpy as np
import pytest
from scipy import special, stats

from pkpd._random import (
    RandomStreamError,
    _bits_to_uniform,
    _philox4x32_10,
    stream_tag,
    subject_normals,
    subject_uniforms,
)

P_VALUE_FLOOR = 1e-3
Z_999 = stats.norm.ppf(1 - 0.001 / 2)  # two-sided 99.9 % normal quantile, 3.29
PKPD_STREAMS = ("iiv", "iov", "residual", "resample", "covariates/AGE", "covariates/SEX",
                "covariates/WT", "covariates/HT", "covariates/SCR")


# --- the construction ----------------------------------------------------------

# Random123 tests/kat_vectors, "philox4x32 10" lines: counter[4], key[2] -> output[4].
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_philox_matches_random123_known_answers(counter, key, expected):
    words = _philox4x32_10(*[np.uint64(word) for word in counter + key])
    assert [int(word) for word in words] == list(expected)


def _reference_philox(counter, key):
    """Philox4x32-10 in plain Python integers, written from the SC'11 paper."""
    counter, key = list(counter), list(key)
    for round_index in range(10):
        if round_index:
            key = [(key[0] + 0x9E3779B9) & 0xFFFFFFFF, (key[1] + 0xBB67AE85) & 0xFFFFFFFF]
        product0, product1 = 0xD2511F53 * counter[0], 0xCD9E8D57 * counter[2]
        counter = [(product1 >> 32) ^ counter[1] ^ key[0], product1 & 0xFFFFFFFF,
                   (product0 >> 32) ^ counter[3] ^ key[1], product0 & 0xFFFFFFFF]
    return counter


def _reference_uniform(seed, subject_id, stream, column):
    """The uniform exactly as the module docstring of pkpd._random describes it."""
    tag = int.from_bytes(hashlib.blake2b(stream.encode(), digest_size=4).digest(), "little")
    words = _reference_philox(
        (column // 2, tag, subject_id & 0xFFFFFFFF, subject_id >> 32),
        (seed & 0xFFFFFFFF, seed >> 32))
    high, low = (words[0], words[1]) if column % 2 == 0 else (words[2], words[3])
    return (((high << 32 | low) >> 12) + 0.5) * 2.0 ** -52


@pytest.mark.parametrize("seed, subject_id, stream, column", [
    (0, 0, "iiv", 0), (2020, 1, "iiv", 1), (2020, 2 ** 40 + 3, "residual", 7),
    (2 ** 64 - 1, 2 ** 63 + 5, "covariates/WT", 2 ** 33 - 1), (12345, 999_999, "iov", 4),
])
def test_uniform_follows_documented_construction(seed, subject_id, stream, column):
    value = subject_uniforms(seed, [subject_id], stream, 1, first_column=column)[0, 0]
    assert value == _reference_uniform(seed, subject_id, stream, column)


def test_values_are_stable_across_releases():
    # Regression pin: changing these changes every simulation of every user.
    values = subject_uniforms(2020, [0, 1, 2 ** 40 + 3], "iiv", 2)
    expected = [[0.6785516580571459, 0.09808770162473868],
                [0.5741337373642953, 0.8115820126979448],
                [0.10128691316688687, 0.6773377413782472]]
    assert values.tolist() == expected


def test_extreme_bits_map_strictly_inside_unit_interval():
    smallest = _bits_to_uniform(np.uint64(0))
    largest = _bits_to_uniform(np.uint64(2 ** 64 - 1))
    assert smallest == 2.0 ** -53 and largest == 1 - 2.0 ** -53 and smallest + largest == 1
    assert np.isfinite(special.ndtri([smallest, largest])).all()


def test_normals_are_inverse_cdf_of_uniforms():
    ids = np.arange(100)
    uniforms = subject_uniforms(3, ids, "iiv", 4)
    assert np.array_equal(subject_normals(3, ids, "iiv", 4), special.ndtri(uniforms))


def test_stream_tags_of_pkpd_streams_are_distinct():
    tags = [stream_tag(stream) for stream in PKPD_STREAMS]
    assert len(set(tags)) == len(tags)
    assert all(0 <= tag < 2 ** 32 for tag in tags)


# --- invariance: chunking, columns, streams --------------------------------------

def test_chunking_gives_bit_identical_values():
    ids = np.arange(1000)
    whole = subject_normals(11, ids, "iiv", 5)
    pieces = np.concatenate([subject_normals(11, chunk, "iiv", 5)
                             for chunk in np.array_split(ids, 5)])
    assert np.array_equal(whole, pieces)
    uneven = np.concatenate([subject_normals(11, ids[start:stop], "iiv", 5)
                             for start, stop in [(0, 1), (1, 333), (333, 334), (334, 1000)]])
    assert np.array_equal(whole, uneven)


def test_order_of_subjects_does_not_matter():
    ids = np.arange(500)
    permutation = np.random.default_rng(0).permutation(ids)
    whole = subject_uniforms(5, ids, "residual", 3)
    assert np.array_equal(subject_uniforms(5, permutation, "residual", 3), whole[permutation])


def test_columns_do_not_depend_on_how_many_are_drawn():
    ids = np.arange(200)
    seven = subject_uniforms(9, ids, "iov", 7)
    assert np.array_equal(subject_uniforms(9, ids, "iov", 3), seven[:, :3])
    assert np.array_equal(subject_uniforms(9, ids, "iov", 3, first_column=3), seven[:, 3:6])
    assert np.array_equal(subject_uniforms(9, ids, "iov", 2, first_column=5), seven[:, 5:])


def test_new_stream_does_not_change_existing_ones():
    ids = np.arange(300)
    before = subject_normals(2020, ids, "iiv", 3)
    subject_normals(2020, ids, "iov", 6)  # a stream added later
    assert np.array_equal(subject_normals(2020, ids, "iiv", 3), before)


def test_accepts_any_integer_dtype_for_ids():
    expected = subject_uniforms(1, np.arange(10, dtype=np.int64), "iiv", 2)
    for dtype in (np.int32, np.uint16, np.uint64):
        assert np.array_equal(subject_uniforms(1, np.arange(10, dtype=dtype), "iiv", 2), expected)
    assert np.array_equal(subject_uniforms(1, list(range(10)), "iiv", 2), expected)


def test_empty_inputs_give_empty_outputs():
    assert subject_normals(1, np.arange(0), "iiv", 3).shape == (0, 3)
    assert subject_normals(1, np.arange(4), "iiv", 0).shape == (4, 0)


# --- distribution ------------------------------------------------------------------

@pytest.fixture(scope="module")
def uniforms():
    return subject_uniforms(2020, np.arange(100_000), "iiv", 4)


def test_uniforms_are_inside_open_unit_interval(uniforms):
    assert uniforms.min() > 0 and uniforms.max() < 1


def test_uniforms_pass_kolmogorov_smirnov(uniforms):
    for column in range(uniforms.shape[1]):
        assert stats.kstest(uniforms[:, column], "uniform").pvalue > P_VALUE_FLOOR


def test_uniforms_pass_chi_square_on_100_bins(uniforms):
    counts = np.bincount((uniforms.ravel() * 100).astype(int), minlength=100)
    assert stats.chisquare(counts).pvalue > P_VALUE_FLOOR


def test_pairs_of_neighbouring_columns_are_uniform_on_the_square(uniforms):
    # 2-D serial test: (column 0, column 1) share a Philox block, (1, 2) do not.
    for left, right in ((0, 1), (1, 2)):
        cells = (uniforms[:, left] * 20).astype(int) * 20 + (uniforms[:, right] * 20).astype(int)
        assert stats.chisquare(np.bincount(cells, minlength=400)).pvalue > P_VALUE_FLOOR


def test_normals_pass_kolmogorov_smirnov_and_moments():
    normals = subject_normals(7, np.arange(200_000), "covariates/WT", 2).ravel()
    assert stats.kstest(normals, "norm").pvalue > P_VALUE_FLOOR
    size = normals.size
    assert abs(normals.mean()) < Z_999 / np.sqrt(size)
    # Sample variance: (n-1) s^2 ~ chi-square(n-1); 99.9 % interval.
    low, high = stats.chi2.ppf([0.0005, 0.9995], size - 1) / (size - 1)
    assert low < normals.var(ddof=1) < high


def _assert_uncorrelated(first, second):
    # Pearson r of independent samples: sqrt(n) r ~ N(0, 1) approximately.
    r = np.corrcoef(first, second)[0, 1]
    assert abs(r) < Z_999 / np.sqrt(first.size), r


def test_streams_are_independent():
    ids = np.arange(100_000)
    streams = [subject_normals(1, ids, stream, 1)[:, 0] for stream in ("iiv", "iov", "residual")]
    _assert_uncorrelated(streams[0], streams[1])
    _assert_uncorrelated(streams[0], streams[2])
    _assert_uncorrelated(streams[1], streams[2])


def test_neighbouring_subjects_and_columns_are_independent():
    normals = subject_normals(1, np.arange(100_001), "iiv", 3)
    _assert_uncorrelated(normals[:-1, 0], normals[1:, 0])
    _assert_uncorrelated(normals[:, 0], normals[:, 1])
    _assert_uncorrelated(normals[:, 1], normals[:, 2])
    _assert_uncorrelated(normals[:-1, 1], normals[1:, 0])


def test_seed_sensitivity():
    ids = np.arange(100_000)
    first = subject_uniforms(2020, ids, "iiv", 1)[:, 0]
    second = subject_uniforms(2021, ids, "iiv", 1)[:, 0]
    high_seed = subject_uniforms(2020 + 2 ** 32, ids, "iiv", 1)[:, 0]  # differs in key word 1
    assert not np.any(first == second) and not np.any(first == high_seed)
    _assert_uncorrelated(first, second)
    _assert_uncorrelated(first, high_seed)
    assert np.array_equal(first, subject_uniforms(2020, ids, "iiv", 1)[:, 0])


# --- validation ----------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(seed=-1), "seed: must be in [0, 2**64 - 1]; got -1"),
    (dict(seed=2 ** 64), "seed: must be in"),
    (dict(seed=1.5), "seed: must be an integer"),
    (dict(seed=True), "seed: must be an integer"),
    (dict(subject_ids=[-3, 1]), "subject_ids: must be >= 0; got -3"),
    (dict(subject_ids=[0.5]), "subject_ids: must be integers"),
    (dict(subject_ids=[[1]]), "subject_ids: must be one-dimensional"),
    (dict(stream=""), "stream: must be a non-empty string"),
    (dict(stream=3), "stream: must be a non-empty string"),
    (dict(k=-1), "k: must be an integer >= 0; got -1"),
    (dict(first_column=2 ** 33), "first_column + k: must be <= 2**33"),
])
def test_bad_arguments_raise_one_line_value_errors(kwargs, message):
    arguments = dict(seed=1, subject_ids=[0, 1], stream="iiv", k=2) | kwargs
    first_column = arguments.pop("first_column", 0)
    with pytest.raises(RandomStreamError) as error:
        subject_normals(**arguments, first_column=first_column)
    assert isinstance(error.value, ValueError)
    assert message in str(error.value) and "\n" not in str(error.value)
