"""Real patients: a table read and checked, and resampled with replacement (stream ``resample``)."""

import os

import numpy as np
import pandas as pd

from .._errors import PopulationError
from .._random import subject_uniforms
from .checks import checked_seed, checked_subject_ids, format_value
from .derived import DERIVED_INPUTS

_SCR_UMOL_SUSPICION_MG_DL = 20.0


def read_patients(csv, required=()):
    """Read and check a table of real patients, one row per patient.

    Parameters
    ----------
    csv : str, os.PathLike or pandas.DataFrame
        A CSV file with a header row, or a table already loaded.
    required : sequence of str, optional
        Covariate columns that must be present, numeric and complete. CRCL
        and BMI may be missing if their inputs are present (they are derived).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    PopulationError
        Unreadable or empty file, missing or non-numeric required column,
        missing value, SCR apparently in µmol/L.
    """
    source = "csv" if isinstance(csv, pd.DataFrame) else os.fspath(csv)
    table = csv.copy() if isinstance(csv, pd.DataFrame) else _read_csv(source)
    if table.empty:
        raise PopulationError("no patient rows", file=source)
    for column in required:
        derivable = column in DERIVED_INPUTS and DERIVED_INPUTS[column] <= set(table.columns)
        if column not in table and not derivable:
            raise PopulationError(f"missing required covariate column {column!r}", file=source)
    for column in [name for name in required if name in table]:
        _check_numeric_column(table, column, source)
    if "SCR" in table and pd.api.types.is_numeric_dtype(table["SCR"]) \
            and table["SCR"].median() > _SCR_UMOL_SUSPICION_MG_DL:
        raise PopulationError(f"column 'SCR' must be in mg/dL; median {format_value(table['SCR'].median())} "
                              "looks like µmol/L (divide by 88.42)", file=source)
    return table


def _read_csv(path):
    try:
        return pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PopulationError(f"cannot read patient table ({reason})", file=path) from None


def _check_numeric_column(table, column, source):
    values = table[column]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise PopulationError(f"column {column!r} must be numeric", file=source, value=values.dtype,
                              got=str(values.dtype))
    missing = values.isna().to_numpy()
    if missing.any():
        raise PopulationError(f"column {column!r} has {int(missing.sum())} missing values "
                              f"(first at data row {int(np.argmax(missing)) + 1})", file=source)


def resample_patients(table, n=None, *, seed, subject_ids=None, stream="resample"):
    """Draw subjects from a patient table with replacement.

    Subject i gets row ``floor(u_i * rows)`` with ``u_i`` the first uniform of
    its ``stream``, so its row depends only on (seed, subject id).

    Parameters
    ----------
    table : pandas.DataFrame, shape (rows, columns)
        Checked patients (see :func:`read_patients`).
    n : int, optional
        Number of subjects, ids 0..n-1; or give ``subject_ids``.
    seed : int
    subject_ids : array_like of int, shape (n,), optional
    stream : str, optional

    Returns
    -------
    pandas.DataFrame, shape (n, columns + 1)
        The drawn rows, with ``SOURCE_ROW`` (0-based row of the table) added
        and a column ``ID`` renamed ``SOURCE_ID``; index ``subject_id``.
    """
    ids = checked_subject_ids(n, subject_ids, "n")
    uniforms = subject_uniforms(checked_seed(seed, "seed"), ids, stream, 1)[:, 0]
    rows = np.minimum((uniforms * len(table)).astype(np.int64), len(table) - 1)
    frame = table.iloc[rows].rename(columns={"ID": "SOURCE_ID"})
    frame.insert(len(frame.columns), "SOURCE_ROW", rows)
    frame.index = pd.Index(ids, name="subject_id")
    return frame
