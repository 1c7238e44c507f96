"""Covariates derived from others: creatinine clearance (Cockcroft-Gault) and body mass index.

Units: AGE years, WT kg, HT cm, SCR mg/dL, CRCL mL/min, BMI kg/m2; SEX is coded 0 = male,
1 = female (:data:`MALE`, :data:`FEMALE`).
"""

import numpy as np

from .._errors import PopulationError
from .checks import format_value

MALE = 0
FEMALE = 1
COCKCROFT_GAULT_FEMALE_FACTOR = 0.85
DERIVED_INPUTS = {"CRCL": {"AGE", "WT", "SCR", "SEX"}, "BMI": {"WT", "HT"}}


def cockcroft_gault(age, weight, serum_creatinine, female):
    """Creatinine clearance by Cockcroft and Gault (Nephron 1976;16:31-41).

    ``CRCL = (140 - AGE) * WT / (72 * SCR)``, times 0.85 for women, with total
    body weight.

    Parameters
    ----------
    age : array_like, years (< 140)
    weight : array_like, kg
    serum_creatinine : array_like, mg/dL (divide µmol/L by 88.42)
    female : array_like of bool

    Returns
    -------
    ndarray of float64
        Creatinine clearance, mL/min.

    Examples
    --------
    >>> float(cockcroft_gault(60, 80, 1.2, False)).__round__(3)
    74.074
    """
    clearance = (140.0 - np.asarray(age, dtype=np.float64)) * np.asarray(weight, dtype=np.float64) \
        / (72.0 * np.asarray(serum_creatinine, dtype=np.float64))
    return np.where(np.asarray(female, dtype=bool), COCKCROFT_GAULT_FEMALE_FACTOR * clearance,
                    clearance)


def body_mass_index(weight, height):
    """Body-mass index.

    Parameters
    ----------
    weight : array_like, kg
    height : array_like, cm

    Returns
    -------
    ndarray of float64
        kg/m2.

    Examples
    --------
    >>> float(body_mass_index(81, 180))
    25.0
    """
    height_m = np.asarray(height, dtype=np.float64) / 100.0
    return np.asarray(weight, dtype=np.float64) / (height_m * height_m)


def _first_violation(frame, column, bad, rule, source):
    if bad.any():
        position = int(np.argmax(bad))
        raise PopulationError(f"column {column!r} {rule}", file=source,
                              got=f"{format_value(frame[column].iloc[position])} (subject {frame.index[position]})")


def add_derived_covariates(frame, source="population"):
    """Add CRCL (Cockcroft-Gault) and BMI when their inputs are present.

    CRCL needs AGE, WT, SCR and SEX (0 male, 1 female); BMI needs WT and HT.
    A column already present is kept as given.

    Parameters
    ----------
    frame : pandas.DataFrame, one row per subject
    source : str, optional
        Name for error messages (e.g. the patient file).

    Returns
    -------
    pandas.DataFrame
        A new frame with the derived columns appended.

    Raises
    ------
    PopulationError
        If an input is out of the formula's domain (SCR <= 0, AGE >= 140,
        SEX not 0/1, WT or HT <= 0).
    """
    frame = frame.copy()
    if "CRCL" not in frame and DERIVED_INPUTS["CRCL"] <= set(frame.columns):
        _first_violation(frame, "SCR", ~(frame["SCR"].to_numpy() > 0), "must be > 0 mg/dL", source)
        _first_violation(frame, "AGE", ~(frame["AGE"].to_numpy() < 140),
                         "must be < 140 years for Cockcroft-Gault", source)
        _first_violation(frame, "WT", ~(frame["WT"].to_numpy() > 0), "must be > 0 kg", source)
        _first_violation(frame, "SEX", ~np.isin(frame["SEX"].to_numpy(), (MALE, FEMALE)),
                         "must be 0 (male) or 1 (female)", source)
        frame["CRCL"] = cockcroft_gault(frame["AGE"], frame["WT"], frame["SCR"],
                                        frame["SEX"].to_numpy() == FEMALE)
    if "BMI" not in frame and DERIVED_INPUTS["BMI"] <= set(frame.columns):
        _first_violation(frame, "HT", ~(frame["HT"].to_numpy() > 0), "must be > 0 cm", source)
        frame["BMI"] = body_mass_index(frame["WT"], frame["HT"])
    return frame
