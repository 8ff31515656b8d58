"""CUDA kernels of dualnet and the machinery around them.

- ``*.cu``: plain CUDA C sources, templated on T (float, double).
- ``signatures``: the one declared table of every kernel (parameters, roles, sizes), plus the
  argument checking and casting shared by both launchers.
- ``launch.CupyLauncher``: compiles through ``cupy.RawModule`` and launches on a GPU.
- ``emulator.EmulatorLauncher``: compiles the same sources with g++ and runs them on the CPU,
  optionally with guard zones and unwritten-output detection (``check=True``).
- ``nvrtc_check.compile_all_ptx``: compiles every kernel to PTX with NVRTC, no GPU needed.

Importing this package imports neither CuPy nor a compiler.
"""
