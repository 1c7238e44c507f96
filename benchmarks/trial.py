"""Trial benchmark: 1,000 replicates x 3 sample sizes of the Pickering design, and the
vectorised crossover analysis against statsmodels in the same run.

    python -m benchmarks.trial [--replicates 1000]

Reports: simulation time of the replicate trials (three-period Williams crossover of
saline / ketamine 0.5 mg/kg / ketamine + MgSO4, 35-day periods, 14-day baseline,
n = 20, 40, 80), analysis time of all replicates, and the per-replicate time of a
statsmodels OLS fit of the same model (subject, period, treatment fixed effects)
with the largest difference between the two estimates.
"""

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd

from pkpd.study.scenario import load_scenario
from pkpd.study.trial import analyse, endpoint_values, power_table, simulate_trial_scores
from pkpd.study.trial_design import parse_trial

PICKERING_TRIAL = """
[trial]
design = "crossover"
sequences = "williams"
period = "35 d"
washout = "0 d"
baseline = "14 d"
n = [20, 40, 80]
replicates = 1000
dropout = 0.05
endpoint = { type = "auc", output = "PAIN", days = [1, 35] }
alpha = 0.05
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--statsmodels-replicates", type=int, default=50)
    arguments = parser.parse_args(argv)
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    text = (root / "scenarios" / "pickering2020.toml").read_text() + PICKERING_TRIAL
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pickering2020_trial.toml"
        path.write_text(text)
        scenario = load_scenario(path)
    design = dataclasses.replace(parse_trial(scenario), replicates=arguments.replicates)
    warm = dataclasses.replace(design, replicates=2)
    simulate_trial_scores(scenario, warm)  # compile / load the model outside the timing

    started = time.perf_counter()
    scores, baseline, sequence, stay = simulate_trial_scores(scenario, design)
    simulated = time.perf_counter() - started
    values = endpoint_values(design, scores, baseline)
    started = time.perf_counter()
    table = power_table(design, values, sequence, stay)
    analysed = time.perf_counter() - started

    import statsmodels.formula.api as smf

    n = max(design.sample_sizes)
    count = min(arguments.statsmodels_replicates, design.replicates)
    vectorised = analyse(design, values[:count], sequence, stay[:count], n)
    order = np.asarray(design.sequences)[sequence[:n]]
    started = time.perf_counter()
    largest = 0.0
    for r in range(count):
        rows = [dict(y=values[r, i, p], subject=i, period=p, treatment=order[i, p])
                for i in range(n) for p in range(order.shape[1]) if stay[r, i, p]]
        fit = smf.ols("y ~ C(subject) + C(period) + C(treatment)", data=pd.DataFrame(rows)).fit()
        for (a, b), (estimate, *_rest) in vectorised.items():
            contrast = fit.params.get(f"C(treatment)[T.{a}]", 0.0) - fit.params.get(f"C(treatment)[T.{b}]", 0.0)
            largest = max(largest, abs(contrast - estimate[r]))
    per_fit = (time.perf_counter() - started) / count

    subjects = design.replicates * n * 1  # each patient simulated once through all periods
    fits = design.replicates * len(design.sample_sizes)
    print(f"Pickering design: {design.replicates} replicates x n = {design.sample_sizes}, 3 periods of 35 d")
    print(f"  simulation : {simulated:8.2f} s ({subjects} patients x {len(design.sequences[0])} periods, "
          f"{simulated / subjects * 1e6:.0f} us per patient)")
    print(f"  analysis   : {analysed:8.3f} s for {fits} trial fits x {len(design.comparisons)} comparisons "
          f"({analysed / fits * 1e6:.0f} us per trial)")
    print(f"  statsmodels: {per_fit * 1e3:8.2f} ms per trial fit (OLS, {count} replicates at n = {n}); "
          f"vectorised is {per_fit / (analysed / fits):.0f}x faster; largest estimate difference {largest:.2e}")
    print(table[["comparison", "n_total", "power", "power_low", "power_high", "mean_estimate"]].to_string(index=False))


if __name__ == "__main__":
    main()
