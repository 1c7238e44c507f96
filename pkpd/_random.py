"""Counter-based random numbers: one independent stream per subject.

Every random number pkpd draws for a subject is a pure function of four
things only::

    value = f(seed, subject_id, stream, column)

so a subject's covariates, random effects and residual errors do not depend
on how many subjects are simulated together, in which order, by how many
threads or on which worker of a cluster, and a new stream (say ``"iov"``)
never shifts the numbers of an existing one (``"covariates/WT"``, ``"iiv"``,
``"residual"``, ...).

Construction
------------
The generator is Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel
random numbers: as easy as 1, 2, 3", SC'11), the counter-based generator of
the Random123 library, which passes TestU01's BigCrush; cuRAND and
TensorFlow's stateless random ops use it too (NumPy offers the 4x64 variant).
It is a keyed bijection of a 128-bit counter, so distinct counters give
independent-looking 128-bit blocks. pkpd fills the key and counter as::

    key     = (seed mod 2**32, seed div 2**32)           seed: 0 <= seed < 2**64
    counter = (column div 2,                             32 bits
               tag(stream),                              32 bits
               subject_id mod 2**32,                     \\ 64 bits
               subject_id div 2**32)                     /

where ``tag(stream)`` is the first 4 bytes (little endian) of the BLAKE2b
hash of the stream name in UTF-8 (stable across Python versions and runs,
unlike :func:`hash`). Each 128-bit block serves two consecutive columns: the
even column takes output words 0-1, the odd column words 2-3, each read as a
64-bit integer ``b``. A uniform is the top 52 bits, centred::

    u = ((b >> 12) + 0.5) * 2**-52          2**-53 <= u <= 1 - 2**-53

(every step exact in float64, so u is never 0 or 1 and the grid is symmetric
about 1/2; 53 bits would round the top values to 1) and a standard normal is
its inverse normal CDF, ``z = ndtri(u)`` (:func:`scipy.special.ndtri`), so
``|z| <= 8.21``. Because the normal of a column is the transform of the
uniform of the same column, draw uniforms and normals that must be
independent from different streams or columns.

The kernel is checked against Random123's known-answer vectors
(``tests/test_random.py``).

Limits: ``0 <= column < 2**33``, ``0 <= subject_id < 2**64``; two different
stream names share a tag with probability 2**-32 (the tags of the streams pkpd
itself uses are distinct, see the tests).
"""

import functools
import hashlib
import numbers

import numpy as np
from scipy import special

from pkpd._errors import RandomStreamError
from pkpd._jit import jit

_MULTIPLIER_0 = np.uint64(0xD2511F53)
_MULTIPLIER_1 = np.uint64(0xCD9E8D57)
_WEYL_0 = np.uint64(0x9E3779B9)
_WEYL_1 = np.uint64(0xBB67AE85)
_MASK_32 = np.uint64(0xFFFFFFFF)
_SHIFT_32 = np.uint64(32)
_SHIFT_12 = np.uint64(12)
_ONE = np.uint64(1)
_TWO_TO_MINUS_52 = 2.0 ** -52
_ROUNDS = 10
MAX_COLUMNS = 2 ** 33
MAX_SEED = 2 ** 64 - 1


@jit
def _philox4x32_10(counter0, counter1, counter2, counter3, key0, key1):
    """Philox4x32 with 10 rounds on one block (32-bit words held in uint64).

    Returns
    -------
    tuple of 4 uint64
        The output words, each below 2**32.
    """
    for round_index in range(_ROUNDS):
        if round_index > 0:
            key0 = (key0 + _WEYL_0) & _MASK_32
            key1 = (key1 + _WEYL_1) & _MASK_32
        product0 = _MULTIPLIER_0 * counter0
        product1 = _MULTIPLIER_1 * counter2
        high0 = product0 >> _SHIFT_32
        low0 = product0 & _MASK_32
        high1 = product1 >> _SHIFT_32
        low1 = product1 & _MASK_32
        counter0 = high1 ^ counter1 ^ key0
        counter1 = low1
        counter2 = high0 ^ counter3 ^ key1
        counter3 = low0
    return counter0, counter1, counter2, counter3


@jit
def _bits_to_uniform(bits):
    """A uint64 to a float64 on (0, 1): ``((bits >> 12) + 0.5) * 2**-52``, exact."""
    return (np.float64(bits >> _SHIFT_12) + 0.5) * _TWO_TO_MINUS_52


@jit
def _uniform_kernel(key0, key1, tag, subject_ids, first_column, out):
    """Fill ``out[i, j]`` with the uniform of (subject_ids[i], first_column + j).

    Parameters
    ----------
    key0, key1, tag : uint64
        Key words and the stream tag, each below 2**32.
    subject_ids : ndarray of uint64, shape (n,)
    first_column : uint64
    out : ndarray of float64, shape (n, k), written in place.
    """
    n_subjects, n_columns = out.shape
    for row in range(n_subjects):
        subject = subject_ids[row]
        id_low = subject & _MASK_32
        id_high = subject >> _SHIFT_32
        word0 = word1 = word2 = word3 = np.uint64(0)
        for offset in range(n_columns):
            column = first_column + np.uint64(offset)
            if offset == 0 or (column & _ONE) == 0:
                word0, word1, word2, word3 = _philox4x32_10(
                    column >> _ONE, tag, id_low, id_high, key0, key1)
            if (column & _ONE) == 0:
                bits = (word0 << _SHIFT_32) | word1
            else:
                bits = (word2 << _SHIFT_32) | word3
            out[row, offset] = _bits_to_uniform(bits)


@functools.lru_cache(maxsize=1024)
def stream_tag(stream):
    """The 32-bit tag of a stream name: first 4 bytes of BLAKE2b, little endian.

    Parameters
    ----------
    stream : str
        Stream name, e.g. ``"iiv"`` or ``"covariates/WT"``.

    Returns
    -------
    int
        0 <= tag < 2**32.
    """
    digest = hashlib.blake2b(stream.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def check_seed(seed):
    """`seed` as an int in [0, 2**64 - 1]; RandomStreamError (key ``seed``) otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise RandomStreamError("must be an integer", key="seed", value=seed, got=repr(seed))
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise RandomStreamError("must be in [0, 2**64 - 1]", key="seed", value=seed, got=str(seed))
    return seed


def _check_subject_ids(subject_ids):
    ids = np.asarray(subject_ids)
    if ids.ndim != 1:
        raise RandomStreamError("must be one-dimensional", key="subject_ids", got=f"shape {ids.shape}")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise RandomStreamError("must be integers", key="subject_ids", got=f"dtype {ids.dtype}")
    if ids.size and np.issubdtype(ids.dtype, np.signedinteger) and ids.min() < 0:
        raise RandomStreamError("must be >= 0", key="subject_ids", value=ids.min(), got=str(ids.min()))
    return np.ascontiguousarray(ids, dtype=np.uint64)


def _check_stream(stream):
    if not isinstance(stream, str) or not stream:
        raise RandomStreamError("must be a non-empty string", key="stream", value=stream, got=repr(stream))
    return stream


def _check_columns(k, first_column):
    for name, value in (("k", k), ("first_column", first_column)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise RandomStreamError("must be an integer >= 0", key=name, value=value, got=repr(value))
    if first_column + k > MAX_COLUMNS:
        raise RandomStreamError(
            f"first_column + k: must be <= 2**33; got {first_column + k}")
    return int(k), int(first_column)


def subject_uniforms(seed, subject_ids, stream, k, *, first_column=0):
    """Uniform numbers on (0, 1), one independent stream per subject.

    ``out[i, j]`` depends only on ``(seed, subject_ids[i], stream,
    first_column + j)``; see the module docstring for the construction.

    Parameters
    ----------
    seed : int
        0 <= seed < 2**64.
    subject_ids : array_like of int, shape (n,)
        Non-negative subject indices; order and chunking do not matter.
    stream : str
        Purpose of the numbers, e.g. ``"covariates/SEX"``.
    k : int
        Number of columns.
    first_column : int, optional
        Column index of ``out[:, 0]``; columns before it are not computed.

    Returns
    -------
    ndarray of float64, shape (n, k)
        Values in [2**-53, 1 - 2**-53], on a grid of spacing 2**-52.

    Raises
    ------
    RandomStreamError
        For a bad seed, subject id, stream name or column range.

    Examples
    --------
    >>> whole = subject_uniforms(7, np.arange(10), "demo", 3)
    >>> part = subject_uniforms(7, np.arange(5, 10), "demo", 3)
    >>> bool(np.array_equal(whole[5:], part))
    True
    """
    seed = check_seed(seed)
    ids = _check_subject_ids(subject_ids)
    stream = _check_stream(stream)
    k, first_column = _check_columns(k, first_column)
    out = np.empty((ids.size, k), dtype=np.float64)
    if out.size:
        _uniform_kernel(np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32),
                        np.uint64(stream_tag(stream)), ids,
                        np.uint64(first_column), out)
    return out


def subject_normals(seed, subject_ids, stream, k, *, first_column=0):
    """Standard normal numbers, one independent stream per subject.

    ``out[i, j] = ndtri(subject_uniforms(seed, subject_ids, stream, k,
    first_column=first_column)[i, j])``: a pure function of ``(seed,
    subject_ids[i], stream, first_column + j)``.

    Parameters
    ----------
    seed : int
        0 <= seed < 2**64.
    subject_ids : array_like of int, shape (n,)
        Non-negative subject indices.
    stream : str
        Purpose of the numbers, e.g. ``"iiv"``.
    k : int
        Number of columns.
    first_column : int, optional
        Column index of ``out[:, 0]``.

    Returns
    -------
    ndarray of float64, shape (n, k)
        Standard normal values, all within +-8.21.

    Examples
    --------
    >>> etas = subject_normals(2020, np.arange(4), "iiv", 2)
    >>> etas.shape
    (4, 2)
    """
    values = subject_uniforms(seed, subject_ids, stream, k, first_column=first_column)
    return special.ndtri(values, out=values)
