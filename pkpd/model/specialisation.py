"""The linear specialisation of a nonlinear model: its zero-valued switches folded in, when that
removes every product of amounts (and the exact matrix-exponential path then applies)."""

import dataclasses

_INVOLVED: dict = {}        # (model file, source hash) -> parameters in the nonlinear terms, without random effects
_SPECIALISATIONS: dict = {}  # (model file, source hash, folded parameters) -> the model with them folded


def linear_specialisation(model, load=False):
    """The model with its zero-valued fixed parameters folded in, if that makes it linear.

    A parameter without random effects whose value is exactly 0 (e.g. an interaction
    term switched off) is a constant of the run; folding it can remove every product
    of amounts, and the exact matrix-exponential path then applies. Only parameters that
    appear in the nonlinear terms (directly or through derived names) are folded, so the
    values of unrelated switches (MG_SOURCE, NK_ANTAG) do not change the generated code
    and never cause a recompilation.

    The symbolic work is done once per model source and set of folded parameters: a model
    derived with other values (``with_parameters``, e.g. parameter draws) gets a copy of the
    same specialisation with its own values. With `load`, that specialisation's compiled
    module is loaded first, so that every copy shares it.
    """
    if model.is_linear:
        return model
    key = (str(model.path), model.hash)
    if key not in _INVOLVED:
        random = set(model.variability.get("iiv", {}).get("parameters", []))
        random |= set(model.variability.get("iov", {}).get("parameters", []))
        _INVOLVED[key] = sorted((model.nonlinear_names() & set(model.parameters)) - random)
    zeros = tuple(name for name in _INVOLVED[key] if model.parameters[name].value == 0.0)
    if not zeros:
        return model
    if key + (zeros,) not in _SPECIALISATIONS:
        _SPECIALISATIONS[key + (zeros,)] = model.with_constants(dict.fromkeys(zeros, 0.0))
    special = _SPECIALISATIONS[key + (zeros,)]
    if not special.is_linear:
        return model
    if load:
        special.module
    if special.unfolded is model:
        return special
    return dataclasses.replace(special, parameters=model.parameters, uncertainty=model.uncertainty, unfolded=model)
