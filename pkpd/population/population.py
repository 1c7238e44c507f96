"""The :class:`Population`: covariates drawn, resampled or given, and per-subject random streams."""

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from .._errors import PopulationError, suggestion
from .checks import checked_seed, checked_subject_ids, format_value
from .covariates import sample_covariates
from .defaults import default_neuropathic_pain_correlations, default_neuropathic_pain_covariates
from .derived import add_derived_covariates
from .random_effects import add_residual_error, sample_iiv, sample_iov
from .resampling import read_patients, resample_patients


def _given_column(column, name, source):
    """A column of a table of given individuals as float64: numeric, finite, no empty cell."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        cell = column.iloc[index]
        empty = cell is None or (isinstance(cell, float) and math.isnan(cell)) or str(cell).strip() in ("", ".")
        rule = "must not be empty" if empty else ("must be finite" if np.isinf(values[index]) else "must be a number")
        raise PopulationError(rule, file=source, row=index + 2, column=str(name), value=cell,
                              got=None if empty else repr(cell) if isinstance(cell, str) else str(cell))
    return values


def _given_ids(values, name, source):
    """Subject IDs of a table of given individuals: non-negative integers, each once."""
    bad = (values != np.round(values)) | (values < 0) | (values > 2.0 ** 63 - 1024)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise PopulationError("must be a non-negative integer", file=source, row=index + 2, column=name,
                              value=values[index], got=format_value(values[index]))
    ids = values.astype(np.int64)
    order = np.argsort(ids, kind="stable")
    same = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if same.size:
        first, second = sorted(order[same[0]:same[0] + 2])
        raise PopulationError(f"must be distinct: row {second + 2} repeats row {first + 2}", file=source,
                              row=second + 2, column=name, value=ids[second], got=str(ids[second]))
    return ids


class Population:
    """A seeded virtual population: covariates and per-subject random streams.

    Parameters
    ----------
    n : int, optional
        Number of subjects, ids 0..n-1 (or give ``subject_ids``).
    covariates : mapping, optional
        Covariate name -> distribution (see :func:`parse_covariate`). None
        with no ``csv`` gives :func:`default_neuropathic_pain_covariates`
        and its correlations.
    correlations : mapping, optional
        Gaussian copula between continuous covariates (see
        :func:`parse_correlations`).
    seed : int
        0 <= seed < 2**64; the same seed gives the same population.
    csv : str, os.PathLike or pandas.DataFrame, optional
        Resample real patients with replacement instead of distributions.
    required : sequence of str, optional
        Covariates the model needs; missing ones raise.
    subject_ids : array_like of int, shape (n,), optional
        Draw only these subjects (a chunk): their rows equal the rows of the
        same ids in a larger population with the same inputs and seed.

    Attributes
    ----------
    covariates : pandas.DataFrame, shape (n, number of covariates)
        One row per subject, index ``subject_id``; derived CRCL (mL/min) and
        BMI (kg/m2) added when their inputs exist.
    subject_ids : ndarray of int64, shape (n,)
    seed : int

    Examples
    --------
    >>> population = Population(1000, seed=2020)
    >>> list(population.covariates.columns)
    ['AGE', 'SEX', 'WT', 'HT', 'SCR', 'CRCL', 'BMI']
    >>> population.subset(10, 20).covariates.equals(population.covariates.iloc[10:20])
    True
    """

    def __init__(self, n: int | None = None, covariates: Mapping[str, Any] | None = None,
                 correlations: Mapping[str, Any] | None = None, *, seed: int,
                 csv: str | os.PathLike[str] | pd.DataFrame | None = None, required: str | Iterable[str] = (),
                 subject_ids: ArrayLike | None = None) -> None:
        self.subject_ids = checked_subject_ids(n, subject_ids, "population.n")
        self.seed = checked_seed(seed, "population.seed")
        required = [required] if isinstance(required, str) else list(required)
        if csv is not None:
            self.covariates = self._from_patients(csv, covariates, correlations, required)
        else:
            self.covariates = self._from_distributions(covariates, correlations)
        self._check_required(required)

    def _from_patients(self, csv, covariates, correlations, required):
        if covariates is not None or correlations is not None:
            raise PopulationError("give covariates or csv, not both", key="population")
        table = read_patients(csv, required)
        frame = resample_patients(table, seed=self.seed, subject_ids=self.subject_ids)
        source = "csv" if isinstance(csv, pd.DataFrame) else os.fspath(csv)
        return add_derived_covariates(frame, source)

    def _from_distributions(self, covariates, correlations):
        if covariates is None:
            covariates = default_neuropathic_pain_covariates()
            if correlations is None:
                correlations = default_neuropathic_pain_correlations()
        frame = sample_covariates(covariates, correlations, seed=self.seed,
                                  subject_ids=self.subject_ids)
        return add_derived_covariates(frame)

    def _check_required(self, required):
        for name in required:
            if name not in self.covariates:
                raise PopulationError(f"missing required covariate {name!r}", key="population")

    #: Columns of a table of given individuals (:meth:`from_table`); empty for a drawn population.
    given: tuple[str, ...] = ()

    @classmethod
    def from_table(cls, table: pd.DataFrame, *, seed: int = 0, id_column: str | None = None,
                   required: str | Iterable[str] = (), source: str = "table") -> "Population":
        """Given individuals: one row per subject with its covariates and/or individual parameters.

        Nothing is resampled or drawn for what the table gives: :func:`pkpd.simulate`
        uses each subject's covariates as they are and each parameter column as that
        subject's individual value, without a random effect. Model parameters the table
        does not give take the model's value and its random effects, drawn from `seed`
        and the subject's ID as for any population; covariates it does not give take the
        model's value (or its distribution), as for a table of patients. Each column must
        name a model parameter or covariate (or WT, for doses per kg), which is checked
        against the model when it is simulated. CRCL and BMI are derived when their
        inputs are given.

        Parameters
        ----------
        table : pandas.DataFrame
            One row per subject; numeric, finite, non-empty cells (units those of the
            model: WT in kg, CL in L/h, ...).
        seed : int
            Seed of the random effects of parameters the table does not give.
        id_column : str, optional
            Column of distinct non-negative integer subject IDs; by default "ID" if
            the table has it, else the subjects are numbered 0..n-1 in table order.
        required : str or sequence of str, optional
            Columns that must be present (e.g. the covariates the model needs).
        source : str
            Name of the table in error messages (e.g. its file name).

        Returns
        -------
        Population
            ``covariates`` holds the table's columns (index the subject IDs),
            ``given`` their names.

        Raises
        ------
        PopulationError
            Naming the table, the row (as a spreadsheet numbers it), the column, the
            rule and the value: an empty table, a missing required or ID column, a
            non-numeric, empty or infinite cell, a duplicate or non-integer ID.

        Examples
        --------
        >>> import pandas as pd
        >>> table = pd.DataFrame({"ID": [1, 2], "WT": [70.0, 82.5], "CL": [4.1, 5.3]})
        >>> population = Population.from_table(table)
        >>> population.subject_ids.tolist(), population.given
        ([1, 2], ('WT', 'CL'))
        """
        if not isinstance(table, pd.DataFrame):
            raise PopulationError("must be a pandas DataFrame", file=source, value=type(table).__name__,
                                  got=type(table).__name__)
        if len(table) == 0:
            raise PopulationError("must have at least one row (a subject)", file=source)
        names = [str(name) for name in table.columns]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise PopulationError("names a column twice", file=source, column=repeated[0])
        for name in ([required] if isinstance(required, str) else list(required)) + [id_column or "ID"]:
            if name not in names and (name != "ID" or id_column is not None):
                raise PopulationError(f"is missing{suggestion(name, names, 'the table has')}", file=source,
                                      column=name)
        columns = {name: _given_column(table[original], name, source) for name, original in zip(names, table.columns)}
        ids = columns.pop(id_column or "ID", None)
        if ids is None:
            subject_ids = np.arange(len(table), dtype=np.int64)
        else:
            subject_ids = _given_ids(ids, id_column or "ID", source)
        if not columns:
            raise PopulationError("has no column besides the IDs: give covariates or parameters", file=source)
        frame = pd.DataFrame(columns, index=pd.Index(subject_ids, name="subject_id"))
        population = cls._from_parts(checked_seed(seed, "seed"), subject_ids, add_derived_covariates(frame, source))
        population.given = tuple(columns)
        return population

    @classmethod
    def _from_parts(cls, seed, subject_ids, covariates, given=()):
        population = cls.__new__(cls)
        population.seed, population.subject_ids, population.covariates = \
            seed, subject_ids, covariates
        population.given = tuple(given)
        return population

    def __len__(self) -> int:
        return self.subject_ids.size

    def __repr__(self) -> str:
        columns = ", ".join(self.covariates.columns)
        return f"Population(n={len(self)}, seed={self.seed}, covariates=[{columns}])"

    def subset(self, start: int, stop: int) -> "Population":
        """Subjects at positions start..stop-1, with the same numbers.

        Parameters
        ----------
        start, stop : int
            Positions (not ids), as in ``slice(start, stop)``.

        Returns
        -------
        Population
        """
        return self._from_parts(self.seed, self.subject_ids[start:stop], self.covariates.iloc[start:stop],
                                self.given)

    def covariate_array(self, names: Iterable[str]) -> NDArray[np.float64]:
        """Covariates as a C-contiguous float64 array for the engine.

        Parameters
        ----------
        names : sequence of str, length c

        Returns
        -------
        ndarray of float64, shape (n, c)
        """
        self._check_required(names)
        return np.ascontiguousarray(self.covariates[list(names)].to_numpy(dtype=np.float64))

    def sample_iiv(self, omega: ArrayLike, *, stream: str = "iiv", variability: bool = True) -> NDArray[np.float64]:
        """Etas of these subjects, shape (n, k); see :func:`sample_iiv`."""
        return sample_iiv(omega, seed=self.seed, subject_ids=self.subject_ids, stream=stream,
                          variability=variability)

    def sample_iov(self, omega_iov: ArrayLike, n_occasions: int, *, stream: str = "iov",
                   variability: bool = True) -> NDArray[np.float64]:
        """Inter-occasion effects, shape (n, n_occasions, k); see :func:`sample_iov`."""
        return sample_iov(omega_iov, n_occasions=n_occasions, seed=self.seed,
                          subject_ids=self.subject_ids, stream=stream, variability=variability)

    def add_residual_error(self, ipred: ArrayLike, additive_sd: float = 0.0, proportional_sd: float = 0.0, *,
                           stream: str = "residual", variability: bool = True,
                           first_time_index: int = 0) -> NDArray[np.float64]:
        """Observations with residual error; see :func:`add_residual_error`."""
        return add_residual_error(ipred, additive_sd, proportional_sd, seed=self.seed,
                                  subject_ids=self.subject_ids, stream=stream,
                                  variability=variability, first_time_index=first_time_index)
