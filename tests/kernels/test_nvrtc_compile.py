"""Every kernel source, both template types, compiles with NVRTC for compute_80 and compute_90.

No GPU or driver needed: NVRTC is driven directly through cupy_backends (see
dualnet.kernels.nvrtc_check).  CI installs cupy-cuda12x and nvidia-cuda-nvrtc-cu12.
"""

from __future__ import annotations

import re

import pytest

pytest.importorskip("cupy_backends.cuda.libs.nvrtc",
                    reason="cupy_backends not importable: pip install cupy-cuda12x "
                           "nvidia-cuda-nvrtc-cu12 to run the NVRTC compile check")

from dualnet.kernels.errors import KernelCompileError  # noqa: E402
from dualnet.kernels.nvrtc_check import (  # noqa: E402
    DEFAULT_ARCHS,
    compile_all_ptx,
    compile_source_ptx,
    compile_sources,
    nvrtc_version,
)
from dualnet.kernels.signatures import (  # noqa: E402
    KERNELS,
    Kernel,
    KernelTable,
    array_in,
    array_inout,
    array_out,
    int32,
)


@pytest.fixture(scope="module", params=DEFAULT_ARCHS)
def compiled(request):
    return request.param, compile_sources(request.param)


def entry_body(ptx: str, lowered: str) -> str:
    """The PTX of one kernel entry point."""
    parts = re.split(r"\n(?=\.(?:visible|weak) \.entry )", ptx)
    found = [p for p in parts if re.match(rf"\.(?:visible|weak) \.entry {re.escape(lowered)}\(", p)]
    assert len(found) == 1, f"entry {lowered} not found exactly once in the PTX"
    return found[0]


def test_nvrtc_loads():
    assert nvrtc_version() >= (12, 0)


def test_every_instantiation_compiles(compiled):
    arch, results = compiled
    assert sorted(r.source for r in results) == sorted(KERNELS.sources())
    names = set()
    for r in results:
        assert r.arch == arch and r.ptx.strip(), f"{r.source}: empty PTX"
        assert f".target sm_{arch.split('_')[1]}" in r.ptx
        for name, lowered in r.lowered.items():
            assert lowered in r.ptx, f"{name} ({lowered}) missing from the PTX of {r.source}"
            names.add(name)
    assert names == set(KERNELS.instantiations())
    assert len(names) == 2 * len(KERNELS)


def test_template_type_used_everywhere(compiled):
    """float instantiations never touch double, double ones never load or store float."""
    _, results = compiled
    for r in results:
        for name, lowered in r.lowered.items():
            body = entry_body(r.ptx, lowered)
            if name.endswith("<float>"):
                assert not re.search(r"\.f64\b", body), f"{name} computes in double"
            else:
                assert not re.search(r"\b(?:ld|st)\.[\w.]*f32\b", body), f"{name} stores float"


def test_compile_all_ptx_maps_every_instantiation():
    ptx = compile_all_ptx("compute_90")
    assert set(ptx) == set(KERNELS.instantiations())
    assert all(".target sm_90" in p for p in ptx.values())


def test_compile_error_names_file_and_log(tmp_path):
    (tmp_path / "bad.cu").write_text("template <typename T>\n__global__ void bad(T* y, int n) "
                                     "{ y[0] = not_declared; }\n")
    table = KernelTable([Kernel("bad", "bad.cu", (array_out("y", "n"), int32("n")), "n")], tmp_path)
    with pytest.raises(KernelCompileError, match=r"(?s)bad\.cu.*compute_80.*not_declared"):
        compile_source_ptx(table, "bad.cu", "compute_80")


def test_no_kernel_fuses_multiply_adds_as_the_emulator_does_not(compiled):
    """NVRTC compiles with --fmad=false (the launcher's options): the PTX has separate mul/add
    instructions and no fma, as the emulator's g++ -ffp-contract=off, so a GPU rounds like the
    emulator. (With NVRTC's default, --fmad=true, `a * b + c` becomes fma.rn: 227 of them in
    optim.cu, fused.cu and norm.cu.) CUDA's own exp/log (libdevice) use fma inside whatever the
    option; a source that calls them is held to the device-agreement tolerances instead."""
    _, results = compiled
    for res in results:
        if re.search(r"\b(?:exp|log|expf|logf)\s*\(", KERNELS.read_source(res.source)):
            continue
        assert "fma.rn" not in res.ptx, f"{res.source} ({res.arch}): fused multiply-add in the PTX"


def test_the_default_nvrtc_options_would_fuse_a_multiply_add(tmp_path):
    """The check above can fail: the same kind of source compiled without --fmad=false gives fma."""
    (tmp_path / "madd.cu").write_text(
        'template <typename T>\n__global__ void madd(const T* a, const T* b, T* c, int n) {\n'
        '    int i = blockIdx.x * blockDim.x + threadIdx.x;\n    if (i < n) c[i] = a[i] * b[i] + c[i];\n}\n')
    table = KernelTable([Kernel("madd", "madd.cu", (array_in("a", "n"), array_in("b", "n"), array_inout("c", "n"),
                                                   int32("n")), "n")], tmp_path)
    fused = compile_source_ptx(table, "madd.cu", "compute_80", options=("--std=c++14",)).ptx
    plain = compile_source_ptx(table, "madd.cu", "compute_80").ptx
    assert "fma.rn" in fused and "fma.rn" not in plain
