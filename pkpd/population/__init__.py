"""Virtual populations: covariates, random effects and residual error.

One module per concept: ``covariates`` (distributions, correlations, sampling), ``derived``
(creatinine clearance, body mass index), ``resampling`` (tables of real patients),
``defaults`` (the default neuropathic-pain population), ``random_effects`` (IIV, IOV, residual
error), ``matrices`` (OMEGA and correlation matrices), ``checks`` (seeds, ids, numbers) and
``population`` (:class:`Population`, which puts them together).

Everything random here is drawn from the per-subject counter-based streams of
:mod:`pkpd._random`, so each subject's numbers depend only on ``(seed,
subject id, stream, column)``: a population drawn whole, in chunks, or for a
range of subject ids gives bit-identical rows. Stream names used here:

=====================  ====================================================
``covariates/NAME``    one stream per covariate (adding a covariate leaves
                       the others unchanged unless they are correlated)
``resample``           row picked from a table of real patients
``iiv``                inter-individual random effects (column = eta index)
``iov``                inter-occasion effects (column = occasion * k + eta)
``residual``           residual error (columns 2t and 2t+1 for time index t);
                       use ``residual/OUTPUT`` for a second output
=====================  ====================================================

Units: AGE years, WT kg, HT cm, SCR mg/dL, CRCL mL/min, BMI kg/m2; SEX is
coded 0 = male, 1 = female (:data:`MALE`, :data:`FEMALE`).

Arithmetic that mixes columns (Cholesky factors of OMEGA and of covariate
correlations) is done column by column with NumPy element-wise operations,
never by BLAS matrix products, whose summation order may depend on the number
of rows; this keeps chunked results bit-identical.
"""

from .covariates import (Categorical, Constant, LogNormal, Normal, Uniform, parse_correlations, parse_covariate,
                         sample_covariates)
from .defaults import default_neuropathic_pain_correlations, default_neuropathic_pain_covariates
from .derived import FEMALE, MALE, add_derived_covariates, body_mass_index, cockcroft_gault
from .matrices import omega_cholesky
from .population import Population
from .random_effects import EFFECT_FORMS, add_residual_error, apply_random_effects, sample_iiv, sample_iov
from .resampling import read_patients, resample_patients

__all__ = ["Population", "MALE", "FEMALE", "EFFECT_FORMS", "Normal", "LogNormal", "Uniform", "Categorical", "Constant",
           "parse_covariate", "parse_correlations", "sample_covariates", "cockcroft_gault", "body_mass_index",
           "add_derived_covariates", "read_patients", "resample_patients", "default_neuropathic_pain_covariates",
           "default_neuropathic_pain_correlations", "omega_cholesky", "sample_iiv", "sample_iov",
           "apply_random_effects", "add_residual_error"]
