"""``simulate_data``: a NONMEM data set as the template of a simulated trial.

Like NONMEM's ``$SIMULATION`` with ``$TABLE``, or mrgsolve's ``data_set()``
with ``idata``: the data set gives the records (doses, observation times,
covariates); the model gives the random effects, drawn per ``ID``
(``[variability.iiv]``), per ``ID`` and ``OCC`` (``[variability.iov]``), and
the residual error of one output (``[residual]``); ``replicates`` repeats the
whole data set with new draws.

Random numbers
    The same per-subject streams as the regimen path (:mod:`pkpd.population`):
    ``iiv``, ``iov`` (occasion ``OCC`` uses columns ``OCC * k ...``) and
    ``residual/OUTPUT`` (the record's index t within its ID, comment rows not
    counted, uses columns 2t and 2t + 1). The subject number of a stream is
    ``(REP - 1) * 2**32 + ID``, so every number depends only on (seed, REP, ID,
    record): never on the number of threads, on the chunks the data set is read
    in, or on the other subjects. Random effects therefore need integer IDs in
    [0, 2**32), each ID one subject (an ID that comes back after other IDs is
    refused, since it would get the first one's draws).

Output (NONMEM's ``$TABLE``)
    One row per record and replicate, replicate after replicate (REP 1's
    records, then REP 2's, ...), each in input order. Every input column comes
    first, unchanged and in order (an input ``DV`` as ``DV_IN``); then ``REP``,
    ``IPRED`` and ``PRED`` (the individual and the typical-subject prediction of
    the DV output), ``DV`` (IPRED with residual error on observation records,
    EVID 0 and MDV not 1; empty on the others), every model output, the
    compartment amounts on request, and on request (``return_etas``) the random
    effects ``ETA_P`` (IIV) and ``KAPPA_P`` (IOV) and the individual value
    ``IND_P`` of each parameter P on each record. The DV output is the first
    output with a ``[residual]`` entry, else the first output, or the one asked
    for. Comment rows are not simulated and, as in NONMEM's tables, not written.

NONMEM data conventions
    A comment row (NONMEM's ``IGNORE=#`` / ``IGNORE=@``): its first field starts
    with ``#`` or ``@``, or its ``C`` column holds ``C`` or ``c``; a blank line
    too. Allowed anywhere, also between the records of a subject. ``.`` or an
    empty cell is missing. Without an EVID column (or where its cell is
    empty) EVID is 1 where AMT > 0, else 2 where MDV is 1, else 0. Clock-time
    columns (DATE, DAT1, DAT2, DAT3) are refused: give TIME as elapsed time.

Large data sets are read and simulated in chunks of whole IDs
(:func:`simulate_data_file`), so memory does not grow with the file.
"""

import dataclasses
import json
import os
from itertools import islice, pairwise
from pathlib import Path

import numpy as np
import pandas as pd

from ._engine import raise_failures, resolve_method, run_stream
from ._errors import DataError, ModelError, PkpdError
from ._jit import jit
from .events.records import build_stream, numpy_columns, standard_columns
from .model import Model, load_model
from ._options import DEFAULT
from .population import add_residual_error, apply_random_effects, sample_iiv, sample_iov
from ._resources import check_memory

VARIABILITY = ("none", "iiv", "all")
COMMENT_START = ("#", "@")
CLOCK_COLUMNS = ("DATE", "DAT1", "DAT2", "DAT3")
REPLICATE_STRIDE = 2 ** 32      # stream subject number = (REP - 1) * REPLICATE_STRIDE + ID
MAX_OCCASION = 999
CHUNK_RECORDS = 200_000         # input records read and simulated at a time (whole IDs)
MAX_ROWS_PER_BATCH = 1_000_000  # output rows held at a time by simulate_data_file
BYTES_PER_OUTPUT_CELL = 8.0
BYTES_PER_TEXT_CELL = 64.0      # an input cell kept as a Python string


@dataclasses.dataclass
class _Plan:
    """What every chunk of one run shares: the model, the options and the names of the added columns."""
    model: object
    source: str
    dv: str
    variability: str
    seed: int
    replicates: int
    amounts: bool
    return_etas: bool
    options: dict
    iiv: tuple | None = None    # (parameter names, engine columns, omega, forms) or None
    iov: tuple | None = None
    residual: tuple = (0.0, 0.0)  # (additive SD, proportional SD) of the DV output
    added: list | None = None   # names of the columns pkpd adds, in order
    occasions: bool = False     # the data set has an OCC column

    @property
    def random(self):
        """Whether any random number is drawn (random effects or residual error)."""
        return self.iiv is not None or self.iov is not None or (
            self.variability == "all" and any(self.residual))

    @property
    def individual(self):
        """Whether the individual parameters differ from the typical ones (random effects apply), so that
        IPRED and PRED come from two runs."""
        return self.iiv is not None or (self.iov is not None and self.occasions)


def simulate_data(model: Model | str | os.PathLike[str], data: pd.DataFrame, *, replicates: int = 1, seed: int = 0,
                  variability: str = "all", return_etas: bool = False, dv: str | None = None,
                  amounts: bool = False, method: str = DEFAULT.method, rtol: float = DEFAULT.rtol,
                  atol: float = DEFAULT.atol, max_steps: int = DEFAULT.max_steps, source: str = "data",
                  max_memory: int | str | None = None, chunk_records: int = CHUNK_RECORDS) -> pd.DataFrame:
    """Simulate a trial from a NONMEM-style data set (NONMEM ``$SIMULATION``, mrgsolve ``data_set``).

    Parameters
    ----------
    model : Model or str
        A model, a library model name or a model file path.
    data : pandas.DataFrame
        NONMEM records: ID, TIME and optionally EVID, AMT, CMT, RATE, II, ADDL,
        SS, MDV, OCC, and columns named like model parameters or covariates (the
        value on record i governs the interval ending at record i). Comment rows
        (first field starting with ``#`` or ``@``, or ``C`` in a ``C`` column)
        are skipped.
    replicates : int
        Simulations of the whole data set, each with new random effects and errors
        (column ``REP``, 1 to `replicates`).
    seed : int
        Random seed, 0 <= seed < 2**64; the same seed gives the same numbers.
    variability : {"all", "iiv", "none"}
        "all": random effects (IIV per ID, IOV per ID and OCC) and residual error,
        as the model defines them; "iiv": random effects, no residual error
        (DV = IPRED); "none": typical values (IPRED = PRED = DV).
    return_etas : bool
        Add ``ETA_P``, ``KAPPA_P`` and ``IND_P`` columns (random effects and
        individual value of each parameter P with variability, on each record).
    dv : str, optional
        The model output that gives IPRED, PRED and DV; default the first output
        with a ``[residual]`` entry, else the first output.
    amounts : bool
        Add each compartment's amount.
    method : {"auto", "exact", "rk45", "rosenbrock"}
        "auto" takes the exact matrix-exponential path for linear models; for
        others the L-stable RODAS4 ("rosenbrock") when the system is stiff over
        the data's time span (spectral radius of the Jacobian x span > 10,000),
        else the adaptive Dormand-Prince 5(4) ("rk45").
    rtol, atol : float
        Integration tolerances (relative; absolute, in amount units).
    max_steps : int
        Steps allowed between two records before a subject fails.
    source : str
        Name of the data set in error messages (e.g. its file name).
    max_memory : int or str, optional
        Memory limit (bytes or text such as "8GB"; default ``PKPD_MAX_MEMORY`` or
        half the machine's memory): an output or an ADDL expansion estimated to
        need more is refused before anything is simulated.
    chunk_records : int
        Records simulated at a time (whole IDs); results do not depend on it.

    Returns
    -------
    pandas.DataFrame
        One row per record and replicate, replicate after replicate, records in
        input order: the input columns unchanged (``DV`` renamed ``DV_IN``), then
        REP, IPRED, PRED, DV, every model output, the requested amounts and random
        effects. ``df.attrs["units"]`` maps columns to units, ``df.attrs["dv"]``
        names the DV output.

    Examples
    --------
    >>> import pandas as pd, pkpd
    >>> data = pd.DataFrame({"ID": [1, 1], "TIME": [0.0, 2.0], "EVID": [1, 0],
    ...                      "AMT": [100.0, 0.0], "CMT": [1, 2]})
    >>> out = pkpd.simulate_data("pk1cmt", data)
    >>> round(float(out["CP"].iloc[1]), 4)
    3.8963
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame; got {type(data).__name__}")
    plan = _plan(model, list(data.columns), source=source, replicates=replicates, seed=seed,
                 variability=variability, return_etas=return_etas, dv=dv, amounts=amounts, method=method,
                 rtol=rtol, atol=atol, max_steps=max_steps)
    _check_chunk_records(chunk_records)
    text_columns = sum(not pd.api.types.is_numeric_dtype(dtype) for dtype in data.dtypes)
    per_row = BYTES_PER_OUTPUT_CELL * (len(data.columns) + len(plan.added)) + BYTES_PER_TEXT_CELL * text_columns
    check_memory(per_row * len(data) * plan.replicates,
                 f"{source}: {len(data)} records x {plan.replicates} replicates", max_memory)
    plan.options["method"] = _resolve_method(plan, data)
    records, rows = _records(data)
    if not len(records):
        raise DataError(f"{source}: has no records")
    names = standard_columns(records, source)   # the engine's names of the columns, checked once
    engine_records = records if names == list(records.columns) else records.set_axis(names, axis=1)
    columns = numpy_columns(engine_records, names)   # each chunk's are slices of them
    chunks = list(_subject_chunks(engine_records, rows, chunk_records, plan))
    n = len(records)
    output = _Output.new(plan, n * plan.replicates)
    start = 0
    for frame, rows, ids in chunks:   # replicate after replicate, each the records in order
        stop = start + len(frame)
        _simulate_chunk(plan, frame, rows, ids, range(1, plan.replicates + 1), max_memory,
                        [output.rows(r * n + start, r * n + stop) for r in range(plan.replicates)],
                        {name: values[start:stop] for name, values in columns.items()})
        start = stop
    out = _output_table(plan, records, output)
    out.attrs.update(units=_units(plan, data.columns), dv=plan.dv)
    return out


# ---------------------------------------------------------------------------
# the plan: options and columns checked once, before any record is read

def _plan(model, columns, *, source, replicates, seed, variability, return_etas, dv, amounts, method, rtol, atol,
          max_steps):
    model = load_model(model)
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < 1:
        raise PkpdError(f"replicates: must be a positive integer; got {replicates!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 64:
        raise PkpdError(f"seed: must be an integer in [0, 2**64); got {seed!r}")
    if variability not in VARIABILITY:
        raise PkpdError(f"variability: must be one of {', '.join(VARIABILITY)}; got {variability!r}")
    outputs = list(model.outputs)
    if dv is None:
        dv = next((name for name in outputs if name in model.residual), outputs[0] if outputs else None)
    elif dv not in outputs:
        raise PkpdError(f"dv: model {model.name!r} has no output {dv!r} (outputs: {', '.join(outputs) or 'none'})")
    resolve_method(model, "auto" if method == "auto" else method)  # checks the name
    plan = _Plan(model=model, source=source, dv=dv, variability=variability, seed=int(seed),
                 replicates=int(replicates), amounts=bool(amounts), return_etas=bool(return_etas),
                 options=dict(method=method, rtol=rtol, atol=atol, max_steps=max_steps))
    if variability != "none":
        plan.iiv = _random_effects(model, "iiv")
        plan.iov = _random_effects(model, "iov")
    spec = model.residual.get(dv, {})
    plan.residual = (float(spec.get("additive", 0.0)), float(spec.get("proportional", 0.0)))
    plan.added = _added_columns(plan)
    _check_header(plan, columns)
    plan.occasions = "OCC" in [str(column).strip().upper() for column in columns]
    return plan


def _random_effects(model, kind):
    """(parameter names, engine columns, omega, forms) of ``[variability.KIND]``, or None."""
    spec = model.variability.get(kind)
    if not spec:
        return None
    names = list(spec.get("parameters", []))
    for name in names:
        if name not in model.inputs:
            raise ModelError(f"{name!r} is not a parameter", file=model.path.name, key=f"variability.{kind}.parameters")
    try:
        size = sample_iiv(spec["omega"], 1, seed=0, variability=False, key=f"variability.{kind}.omega").shape[1]
    except PkpdError as error:
        raise ModelError(error.rule, file=model.path.name, key=error.key, **error.fields()) from None
    if size != len(names):
        raise ModelError(f"is {size}x{size} but {len(names)} parameters are named", file=model.path.name,
                         key=f"variability.{kind}.omega")
    return names, [model.inputs.index(name) for name in names], spec["omega"], spec.get("forms", "exp")


def _added_columns(plan):
    names = ["REP"] + (["IPRED", "PRED", "DV"] if plan.dv is not None else []) + list(plan.model.outputs)
    if plan.amounts:
        names += list(plan.model.compartments)
    if plan.return_etas:
        names += _eta_columns(plan)
    return names


def _eta_columns(plan):
    names = [f"ETA_{name}" for name in (plan.iiv[0] if plan.iiv else [])]
    names += [f"KAPPA_{name}" for name in (plan.iov[0] if plan.iov else [])]
    random = (plan.iiv[0] if plan.iiv else []) + (plan.iov[0] if plan.iov else [])
    return names + [f"IND_{name}" for name in dict.fromkeys(random)]


def _check_header(plan, columns):
    """Refuse clock-time columns and input columns that would clash with those pkpd adds."""
    names = [str(column).strip() for column in columns]
    upper = [name.upper() for name in names]
    for name, key in zip(names, upper):
        if key in CLOCK_COLUMNS:
            raise DataError(f"{plan.source}: column {name}: clock dates and times are not supported "
                            f"(NONMEM's {key}); give TIME as the time elapsed, in {_time_unit(plan.model)}, "
                            f"and drop {name}")
    if "REP" in upper:
        raise DataError(f"{plan.source}: column {names[upper.index('REP')]}: pkpd writes the replicate number "
                        f"as REP; rename or drop the input's REP column")
    written = set(plan.added) - {"DV"} | ({"DV_IN"} if "DV" in upper else set())
    for name in names:
        if name in written or (name.upper() in written and name.upper() in ("IPRED", "PRED", "DV_IN")):
            raise DataError(f"{plan.source}: column {name}: pkpd writes a column of that name "
                            f"(it adds {', '.join(plan.added)}); rename or drop the input's {name}")


def _time_unit(model):
    return model.units.get("time", "h")


def _check_chunk_records(chunk_records):
    if isinstance(chunk_records, bool) or not isinstance(chunk_records, (int, np.integer)) or chunk_records < 1:
        raise PkpdError(f"chunk_records: must be a positive integer; got {chunk_records!r}")


# ---------------------------------------------------------------------------
# reading in chunks of whole subjects

def _records(data):
    """The records of an in-memory data set without its comment rows, and their file rows (the first is row 2)."""
    rows = np.arange(2, len(data) + 2, dtype=np.int64)
    keep = ~comment_rows(data)
    if keep.all():
        return data, rows
    return data[keep], rows[keep]


def _subject_chunks(records, rows, chunk_records, plan):
    """(records of whole subjects, their file rows, their IDs), about `chunk_records` records at a time.

    A chunk ends at the last change of ID at or before each multiple of
    `chunk_records` (a subject longer than that is one chunk). IDs that are not
    numbers are each their own run, as in :func:`whole_subject_chunks`. The IDs
    (float64) are given only when random numbers are drawn (else None).
    """
    ids = _ids(records, as_float=False)
    cuts = [0]
    for end in range(chunk_records, len(ids), chunk_records):   # more than one chunk: cut at changes of ID
        cut = _run_start(ids, end, cuts[-1])
        if cut > cuts[-1]:
            cuts.append(cut)
    cuts.append(len(ids))
    first_row_of = {}
    for start, stop in pairwise(cuts):
        chunk_ids = np.asarray(ids[start:stop], np.float64) if plan.random else None
        yield _checked_subjects(records.iloc[start:stop], rows[start:stop], chunk_ids, plan, first_row_of)


def _run_start(ids, end, lower):
    """The first record of the run of equal IDs (NaN equal to NaN) that holds record `end`, or `lower` if that
    run starts at or before `lower`.

    Looks back from `end` in growing windows, so a cut costs about a subject's records, not the data set's.
    """
    width = 256
    stop = end
    while stop > lower:
        start = max(lower, stop - width)
        window = np.asarray(ids[start:stop + 1], np.float64)   # IDs compared as the engine compares them
        same = (window[1:] == window[:-1]) | (np.isnan(window[1:]) & np.isnan(window[:-1]))
        changes = np.flatnonzero(~same)
        if changes.size:
            return start + int(changes[-1]) + 1
        stop = start
        width *= 4
    return lower


def read_csv_chunks(path, chunk_records=CHUNK_RECORDS):
    """(rows as text, first file row) of a CSV file, `chunk_records` rows at a time.

    Cells stay the text the file holds (no number parsing, ``.`` and empty cells
    kept), so they can be written back unchanged; a repeated column name is kept
    (and refused later, by name) rather than renamed as pandas would.
    """
    import csv

    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            header = next(csv.reader(stream), None)
    except OSError as error:
        raise PkpdError(f"{path}: cannot read ({_reason(error)})") from None
    if not header:
        raise PkpdError(f"{path}: not a readable CSV file (no header line)")
    try:
        reader = pd.read_csv(path, dtype=str, keep_default_na=False, header=None, skiprows=1,
                             names=list(range(len(header))), skip_blank_lines=False, chunksize=chunk_records)
        first = 2
        for frame in reader:
            yield frame.set_axis(header, axis=1), first
            first += len(frame)
    except OSError as error:
        raise PkpdError(f"{path}: cannot read ({_reason(error)})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
        raise PkpdError(f"{path}: not a readable CSV file ({str(error).splitlines()[0]})") from None


def _reason(error):
    from ._output import reason

    return reason(error)


def comment_rows(frame):
    """Rows NONMEM would skip: first field starting with # or @, C in a C column, or blank, as a boolean array."""
    if frame.shape[1] == 0:
        return np.zeros(len(frame), bool)
    comment = np.zeros(len(frame), bool)
    first = frame.iloc[:, 0]
    if not pd.api.types.is_numeric_dtype(first):
        comment |= first.astype(str).str.lstrip().str.startswith(COMMENT_START).to_numpy()
        for position, column in enumerate(frame.columns):
            if str(column).strip().upper() == "C":
                values = frame.iloc[:, position]
                if not pd.api.types.is_numeric_dtype(values):
                    comment |= values.astype(str).str.strip().isin(["C", "c"]).to_numpy()
    blank = np.ones(len(frame), bool)
    for position in range(frame.shape[1]):
        values = frame.iloc[:, position]
        if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iub":  # NumPy integers: never empty
            return comment
        if pd.api.types.is_numeric_dtype(values):
            blank &= values.isna().to_numpy()
        else:
            blank &= (values.isna() | (values.astype(str).str.strip() == "")).to_numpy()
        if not blank.any():  # a row with a value in any column is not blank
            break
    return comment | blank


def whole_subject_chunks(raw_chunks, plan):
    """(records of whole subjects without comment rows, their file row numbers, their IDs) from raw chunks.

    The last subject of a chunk is carried over to the next one (an ID's records
    are never split). An ID that comes back after other IDs is refused when random
    numbers are drawn (they are drawn per ID).
    """
    carry, carry_rows = None, None
    first_row_of = {}
    for frame, first in raw_chunks:
        rows = np.arange(first, first + len(frame), dtype=np.int64)
        keep = ~comment_rows(frame)
        if not keep.all():
            frame, rows = frame[keep], rows[keep]
        if carry is not None:
            frame, rows = pd.concat([carry, frame]), np.concatenate([carry_rows, rows])
        if len(frame) == 0:
            continue
        ids = _ids(frame)
        last = ids[-1]
        start = len(ids)
        while start > 0 and (ids[start - 1] == last or (np.isnan(last) and np.isnan(ids[start - 1]))):
            start -= 1
        carry, carry_rows = frame.iloc[start:], rows[start:]
        if start:
            yield _checked_subjects(frame.iloc[:start], rows[:start], ids[:start], plan, first_row_of)
    if carry is not None and len(carry):
        yield _checked_subjects(carry, carry_rows, _ids(carry), plan, first_row_of)


def _ids(frame, as_float=True):
    """The ID column as float64 (NaN where it is not a number; the engine's checks name such a cell); without
    `as_float`, a NumPy column of numbers as it is (no conversion)."""
    names = standard_columns(frame, "data")
    if "ID" not in names:
        return np.zeros(len(frame))
    values = frame.iloc[:, names.index("ID")]
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iuf":
        return values.to_numpy(dtype=float) if as_float else values.to_numpy(copy=False)
    return pd.to_numeric(values.astype(str).str.strip() if not pd.api.types.is_numeric_dtype(values) else values,
                         errors="coerce").to_numpy(dtype=float)


def _checked_subjects(frame, rows, ids, plan, first_row_of):
    frame = frame.reset_index(drop=True)
    if plan.random and len(ids):
        starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
        for start in starts:
            key = ids[start]
            if key in first_row_of:
                raise DataError(f"{plan.source}, row {rows[start]}, column ID: ID {key:g} comes back after other "
                                f"IDs (first at row {first_row_of[key]}); random effects are drawn per ID, so give "
                                f"each subject its own ID")
            first_row_of[key] = int(rows[start])
    return frame, rows, ids


# ---------------------------------------------------------------------------
# one chunk of whole subjects, some replicates

def _resolve_method(plan, data):
    """The method for the whole run, from the data set's time span (so never chunk-dependent)."""
    method, model = plan.options["method"], plan.model
    if method != "auto" or model.is_linear:
        return resolve_method(model, method)
    names = standard_columns(data, plan.source)
    if "TIME" not in names:
        return resolve_method(model, "auto")
    column = data.iloc[:, names.index("TIME")]
    time = pd.to_numeric(column if pd.api.types.is_numeric_dtype(column) else column.astype(str).str.strip(),
                         errors="coerce").to_numpy(dtype=float)
    time = time[np.isfinite(time)]
    return resolve_method(model, "auto", span=float(time.max() - time.min()) if time.size else None)


def _simulate_chunk(plan, frame, rows, ids, replicates, max_memory, outputs, columns=None):
    """Simulate `frame` (whole subjects) once per replicate in `replicates`, into its `outputs`.

    outputs : one :class:`_Output` per replicate, views of the arrays that hold this chunk's
        rows of that replicate.
    columns : the frame's NumPy columns (:func:`pkpd.events.records.numpy_columns`), its names then
        the engine's (:func:`pkpd.events.records.standard_columns`), or None.
    """
    model, source = plan.model, plan.source
    names = standard_columns(frame, source) if columns is None else list(frame.columns)
    engine_frame = frame if names == list(frame.columns) else frame.set_axis(names, axis=1)
    mdv = _integer_column(engine_frame, "MDV", rows, source, allowed=(0, 1), default=0, columns=columns)
    if "EVID" not in names and "MDV" in names:
        amt = pd.to_numeric(_stripped(engine_frame["AMT"]), errors="coerce").to_numpy(float) \
            if "AMT" in names else np.zeros(len(frame))
        evid = np.where(amt > 0, 1.0, np.where(mdv == 1, 2.0, 0.0))
        engine_frame = engine_frame.assign(EVID=np.where(np.isnan(amt), np.nan, evid))
    subject = position = stream_ids = split = None   # needed only to draw random numbers
    occasion = _occasions(plan, engine_frame, rows)
    if plan.random:
        subject, starts = _subject_of_record(ids)
        position = np.arange(subject.size) - starts[subject]
        if plan.iiv is not None or occasion is not None:   # rows of parameter values of one subject and occasion
            split = subject if occasion is None else subject * (MAX_OCCASION + 1) + occasion
    try:
        stream = build_stream(model, engine_frame, source=source, max_memory=max_memory, split=split,
                              columns=None if columns is None or engine_frame is not frame else columns)
    except DataError as error:
        raise _renumbered(error, rows) from None
    if plan.random:
        stream_ids = _stream_ids(plan, stream.subject_ids, rows, subject)

    if plan.individual:   # PRED from a run of its own; IPRED from each replicate's
        typical = _run(plan, stream, stream.inputs)[1]
    else:                 # every replicate runs on the typical values: once, copied to the others
        typical = _run(plan, stream, stream.inputs, outputs[0])[1]
        for output in outputs[1:]:
            output.copy_simulation(outputs[0])
    for replicate, output in zip(replicates, outputs, strict=True):
        random_ids = None if stream_ids is None else stream_ids + (replicate - 1) * REPLICATE_STRIDE
        inputs, effects = _individual_inputs(plan, stream, subject, occasion, random_ids)
        if plan.individual:
            _run(plan, stream, inputs, output)
        output.replicate[:] = replicate
        _write_added(plan, output, typical, (stream.evid, mdv), subject, position, random_ids,
                     inputs[stream.input_rows] if plan.return_etas else None, effects)


def _stripped(values):
    return values if pd.api.types.is_numeric_dtype(values) else values.astype(str).str.strip()


def _renumbered(error, rows):
    """`error` with its row (a position in the chunk, counted from 2) as the row of the file."""
    if error.row is None:
        return error
    position = error.row - 2
    row = int(rows[position]) if 0 <= position < rows.size else error.row
    return type(error)(error.rule, file=error.file, key=error.key, row=row, column=error.column,
                       sentence=error.sentence, **error.fields())


def _integer_column(frame, name, rows, source, allowed=None, default=0, upper=None, columns=None):
    """An integer data column (blank or '.' = `default`), each value checked, as int64 (taken from `columns`,
    the frame's NumPy columns, if it is there)."""
    largest = max(allowed) if allowed is not None else upper
    if columns is not None and name in columns and columns[name].dtype == np.int64:
        values = _small_integers(columns[name], allowed, largest)
        if values is not None:
            return values
    if name not in frame.columns:
        return np.full(len(frame), default, np.int64)
    raw = _stripped(frame[name])
    if isinstance(raw.dtype, np.dtype) and raw.dtype.kind in "iu":  # NumPy integers: nothing empty or fractional
        values = raw.to_numpy()
        checked = _small_integers(values, allowed, largest)
        if checked is not None:
            return checked
        bad = _not_in(values, allowed) if allowed is not None else (values < 0) | (values > upper)
    else:
        if pd.api.types.is_numeric_dtype(raw):
            values = raw.to_numpy(dtype=float, na_value=np.nan)
            blank = np.isnan(values)
            if blank.any():
                values = np.where(blank, float(default), values)
        else:
            text = raw.astype(str)
            blank = raw.isna().to_numpy() | text.isin(["", "."]).to_numpy()
            values = pd.to_numeric(raw.where(~blank, default), errors="coerce").to_numpy(float)
        if allowed is not None:
            bad = _not_in(values, allowed)  # NaN and fractions too (the allowed values are integers)
        else:
            bad = np.isnan(values) | (values != np.round(values)) | (values < 0) | (values > upper)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        rule = (f"must be {' or '.join(map(str, allowed))}" if allowed is not None
                else f"must be an integer from 0 to {upper}")
        cell = raw.iloc[index:index + 1].astype(str).iloc[0]
        raise DataError(f"{source}, row {rows[index]}, column {name}: {rule}; got {cell!r}")
    return np.asarray(values, np.int64)


def _small_integers(values, allowed, largest):
    """NumPy integers `values` as int64 if they are all in 0..`largest` and that is what is `allowed` (None:
    any), checked in one pass (as unsigned, a negative is large); else None."""
    if (allowed is None or sorted(allowed) == list(range(largest + 1))) and (
            values.size == 0 or values.view(f"u{values.itemsize}").max() <= largest):
        return np.asarray(values, np.int64)
    return None


def _not_in(values, allowed):
    """Where `values` is none of the few `allowed` values (NaN included), as a boolean array; np.isin sorts."""
    bad = values != allowed[0]
    for value in allowed[1:]:
        bad &= values != value
    return bad


def _subject_of_record(ids):
    """The subject index of each record (subjects are runs of equal ID, as in the engine), and each subject's
    first record."""
    new = np.concatenate([[True], ids[1:] != ids[:-1]])
    return np.cumsum(new) - 1, np.flatnonzero(new)


def _stream_ids(plan, ids, rows, subject):
    """Each subject's ID as the integer that names its random streams (checked)."""
    bad = (ids != np.round(ids)) | (ids < 0) | (ids >= REPLICATE_STRIDE)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        row = rows[int(np.searchsorted(subject, index))]
        raise DataError(f"{plan.source}, row {row}, column ID: random effects are drawn per ID and need an integer "
                        f"ID from 0 to {REPLICATE_STRIDE - 1}; got {ids[index]:g} (or pass variability='none')")
    return ids.astype(np.uint64).astype(np.int64)


def _occasions(plan, frame, rows):
    """The OCC of each record (an integer 0..999), or None without IOV or an OCC column."""
    if plan.iov is None or plan.variability == "none" or "OCC" not in [str(c).strip().upper() for c in frame]:
        return None
    column = next(c for c in frame.columns if str(c).strip().upper() == "OCC")
    return _integer_column(frame.rename(columns={column: "OCC"}), "OCC", rows, plan.source, upper=MAX_OCCASION)


def _individual_inputs(plan, stream, subject, occasion, random_ids):
    """The stream's rows of engine inputs with the random effects of one replicate, and those effects on each
    record by column name (when asked for).

    Each row belongs to one subject and occasion (``build_stream``'s `split`), that of its first record.
    """
    typical = stream.inputs
    effects = {}
    if random_ids is None or (plan.iiv is None and (plan.iov is None or occasion is None)):
        return typical, effects
    inputs = typical.copy()
    first = np.flatnonzero(np.diff(stream.input_rows, prepend=-1))   # the first record of each row
    if plan.iiv is not None:
        names, columns, omega, forms = plan.iiv
        etas = sample_iiv(omega, seed=plan.seed, subject_ids=random_ids)
        inputs[:, columns] = apply_random_effects(inputs[:, columns], etas[subject[first]], forms)
        if plan.return_etas:
            effects.update({f"ETA_{name}": etas[subject, k] for k, name in enumerate(names)})
    if plan.iov is not None and occasion is not None:
        names, columns, omega, forms = plan.iov
        kappas = sample_iov(omega, n_occasions=int(occasion.max()) + 1, seed=plan.seed, subject_ids=random_ids)
        inputs[:, columns] = apply_random_effects(inputs[:, columns], kappas[subject[first], occasion[first]], forms)
        if plan.return_etas:
            effects.update({f"KAPPA_{name}": kappas[subject, occasion, k] for k, name in enumerate(names)})
    return inputs, effects


def _run(plan, stream, inputs, output=None):
    """(states, values) on the input records with these rows of engine inputs, written into `output`'s
    arrays if given (its states only if it keeps the amounts)."""
    stream = dataclasses.replace(stream, inputs=np.ascontiguousarray(inputs, dtype=np.float64))
    arrays = {} if output is None else {"values": output.values, "states": output.states}
    states, values, status = run_stream(plan.model, stream, **plan.options, **arrays)
    raise_failures(status, stream.subject_ids)
    return states, values


@dataclasses.dataclass
class _Output:
    """The added columns of some output rows (replicate after replicate), as the engine and
    :func:`_write_added` fill them; :meth:`rows` gives views of a range of rows.

    The engine writes the model outputs (and the amounts) straight into `values`
    (and `states`); in the table they are columns of these arrays, and IPRED (and
    PRED when it is the same run) are lazy copies of the DV output's column, so no
    output is copied on its way to the table.
    """
    replicate: np.ndarray      # (n,) int64: REP
    values: np.ndarray         # (n, n_outputs)
    states: np.ndarray | None  # (n, n_states), with amounts
    pred: np.ndarray | None    # (n,), when PRED comes from a run of its own
    dv: np.ndarray | None      # (n,), with a DV output
    etas: np.ndarray | None    # (n_eta_columns, n), with return_etas

    @classmethod
    def new(cls, plan, n):
        model = plan.model
        etas = _eta_columns(plan) if plan.return_etas else []
        return cls(replicate=np.empty(n, np.int64), values=np.empty((n, len(model.outputs))),
                   states=np.empty((n, len(model.compartments))) if plan.amounts else None,
                   pred=np.empty(n) if plan.dv is not None and plan.individual else None,
                   dv=np.empty(n) if plan.dv is not None else None,
                   etas=np.empty((len(etas), n)) if etas else None)

    def rows(self, start, stop):
        """Views of rows `start` to `stop` - 1."""
        views = {}
        for field in dataclasses.fields(self):
            array = getattr(self, field.name)
            views[field.name] = (None if array is None else array[:, start:stop] if field.name == "etas"
                                 else array[start:stop])
        return _Output(**views)

    def copy_simulation(self, other):
        """The engine's results of `other` (rows of the same records) into this one's."""
        self.values[:] = other.values
        if self.states is not None:
            self.states[:] = other.states


def _write_added(plan, output, typical, observation, subject, position, random_ids, inputs, effects):
    """Write the added columns that the engine does not (PRED, DV, random effects) into `output`; `typical`
    holds the typical subject's outputs, `observation` each record's (EVID, MDV) (DV only where EVID is 0 and
    MDV is not 1), `inputs` the engine inputs of each record (with ``return_etas``)."""
    model = plan.model
    if plan.dv is not None:
        column = list(model.outputs).index(plan.dv)
        ipred = output.values[:, column]
        if output.pred is not None:
            output.pred[:] = typical[:, column]
        dv = ipred
        if plan.variability == "all" and any(plan.residual):
            dv = _residual(plan, ipred, subject, position, random_ids)
        evid, mdv = (_read_only(np.ascontiguousarray(array, np.int64)) for array in observation)
        _observed_values(output.dv, dv, evid, mdv)   # (one compiled version per layout of dv: strided or not)
    if plan.return_etas:
        for row, name in enumerate(_eta_columns(plan)):
            output.etas[row] = (inputs[:, model.inputs.index(name[4:])] if name.startswith("IND_")
                                else effects.get(name, 0.0))


@jit
def _observed_values(dv, values, evid, mdv):
    """`values` into `dv` on observation records (EVID 0, MDV not 1), NaN on the others, in one pass."""
    for i in range(dv.size):
        dv[i] = values[i] if evid[i] == 0 and mdv[i] != 1 else np.nan


def _read_only(array):
    """A read-only view of `array` (a kernel's argument types then do not depend on who made it)."""
    view = array.view()
    view.flags.writeable = False
    return view


def _output_table(plan, records, output):
    """The output: the input `records` once per replicate, beside the added columns of `output`.

    The added columns are views of `output`'s arrays; IPRED (and PRED when it is
    the same run) are pandas' lazy copies of the DV output's column, so a write
    to one column never changes another. The input columns keep their dtypes,
    copied by pandas only if written to.
    """
    names = _output_names(records.columns)
    inputs = records.reset_index(drop=True)
    if names != list(records.columns):
        inputs = inputs.set_axis(names, axis=1)
    if plan.replicates > 1:
        inputs = pd.concat([inputs] * plan.replicates, ignore_index=True)
    model = plan.model
    columns = {"REP": output.replicate}
    if plan.dv is not None:
        columns.update({"PRED": output.pred} if output.pred is not None else {})
        columns["DV"] = output.dv
    columns.update({name: output.values[:, k] for k, name in enumerate(model.outputs)})
    if plan.amounts:
        columns.update({name: output.states[:, k] for k, name in enumerate(model.compartments)})
    if plan.return_etas:
        columns.update(zip(_eta_columns(plan), output.etas))
    added = pd.DataFrame(columns, copy=False)
    if plan.dv is not None:
        added.insert(1, "IPRED", added[plan.dv])
        if output.pred is None:
            added.insert(2, "PRED", added[plan.dv])
    return pd.concat([inputs, added], axis=1)


def _output_names(columns):
    """Input column names as written in the output: stripped of surrounding spaces, DV as DV_IN."""
    names = [str(column).strip() if isinstance(column, str) else column for column in columns]
    return ["DV_IN" if isinstance(name, str) and name.upper() == "DV" else name for name in names]


def _residual(plan, ipred, subject, position, random_ids):
    """IPRED with the residual error of record `position` of each subject (padded to a rectangle)."""
    additive, proportional = plan.residual
    width = int(position.max()) + 1
    table = np.zeros((random_ids.size, width))
    table[subject, position] = ipred
    observed = add_residual_error(table, additive, proportional, seed=plan.seed, subject_ids=random_ids,
                                  stream=f"residual/{plan.dv}")
    return observed[subject, position]


def _units(plan, columns):
    """Units of the input and added columns that have one."""
    model = plan.model
    time, amount = _time_unit(model), model.units.get("amount", "")
    dv_unit = model.outputs[plan.dv].unit if plan.dv is not None else ""
    by_name = {"TIME": time, "AMT": amount, "RATE": f"{amount}/{time}", "II": time, "DV": dv_unit}
    units = {}
    for column, name in zip(columns, _output_names(columns)):
        key = str(column).strip()
        if key.upper() in by_name and (key.upper() != "DV" or plan.dv is not None):
            units[name] = by_name[key.upper()]
        elif key in model.parameters:
            units[name] = model.parameters[key].unit
        elif key in model.covariates:
            units[name] = model.covariates[key].unit
    if plan.dv is not None:
        units.update({"IPRED": dv_unit, "PRED": dv_unit, "DV": dv_unit})
    units.update({name: output.unit for name, output in model.outputs.items()})
    if plan.amounts:
        units.update({name: model.compartment_units.get(name, amount) for name in model.compartments})
    if plan.return_etas:
        for name in _eta_columns(plan):
            kind, _, parameter = name.partition("_")
            spec = plan.iiv if kind == "ETA" else plan.iov
            parameter_unit = (model.parameters.get(parameter) or model.covariates[parameter]).unit
            if kind == "IND":
                units[name] = parameter_unit
            else:
                forms = spec[3] if not isinstance(spec[3], str) else [spec[3]] * len(spec[0])
                units[name] = parameter_unit if forms[spec[0].index(parameter)] == "additive" else "1"
    return units


# ---------------------------------------------------------------------------
# a file in, a file out (the command line)

def simulate_data_file(model, data_path, output_path, *, force=False, inputs=(), replicates=1, seed=0,
                       variability="all", return_etas=False, dv=None, amounts=False, method=DEFAULT.method,
                       rtol=DEFAULT.rtol, atol=DEFAULT.atol, max_steps=DEFAULT.max_steps, chunk_records=CHUNK_RECORDS, max_memory=None):
    """Simulate a CSV data set into a CSV or Parquet table and its ``.units.json``, chunk by chunk.

    Memory holds one chunk of input records (whole IDs) and at most
    ``MAX_ROWS_PER_BATCH`` output rows, whatever the size of the file and the
    number of replicates. A file that fits in one chunk is read once; a larger
    one is read once per replicate (the output is replicate after replicate).
    Both files are written under temporary names and renamed at the end.

    Returns
    -------
    dict
        ``records`` (rows written), ``subjects`` (IDs per replicate), ``dv``,
        ``units`` (the companion file's path), ``method``.
    """
    from ._output import check_output_file

    output_path = Path(output_path)
    parquet = output_path.suffix.lower() == ".parquet"
    if parquet:
        _require_pyarrow()
    units_path = output_path.with_name(output_path.name.rsplit(".", 1)[0] + ".units.json")
    for path in (output_path, units_path):
        check_output_file(path, force=force, inputs=inputs)
    _check_chunk_records(chunk_records)
    source = Path(data_path).name
    first = list(islice(read_csv_chunks(data_path, chunk_records), 2))
    if not first:
        raise DataError(f"{source}: has no records")
    columns = list(first[0][0].columns)
    plan = _plan(model, columns, source=source, replicates=replicates, seed=seed, variability=variability,
                 return_etas=return_etas, dv=dv, amounts=amounts, method=method, rtol=rtol, atol=atol,
                 max_steps=max_steps)
    standard_columns(first[0][0], source)
    in_memory = len(first) == 1
    if in_memory:
        frame = first[0][0]
        plan.options["method"] = _resolve_method(plan, frame)
        parts = list(whole_subject_chunks(iter(first), plan))  # one chunk read: all of it at once
        cached = [(pd.concat([part[0] for part in parts], ignore_index=True),
                   np.concatenate([part[1] for part in parts]), np.concatenate([part[2] for part in parts]))]
        records = len(cached[0][0])
        batch = max(1, min(plan.replicates, MAX_ROWS_PER_BATCH // max(records, 1)))
        per_row = BYTES_PER_OUTPUT_CELL * len(plan.added) + BYTES_PER_TEXT_CELL * len(columns)
        check_memory(3 * per_row * records * batch, f"{source}: {records} records x {batch} replicates at a time",
                     max_memory)
    else:
        plan.options["method"] = _resolve_method(plan, _time_column(data_path, columns, chunk_records))
        batch = 1
    summary = {"records": 0, "subjects": 0}

    def blocks():
        for start in range(1, plan.replicates + 1, batch):
            replicates = list(range(start, min(start + batch, plan.replicates + 1)))
            chunks = cached if in_memory else whole_subject_chunks(read_csv_chunks(data_path, chunk_records), plan)
            for frame, rows, ids in chunks:
                m = len(frame)
                output = _Output.new(plan, m * len(replicates))
                _simulate_chunk(plan, frame, rows, ids, replicates, max_memory,
                                [output.rows(k * m, (k + 1) * m) for k in range(len(replicates))])
                out = _output_table(dataclasses.replace(plan, replicates=len(replicates)), frame, output)
                summary["records"] += len(out)
                if start == 1:
                    summary["subjects"] += int(np.count_nonzero(np.diff(ids) != 0)) + 1
                yield out

    write = _write_parquet if parquet else _write_csv
    _write_atomically(output_path, lambda target: write(blocks(), target), force=force, inputs=inputs, binary=parquet)
    units = _units(plan, columns)
    text = json.dumps({"units": units, "dv": plan.dv, "seed": plan.seed, "replicates": plan.replicates,
                       "variability": plan.variability}, indent=2)
    _write_atomically(units_path, lambda stream: stream.write(text + "\n"), force=force, inputs=inputs)
    summary.update(dv=plan.dv, units=units_path, method=plan.options["method"])
    return summary


def _time_column(path, columns, chunk_records):
    """The TIME column of a whole file (for the run's method), read alone."""
    names = [str(c).strip().upper() for c in columns]
    if "TIME" not in names:
        return pd.DataFrame()
    parts = [frame.iloc[:, [names.index("TIME")]] for frame, _ in read_csv_chunks(path, chunk_records)]
    return pd.concat(parts, ignore_index=True)


def _require_pyarrow():
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise PkpdError("-o: writing Parquet needs pyarrow, which is not installed; install it "
                        "(pip install 'pkpd[parquet]') or write a .csv") from None


def _write_atomically(path, write, *, force, inputs, binary=False):
    """:func:`pkpd._output.write_file_atomically`, for a text stream or (`binary`) a file path."""
    from ._output import write_file_atomically

    if not binary:
        write_file_atomically(path, write, force=force, inputs=inputs)
        return
    # the helper opens the temporary as a text stream; Parquet writes bytes to the binary file beneath it
    write_file_atomically(path, lambda stream: write(stream.buffer), force=force, inputs=inputs)


def _write_csv(blocks, stream):
    from ._output import write_csv

    header = True
    for block in blocks:
        write_csv(block, stream, float_format="%.10g", header=header)
        header = False


def _write_parquet(blocks, path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for block in blocks:
            table = pa.Table.from_pandas(block, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()

