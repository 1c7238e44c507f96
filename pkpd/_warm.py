"""Compile models ahead of use, several processes at once.

``python -m pkpd._warm [--jobs N] MODEL...`` compiles each model (and, when it has
one, its linear specialisation) into the on-disk cache, spreading the models over
N processes. A model already in the cache costs about a second. The test suite
calls this at the start of a session, so that on a fresh machine the ~30 s
compilations of its models run on every core instead of one after another.
"""

import argparse
import subprocess
import sys


def compile_model(name_or_path):
    """Load the model and run its kernel once on a one-record data set (compiles or loads from cache)."""
    import numpy as np

    from ._engine import run_stream
    from ._events import KIND_OBS, EventStream
    from ._model import load_model
    from ._simulate import _linear_specialisation

    model = load_model(name_or_path)
    for variant in {id(model): model, id(special := _linear_specialisation(model)): special}.values():
        stream = EventStream(subject_start=np.array([0, 1]), subject_ids=np.array([1.0]), time=np.zeros(1),
                             kind=np.array([KIND_OBS]), amt=np.zeros(1), cmt=np.zeros(1, np.int64),
                             rate=np.zeros(1), ii=np.zeros(1), ss=np.zeros(1, np.int64), prow=np.zeros(1, np.int64),
                             drow=np.zeros(1, np.int64), out=np.zeros(1, np.int64), parent=np.zeros(1, np.int64),
                             inputs=np.array([variant.input_defaults], dtype=np.float64), n_outputs=1)
        run_stream(variant, stream, method="rk45")


def needs_compiling(name_or_path):
    from ._model import is_compiled, load_model
    from ._simulate import _linear_specialisation

    model = load_model(name_or_path)
    return not (is_compiled(model) and is_compiled(_linear_specialisation(model)))


def warm(models, jobs=2):
    """Compile those of `models` not yet cached, in `jobs` parallel processes; returns the exit codes."""
    models = [m for m in models if needs_compiling(m)]
    groups = [models[i::jobs] for i in range(jobs)]
    processes = [subprocess.Popen([sys.executable, "-m", "pkpd._warm", "--jobs", "1", *group],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for group in groups if group]
    return [process.wait() for process in processes]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("models", nargs="+")
    arguments = parser.parse_args(argv)
    if arguments.jobs > 1:
        return max(warm(arguments.models, arguments.jobs))
    for model in arguments.models:
        compile_model(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
