"""The ``pkpd`` command line.

    pkpd simulate MODEL DATA.csv -o OUT.csv
    pkpd models

A user's mistake ends with one line, ``error: ...``, and exit code 2; never a
traceback. Outputs are written to a temporary name and renamed, so an existing
file is never left half-written.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

from ._errors import PkpdError, SimulationError

EXIT_USAGE = 2
EXIT_FAILURE = 3


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(EXIT_USAGE, f"error: {message} (see pkpd {self.prog.split()[-1]} --help)\n")


def _build_parser():
    parser = _Parser(prog="pkpd", description="Population PK/PD simulation (ketamine, norketamine, magnesium).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    simulate = commands.add_parser("simulate", help="simulate a NONMEM-style event table")
    simulate.add_argument("model", help="library model name (see `pkpd models`) or model file path")
    simulate.add_argument("data", help="NONMEM-style CSV: ID, TIME, EVID, AMT, CMT, RATE, II, ADDL, SS, ...")
    simulate.add_argument("-o", "--output", required=True, help="output CSV (one row per input record)")
    simulate.add_argument("--method", default="auto", choices=["auto", "exact", "rk45", "rosenbrock"])
    simulate.add_argument("--rtol", type=float, default=1e-8)
    simulate.add_argument("--atol", type=float, default=1e-10)
    commands.add_parser("models", help="list the library models")
    return parser


def write_csv_atomically(frame, path, **options):
    """Write a DataFrame to `path` through a temporary file in the same folder."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise PkpdError(f"{path}: output folder {folder} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", newline="") as stream:
            frame.to_csv(stream, index=False, **options)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _read_csv(path):
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise PkpdError(f"{path}: data file not found")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise PkpdError(f"{path}: not a readable CSV file ({str(error).splitlines()[0]})") from None


def _simulate(arguments):
    from ._model import load_model
    from ._simulate_data import simulate_data

    model = load_model(arguments.model)
    data = _read_csv(arguments.data)
    out = simulate_data(model, data, method=arguments.method, rtol=arguments.rtol, atol=arguments.atol,
                        source=Path(arguments.data).name)
    out["ID"] = data["ID"].to_numpy() if "ID" in data else out["ID"]
    write_csv_atomically(out, arguments.output, float_format="%.10g")
    print(f"wrote {arguments.output}: {len(out)} records, {out['ID'].nunique()} subjects, "
          f"outputs {', '.join(model.outputs)} ({', '.join(o.unit for o in model.outputs.values())})")


def _models(arguments):
    from ._model import library_models, load_model

    for name in library_models():
        model = load_model(name)
        print(f"{name:24s} {model.description}")


def main(argv=None):
    arguments = _build_parser().parse_args(argv)
    try:
        {"simulate": _simulate, "models": _models}[arguments.command](arguments)
    except PkpdError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except SimulationError as error:
        print(f"error: simulation failed: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted; no output written", file=sys.stderr)
        return 130
    return 0



def console():
    """Entry point of the installed ``pkpd`` script."""
    sys.exit(main())
