"""The one way a model file is rejected: a :class:`~pkpd.ModelError` at a key of the file."""

from .._errors import ModelError


def fail(path, key, rule, **found):
    """Raise ModelError at `key` of the model file; ``value=`` is written as its repr, unless ``got=`` says how."""
    if "value" in found:
        found.setdefault("got", repr(found["value"]))
    raise ModelError(rule, file=path.name, key=key, **found)
