"""Constants shared by the engine's kernels and its Python side: one source for both.

Numba freezes module-level numbers into the compiled code, so the kernels read these
names as compile-time constants; the Python side (``pkpd._engine``, ``pkpd.events.records``)
imports the same names.
"""

import numpy as np

# status of a subject (pkpd._engine.MESSAGES maps them to messages)
STATUS_OK = 0
STATUS_MAX_STEPS = 1
STATUS_STEP_UNDERFLOW = 2
STATUS_NOT_FINITE = 3
STATUS_SS_NOT_CONVERGED = 4
STATUS_QUEUE_OVERFLOW = 5
STATUS_BAD_MODELLED_RATE = 6
STATUS_BAD_MODELLED_DURATION = 7
STATUS_BAD_BIOAVAILABILITY = 8
STATUS_BAD_LAG = 9
STATUS_SINGULAR = 10
STATUS_PROPAGATOR_NOT_FINITE = 11

# kinds of event record (NONMEM EVID 0/2, 1, 3, 4)
KIND_OBS = 0
KIND_DOSE = 1
KIND_RESET = 3
KIND_RESET_DOSE = 4

# integration methods
METHOD_RK45 = 0
METHOD_ROSENBROCK = 1
METHOD_EXACT = 2
METHODS = {"rk45": METHOD_RK45, "rosenbrock": METHOD_ROSENBROCK, "exact": METHOD_EXACT}

# slots of the option vector
OPT_RTOL = 0
OPT_ATOL = 1
OPT_MAX_STEPS = 2
OPT_H_MAX = 3
OPT_METHOD = 4
OPT_SIZE = 5

# rows of the work matrix (n_states columns)
W_Y = 0
W_RATE = 1
W_TMP = 2
W_NEW = 3
W_K = 4          # 7 rows of stages: 4..10 (Dormand-Prince: k1..k7; RODAS4: k1..k6 and dense output)
W_ERR = 11
W_SS_Y = 12
W_SS_P = 13
W_SS_G = 14
W_SS_RATE = 15
W_SS_BASE = 16
W_Y0 = 17        # state at the start of the step just taken (dense output)
W_C = 18
W_G = 19
W_PIVOT = 20     # row interchanges of an LU factorisation (indices as float64)
W_SS_PERTURBED = 21
W_ROWS = 22

# slots of the event queue
Q_TIME = 0
Q_VALUE = 1      # bolus amount or infusion rate
Q_DURATION = 2
Q_SEQUENCE = 3
QI_KIND = 0      # 0 dose start, 1 infusion end
QI_CMT = 1
QUEUE_DOSE = np.int64(0)     # typed values, not literals: one compiled version of queue_push
QUEUE_INFUSION_END = np.int64(1)

# slots of the dose modifiers a model's dose function fills
MOD_F = 0
MOD_ALAG = 1
MOD_R = 2
MOD_D = 3
MOD_SIZE = 4

# the step-size state: hstate[HS_H] is the step to try next (0: choose one), then the
# exact path's propagator cache (see engine.exact)
HS_H = 0
HS_NEXT = 1
HS_CACHE = 2
CACHE_SLOTS = 4

# matrices of the mats array (n_states x n_states each)
MATS_JAC = 0
MATS_W = 1
MATS_SPARE = 2
MATS_CACHE = 3
MATS_PADE = MATS_CACHE + 2 * CACHE_SLOTS   # scratch of the Pade approximant: 9 matrices
MATS_SS_JAC = MATS_PADE + 9                # the steady-state search's Jacobian of the period map
MATS_SIZE = MATS_SS_JAC + 1
