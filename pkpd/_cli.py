"""The ``pkpd`` command line.

    pkpd simulate MODEL DATA.csv -o OUT.csv [--replicates N --seed S --variability all|iiv|none]
    pkpd run SCENARIO.toml -o OUTDIR
    pkpd validate SCENARIO.toml
    pkpd report OUTDIR
    pkpd models
    pkpd show MODEL

A user's mistake ends with one line, ``error: ...``, and exit code 2; never a
traceback. So does a problem of the environment: a file that cannot be read,
an output folder that refuses writes, a full disk (any :class:`OSError`, named by
its file), a text file that is not UTF-8, a file nested too deeply to read, or
too little memory. A simulation that fails exits with 3.

Outputs are written to a temporary name and renamed (:mod:`pkpd._output`), so
an existing output is never left half-written, and is replaced only with
``--force``: a folder only if pkpd wrote it, a file never when it is an input.

SIGINT (Ctrl-C) and SIGTERM stop a command cleanly, temporaries removed and
nothing written (:mod:`pkpd._signals`); the exit code is the shell's, 128 + the
signal number: 130 and 143.

Anything else is a defect of pkpd, not of the input: it ends with one line
saying so and exit code 1, and ``PKPD_DEBUG=1`` shows its traceback for a
report. (A traceback would tell a pharmacologist nothing they can act on, and
would look like their mistake.)
"""

import argparse
import os
import signal
import sys
from pathlib import Path

import numpy as np

from . import _signals
from ._errors import PkpdError, SimulationError
from ._options import DEFAULT, METHOD_NAMES
from ._output import check_output_file, reason
from ._resources import limit_override

EXIT_USAGE = 2
EXIT_FAILURE = 3
EXIT_INTERNAL = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(EXIT_USAGE, f"error: {message} (see pkpd {self.prog.split()[-1]} --help)\n")


def _build_parser():
    parser = _Parser(prog="pkpd", description="Population PK/PD simulation (ketamine, norketamine, magnesium).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    simulate = commands.add_parser("simulate", help="simulate a NONMEM-style event table")
    simulate.add_argument("model", help="library model name (see `pkpd models`) or model file path")
    simulate.add_argument("data", help="NONMEM-style CSV: ID, TIME, EVID, AMT, CMT, RATE, II, ADDL, SS, ...")
    simulate.add_argument("-o", "--output", required=True,
                          help="output table, .csv or .parquet (one row per record and replicate; units in "
                               "OUT.units.json beside it)")
    simulate.add_argument("--force", action="store_true", help="replace an existing output file (never an input)")
    simulate.add_argument("--replicates", type=int, default=1, metavar="N",
                          help="simulate the data set N times with new random effects (column REP)")
    simulate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    simulate.add_argument("--variability", default="all", choices=["all", "iiv", "none"],
                          help="all: random effects and residual error as the model defines them (default); "
                               "iiv: random effects only; none: typical values")
    simulate.add_argument("--dv", metavar="OUTPUT",
                          help="model output of IPRED/PRED/DV (default: the first with a [residual] entry, "
                               "else the first output)")
    simulate.add_argument("--etas", action="store_true",
                          help="add the random effects (ETA_P, KAPPA_P) and individual parameters (IND_P)")
    simulate.add_argument("--amounts", action="store_true", help="add the compartment amounts")
    simulate.add_argument("--method", default="auto", choices=list(METHOD_NAMES))
    simulate.add_argument("--rtol", type=float, default=DEFAULT.rtol)
    simulate.add_argument("--atol", type=float, default=DEFAULT.atol)
    run = commands.add_parser("run", help="run a scenario file: tables, figures, manifest")
    run.add_argument("scenario", help="scenario TOML file (see scenarios/)")
    run.add_argument("-o", "--output", required=True, help="output folder (must not exist unless --force)")
    run.add_argument("--force", action="store_true",
                     help="replace an existing output folder that pkpd wrote (nothing else)")
    run.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    run.add_argument("--n", type=int, help="subjects per arm (overrides population.n)")
    run.add_argument("--seed", type=int, help="random seed (overrides seed)")
    run.add_argument("--no-figures", action="store_true", help="skip the figures")
    run.add_argument("--report", action="store_true",
                     help="also write OUTDIR/report.html and report.pdf (as `pkpd report OUTDIR`)")
    run.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="set a model parameter for this run, e.g. --set ALPHA=1 or --set C50_MG='2 mmol/L' "
                          "(as if added to the scenario's [parameters]; repeatable)")
    run.add_argument("--workers", type=int, help="run chunks on a local dask cluster of N worker processes")
    run.add_argument("--scheduler", help="run chunks on an existing dask cluster (tcp://HOST:PORT)")
    validate = commands.add_parser("validate", help="check a scenario file without running it")
    validate.add_argument("scenario")
    for command in (simulate, run, validate):
        command.add_argument("--max-memory", metavar="SIZE",
                             help="refuse a run estimated to need more memory, e.g. 8GB "
                                  "(default: PKPD_MAX_MEMORY, else half the machine's memory)")
    report = commands.add_parser("report", help="one HTML and PDF report of a run's output folder")
    report.add_argument("outdir", help="a folder `pkpd run` wrote")
    report.add_argument("--force", action="store_true", help="replace the folder's existing report")
    report.add_argument("--no-pdf", action="store_true", help="write the HTML only (the PDF needs Chromium)")
    commands.add_parser("models", help="list the library models")
    show = commands.add_parser("show", help="a model's compartments, equations, parameters and sources")
    show.add_argument("model", help="library model name (see `pkpd models`) or model file path")
    return parser


def _simulate(arguments):
    from .model import load_model
    from ._simulate_data import simulate_data_file

    inputs = [arguments.data] + ([arguments.model] if Path(arguments.model).is_file() else [])
    check_output_file(arguments.output, force=arguments.force, inputs=inputs)
    _check_data_file(arguments.data)
    model = load_model(arguments.model)
    _compile_first([model])
    summary = simulate_data_file(model, arguments.data, arguments.output, force=arguments.force, inputs=inputs,
                                 replicates=arguments.replicates, seed=arguments.seed,
                                 variability=arguments.variability, return_etas=arguments.etas, dv=arguments.dv,
                                 amounts=arguments.amounts, method=arguments.method, rtol=arguments.rtol,
                                 atol=arguments.atol)
    arguments.written = arguments.output
    replicates = f" x {arguments.replicates} replicates" if arguments.replicates > 1 else ""
    print(f"wrote {arguments.output}: {summary['records']} records, {summary['subjects']} subjects{replicates}, "
          f"DV = {summary['dv']} ({model.outputs[summary['dv']].unit}), outputs {', '.join(model.outputs)}, "
          f"seed {arguments.seed}, variability {arguments.variability}; units in {summary['units']}")


def _check_data_file(path):
    path = Path(path)
    if path.is_dir():
        raise PkpdError("is a folder, not a data file", file=path)
    if not path.exists():
        raise PkpdError("data file not found", file=path)
    if not path.is_file():
        raise PkpdError("not a regular file (a pipe or a device); give a CSV file", file=path)


def _run(arguments):
    from .study.run import check_run, run_scenario
    from .study.scenario import load_scenario

    scenario = load_scenario(arguments.scenario).with_overrides(n=arguments.n, seed=arguments.seed,
                                                                parameters=_parameter_settings(arguments.set))
    check_run(scenario, arguments.output, force=arguments.force)  # before any compilation
    if not arguments.quiet:
        _compile_first([scenario.model] + [arm.model for arm in scenario.arms if arm.model is not None])
    if arguments.workers is not None or arguments.scheduler:
        from ._distributed import DaskExecutor, cluster

        if arguments.workers is not None and arguments.workers < 1:
            raise PkpdError(f"--workers must be a positive integer; got {arguments.workers}")
        with cluster(scheduler=arguments.scheduler, workers=arguments.workers) as client:
            result = run_scenario(scenario, arguments.output, force=arguments.force, progress=not arguments.quiet,
                                  figures=not arguments.no_figures, executor=DaskExecutor(client))
    else:
        result = run_scenario(scenario, arguments.output, force=arguments.force, progress=not arguments.quiet,
                              figures=not arguments.no_figures)
    arguments.written = arguments.output
    for warning in result.manifest["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if arguments.quiet:
        if arguments.report:
            from .report import build_report

            build_report(arguments.output)
        return
    info = result.manifest
    print(f"{scenario.path.name}: model {info['model']['name']} ({info['model']['method']}), "
          f"{info['n']} subjects x {len(scenario.arms)} arms, seed {info['seed']}, {info['wall_time_s']:.1f} s")
    for arm in info["arms"]:
        if "parameters" in arm or "model" in arm or arm["method"] != info["model"]["method"]:
            settings = ", ".join(f"{k} = {v:g}" for k, v in arm.get("parameters", {}).items())
            model = f"model {arm['model']['name']} " if "model" in arm else ""
            print(f"  arm {arm['name']!r}: {model}{settings + ' ' if settings else ''}({arm['method']})")
    print(_dose_lines(info))
    print(_summary_lines(result, scenario))
    if result.search is not None:
        found = result.search
        print(f"search: {len(found.table)} candidates x {found.subjects} subjects in {found.seconds:.1f} s "
              f"({found.strategy})\n  {found.message}")
        for note in found.notes:
            print(f"  note: {note}")
    files = ["manifest.json", "profiles.csv", "exposure.csv", "summary.csv"]
    if result.power is not None:
        files.append("power.csv")
    if result.search is not None:
        files += [name for name in ("search.csv", "search_arm.toml") if name in info.get("output_files", [])]
    files += [f"{name}.csv" for name in result.tables]
    if not arguments.no_figures:
        files.append(f"figures/ ({len(info.get('figures', []))} figures)")
    print(f"wrote {arguments.output}/: {', '.join(files)}")
    if arguments.report:
        _write_report(arguments.output, pdf=True, force=False)


def _report(arguments):
    _write_report(arguments.outdir, pdf=not arguments.no_pdf, force=arguments.force)


def _write_report(outdir, *, pdf, force):
    from .report import build_report

    report = build_report(outdir, pdf=pdf, force=force)
    pages = f" ({report.pages} pages)" if report.pages else ""
    print(f"wrote {report.html}" + (f" and {report.pdf}{pages}" if report.pdf else ""))


def _parameter_settings(settings):
    """--set NAME=VALUE pairs as a dict (numbers as float, anything else as quantity text)."""
    values = {}
    for setting in settings:
        name, equals, value = setting.partition("=")
        if not equals or not name.strip() or not value.strip():
            raise PkpdError(f"--set must be NAME=VALUE (e.g. ALPHA=1 or C50_MG='2 mmol/L'); got {setting!r}")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            values[name.strip()] = value.strip()
    return values


def _compile_first(models):
    """Compile what the run needs before it starts (so the progress bar counts subjects, not
    compilation), saying so only when it happens (otherwise the wait looks like a hang)."""
    from ._warm import compile_first

    compile_first(models, lambda message: print(message, file=sys.stderr, flush=True))


def _dose_lines(info):
    """Each arm's doses as resolved: mg/kg and mg at the median weight (and rates)."""
    from .events.regimen import describe_resolved

    return "\n".join(f"  {arm['name'][:40]:40s} {dose['resolved']['drug']} {describe_resolved(dose['resolved'], dose['per_weight'])}"
                     for arm in info["arms"] for dose in arm["doses"])


def _elsewhere(row, output):
    """' [S-ketamine, venous plasma]' when a summary row's arm (of a model of its own) measures `output`
    as another analyte or in another matrix than the scenario's model does; else ''."""
    own = (row.get("analyte", output.analyte), row.get("matrix", output.matrix))
    return f" [{own[0]}, {own[1]}]" if own != (output.analyte, output.matrix) else ""


def _flat_profiles(exposure):
    """{(arm, output)} whose every subject's Cmax equals its mean level (Cavg): a flat profile
    (when Cavg was not computed, a Cmax of zero)."""
    wide = exposure[exposure["metric"].isin(["cmax", "cavg"])].pivot_table(
        index=["arm", "output", "ID"], columns="metric", values="value", observed=True)
    level = wide["cavg"] if "cavg" in wide else 0.0
    same = wide["cmax"].eq(level) | np.isclose(wide["cmax"], level, rtol=1e-9, atol=0.0)
    same = same.groupby(level=["arm", "output"]).all()
    return set(same[same].index)


def _per_dose_lines(result, scenario, output, flat):
    """Cmax and AUC of `output` per administration (medians over subjects), for each arm that repeats
    a dose (a weekly regimen: do the peaks build up?) and where the output moves."""
    from .metrics import dose_windows, per_dose_exposure, repeated_dose

    metrics = [m for m in ("cmax", "auc") if m in scenario.metrics]
    lines = []
    for arm in scenario.arms:
        dose = repeated_dose(arm)
        if dose is None or not metrics or (arm.name, output) in flat or arm.name not in result.results:
            continue
        table = per_dose_exposure(result.results[arm.name], output, dose_windows(dose, scenario.times), metrics)
        for metric in metrics:
            rows = table[table["metric"] == metric]
            numbers = ", ".join(str(number) for number in rows["dose"])
            lines.append(f"  {arm.name[:40]:40s} {output:12s} {metric:5s} per dose {numbers}: median "
                         f"{', '.join(f'{v:.4g}' for v in rows['median'])} {rows['unit'].iloc[0]}")
    return lines


def _summary_lines(result, scenario):
    """Per arm, the median (90 % interval) of the scenario's exposure metrics for every output it
    lists, each named by its label (a pain score by its mean level and AUC); "-" for the Tmax of an
    arm whose output stays flat in every subject (nothing of it was given: a peak time means nothing);
    Cmax and AUC per dose of a concentration in arms that repeat a dose; the expected rate of every adverse event the scenario reports (outputs of that role)."""
    summary = result.summary
    outputs = scenario.model.outputs
    flat = _flat_profiles(result.exposure)
    lines = []
    for output in scenario.variables:
        role = outputs[output].role
        if role == "adverse_event_probability":
            continue
        metrics = ["cavg", "auc"] if role == "pain_score" else [m for m in scenario.metrics
                                                                  if m in ("cmax", "tmax", "auc", "cavg")]
        lines.append(f"  {output}: {outputs[output].label}")
        for metric in metrics:
            rows = summary[(summary["output"] == output) & (summary["metric"] == metric)]
            for _, row in rows.iterrows():
                head = f"  {row['arm'][:40]:40s} {output:12s} {metric:5s} "
                if metric == "tmax" and (row["arm"], output) in flat:
                    lines.append(head + "-   (flat: no dose of it in this arm)")
                    continue
                above = f" {row['level']}" if metric == "auc" and isinstance(row.get("level"), str) else ""
                lines.append(head + f"median {row['median']:.4g} ({row['p5']:.4g}-{row['p95']:.4g}) {row['unit']}"
                             f"{above}{_elsewhere(row, outputs[output])}")
        if role == "concentration":
            lines += _per_dose_lines(result, scenario, output, flat)
    for output in scenario.variables:
        if outputs[output].role != "adverse_event_probability":
            continue
        rows = summary[(summary["output"] == output) & (summary["metric"] == "cmax")]
        for _, row in rows.iterrows():
            lines.append(f"  {row['arm'][:40]:40s} {outputs[output].event} ({output}): expected rate "
                         f"{100 * row['mean']:.1f} % (mean over subjects of each one's peak probability)")
    if result.power is not None:
        for _, row in result.power.iterrows():
            lines.append(f"  power {row['comparison']:40s} n={int(row['n_total']):4d}: {row['power']:.3f} "
                         f"[{row['power_low']:.3f}, {row['power_high']:.3f}]")
        from .figures import sample_size_for_power

        for comparison, needed in sample_size_for_power(result.power).items():
            lines.append(f"  power {comparison:40s} " + (f"80 % reached at n = {needed:g} (smallest of the grid)"
                                                         if needed is not None else "80 % not reached in the grid"))
    if result.uncertainty is not None or result.sensitivity is not None:
        from .study.draws import uncertainty_lines

        lines += uncertainty_lines(result, scenario)
    return "\n".join(lines)


def _validate(arguments):
    from .study.scenario import check_resources, load_scenario, resolved_doses

    scenario = load_scenario(arguments.scenario)
    check_resources(scenario)
    for warning in resolved_doses(scenario, scenario.make_population())[1]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{scenario.path.name}: valid ({scenario.model.name}, {len(scenario.arms)} arms, "
          f"{scenario.times.size} output times, n = {scenario.n})")


def _models(arguments):
    from .model import library_models, load_model

    for name in library_models():
        model = load_model(name)
        print(f"{name:24s} {model.description}")


def _show(arguments):
    from .model import load_model

    model = load_model(arguments.model)
    lines = [f"{model.name}: {model.description}", "", "compartments and equations (d/dt):"]
    lines += [f"  {model.numbers[c]:>2} {c:14s} d/dt = {model.odes[c]}" for c in model.compartments]
    if model.derived:
        lines += ["", "individual parameters:"] + [f"  {name} = {text}" for name, text in model.derived.items()]
    lines += ["", "outputs:"] + [f"  {name:14s} {o.label}: {o.expression}" for name, o in model.outputs.items()]
    lines += ["", "parameters (value unit, reliability: description; source):"]
    lines += [f"  {p.name:12s} {p.value:g} {p.unit}, {p.reliability or '-'}: {p.description}; {p.source}"
              for p in model.parameters.values()]
    if model.covariates:
        lines += ["", "covariates (default):"] + [f"  {c.name:12s} {c.value:g} {c.unit}: {c.description}"
                                                 for c in model.covariates.values()]
    print("\n".join(lines))


COMMANDS = {"simulate": _simulate, "models": _models, "run": _run, "validate": _validate, "report": _report,
            "show": _show}


def main(argv=None):
    """Run the command line; return the exit code (0, 1 a defect of pkpd, 2 bad input, 3, 130, 143)."""
    arguments = _build_parser().parse_args(argv)
    with _signals.handled():
        try:
            with limit_override(getattr(arguments, "max_memory", None)):
                COMMANDS[arguments.command](arguments)
            _signals.check()  # a signal whose exception a callback from C swallowed still counts
        except KeyboardInterrupt as interruption:
            return _interrupted(interruption, arguments)
        except Exception as error:
            if _signals.received() is not None:  # e.g. numba failing after a compilation was cut short
                return _interrupted(_signals.Interrupted(_signals.received()), arguments)
            message, code = _explained(error, arguments)
            print(f"error: {message}", file=sys.stderr)
            return code
    return 0


def _explained(error, arguments):
    """The one-line message and exit code for an exception a command raised."""
    if isinstance(error, PkpdError):
        return str(error), EXIT_USAGE
    if isinstance(error, SimulationError):
        return f"simulation failed: {error}", EXIT_FAILURE
    if isinstance(error, OSError):
        return (f"{error.filename}: {reason(error)}" if error.filename else reason(error)), EXIT_USAGE
    if isinstance(error, UnicodeDecodeError):
        return f"{_undecodable(arguments)}: not UTF-8 text ({error.reason} at byte {error.start})", EXIT_USAGE
    if isinstance(error, RecursionError):
        return f"{_main_input(arguments)}: nested too deeply to read (Python's recursion limit)", EXIT_USAGE
    if isinstance(error, MemoryError):
        return f"{_main_input(arguments)}: not enough memory; reduce the subjects, arms or output times", EXIT_USAGE
    if os.environ.get("PKPD_DEBUG"):
        raise error
    return (f"internal error in pkpd ({type(error).__name__}: {_first_line(error)}); please report it "
            "(PKPD_DEBUG=1 shows the traceback)"), EXIT_INTERNAL


def _interrupted(interruption, arguments):
    """'interrupted (SIGTERM); no output written' and 128 + the signal number."""
    signum = getattr(interruption, "signum", signal.SIGINT)
    written = getattr(interruption, "written", getattr(arguments, "written", None))
    outcome = f"after writing {written}" if written is not None else "no output written"
    print(f"interrupted ({signum.name}); {outcome}", file=sys.stderr)
    return 128 + int(signum)


def _first_line(error):
    return str(error).strip().split("\n")[0]


def _main_input(arguments):
    """The file the command reads first: the scenario, else the model file, else the data."""
    for name in ("scenario", "model", "data"):
        if getattr(arguments, name, None):
            return getattr(arguments, name)
    return "input"


def _undecodable(arguments):
    """The first of the command's input files that is not UTF-8 text."""
    for name in ("scenario", "model", "data"):
        path = Path(getattr(arguments, name, None) or "")
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            return path
        except OSError:
            continue
    return _main_input(arguments)


def console():
    """Entry point of the installed ``pkpd`` script."""
    code = main()
    if code > 128:  # interrupted: objects a cut-short compilation left half-built complain as the process ends
        sys.unraisablehook = lambda unraisable: None
    sys.exit(code)
