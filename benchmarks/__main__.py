import os
import sys

# One BLAS thread: the baselines call small-matrix BLAS (scipy.linalg.expm, matrix @ y)
# thousands of times, and OpenBLAS's threads make each call up to 500 times slower on a
# 2-core machine whose other core is busy (measured: expm of a 4x4 matrix 14 us -> 8 ms).
# Set OPENBLAS_NUM_THREADS yourself to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .runner import main  # noqa: E402  (after the environment is set)

sys.exit(main())
