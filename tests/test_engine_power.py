"""The step controller's power of the squared error norm, read from tables (pkpd/engine/power.py),
against the power computed by numpy in float64."""

import numpy as np
import pytest

from pkpd.engine.power import error_power


@pytest.mark.parametrize("dopri, order", [(True, 5.0), (False, 4.0)])
def test_table_power_is_within_its_stated_accuracy(dopri, order):
    rng = np.random.default_rng(21)
    x = np.concatenate([10.0 ** rng.uniform(-300, 20, 20_000), [1.0, 0.5, 2.0, 1e-8, 0.3457, 1.9999999]])
    exact = x ** (-0.5 / order)
    table = np.array([error_power(value, dopri) for value in x])
    relative = np.abs(table / exact - 1.0)
    assert relative.max() <= 2.5e-4
    assert relative.max() > 1e-6   # a table, as documented (not the power function itself)


def test_every_bit_pattern_reads_a_finite_factor():
    assert error_power(np.inf, True) == 0.0 and error_power(np.nan, True) == 0.0
    assert np.isfinite(error_power(5e-324, True)) and error_power(5e-324, True) > 10.0   # clipped by the caller
    assert np.isfinite(error_power(0.0, False))
