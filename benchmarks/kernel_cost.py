"""The roofline-and-latency model behind gpu_kernel_report.py: what one launch costs on a named GPU,
estimated on paper from its launch shape, the bytes it moves, its FLOPs and its longest serial loop.

Every figure it gives is an ESTIMATE (good to about a factor of 2 per kernel; the ranking of the
kernels is the reliable part). The model, per launch:

    time = launch + max(bytes / bandwidth, flops / flop peak, instructions / issue rate,
                        re-read bytes / L2 bandwidth, (bytes + re-read bytes) / SM port bandwidth)

  - launch: the GPU-side gap of one more kernel in a stream of dependent launches (`launch_us`);
  - bandwidth: the peak, unless too few threads are in flight to cover the memory latency
    (Little's law: threads in flight x `ilp` loads of `word` bytes each per `mem_latency_us`), which
    is what a kernel of a few thousand threads, each walking a row serially, runs into. `ilp` and
    `word` are the GPU's defaults (4 loads of 4 bytes) unless a launch states its own, justified by
    its kernel's code (the batch-norm kernels: at least 4 independent 16-byte loads in flight per thread,
    float4 / double2, where inner and the strides are multiples of the vector: norm.cu);
  - flop peak: FP32 or FP64 CUDA cores, or TF32 tensor cores; products (cuBLAS, cuDNN) reach
    `gemm_efficiency` of it on full waves of 128 x 128 tiles, less on a partial last wave; as cuBLAS's
    heuristics do, smaller tiles (64 x 64 at 80%, 32 x 32 at 60% of that efficiency) and split-K are
    assumed where they fill the GPU better, whichever the model finds fastest;
  - instructions: items x instructions per item over the GPU's issue rate (4 warp schedulers per
    SM, one warp instruction each per cycle): index arithmetic with 64-bit division, as im2col and
    col2im decode every element, is instruction-bound before it is memory-bound.
  - re-read bytes: what a kernel reads again and again from L2 (a gather whose blocks share their
    inputs, as conv_wgrad_direct's one block per weight does; the batch-norm kernels' second pass
    over the channel their block just read), at `l2_bandwidth`. ASSUMED an L2 hit: the working set
    of the blocks in flight (at most 132 channels x their arrays) fits the 50 MB L2 for the models
    reported; a larger one would read it from memory again;
  - SM port bandwidth: a block runs on one SM, and one SM moves at most `sm_bytes_per_clock` bytes
    per clock between its L1 and L2 (ASSUMED 64 B/clock, ~112 GB/s at 1.755 GHz: the order of one
    SM's L1 <-> L2 path, not measured here), so a launch of fewer blocks than SMs (one block per
    channel of a 16-channel layer) gets min(grid, SMs) x that, for its memory and L2 bytes alike;
    with a full grid the cap (14.8 TB/s on an H100) never binds.
  - dualnet's own tiled products (conv_dgrad: shared-memory tiles, 4 x 4 outputs per thread, on the
    FP32/FP64 CUDA cores, not cuBLAS) reach `TILED_EFFICIENCY` of the FLOP peak on the SMs that hold a
    block (a grid of fewer blocks than SMs leaves the rest idle): see TILED_EFFICIENCY for why 40%;
The serial loop of a thread (its grid-stride share of the items x the loop inside each item) bounds
the time from below at `serial_ns` per iteration. Host time is not in this model: see
gpu_host_overhead.py for dualnet's and the report's host line for the assumption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: the fraction of the FLOP peak assumed for dualnet's shared-memory tiled product kernels (conv_dgrad):
#: per step of 8 K rows a thread issues 8 x (4 + 4 shared loads + 16 FMAs) = 192 instructions, 128 of
#: them FMAs (67% at best), plus its share of the tile loads (2-8 global loads and shared stores and
#: their address arithmetic) and two barriers; the tiles are not double-buffered, so a step's global
#: loads are hidden only by the other resident blocks (256 threads and 10 KB of shared memory each:
#: several per SM). Issue alone caps it near 55%; barrier and load stalls take it to an assumed 40%,
#: against cuBLAS's 70% (`Gpu.gemm_efficiency`: double-buffered, larger tiles, FP32 without tensor cores).
TILED_EFFICIENCY = 0.4


@dataclass(frozen=True)
class Gpu:
    """A GPU's published peaks and the model's assumed latencies."""

    name: str
    sms: int
    threads_per_sm: int
    blocks_per_sm: int
    shared_per_sm: int          # bytes of shared memory per SM
    bandwidth: float            # bytes/s, HBM peak
    fp32: float                 # FLOP/s, CUDA cores (FMA = 2)
    fp64: float
    tf32: float                 # FLOP/s, dense tensor cores
    clock: float                # Hz, sustained boost
    l2_bandwidth: float = 7e12  # bytes/s, L2 reads (microbenchmarks put an H100's at 5.5-10 TB/s)
    launch_us: float = 2.5      # one more dependent kernel in a stream, GPU side
    sm_bytes_per_clock: float = 64.0  # one SM's L1 <-> L2 traffic per clock (loads and stores)
    mem_latency_us: float = 0.6
    ilp: int = 4                # independent loads in flight per thread
    word: int = 4               # bytes per load
    gemm_efficiency: float = 0.7
    serial_ns: float = 2.0      # per iteration of a thread's serial loop (load-use chain, cached)

    @property
    def resident_threads(self) -> int:
        return self.sms * self.threads_per_sm

    @property
    def issue_rate(self) -> float:
        """Thread-instructions per second: 4 schedulers x 32 lanes per SM per cycle."""
        return self.sms * 4 * 32 * self.clock

    def describe(self) -> str:
        return (f"{self.name}: {self.sms} SMs x {self.threads_per_sm} threads, {self.bandwidth / 1e12:.2f} TB/s, "
                f"FP32 {self.fp32 / 1e12:.0f} / FP64 {self.fp64 / 1e12:.0f} / TF32 {self.tf32 / 1e12:.0f} TFLOP/s "
                f"(dense), {self.clock / 1e9:.2f} GHz; assumed: {self.launch_us} us per launch, memory latency "
                f"{self.mem_latency_us} us with {self.ilp} loads of {self.word} B in flight per thread, products at "
                f"{self.gemm_efficiency:.0%} of peak on full waves, {self.serial_ns} ns per serial loop iteration, "
                f"L2 re-reads at {self.l2_bandwidth / 1e12:.1f} TB/s, {self.sm_bytes_per_clock:.0f} B/clock per SM "
                f"({self.sm_bandwidth / 1e9:.0f} GB/s)")

    @property
    def sm_bandwidth(self) -> float:
        """Bytes/s one SM moves to and from L2 (loads and stores)."""
        return self.sm_bytes_per_clock * self.clock


GPUS = {
    "h100-sxm": Gpu("H100 SXM", 132, 2048, 32, 228 * 1024, 3.35e12, 67e12, 34e12, 494e12, 1.755e9),
    "h200": Gpu("H200", 132, 2048, 32, 228 * 1024, 4.8e12, 67e12, 34e12, 494e12, 1.755e9),
    "a100-sxm": Gpu("A100 SXM 80GB", 108, 2048, 32, 164 * 1024, 2.04e12, 19.5e12, 9.7e12, 156e12, 1.41e9,
                    l2_bandwidth=5e12),
}


@dataclass
class Launch:
    """One launch as the model sees it; `time_us` and `bound` are filled by `cost`."""

    kernel: str
    grid: int                   # blocks
    block: int                  # threads per block
    shared: int                 # bytes of shared memory per block
    nbytes: int                 # bytes read + written (each element once)
    flops: float
    serial: int                 # the longest serial loop of one thread, iterations
    instructions: float = 0.0   # thread-instructions over all threads (0: not instruction-bound)
    math: str = "fp32"          # fp32 | fp64 | tf32: which FLOP peak applies
    gemm: tuple[int, int, int] | None = None  # (m, n, k) of a product
    l2_bytes: int = 0           # bytes read again from L2 (beyond nbytes from memory)
    ilp: int = 0                # independent loads in flight per thread (0: the GPU's default)
    word: int = 0               # bytes per load (0: the GPU's default)
    tiled: bool = False         # a shared-memory tiled product kernel: FLOPs at TILED_EFFICIENCY of the peak
    time_us: float = 0.0
    bound: str = ""

    @property
    def threads(self) -> int:
        return self.grid * self.block


def waves(gpu: Gpu, launch: Launch) -> float:
    """Blocks over what the GPU holds at once (SMs x resident blocks per SM, by threads and shared memory)."""
    per_sm = min(gpu.blocks_per_sm, gpu.threads_per_sm // max(launch.block, 1))
    if launch.shared:
        per_sm = min(per_sm, gpu.shared_per_sm // launch.shared)
    return launch.grid / max(gpu.sms * max(per_sm, 1), 1)


def _peak(gpu: Gpu, math_kind: str) -> float:
    return {"fp32": gpu.fp32, "fp64": gpu.fp64, "tf32": gpu.tf32}[math_kind]


def gemm_launch(name: str, m: int, n: int, k: int, itemsize: int, math_kind: str, nbytes: int | None = None) -> Launch:
    """A cuBLAS/cuDNN product C (m, n) = A (m, k) B (k, n), in 128 x 128 tiles of 256 threads."""
    tiles = math.ceil(m / 128) * math.ceil(n / 128)
    moved = (m * k + k * n + m * n) * itemsize if nbytes is None else nbytes
    return Launch(name, tiles, 256, 0, moved, 2.0 * m * n * k, k, math=math_kind, gemm=(m, n, k))


def _gemm_flop_time(gpu: Gpu, launch: Launch, m: int, n: int, k: int, tile: int, efficiency: float) -> float:
    """Seconds of arithmetic for tiles of tile x tile outputs, split-K where K is long enough to
    share (256 per split at least) and the tiles alone leave SMs idle."""
    tiles = math.ceil(m / tile) * math.ceil(n / tile)
    split = max(1, min(gpu.sms // tiles, k // 256)) if tiles < gpu.sms else 1
    work = tiles * split
    fill = work / (math.ceil(work / gpu.sms) * gpu.sms)
    return launch.flops / (_peak(gpu, launch.math) * gpu.gemm_efficiency * efficiency * fill)


def cost(gpu: Gpu, launch: Launch) -> Launch:
    """Fill launch.time_us and launch.bound (what limits it) from the model in the module docstring."""
    if launch.gemm is not None:
        m, n, k = launch.gemm
        t_flop = min(_gemm_flop_time(gpu, launch, m, n, k, t, e) for t, e in ((128, 1.0), (64, 0.8), (32, 0.6)))
        t_mem = launch.nbytes / gpu.bandwidth
        terms = {"flops": t_flop, "memory": t_mem}
    else:
        in_flight = min(launch.threads, gpu.resident_threads)
        ilp, word = launch.ilp or gpu.ilp, launch.word or gpu.word
        bandwidth = min(gpu.bandwidth, in_flight * ilp * word / (gpu.mem_latency_us * 1e-6))
        sm_port = min(launch.grid, gpu.sms) * gpu.sm_bandwidth
        rate = _peak(gpu, launch.math)
        if launch.tiled:  # only the SMs that hold a block compute
            rate *= TILED_EFFICIENCY * min(1.0, launch.grid / gpu.sms)
        terms = {
            "memory": launch.nbytes / bandwidth if launch.nbytes else 0.0,
            "flops": launch.flops / rate,
            "instructions": launch.instructions / gpu.issue_rate,
            "serial loop": launch.serial * gpu.serial_ns * 1e-9,
            "L2 re-reads": launch.l2_bytes / gpu.l2_bandwidth,
            "SM ports (few blocks)": (launch.nbytes + launch.l2_bytes) / max(sm_port, 1.0),
        }
        if bandwidth < gpu.bandwidth and terms["memory"] == max(terms.values()):
            terms = {("latency (few threads)" if k == "memory" else k): v for k, v in terms.items()}
    bound, t = max(terms.items(), key=lambda kv: kv[1])
    launch.time_us = gpu.launch_us + t * 1e6
    launch.bound = bound if t * 1e6 > gpu.launch_us else "launch"
    return launch
