"""The test doubles of tests and benchmarks, in one place (`from standins import ...`: pytest puts
tests/ on the path; a benchmark adds it itself).

- `multi_gpu_cupy`: a `cupy` with several GPUs that follows CuPy's current-device rules; arrays hold
  data, dualnet's kernels run in the emulator (device scoping, GPU probe and error tests).
- `counting_cupy` over `counting_array`: a `cupy` whose arrays carry shapes but no data; every
  device operation and host sync is counted (benchmarks/gpu_host_overhead.py).
- `nccl`: `cupy.cuda.nccl` and an MPI communicator for ranks that are threads of one process.
- `layers`: layer classes the export tests need, preferring the real ones.
"""
