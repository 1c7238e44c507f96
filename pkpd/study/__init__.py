"""Studies: scenario files and what is run from them.

One module per concept: ``scenario`` (:func:`load_scenario`: a scenario file read and fully
checked, into a frozen :class:`Scenario`), ``checks`` (the one-line error at a key of a scenario
file, and its rule for dose amounts), ``trial_design`` (the ``[trial]`` section, checked into
one frozen :class:`TrialDesign` per design) and ``trial`` (replicate trials and their power), ``search_spec``
(the ``[search]`` section and the arguments of :func:`search`, checked) and ``search`` (the
regimen search itself), ``tci`` (target-controlled infusion schedules), ``draws`` (parameter
draws: the ``[uncertainty]`` section, ``simulate(uncertainty=)`` and ``trial(uncertainty=)``),
``sensitivity_options`` (the ``[sensitivity]`` section) and ``sensitivity`` (tornado and Sobol
analyses), and ``run`` (:func:`run_scenario`: what ``pkpd run`` writes).

The sections a scenario checks as it loads sit below ``scenario``; what runs a scenario
(``trial``, ``search``, ``sensitivity``, ``run``) sits above it, so no module imports one that
imports it back. The draws take :func:`pkpd.simulate` and :func:`pkpd.trial` from their callers.

:func:`pkpd.trial` (``trial.trial``) is not imported here: it loads scipy, which ``import pkpd``
does not need.
"""

from .draws import UncertaintyOptions, UncertaintyResult
from .run import RunResult, run_scenario
from .scenario import Scenario, load_scenario
from .search import SearchResult, search
from .tci import tci_regimen
from .trial_design import TrialDesign

__all__ = ["load_scenario", "Scenario", "run_scenario", "RunResult", "search", "SearchResult", "tci_regimen",
           "TrialDesign", "UncertaintyOptions", "UncertaintyResult"]
