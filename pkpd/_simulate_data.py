"""``simulate_data``: a NONMEM-style data set in, one output row per record out."""

import pandas as pd

from ._engine import raise_failures, resolve_method, run_stream
from ._events import build_stream, standard_columns
from ._model import load_model


def simulate_data(model, data, *, method="auto", rtol=1e-8, atol=1e-10, max_steps=100_000,
                  source="data", max_memory=None):
    """Simulate a NONMEM-style event table.

    Parameters
    ----------
    model : Model or str
        A model, a library model name or a model file path.
    data : pandas.DataFrame
        NONMEM records: ID, TIME and optionally EVID, AMT, CMT, RATE, II, ADDL,
        SS, and columns named like model parameters or covariates (the value
        on record i governs the interval ending at record i).
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
        Memory limit (bytes or text such as "8GB"; default ``PKPD_MAX_MEMORY``
        or half the machine's memory): a data set whose ADDL would expand
        beyond it is refused before anything is expanded.

    Returns
    -------
    pandas.DataFrame
        One row per input record, in input order: ID, TIME, EVID (as used:
        inferred from AMT where not given), CMT, every model output, every
        compartment amount. ``df.attrs["units"]`` maps columns to units.

    Examples
    --------
    >>> import pandas as pd, pkpd
    >>> data = pd.DataFrame({"ID": [1, 1], "TIME": [0.0, 2.0], "EVID": [1, 0],
    ...                      "AMT": [100.0, 0.0], "CMT": [1, 2]})
    >>> out = pkpd.simulate_data("pk1cmt", data)
    >>> round(float(out["CP"].iloc[1]), 4)
    3.8963
    """
    model = load_model(model)
    stream = build_stream(model, data, source=source, max_memory=max_memory)
    if method == "auto" and stream.time.size:
        method = resolve_method(model, "auto", span=float(stream.time.max() - stream.time.min()))
    states, values, status = run_stream(model, stream, method=method, rtol=rtol, atol=atol,
                                        max_steps=max_steps)
    raise_failures(status, stream.subject_ids)
    columns = dict(zip(standard_columns(data, source), data.columns))
    out = pd.DataFrame({"ID": data[columns["ID"]].to_numpy(), "TIME": data[columns["TIME"]].to_numpy(),
                        "EVID": stream.evid,
                        "CMT": data[columns["CMT"]].to_numpy() if "CMT" in columns else 0})
    for index, name in enumerate(model.outputs):
        out[name] = values[:, index]
    for index, name in enumerate(model.compartments):
        out[name] = states[:, index]
    units = {"TIME": model.units.get("time", "")}
    units.update({name: o.unit for name, o in model.outputs.items()})
    units.update({name: model.compartment_units.get(name, model.units.get("amount", "")) for name in model.compartments})
    out.attrs["units"] = units
    return out
