"""Model files: parsing, checking and compiling the model's functions for the engine.

One module per concept: ``loading`` (reading a model file by name or path and checking every
section), ``model`` (:class:`Model`, :class:`Parameter`, :class:`Output`), ``expressions`` (the
restricted expression language of model files), ``codegen`` (the Python source of a model's
functions), ``cache`` (the generated modules on disk and the compiled functions in this process),
``baseline`` (an output's endogenous baseline per subject), ``specialisation`` (a nonlinear model with
its zero-valued switches folded in, when that makes it linear) and ``checks`` (the one-line error at a
key of a model file).

A model file is TOML (see ``models/README.md`` for the format). Loading checks
every section against the rules of the format and raises :class:`ModelError`
naming the file, the key and the problem. Compilation writes a Python module of
the model's eight small functions (:mod:`pkpd.engine.interface`) to a cache folder
under a name keyed by the SHA-256 of the generated source and the Numba version;
Numba's on-disk cache beside that file means an unchanged model is compiled once,
ever (about a second), and the engine itself (:mod:`pkpd.engine`), compiled once
per installation, takes those functions as arguments.

Nothing a model file says reaches the generated source as text: names are
checked identifiers (prefixed), numbers and expressions are re-printed from
checked trees, and the model's name and file name appear only as ``repr()``
in a comment. A cache entry that does not load (a truncated or garbled ``.py``,
``.nbi`` or ``.nbc``) is reported once on stderr, removed and rebuilt.
"""

from .baseline import baseline_values
from .cache import cache_directory, generated_location, is_compiled
from .codegen import CODEGEN_VERSION, generate_source
from .loading import MATRICES, OUTPUT_ROLES, library_models, load_model, model_directories
from .model import Model, Output, Parameter, check_allowed
from .specialisation import linear_specialisation

__all__ = ["Model", "Parameter", "Output", "load_model", "library_models", "model_directories", "check_allowed",
           "OUTPUT_ROLES", "MATRICES", "generate_source", "CODEGEN_VERSION", "cache_directory", "generated_location",
           "is_compiled", "baseline_values", "linear_specialisation"]
