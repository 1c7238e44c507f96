"""Compile the engine and models ahead of use.

``python -m pkpd._warm [--jobs N] MODEL...`` compiles the engine (once per
installation and Numba version) and each model's functions (and, when it has one,
its linear specialisation's) into the on-disk cache: the engine first, in one
process, then the models spread over N processes. A model costs about a second;
one already in the cache, a fraction of that. The test suite calls this before
its tests run, for the models the selected tests declare. :func:`compile_first`
is what ``pkpd run`` and ``pkpd simulate`` do before their progress bar starts.

Warming is only an optimisation: a model left uncompiled is compiled on first
use. A failure is therefore reported, not raised: each worker compiles all of its
models, writes the traceback of any that fail to its output and exits with 1;
``warm`` returns those workers' exit codes and output, and the command prints
them and exits with 1.
"""

import argparse
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass


@dataclass(frozen=True)
class WarmFailure:
    """A warm-up process that did not succeed: its models, exit code and output (stdout and stderr)."""
    models: tuple
    returncode: int
    output: str

    def __str__(self):
        return (f"warming {', '.join(self.models)} failed (exit code {self.returncode}):\n"
                + (self.output.rstrip() or "(no output)"))


def compile_model(name_or_path):
    """Load the model and run the engine once on a one-record data set with each of its variants
    (compiles, or loads from the cache, the engine and the model's functions)."""
    from .model import load_model
    from ._simulate import engine_variants

    for variant in engine_variants(load_model(name_or_path)):
        _run_once(variant)


def compile_first(models, say):
    """Compile whatever `models` (:class:`pkpd.Model`) need before a run starts, saying once what is
    compiled and why (``say(message)``): the engine, once per installation, and each model's functions."""
    from .model import is_compiled
    from ._simulate import engine_variants
    from .engine import is_cached

    if not is_cached():
        say("compiling the simulation engine: once per installation and Numba version (about 30 s on 2 cores)")
    named = set()
    for model in models:
        for variant in engine_variants(model):
            if not is_compiled(variant) and model.name not in named:
                say(f"compiling model {model.name} (about a second; cached for every later run)")
                named.add(model.name)
            _run_once(variant)


def _run_once(model):
    """Run the engine on one observation record of `model` (compiles or loads what it needs)."""
    import numpy as np

    from ._engine import run_stream
    from .events.records import KIND_OBS, EventStream

    stream = EventStream(subject_start=np.array([0, 1]), subject_ids=np.array([1.0]), time=np.zeros(1),
                         kind=np.array([KIND_OBS]), amt=np.zeros(1), cmt=np.zeros(1, np.int64),
                         rate=np.zeros(1), ii=np.zeros(1), ss=np.zeros(1, np.int64), prow=np.zeros(1, np.int64),
                         drow=np.zeros(1, np.int64), out=np.zeros(1, np.int64), parent=np.zeros(1, np.int64),
                         inputs=np.array([model.input_defaults], dtype=np.float64), n_outputs=1)
    run_stream(model, stream, method="rk45")


def needs_compiling(name_or_path):
    """Whether the model or its linear specialisation is missing from the cache (True if it cannot be loaded:
    the worker then reports why)."""
    from .model import load_model
    from ._simulate import engines_compiled

    try:
        return not engines_compiled(load_model(name_or_path))
    except Exception:  # whatever it is, the worker meets it again and reports it with its traceback
        return True


def warm(models, jobs=2):
    """Compile those of `models` not yet cached, in `jobs` parallel processes.

    Parameters
    ----------
    models : list of str
        Library model names or model file paths.
    jobs : int
        Number of processes.

    Returns
    -------
    list of WarmFailure
        One per process that exited with a non-zero code (empty when all succeeded).
    """
    from .engine import is_cached

    models = [str(m) for m in models if needs_compiling(m)]
    failures = []
    if models and not is_cached():   # the engine first, in one process: the others then load it
        failures += _compile_groups([tuple(models[:1])])
        models = models[1:]
    return failures + _compile_groups([tuple(models[i::jobs]) for i in range(jobs) if models[i::jobs]])


def _compile_groups(groups):
    running = []
    for group in groups:
        log = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
        process = subprocess.Popen([sys.executable, "-m", "pkpd._warm", "--jobs", "1", *group],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        running.append((group, process, log))
    failures = []
    for group, process, log in running:
        with log:
            code = process.wait()
            if code != 0:
                log.seek(0)
                failures.append(WarmFailure(group, code, log.read()))
    return failures


def compile_each(models):
    """Compile `models` one after another in this process; report each failure on stderr. Returns the exit code."""
    code = 0
    for model in models:
        try:
            compile_model(model)
        except Exception:  # reported with its traceback; the other models still compile
            print(f"{model}: could not be compiled:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            code = 1
    return code


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("models", nargs="+")
    arguments = parser.parse_args(argv)
    if arguments.jobs <= 1:
        return compile_each(arguments.models)
    failures = warm(arguments.models, arguments.jobs)
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
