"""The adverse-event model of ``ketamine_mg_pain``, fitted to published incidence data.

Psychotomimetic adverse events: a binomial maximum-likelihood fit of a log-logistic curve with a
background rate to per-arm incidences of published trials (counts and n per arm, below), each arm's
exposure being the peak S-ketamine-equivalent concentration the model itself gives for that arm's
regimen (typical 70-kg subject). Two candidate exposures are fitted and compared by likelihood:
the arterial plasma peak (the output ``CS_ARTERIAL``) and the peak at the 8.3-min analgesic effect
site (``KET_EFFECT``); the file uses the better one.

Magnesium-infusion adverse events: one published risk difference (Choi & Parmar 2014) fixes the
midpoint of a hyperbolic curve in the central magnesium excess; its uncertainty comes from the
published 95 % interval by the delta method.

**Pickering 2020's adverse-event rates are a validation target and are used nowhere here.**

Invariants: the fit is deterministic (fixed starting grid, Nelder-Mead to 1e-12); the model file's
``C50_AE``, ``GAM_AE``, ``P_PSY0`` and ``C50_MG_AE`` inputs equal :func:`psychotomimetic_fit` and
:func:`magnesium_term` (``tests/test_adverse_events.py``), so a change of the PK that moves the
exposures shows up as a failing test, not as a silently stale parameter.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logit

from .model import load_model
from .population import Population
from .events.regimen import Dose
from ._simulate import simulate
from ._units import MMOL_MG_PER_G_MGSO4_7H2O

MODEL = "ketamine_mg_pain"
WEIGHT = 70.0                       # kg, the typical subject of the fit
MOTOV = ("Motov S, et al. Am J Emerg Med 2017;35(8):1095-1100, PMID 28283340: 0.3 mg/kg IV push vs "
         "0.3 mg/kg over 15 min, feeling of unreality (SERSDA) 92 % vs 54 %, 48 patients (24 per arm, inferred "
         "from the difference 37.5 % = 9/24)")
SIGTERMANS = ("Sigtermans MJ, et al. Pain 2009;145:304-311, doi:10.1016/j.pain.2009.06.023, PMID 19604642: "
              "S-ketamine 4.2-day infusion ending at 22.2 mg/h/70 kg vs placebo, psychomimetic side effects "
              "76 % vs 18 %, n = 30 per arm")
CHOI_PARMAR = ("Choi H, Parmar N. Eur J Emerg Med 2014;21(1):2-9, doi:10.1097/MEJ.0b013e3283646e1b: IV MgSO4 "
               "1-2 g over 10-15 min vs control, adverse events risk difference 0.370 (95 % CI 0.06-0.68), "
               "5 RCTs, 295 adults")
DUARTE = ("Duarte GS, et al. medRxiv 2022, doi:10.1101/2022.02.18.22271196: 50 % of 5,693 placebo patients in neuropathic-pain "
          "trials of >= 8 weeks reported an adverse event")


@dataclass(frozen=True)
class Arm:
    """One published arm: its regimen (doses of ``ketamine_mg_pain``), events and patients."""
    study: str
    label: str
    regimen: tuple
    events: float
    patients: int
    stop: float = 8.0               # h simulated to find the peak
    step: float = 1 / 600           # h


def _sigtermans_regimen():
    # ASSUMED steps (the abstract gives only 5 mg/h/70 kg at the start and 22.2 at the end of 100 h); S-ketamine
    # given as twice the racemate, so that the model's S-equivalent (FS_EQ = 0.5) is the S-ketamine dose
    schedule = ((0.0, 5.0, 24.0), (24.0, 10.0, 24.0), (48.0, 15.0, 24.0), (72.0, 22.2, 28.0))
    return tuple(Dose(None, "ketamine", time=start, rate=2.0 * rate / 70.0, duration=hours, per_weight=True)
                 for start, rate, hours in schedule)


ARMS = (
    Arm("Motov 2017", "racemic 0.3 mg/kg IV push (4 min, ASSUMED within the stated 3-5 min)",
        (Dose(0.3, "ketamine", duration=4 / 60, per_weight=True),), 22, 24),
    Arm("Motov 2017", "racemic 0.3 mg/kg over 15 min", (Dose(0.3, "ketamine", duration=0.25, per_weight=True),), 13, 24),
    Arm("Sigtermans 2009", "S-ketamine 5 -> 22.2 mg/h/70 kg over 100 h", _sigtermans_regimen(), 0.76 * 30, 30,
        stop=110.0, step=0.05),
    Arm("Sigtermans 2009", "placebo (saline) over 100 h", (), 0.18 * 30, 30, stop=1.0, step=0.5),
)


def _typical():
    return Population(1, {"WT": {"distribution": "constant", "value": WEIGHT}}, seed=1)


def exposures(arm, model=None):
    """Peak S-ketamine-equivalent concentrations (nmol/mL) of `arm` for the typical subject:
    ``{"arterial": peak of CS_ARTERIAL, "effect site": peak of KET_EFFECT / MW_K}``."""
    if not arm.regimen:
        return {"arterial": 0.0, "effect site": 0.0}
    model = model or load_model(MODEL)
    times = np.arange(0.0, arm.stop, arm.step)
    result = simulate(model, list(arm.regimen), _typical(), times, variability=False, progress=False)
    effect = result.states[0, :, list(model.compartments).index("KET_EFFECT")] / model.parameters["MW_K"].value
    return {"arterial": float(result.output("CS_ARTERIAL")[0].max()), "effect site": float(effect.max())}


def incidence(concentration, c50, gamma, background):
    """Probability of the event: ``1 - (1 - background) * (1 - E)``, ``E = C^g / (C^g + C50^g)`` (0 at C = 0)."""
    concentration = np.asarray(concentration, dtype=float)
    ratio = np.where(concentration > 0, concentration, 1.0) / c50
    drug = np.where(concentration > 0, 1.0 / (1.0 + ratio ** -gamma), 0.0)
    return 1.0 - (1.0 - background) * (1.0 - drug)


@dataclass(frozen=True)
class Fit:
    """A binomial ML fit: estimates, their standard errors and the fit's log-likelihood."""
    exposure: str
    c50: float                 # nmol/mL
    gamma: float
    background: float
    se_log_c50: float          # SE of log C50 (about the CV of C50)
    se_log_gamma: float
    se_logit_background: float
    se_c50: float              # delta method, nmol/mL
    se_gamma: float
    se_background: float
    log_likelihood: float
    concentrations: tuple      # the arms' exposures, nmol/mL
    predicted: tuple           # the fitted incidence of each arm

    @property
    def aic(self):
        return 2 * 3 - 2 * self.log_likelihood


def _negative_log_likelihood(theta, concentration, events, patients):
    p = np.clip(incidence(concentration, np.exp(theta[0]), np.exp(theta[1]), expit(theta[2])), 1e-12, 1 - 1e-12)
    return -float(np.sum(events * np.log(p) + (patients - events) * np.log1p(-p)))


def _hessian(function, theta, step=1e-4):
    k = len(theta)
    hessian = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            di, dj = np.eye(k)[i] * step, np.eye(k)[j] * step
            hessian[i, j] = (function(theta + di + dj) - function(theta + di - dj)
                             - function(theta - di + dj) + function(theta - di - dj)) / (4 * step * step)
    return hessian


def fit(concentration, events, patients, exposure="arterial"):
    """Binomial ML fit of :func:`incidence` on (log C50, log gamma, logit background); SEs from the
    inverse of the observed information (numerical Hessian at the optimum)."""
    concentration, events, patients = (np.asarray(a, dtype=float) for a in (concentration, events, patients))

    def objective(theta):
        return _negative_log_likelihood(theta, concentration, events, patients)

    starts = [(np.log(c), np.log(g), logit(0.15)) for c in (0.3, 0.6, 1.0) for g in (1.0, 2.0, 4.0)]
    best = min((minimize(objective, start, method="Nelder-Mead",
                         options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000}) for start in starts),
               key=lambda r: r.fun)
    theta = best.x
    se = np.sqrt(np.diag(np.linalg.inv(_hessian(objective, theta))))
    c50, gamma, background = np.exp(theta[0]), np.exp(theta[1]), expit(theta[2])
    predicted = incidence(concentration, c50, gamma, background)
    return Fit(exposure, float(c50), float(gamma), float(background), *map(float, se),
               float(c50 * se[0]), float(gamma * se[1]), float(background * (1 - background) * se[2]),
               -float(best.fun), tuple(map(float, concentration)), tuple(map(float, predicted)))


def psychotomimetic_fits(model=None):
    """Both candidate fits, ``{"arterial": Fit, "effect site": Fit}``, on :data:`ARMS`."""
    model = model or load_model(MODEL)
    table = [exposures(arm, model) for arm in ARMS]
    events = [arm.events for arm in ARMS]
    patients = [arm.patients for arm in ARMS]
    return {kind: fit([row[kind] for row in table], events, patients, kind) for kind in ("arterial", "effect site")}


def psychotomimetic_fit(model=None):
    """The fit the model file uses: the candidate with the higher likelihood (same number of parameters)."""
    return max(psychotomimetic_fits(model).values(), key=lambda f: f.log_likelihood)


# --- magnesium --------------------------------------------------------------------------------------------
RD_MG = 0.37                    # Choi & Parmar 2014 pooled risk difference
RD_MG_CI = (0.06, 0.68)         # its 95 % interval
NOCEBO = 0.5                    # Duarte 2022: placebo patients with an AE over NOCEBO_WEEKS
NOCEBO_WEEKS = 8.0              # Duarte's minimum trial length (ASSUMED the observation period)
AE_WINDOW_WEEKS = 1.0           # ASSUMED: adverse events of one infusion counted over one week
CHOI_REGIMEN = (Dose(1.5 * MMOL_MG_PER_G_MGSO4_7H2O, "magnesium", duration=12.5 / 60),)   # middle of 1-2 g / 10-15 min


SOURCES = (MOTOV, SIGTERMANS, CHOI_PARMAR, DUARTE)


def background_any():
    """Probability of any adverse event on placebo over the counting window (constant hazard)."""
    return 1.0 - (1.0 - NOCEBO) ** (AE_WINDOW_WEEKS / NOCEBO_WEEKS)


@dataclass(frozen=True)
class MagnesiumTerm:
    reference_excess: float    # mmol/L, peak central magnesium excess of the Choi & Parmar regimen
    c50: float                 # mmol/L, midpoint of the hyperbolic curve
    se_c50: float              # mmol/L, delta method from the published 95 % interval
    probability: float         # the magnesium-attributable probability at the reference excess


def magnesium_term(model=None):
    """Midpoint of ``P = X / (X + C50)`` in the peak central magnesium excess X (mmol/L) through the
    Choi & Parmar risk difference, read as an independent risk on top of the background."""
    model = model or load_model(MODEL)
    times = np.arange(0.0, 3.0, 1 / 600)
    result = simulate(model, list(CHOI_REGIMEN), _typical(), times, variability=False, progress=False)
    excess = float(result.output("MG_EXCESS")[0].max())
    control = background_any()
    probability = RD_MG / (1.0 - control)
    c50 = excess * (1.0 - probability) / probability
    se_rd = (RD_MG_CI[1] - RD_MG_CI[0]) / (2 * 1.959964)
    # dC50/dRD = -excess / (1 - control) / p^2
    se_c50 = excess / (1.0 - control) / probability ** 2 * se_rd
    return MagnesiumTerm(excess, c50, se_c50, probability)
