"""pkpd: population PK/PD simulation of ketamine, norketamine and magnesium.

Public API
----------
load_model, Model          model files (``models/*.toml``) compiled to Numba
simulate_data              a NONMEM-style event table in, one row per record out
simulate, SimulationResult a regimen in a virtual population
simulate_summary           the same for very large n: percentiles and exposure only, streamed
Dose, Regimen              what is given, when, in the model's units
Population                 covariates and per-subject random streams, seeded
load_scenario, run_scenario  scenario files (``scenarios/*.toml``) and what ``pkpd run`` writes
trial                      crossover / parallel trial replicates -> power table
search, SearchResult       the regimen (doses, rates, intervals) that best meets population targets within limits
tci_regimen                a target-controlled infusion schedule (typical patient) as a plain Regimen
UncertaintyOptions         simulate(..., uncertainty=) / trial(..., uncertainty=): parameter draws
figure_set, write_figures  the protocol figures of a run (matplotlib Figures; PNG + SVG files)
library_models             names of the shipped models
PkpdError                  every error for bad input (a ValueError), with the fields file, key, row,
                           column, rule and value; its kinds: ModelError, ExpressionError, DataError,
                           ScenarioError, PopulationError, RandomStreamError, ResourceError, OutputError
SimulationError            subjects the engine could not integrate (a RuntimeError)
"""

from ._errors import (DataError, ExpressionError, ModelError, OutputError, PkpdError, PopulationError,
                      RandomStreamError, ResourceError, ScenarioError, SimulationError)
from .model import Model, library_models, load_model
from .population import Population
from .events import Dose, Regimen
from ._simulate import SimulationResult, simulate, simulate_summary
from ._simulate_data import simulate_data
from .study import SearchResult, UncertaintyOptions, load_scenario, run_scenario, search, tci_regimen

__version__ = "0.1.0"

__all__ = ["load_model", "Model", "library_models", "simulate_data", "simulate", "simulate_summary", "SimulationResult",
           "Dose", "Regimen", "Population", "load_scenario", "run_scenario", "trial", "search", "SearchResult", "tci_regimen",
           "figure_set", "write_figures", "UncertaintyOptions",
           "PkpdError", "ModelError", "ExpressionError", "DataError", "ScenarioError", "PopulationError",
           "RandomStreamError", "ResourceError", "OutputError", "SimulationError",
           "__version__"]


def __getattr__(name):
    # matplotlib (figures) and scipy.stats (trials) load on first use: `import pkpd` stays quick
    if name in ("figure_set", "write_figures"):
        from . import figures

        return getattr(figures, name)
    if name == "trial":
        from .study.trial import trial

        return trial
    raise AttributeError(f"module 'pkpd' has no attribute {name!r}")
