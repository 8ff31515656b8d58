"""The dualnet command-line application (installed as the package dualnet_cli).

BLAS threads and kernels are chosen first, before anything imports NumPy (blas_threads.py says
why); a process that loaded NumPy before importing this package (a test, a notebook) is left as
it is."""

import sys

from . import blas_threads

if "numpy" not in sys.modules:
    blas_threads.choose()
    blas_threads.choose_kernel()
