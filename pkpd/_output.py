"""Writing outputs safely: never half-written, never over a user's own files.

Every output is written under a temporary name beside its final place and renamed
there at the end (a rename within a folder is atomic), so an output is either the
old one or the complete new one:

- ``pkpd simulate -o OUT.csv`` writes ``.OUT.csv.tmp-PID`` and renames it; an
  existing OUT.csv is replaced only with ``--force``, and never when it is one of
  the command's inputs (the same file, whatever the path that names it).
- ``pkpd run -o DIR`` fills the folder ``.DIR.tmp-PID``; with ``--force`` an
  existing DIR is renamed to ``.DIR.old-PID``, the new folder takes its name and
  the old one is removed. ``--force`` replaces only a folder pkpd wrote: its
  ``manifest.json`` carries ``"pkpd_output": true`` and lists every file of the
  folder (``output_files``); a folder holding anything else (the scenario, its
  data, a note the user added), a file, a symbolic link, the current folder or
  the home folder is refused, untouched.

The temporaries name their process (PID). One left behind by a process that no
longer exists (killed by SIGKILL, a power cut) is removed by the next write of
the same output; an ``.old-PID`` folder whose new output never took its place is
put back. Only names of exactly these forms are touched.

Files are created like :func:`open` creates them (mode 0666 less the umask).
An :class:`OSError` while writing (a full disk, a read-only folder) becomes an
:class:`OutputError` naming the output and the reason; the temporary is removed.

CSV cells that a spreadsheet would run as a formula (text starting with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return, e.g. an arm named ``=1+1``) are
written with a leading ``'``, as OWASP advises; numbers, negative ones included,
are written as numbers.
"""

import errno
import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd

from . import _signals
from ._errors import OutputError

MANIFEST = "manifest.json"
MARKER = "pkpd_output"          # manifest key that marks a folder pkpd wrote
FILES = "output_files"          # manifest key listing every other file of that folder
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# ---------------------------------------------------------------------------
# CSV cells a spreadsheet would evaluate

def neutralise_formulas(frame):
    """A copy of `frame` whose text cells and column names cannot start a spreadsheet formula.

    Parameters
    ----------
    frame : DataFrame

    Returns
    -------
    DataFrame
        Text starting with ``= + - @``, a tab or a carriage return, unless it reads as a
        number, gets a leading ``'``; numbers and other text are unchanged.
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            out[column] = _neutralised_column(values)
    out.columns = [_neutralised(name) for name in out.columns]
    return out


def _neutralised_column(values):
    try:
        risky = values.str[:1].isin(FORMULA_START)  # vectorised first look; non-text cells give False
    except AttributeError:  # no text in the column
        return values
    if not risky.any():
        return values
    return values.where(~risky, values[risky].map(_neutralised))


def _neutralised(value):
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _is_number(value):
        return "'" + value
    return value


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_csv(frame, path_or_stream, **options):
    """``frame.to_csv(path_or_stream, index=False, **options)`` with formulas neutralised."""
    neutralise_formulas(frame).to_csv(path_or_stream, index=False, **options)


# ---------------------------------------------------------------------------
# One output file

def check_output_file(path, *, force=False, inputs=()):
    """Raise :class:`OutputError` unless `path` may be written (replaced only with `force`).

    Parameters
    ----------
    path : str or Path
    force : bool
        Replace an existing file.
    inputs : iterable of str or Path
        The command's input files; the output may never be one of them.
    """
    if str(path) == "":
        raise OutputError("the output file name is empty", key="-o")
    path = Path(path)
    if path.is_dir():
        raise OutputError("is a folder; -o needs a file name", file=path)
    for source in inputs:
        if _same_file(path, source):
            same = "" if Path(source) == path else f" (the same file as {source})"
            raise OutputError(f"is an input of this command{same}; choose another output name", file=path)
    if os.path.lexists(path) and not force:
        raise OutputError("output file exists; choose another or pass --force to replace it", file=path)
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} does not exist", file=path)


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (so they are not the same file)
        return False


def write_file_atomically(path, write, *, force=False, inputs=()):
    """Write a text file through a temporary beside it, then rename it into place.

    Parameters
    ----------
    path : str or Path
    write : callable
        ``write(stream)`` writes the content to a text stream.
    force, inputs
        As for :func:`check_output_file` (checked again just before the rename).
    """
    _signals.check()
    check_output_file(path, force=force, inputs=inputs)
    path = Path(path)
    remove_stale_temporaries(path)
    temporary = _temporary(path, "tmp")
    _remove(temporary)
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0666 less the umask
        with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as stream:
            write(stream)
        with _signals.committing(path):
            check_output_file(path, force=force, inputs=inputs)
            os.replace(temporary, path)
    except OSError as error:
        raise OutputError(reason(error), file=path) from None
    finally:
        with _signals.held():
            _remove(temporary)


# ---------------------------------------------------------------------------
# One output folder

def check_output_folder(target, *, force=False, inputs=()):
    """Raise :class:`OutputError` unless `target` may be written (replaced only with `force`).

    With `force`, an existing `target` must be a folder pkpd wrote (see :func:`foreign_content`)
    that holds none of `inputs`, and neither the current nor the home folder nor one of
    their parents.
    """
    if str(target) == "":
        raise OutputError("the output folder name is empty", key="-o")
    target = Path(target)
    if os.path.lexists(target) or target.is_dir():
        if not force:
            raise OutputError("output folder exists; choose another or pass --force to replace it", file=target)
        why = _unreplaceable(target, inputs)
        if why:
            raise OutputError(f"{why}; --force replaces only a folder that pkpd wrote, so it is left as it is",
                              file=target)
    if target.parent.exists() and not target.parent.is_dir():
        raise OutputError(f"{target.parent} is not a folder", file=target)


def _unreplaceable(target, inputs):
    """Why `target` may not be replaced, or None."""
    if target.is_symlink():
        return "is a symbolic link"
    if not target.is_dir():
        return "is a file, not an output folder"
    resolved = target.resolve()
    for name, place in (("the current folder", Path.cwd()), ("your home folder", Path.home())):
        place = place.resolve()
        if resolved == place or resolved in place.parents:
            return f"is {name}" if resolved == place else f"contains {name}"
    for source in inputs:
        if resolved in Path(source).resolve().parents:
            return f"contains {source}, an input of this run"
    return foreign_content(target)


def foreign_content(folder):
    """Why `folder` is not an untouched pkpd output folder, or None if it is.

    A pkpd output folder has a ``manifest.json`` with ``"pkpd_output": true`` whose
    ``output_files`` names every other file in the folder (subfolders included).
    """
    manifest = Path(folder) / MANIFEST
    try:
        if manifest.is_symlink() or not manifest.is_file():
            raise ValueError
        info = json.loads(manifest.read_text(encoding="utf-8"))
        if not isinstance(info, dict) or info.get(MARKER) is not True or not isinstance(info.get(FILES), list):
            raise ValueError
    except (OSError, ValueError):
        return f"has no {MANIFEST} written by pkpd"
    known = {MANIFEST, *map(str, info[FILES])}
    known_folders = {str(parent) for name in known for parent in Path(name).parents if str(parent) != "."}
    for entry in sorted(_entries(folder)):
        if entry not in known and entry not in known_folders:
            return f"holds {entry}, which pkpd did not write"
    return None


def _entries(folder):
    """Every file, link and subfolder under `folder`, as POSIX paths relative to it (links not followed)."""
    for root, folders, files in os.walk(folder):
        for name in folders + files:
            yield (Path(root) / name).relative_to(folder).as_posix()


def write_folder_atomically(target, fill, manifest, *, force=False, inputs=(), json_default=None):
    """Fill a temporary folder, add its manifest, and rename it to `target`.

    Parameters
    ----------
    target : str or Path
    fill : callable
        ``fill(folder)`` writes the output files into `folder`.
    manifest : dict
        Written last as ``manifest.json``, with ``"pkpd_output": true`` first and
        ``"output_files"`` (every file `fill` wrote) added; `manifest` is updated too.
    force, inputs
        As for :func:`check_output_folder` (checked again just before the rename).
    json_default : callable, optional
        ``default`` of :func:`json.dumps` for values JSON does not know.
    """
    _signals.check()
    check_output_folder(target, force=force, inputs=inputs)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    temporary = _temporary(target, "tmp")
    _remove(temporary)
    try:
        temporary.mkdir()
        fill(temporary)
        files = sorted(entry for entry in _entries(temporary) if not (temporary / entry).is_dir())
        manifest.update({MARKER: True, FILES: files})
        text = json.dumps({MARKER: True, **manifest}, indent=2, default=json_default)
        (temporary / MANIFEST).write_text(text, encoding="utf-8")
        with _signals.committing(target):
            check_output_folder(target, force=force, inputs=inputs)
            _replace_folder(temporary, target)
    except OSError as error:
        raise OutputError(reason(error), file=target) from None
    finally:
        with _signals.held():
            _remove(temporary)


def _replace_folder(temporary, target):
    """Rename `temporary` to `target`, moving an existing `target` aside and then removing it."""
    if not os.path.lexists(target):
        os.replace(temporary, target)
        return
    backup = _temporary(target, "old")
    _remove(backup)
    os.replace(target, backup)
    try:
        os.replace(temporary, target)
    except BaseException:
        os.replace(backup, target)
        raise
    _remove(backup)


# ---------------------------------------------------------------------------
# Temporaries

def _temporary(path, kind):
    """``.NAME.tmp-PID`` or ``.NAME.old-PID`` beside `path`."""
    return path.parent / f".{path.name}.{kind}-{os.getpid()}"


def remove_stale_temporaries(path):
    """Remove the temporaries of `path` that processes no longer running left beside it.

    ``.NAME.tmp-PID`` (a file or folder being written) is removed. ``.NAME.old-PID`` (an
    output folder being replaced) is removed if NAME exists and is put back as NAME if
    not; either only if it is a pkpd output folder. Other names are never touched.
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(tmp|old)-([0-9]+)")
    try:
        names = os.listdir(path.parent if str(path.parent) else ".")
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        if not match or _alive(int(match.group(2))):
            continue
        stale = path.parent / name
        if match.group(1) == "tmp":
            _remove(stale)
        elif stale.is_dir() and not stale.is_symlink() and foreign_content(stale) is None:
            if os.path.lexists(path):
                _remove(stale)
            else:
                os.replace(stale, path)


def _alive(pid):
    """Whether process `pid` may exist (this process, and anything not a plain pid, count as alive)."""
    if pid == os.getpid() or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # someone else's process, or not a pid at all: leave it alone
    return True


def _remove(path):
    """Remove a file, link or folder tree at `path` if there is one."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def reason(error):
    """'no space left on device' from an OSError (ENOSPC), for a one-line message."""
    text = error.strerror or str(error) or errno.errorcode.get(error.errno, type(error).__name__)
    return text[:1].lower() + text[1:]
