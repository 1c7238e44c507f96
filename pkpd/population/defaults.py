"""The default population: adults with refractory neuropathic pain, as in Pickering et al. (2020)."""

from .derived import FEMALE, MALE


def default_neuropathic_pain_covariates():
    """Covariate distributions of a refractory neuropathic-pain population.

    No source gives the baseline table of Pickering 2020 (LITERATURE.md
    section 6, LITERATURE-2.md section 1), so the anchor is the closest
    published adult chronic neuropathic-pain ketamine population: the
    S-ketamine arm of Dahan 2011 (CRPS-1, Eur J Pain 15:258) as tabulated by
    Otto 2021 (Table 2): 30 patients, 8 men (27 %), age 46 +- 12 y, weight
    79 +- 19 kg. The whole trial (Sigtermans 2009) was 80 % female; the arm's
    73 % is used to keep sex, age and weight from the same patients.

    Everything else is an ASSUMPTION (marked so in each entry's ``source``):
    height, serum creatinine, all bounds and the weight-height correlation.
    Known limitation: height and creatinine do not depend on sex here
    (categorical covariates are outside the copula).

    Returns
    -------
    dict of str to dict
        AGE (years), SEX (0 male, 1 female), WT (kg), HT (cm), SCR (mg/dL);
        :class:`Population` adds CRCL (mL/min) and BMI (kg/m2).

    Examples
    --------
    >>> sorted(default_neuropathic_pain_covariates())
    ['AGE', 'HT', 'SCR', 'SEX', 'WT']
    """
    return {
        "AGE": {
            "distribution": "normal", "mean": 46.0, "sd": 12.0, "min": 18.0, "max": 85.0,
            "unit": "years",
            # Bounds are an assumption: adults only (trial inclusion >= 18 y); 85 y is
            # near the oldest patient of the esketamine pool (86 y, Perez-Ruixo).
            "source": "mean, sd: Dahan 2011 ketamine arm via Otto 2021 Table 2; "
                      "bounds 18-85 y: ASSUMPTION (adults; esketamine pool max 86 y)",
        },
        "SEX": {
            "distribution": "categorical", "values": [MALE, FEMALE],
            "probabilities": [8 / 30, 22 / 30],
            "unit": "0 = male, 1 = female",
            "source": "Dahan 2011 ketamine arm, 8 of 30 men (27 %), via Otto 2021 Table 2; "
                      "Sigtermans 2009 whole trial 80 % female",
        },
        "WT": {
            "distribution": "lognormal", "mean": 79.0, "sd": 19.0, "min": 40.0, "max": 160.0,
            "unit": "kg",
            # Lognormal is an assumption: adult body weight is right-skewed; mean and sd
            # are those of the untruncated parent distribution.
            "source": "mean, sd: Dahan 2011 ketamine arm via Otto 2021 Table 2; lognormal "
                      "shape and bounds 40-160 kg: ASSUMPTION (esketamine pool 39-170 kg)",
        },
        "HT": {
            "distribution": "normal", "mean": 166.0, "sd": 9.0, "min": 145.0, "max": 195.0,
            "unit": "cm",
            # No source reports height. Assumption: a 73 % female / 27 % male mixture of
            # Western European adult heights (women about 162 +- 6.5 cm, men 175 +- 7 cm)
            # has mean about 165.5 cm and sd about 8.8 cm; rounded to 166 +- 9 cm.
            "source": "ASSUMPTION: sex mixture of Western European adult heights",
        },
        "SCR": {
            "distribution": "lognormal", "mean": 0.8, "sd": 0.2, "min": 0.4, "max": 2.0,
            "unit": "mg/dL",
            # No creatinine distribution for chronic-pain patients was found. Assumption:
            # mostly normal renal function, centred on the reference value of the Mg model
            # (Du 2019, SCr 0.8 mg/dL), CV 25 %, bounds close to Du 2019's observed range
            # (0.4-2.1 mg/dL), which also allow mild-to-moderate renal impairment.
            "source": "ASSUMPTION: centred on Du 2019 reference 0.8 mg/dL, CV 25 %, "
                      "bounds near Du 2019 range 0.4-2.1 mg/dL",
        },
    }


def default_neuropathic_pain_correlations():
    """Gaussian-copula correlations of the default population.

    ASSUMPTION: weight and height of adults correlate at about 0.45 (normal
    scores; log weight against height); no source in the literature files.
    Age is taken as independent of both.

    Returns
    -------
    dict
        ``{"names": ["WT", "HT"], "matrix": [[1, 0.45], [0.45, 1]]}``.
    """
    return {"names": ["WT", "HT"], "matrix": [[1.0, 0.45], [0.45, 1.0]]}
