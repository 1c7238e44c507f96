"""The step-size controller's power of the error norm, read from two tables.

The controller multiplies the step by 0.9 error^(-1/order), clipped to [0.2, 10]: the factor needs
three or four digits. As a call of ``powf`` it sat on the critical path of every step (each step's
length waits for it) and took 15 % of W1's RK45 time. Split as
x = 2^E (1 + f), x^p = 2^(p E) (1 + f)^p, and both factors come from tables: one entry per binary
exponent E, and one per 1/256 of the mantissa f (at the middle of its interval), so the result is
within 2.5e-4 of x^p (relative; ``tests/test_engine_power.py``) in two loads and a product.
Deterministic: the same bits on every machine.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import config
from numba.extending import intrinsic

from .jit import jit

MANTISSA_BITS = 8


def _tables(exponent):
    """(x^exponent factor by the 11-bit biased exponent of x, factor by the top MANTISSA_BITS bits of its mantissa).

    Zero and subnormal x (biased exponent 0) take the factor of the smallest normal exponent, and
    infinity and NaN (2047) zero, so every 64-bit pattern reads a finite entry."""
    biased = np.arange(2048)
    by_exponent = 2.0 ** (exponent * (np.clip(biased, 1, 2046) - 1023.0))
    by_exponent[2047] = 0.0
    by_mantissa = (1.0 + (np.arange(2 ** MANTISSA_BITS) + 0.5) / 2 ** MANTISSA_BITS) ** exponent
    return by_exponent, by_mantissa


# squared error norms to the power -1/(2 order): Dormand-Prince (order 5) and RODAS4 (order 4)
DOPRI_BY_EXPONENT, DOPRI_BY_MANTISSA = _tables(-0.5 / 5.0)
RODAS_BY_EXPONENT, RODAS_BY_MANTISSA = _tables(-0.5 / 4.0)

if config.DISABLE_JIT:   # the engine run as Python (coverage)
    def float_bits(value):
        return int(np.float64(value).view(np.int64))
else:
    @intrinsic
    def float_bits(typingctx, value):
        """The IEEE 754 bits of a float64 as an int64."""
        signature = types.int64(types.float64)

        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], ir.IntType(64))

        return signature, codegen


@jit(inline="always")
def table_power(x, by_exponent, by_mantissa):
    """x^p for x > 0 from p's tables (see the module's docstring)."""
    bits = float_bits(x)
    return by_exponent[(bits >> 52) & 2047] * by_mantissa[(bits >> (52 - MANTISSA_BITS)) & (2 ** MANTISSA_BITS - 1)]


@jit(inline="always")
def error_power(squared_error, dopri):
    """error^(-1/order) from the squared error norm (order 5 for Dormand-Prince, else 4)."""
    if dopri:
        return table_power(squared_error, DOPRI_BY_EXPONENT, DOPRI_BY_MANTISSA)
    return table_power(squared_error, RODAS_BY_EXPONENT, RODAS_BY_MANTISSA)
