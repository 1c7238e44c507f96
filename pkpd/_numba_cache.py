"""Numba's on-disk cache, made safe to load: a checksum on every file, a bad entry rebuilt.

Numba's index and data files are pickles; each gets a SHA-256 trailer here, so that
bytes garbled inside the machine code are caught too, not run. A cache entry that
fails to load is treated as a miss: the caller's `rebuild` reports it and removes the
files, and Numba compiles afresh and saves new ones. This wraps private parts of
``numba.core.caching`` (``_CacheFile._dump``/``_load_data``, ``Cache.load_overload``),
checked by the tests in tests/test_model_safety.py on every Numba version we pin.
"""

import hashlib
import pickle

import numba

_CHECKSUM_TAG = b"pkpd-sha256:"  # ends every Numba cache file of pkpd: tag, then SHA-256 of what precedes
_TRAILER_SIZE = len(_CHECKSUM_TAG) + 32


def guard_dispatchers(values, rebuild):
    """Install :func:`guard` on every cached Numba dispatcher among `values`."""
    for value in values:
        if isinstance(value, numba.core.dispatcher.Dispatcher) and hasattr(value._cache, "_cache_file"):
            guard(value._cache, rebuild)


def guard(cache, rebuild):
    """Install the checksum and the load guard on one kernel's Numba cache."""
    files = cache._cache_file
    dump, load = files._dump, cache.load_overload

    def dump_with_checksum(obj):
        payload = dump(obj)
        return payload + _CHECKSUM_TAG + hashlib.sha256(payload).digest()

    def checked(data, path):
        payload, trailer = data[:-_TRAILER_SIZE], data[-_TRAILER_SIZE:]
        if trailer != _CHECKSUM_TAG + hashlib.sha256(payload).digest():
            raise ValueError(f"{path}: checksum mismatch")
        return payload

    def load_data(name):
        path = files._data_path(name)
        with open(path, "rb") as stream:
            return pickle.loads(checked(stream.read(), path))

    def load_overload(signature, target_context):
        try:
            try:
                with open(files._index_path, "rb") as stream:
                    pickle.load(stream)                          # Numba's version tag
                    checked(stream.read(), files._index_path)
            except FileNotFoundError:
                pass
            return load(signature, target_context)
        except Exception:
            rebuild(cache)
            return None

    files._dump = dump_with_checksum
    files._load_data = load_data
    cache.load_overload = load_overload
