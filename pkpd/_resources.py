"""Memory a run will need, estimated before anything is allocated.

A population run holds arrays of shape (subjects, times, outputs + states), a
data set's ADDL expands into explicit records and a sweep multiplies arms: a
typo (``--n 1000000000``, ``every = "1 s"`` for 100 years, ``ADDL = 1e9``)
would otherwise end in a ``MemoryError`` or swap after minutes. Callers
estimate the bytes from the sizes alone and call :func:`check_memory`, which
refuses with one line giving the estimate and how to raise the limit.

The limit is, in order: the ``max_memory`` argument (``--max-memory`` on the
command line), the ``PKPD_MAX_MEMORY`` environment variable, or half of the
machine's physical memory (4 GiB where that cannot be read). Sizes are bytes
or text such as ``"8GB"``, ``"512 MiB"``.
"""

import contextlib
import os
import re

from ._errors import PkpdError, ResourceError

#: Bytes per engine record while a data set's ADDL is expanded and sorted
#: (about 15 temporary int64/float64 arrays in ``events.records._assemble`` and the
#: 13 arrays of the final stream).
BYTES_PER_EXPANDED_RECORD = 256
#: Rough engine cost per subject and record (exact path, a few states), for the
#: time shown next to a refused estimate; measured on the Pickering scenario.
SECONDS_PER_SUBJECT_RECORD = 1e-6
FALLBACK_LIMIT = 4 * 2 ** 30
_UNITS = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9, "T": 1e12, "TB": 1e12,
          "KIB": 2 ** 10, "MIB": 2 ** 20, "GIB": 2 ** 30, "TIB": 2 ** 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?\s*([A-Za-z]*)\s*$")


def parse_size(value, key="--max-memory"):
    """Bytes from an int, a float or text such as "8GB", "512 MiB" or "2e9"."""
    if isinstance(value, bool):
        raise PkpdError("must be a size such as 8GB or 512MiB", key=key, value=value, got=repr(value))
    if isinstance(value, (int, float)):
        size = float(value)
    else:
        match = _SIZE.match(str(value))
        unit = match.group(3).upper() if match else None
        if match is None or unit not in _UNITS:
            raise PkpdError("must be a size such as 8GB or 512MiB", key=key, value=value, got=repr(value))
        size = float(match.group(1)) * 10.0 ** int(match.group(2) or 0) * _UNITS[unit]
    if not size > 0 or size == float("inf"):
        raise PkpdError("must be a positive size", key=key, value=value, got=repr(value))
    return int(size)


_override = None  # set by limit_override() for the duration of a command


@contextlib.contextmanager
def limit_override(max_memory):
    """Within the block, `max_memory` (bytes or text; None = no change) is the default limit.

    The command line's ``--max-memory`` sets it around a command, so every check made
    during the command (scenario, arms, trial) uses the same limit.
    """
    global _override
    previous = _override
    _override = parse_size(max_memory) if max_memory is not None else previous
    try:
        yield
    finally:
        _override = previous


def memory_limit(max_memory=None):
    """The memory limit in bytes: the argument, else --max-memory, else PKPD_MAX_MEMORY, else half the RAM."""
    if max_memory is not None:
        return parse_size(max_memory)
    if _override is not None:
        return _override
    if os.environ.get("PKPD_MAX_MEMORY"):
        return parse_size(os.environ["PKPD_MAX_MEMORY"], "PKPD_MAX_MEMORY")
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, ValueError, OSError):
        return FALLBACK_LIMIT


def format_bytes(size):
    """'1.5 GB', '820 MB', '12 kB' (powers of 1000)."""
    for unit, factor in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size:.0f} B"


def format_seconds(seconds):
    """'3 s', '12 min', '5.2 h', '40 days' (rough)."""
    for unit, factor in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= factor:
            return f"{seconds / factor:.2g} {unit}"
    return f"{seconds:.2g} s"


def check_memory(estimate, what, max_memory=None, seconds=None):
    """Refuse when `estimate` bytes exceed the limit.

    Parameters
    ----------
    estimate : float
        Bytes the work would need.
    what : str
        What is being estimated, naming its source (becomes the start of the message).
    max_memory : int or str, optional
        The limit (see :func:`memory_limit`).
    seconds : float, optional
        A rough time for the work, added to the message.

    Raises
    ------
    ResourceError
    """
    limit = memory_limit(max_memory)
    if estimate > limit:
        duration = f" and roughly {format_seconds(seconds)}" if seconds is not None else ""
        raise ResourceError(f"{what}: would need about {format_bytes(estimate)} of memory{duration}, "
                            f"above the limit of {format_bytes(limit)}; make the run smaller, or raise the "
                            f"limit with --max-memory SIZE (or PKPD_MAX_MEMORY, or max_memory=)")
