"""The generated modules' cache on disk, and the models' compiled functions in this process.

A model's generated source (:mod:`.codegen`) is written to a cache folder under a name keyed by the
SHA-256 of the source, the Numba version and :data:`~.codegen.CODEGEN_VERSION`; Numba's on-disk cache
beside that file means an unchanged model is compiled once, ever. A cache entry that does not load
(a truncated or garbled ``.py``, ``.nbi`` or ``.nbc``) is reported once on stderr, removed and rebuilt.
"""

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import numba

from .._errors import PkpdError
from .._numba_cache import guard
from . import expressions
from .codegen import CODEGEN_VERSION, generate_source

_MODULE_PREFIX_LENGTH = 32       # characters of the model name kept in its module's file name
# (model text hash, cache folder) -> (module name, generated module, compiled kernels or None), for this process: a model's
# copies share them; an entry counts only while its module is the one imported under that name
_LOADED: dict[tuple[str, Path], tuple[str, object, object]] = {}


def shared_module(model):
    """The model's compiled module: the one of every model with the same text in this process,
    generated and imported on first use (:attr:`Model.module <pkpd.Model.module>`)."""
    key = (model.hash, cache_directory())
    name, module, _ = _LOADED.get(key, (None, None, None))
    if module is None or sys.modules.get(name) is not module:
        module = _import_generated(model)
        _LOADED[key] = (module.__name__, module, None)
    return module


def shared_kernels(model):
    """The model's compiled functions: those of every model with the same text in this process,
    compiled (or loaded from Numba's disk cache) on first use (:attr:`Model.kernels <pkpd.Model.kernels>`)."""
    module = model.module
    key = (model.hash, cache_directory())
    name, shared, kernels = _LOADED.get(key, (None, None, None))
    if shared is not module or kernels is None:
        kernels = _compile_kernels(model)
        _LOADED[key] = (module.__name__, module, kernels)
    return kernels


def cache_directory():
    """Where generated model code and Numba's cache live (``$PKPD_CACHE_DIR`` or ``~/.cache/pkpd``).

    Raises PkpdError when that path exists and is not a folder."""
    base = os.environ.get("PKPD_CACHE_DIR")
    if base:
        folder = Path(base)
    else:
        folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pkpd"
    if folder.exists() and not folder.is_dir():
        raise PkpdError(f"{_cache_label(folder)}: not a folder")
    return folder


def _cache_label(folder):
    """How messages name the cache folder: by the variable that chose it, when one did."""
    base = os.environ.get("PKPD_CACHE_DIR")
    return f"PKPD_CACHE_DIR={_printable(base)}" if base else f"model cache folder {_printable(str(folder))}"


def _printable(text):
    """`text` as is when it prints on one line, else its repr (a file name may hold a newline)."""
    return text if text.isprintable() else repr(text)


def generated_location(model):
    """(source, module name, file) of the model's generated module.

    The module name is the start of the model's name (ASCII letters and digits) and a
    hash: bounded in length, a valid identifier, whatever the model is called."""
    source = generate_source(model)
    key = hashlib.sha256((source + numba.__version__ + CODEGEN_VERSION).encode()).hexdigest()[:20]
    safe = "".join(c if c.isascii() and c.isalnum() else "_" for c in model.name[:_MODULE_PREFIX_LENGTH])
    module_name = f"pkpd_model_{safe}_{key}"
    return source, module_name, cache_directory() / f"{module_name}.py"


def is_compiled(model):
    """Whether Numba's on-disk cache already holds the model's functions (the engine: :func:`pkpd.engine.is_cached`)."""
    _, module_name, file = generated_location(model)
    return file.exists() and any((file.parent / "__pycache__").glob(f"{module_name}.model_initial-*.nbi"))


def _import_generated(model):
    """The model's compiled module: its source written to the cache (checked against the
    expected text) and executed from that text (nothing compiles: see `Model.kernels`)."""
    source, module_name, file = generated_location(model)
    if module_name in sys.modules:
        return sys.modules[module_name]
    _write_source(model, source, module_name, file)
    spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(spec)
    with expressions.deep_recursion():
        # compiled from the checked text, not the file: no bytecode cache (.pyc) to go stale or corrupt
        code = compile(source, str(file), "exec")
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _write_source(model, source, module_name, file):
    """Write the generated source unless the file already holds exactly it (through a
    temporary file and a rename, so a concurrent reader never sees half a file). A file
    of that name with other content is a corrupt entry: reported, removed, rebuilt."""
    folder = file.parent
    expected = source.encode("utf-8")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            existing = file.read_bytes()
        except FileNotFoundError:
            existing = None
        if existing == expected:
            return
        if existing is not None:
            _report_corrupt(model.name)
            _remove_compiled(folder / "__pycache__", module_name)
        handle, temporary = tempfile.mkstemp(prefix=f".{module_name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(expected)
            os.replace(temporary, file)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except OSError as error:
        raise PkpdError(f"{_cache_label(folder)}: cannot write the compiled model there "
                        f"({error.strerror or error}); set PKPD_CACHE_DIR to a writable folder") from None


def _report_corrupt(name):
    print(f"pkpd: cache entry for model {name} was corrupt; rebuilding", file=sys.stderr)


def _remove_compiled(folder, module_name):
    """Delete Numba's cache files (index, data, temporaries) of one generated module."""
    for path in folder.glob(f"{module_name}.*"):   # module names are [A-Za-z0-9_]: no glob characters
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _compile_kernels(model):
    """Compile (or load from Numba's disk cache) the model's functions for the engine. A cache
    entry that fails to load is reported once, the module's cache files deleted and the
    functions compiled afresh (Numba then saves new ones)."""
    from ..engine import compile_model_functions

    module = model.module
    reported = []

    def rebuild(cache):
        if not reported:
            _report_corrupt(model.name)
            reported.append(True)
        _remove_compiled(Path(cache.cache_path), module.__name__)

    return compile_model_functions(module, guard=lambda cache: guard(cache, rebuild))
