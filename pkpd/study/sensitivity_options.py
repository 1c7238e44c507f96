"""The ``[sensitivity]`` section of a scenario, checked when the scenario loads: the metrics
(:class:`Metric`), the parameters moved and the Sobol' analysis (:class:`SensitivityOptions`);
:mod:`pkpd.study.sensitivity` runs the analyses."""

from dataclasses import dataclass

from .draws import uncertain_parameters
from .._keys import Keys

SENSITIVITY_KEYS = Keys(["metrics", "parameters", "n", "replicates", "sobol"], required=["metrics"])
SOBOL_KEYS = Keys(["metric", "arm", "samples", "bootstrap", "seed"], required=["metric"])
EXPOSURE = ("cmax", "tmax", "cmin", "auc", "cavg")


@dataclass(frozen=True)
class Metric:
    """A scalar result: ``kind`` "exposure" (median over subjects of `statistic` of `output`),
    "ae_rate" (mean over subjects of the peak of `output`) or "power"."""
    label: str
    kind: str
    output: str = ""
    statistic: str = ""


@dataclass(frozen=True)
class SobolOptions:
    metric: Metric
    arm: str | None            # the arm (or, for power, the comparison) whose value is analysed
    samples: int
    bootstrap: int
    seed: int


@dataclass(frozen=True)
class SensitivityOptions:
    metrics: tuple
    parameters: tuple | None
    n: int | None
    replicates: int | None
    sobol: SobolOptions | None


def parse_metric(check, key, text, scenario):
    """'KETAMINE auc', 'P_PSYCHO ae_rate' or 'power', checked against the scenario."""
    if not isinstance(text, str):
        check.fail(key, "must be text such as 'KETAMINE auc', 'P_PSYCHO ae_rate' or 'power'", value=text)
    parts = text.split()
    if parts == ["power"]:
        if scenario.trial is None:
            check.fail(key, "'power' needs a [trial] section")
        return Metric(text, "power")
    if len(parts) != 2:
        check.fail(key, "must be 'OUTPUT METRIC' (e.g. 'KETAMINE auc') or 'power'", value=text)
    output, statistic = parts
    model = scenario.model
    if output not in model.outputs:
        from .._errors import suggestion

        check.fail(key, f"model {model.name!r} has no output {output!r}{suggestion(output, list(model.outputs))}")
    if statistic == "ae_rate":
        if model.outputs[output].role != "adverse_event_probability":
            check.fail(key, f"ae_rate needs an output of role adverse_event_probability; {output} is "
                            f"{model.outputs[output].role}")
        return Metric(text, "ae_rate", output, "cmax")
    levels = [f"time_above_{v:g}" for v in scenario.thresholds.get(output, ())]
    levels += [f"time_within_{lo:g}_{hi:g}" for lo, hi in scenario.windows.get(output, ())]
    if statistic not in EXPOSURE + tuple(levels):
        check.fail(key, f"unknown metric {statistic!r}; one of {', '.join(EXPOSURE + tuple(levels) + ('ae_rate',))} "
                        f"(times above/within the scenario's thresholds and windows of {output})")
    return Metric(text, "exposure", output, statistic)


def parse_section(check, raw, scenario):
    """The checked ``[sensitivity]`` table of a scenario."""
    check.keys("sensitivity", raw, SENSITIVITY_KEYS)
    texts = raw["metrics"]
    if not (isinstance(texts, list) and texts):
        check.fail("sensitivity.metrics", "must be a non-empty list such as ['KETAMINE auc', 'power']", value=texts)
    metrics = tuple(parse_metric(check, f"sensitivity.metrics[{i}]", t, scenario) for i, t in enumerate(texts))
    names = uncertain_parameters(check, "sensitivity", scenario.model, raw.get("parameters"))
    n = check.integer("sensitivity.n", raw["n"], minimum=1) if "n" in raw else None
    replicates = check.integer("sensitivity.replicates", raw["replicates"], minimum=1) if "replicates" in raw else None
    sobol = None
    if "sobol" in raw:
        table = raw["sobol"]
        check.keys("sensitivity.sobol", table, SOBOL_KEYS)
        metric = parse_metric(check, "sensitivity.sobol.metric", table["metric"], scenario)
        arm = table.get("arm")
        if arm is not None and metric.kind != "power" and arm not in [a.name for a in scenario.arms]:
            check.fail("sensitivity.sobol.arm", f"no arm named {arm!r}", value=arm)
        samples = check.integer("sensitivity.sobol.samples", table.get("samples", 64), minimum=2)
        if samples & (samples - 1):
            check.fail("sensitivity.sobol.samples", "must be a power of 2 (Sobol' sequence)", value=samples)
        bootstrap = check.integer("sensitivity.sobol.bootstrap", table.get("bootstrap", 200), minimum=10)
        seed = check.integer("sensitivity.sobol.seed", table.get("seed", scenario.seed), minimum=0)
        sobol = SobolOptions(metric, arm, samples, bootstrap, seed)
    return SensitivityOptions(metrics, names, n, replicates, sobol)
