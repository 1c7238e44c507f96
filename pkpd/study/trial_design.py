"""The ``[trial]`` section of a scenario: checked when the scenario loads, into one frozen
:class:`TrialDesign` per design (:func:`designs_of`); :mod:`pkpd.study.trial` simulates and analyses them."""

import itertools
from dataclasses import dataclass

from .._errors import PkpdError, ScenarioError, suggestion
from .._units import magnitude_in, parse_quantity

TRIAL_KEYS = ["design", "arms", "sequences", "period", "washout", "baseline", "n", "replicates", "dropout",
              "endpoint", "alpha", "comparisons", "analysis", "scale", "versus"]
ENDPOINT_KEYS = ["type", "output", "days", "threshold"]
ENDPOINTS = ["auc", "mean", "responder"]


@dataclass(frozen=True)
class TrialDesign:
    """A checked ``[trial]`` section (times in the model's unit, h); frozen: derive a changed
    one with :func:`dataclasses.replace`."""
    design: str
    arms: list
    sequences: list          # crossover: arm indices per period, per sequence
    period: float
    washout: float
    baseline: float
    sample_sizes: list
    replicates: int
    dropout: float
    endpoint: str
    output: str
    days: tuple
    threshold: tuple | None  # ("percent", 30.0) or ("points", 2.0)
    alpha: float
    comparisons: list        # (arm index a, arm index b): estimate of a - b
    scale: tuple | None      # (low, high) integer scale of daily scores, or None

    @property
    def n_periods(self):
        return len(self.sequences[0]) if self.design == "crossover" else 1

    @property
    def days_per_period(self):
        return int(round((self.period + self.washout) / 24.0))


def williams_sequences(count):
    """Williams design: balanced for first-order carry-over (2 Latin squares when `count` is odd)."""
    first = [0]
    low, high = 1, count - 1
    for index in range(1, count):
        if index % 2:
            first.append(low)
            low += 1
        else:
            first.append(high)
            high -= 1
    square = [[(value + shift) % count for value in first] for shift in range(count)]
    if count % 2:
        square += [list(reversed(row)) for row in square]
    return square


def _fail(scenario, key, rule, **found):
    """Raise ScenarioError at ``trial.key``; ``value=`` is written as its repr, unless ``got=`` says how."""
    if "value" in found:
        found.setdefault("got", repr(found["value"]))
    raise ScenarioError(rule, file=scenario.path.name, key=f"trial.{key}", **found)


def _time(scenario, key, text):
    try:
        return magnitude_in(parse_quantity(text, f"trial.{key}", positive=False), scenario.model.units.get("time", "h"),
                            f"trial.{key}")
    except PkpdError as error:
        _fail(scenario, key, error.rule, **error.fields())


def parse_trial(scenario, raw=None):
    """Check a ``[trial]`` table (by default the scenario's) against the scenario; return a TrialDesign."""
    raw = scenario.trial if raw is None else raw
    for key in raw:
        if key not in TRIAL_KEYS:
            extra = suggestion(key, TRIAL_KEYS, "allowed")
            _fail(scenario, key, f"unknown key{extra}")
    design = raw.get("design", "crossover")
    if design not in ("crossover", "parallel"):
        _fail(scenario, "design", "must be 'crossover' or 'parallel'", value=design)
    names = [arm.name for arm in scenario.arms]
    arms = raw.get("arms", names)
    for index, name in enumerate(arms):
        if name not in names:
            _fail(scenario, f"arms[{index}]", f"no arm named {name!r} (arms: {', '.join(names)})")
    if len(arms) < 2:
        _fail(scenario, "arms", "a trial needs at least 2 arms")
    for arm in scenario.arms:
        if arm.name in arms and arm.own_model is not None:
            raise ScenarioError(f"arm {arm.name!r}: a trial arm cannot name a model of its own (model "
                                f"{arm.own_model.name}, the scenario's {scenario.model.name}): a patient keeps "
                                f"one model across periods", file=scenario.path.name, key="trial.arms")
        if arm.name in arms and arm.model is not None:
            raise ScenarioError(f"arm {arm.name!r}: a trial arm cannot set model parameters of its own (a patient "
                                f"keeps one model across periods); set them for the whole scenario in [parameters] "
                                f"instead", file=scenario.path.name)
    count = len(arms)
    sequences = raw.get("sequences", "williams")
    if design == "parallel":
        sequences = [[i] for i in range(count)]
    elif sequences == "williams":
        sequences = williams_sequences(count)
    elif sequences == "all":
        sequences = [list(p) for p in itertools.permutations(range(count))]
    elif isinstance(sequences, list) and sequences and all(isinstance(s, list) for s in sequences):
        converted = []
        for i, sequence in enumerate(sequences):
            row = []
            for j, name in enumerate(sequence):
                if name not in arms:
                    _fail(scenario, f"sequences[{i}][{j}]", f"{name!r} is not a trial arm")
                row.append(arms.index(name))
            converted.append(row)
        if len({len(r) for r in converted}) != 1:
            _fail(scenario, "sequences", "every sequence must have the same number of periods")
        sequences = converted
    else:
        _fail(scenario, "sequences", "must be 'williams', 'all' or a list of lists of arm names", value=sequences)
    period = _time(scenario, "period", raw.get("period", "35 d"))
    washout = _time(scenario, "washout", raw.get("washout", "0 d"))
    baseline = _time(scenario, "baseline", raw.get("baseline", "14 d"))
    if not period > 0:
        _fail(scenario, "period", "must be positive", value=raw.get('period'))
    for key, value in (("period", period + washout), ("baseline", baseline)):
        if abs(value / 24.0 - round(value / 24.0)) > 1e-9:
            _fail(scenario, key, "must be a whole number of days (daily pain scores)")
    sizes = raw.get("n", [20])
    sizes = sizes if isinstance(sizes, list) else [sizes]
    for i, n in enumerate(sizes):
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            _fail(scenario, f"n[{i}]", "must be an integer >= 2", value=n)
    replicates = raw.get("replicates", 200)
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
        _fail(scenario, "replicates", "must be a positive integer", value=replicates)
    dropout = raw.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        _fail(scenario, "dropout", "must be a probability in [0, 1)", value=dropout)
    alpha = raw.get("alpha", 0.05)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        _fail(scenario, "alpha", "must be in (0, 1)", value=alpha)
    endpoint = raw.get("endpoint", {"type": "auc"})
    if not isinstance(endpoint, dict):
        _fail(scenario, "endpoint", "must be a table", value=endpoint)
    for key in endpoint:
        if key not in ENDPOINT_KEYS:
            _fail(scenario, f"endpoint.{key}", f"unknown key; allowed: {', '.join(ENDPOINT_KEYS)}")
    kind = endpoint.get("type", "auc")
    if kind not in ENDPOINTS:
        _fail(scenario, "endpoint.type", f"must be one of {', '.join(ENDPOINTS)}", value=kind)
    pain_scores = [name for name, spec in scenario.model.outputs.items() if spec.role == "pain_score"]
    if "output" not in endpoint and not pain_scores:
        _fail(scenario, "endpoint.output", f"is required: model {scenario.model.name!r} has no output of role "
                                           f"pain_score (the default)")
    output = endpoint.get("output", pain_scores[0] if pain_scores else None)
    if output not in scenario.model.outputs:
        _fail(scenario, "endpoint.output", f"model {scenario.model.name!r} has no output {output!r}")
    days_per_period = int(round(period / 24.0))
    days = endpoint.get("days", [1, days_per_period])
    if not (isinstance(days, list) and len(days) == 2 and all(isinstance(d, int) for d in days)
            and 1 <= days[0] <= days[1] <= days_per_period):
        _fail(scenario, "endpoint.days", f"must be [first, last] days within the period (1..{days_per_period})",
              value=days)
    threshold = None
    if kind == "responder":
        text = str(endpoint.get("threshold", "30 %")).strip()
        if text.endswith("%"):
            threshold = ("percent", float(text[:-1]))
        elif text.endswith("points") or text.endswith("point"):
            threshold = ("points", float(text.split()[0]))
        else:
            _fail(scenario, "endpoint.threshold", "must be like '30 %' or '2 points'", value=text)
    comparisons = raw.get("comparisons", [[arms[i], arms[0]] for i in range(1, count)])
    pairs = []
    for i, pair in enumerate(comparisons):
        if not (isinstance(pair, list) and len(pair) == 2 and all(p in arms for p in pair) and pair[0] != pair[1]):
            _fail(scenario, f"comparisons[{i}]", "must be [arm, other arm] among the trial arms", value=pair)
        pairs.append((arms.index(pair[0]), arms.index(pair[1])))
    scale = raw.get("scale", [0, 10])
    if scale is not False and not (isinstance(scale, list) and len(scale) == 2 and scale[0] < scale[1]):
        _fail(scenario, "scale", "must be [low, high] of the integer score scale, or false", value=scale)
    analysis = raw.get("analysis", "fixed")
    if analysis != "fixed":
        _fail(scenario, "analysis", "only 'fixed' (subject, period and treatment fixed effects) is available",
              value=analysis)
    return TrialDesign(design=design, arms=list(arms), sequences=sequences, period=period, washout=washout,
                       baseline=baseline, sample_sizes=sorted(sizes), replicates=replicates, dropout=float(dropout),
                       endpoint=kind, output=output, days=tuple(days), threshold=threshold, alpha=float(alpha),
                       comparisons=pairs, scale=tuple(scale) if scale is not False else None)


def designs_of(scenario):
    """The trial designs a scenario asks for: one, or with ``versus`` one 2-arm design per other arm."""
    raw = scenario.trial
    versus = raw.get("versus")
    if versus is None:
        return [parse_trial(scenario)]
    names = [arm.name for arm in scenario.arms]
    if versus not in names:
        _fail(scenario, "versus", f"no arm named {versus!r} (arms: {', '.join(names)})")
    if "arms" in raw or "comparisons" in raw or isinstance(raw.get("sequences"), list):
        _fail(scenario, "versus", "give either versus or arms/comparisons/explicit sequences, not both")
    common = {k: v for k, v in raw.items() if k != "versus"}
    return [parse_trial(scenario, common | {"arms": [versus, name]}) for name in names if name != versus]
