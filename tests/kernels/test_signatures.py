"""The declared table matches the .cu sources, and the sources follow the kernel rules."""

from __future__ import annotations

import re

import pytest

from dualnet.kernels.binding import grid_size
from dualnet.kernels.signatures import KERNELS, Kernel, KernelTable, Param, array_out, int32

SOURCES = sorted(KERNELS.sources())
TEMPLATE = re.compile(r"template\s*<\s*typename\s+T\s*>\s*__global__\s+void\s+(?:__launch_bounds__\(\w+\)\s+)?(\w+)"
                      r"\s*\(([^)]*)\)\s*\{")


def kernels_in(source: str) -> dict[str, tuple[list[str], str]]:
    """name -> (parameter declarations, body) of every templated __global__ in a source."""
    text = KERNELS.read_source(source)
    out = {}
    for m in TEMPLATE.finditer(text):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        params = [" ".join(p.replace("__restrict__", "").split()) for p in m.group(2).split(",")]
        out[m.group(1)] = (params, text[m.end():i])
    return out


@pytest.mark.parametrize("source", SOURCES)
def test_declarations_match_source(source):
    found = kernels_in(source)
    declared = {k.name: k for k in KERNELS.sources()[source]}
    assert sorted(found) == sorted(declared), f"{source}: kernels defined vs declared differ"
    for name, (params, _) in found.items():
        want = [f"{p.ctype} {p.name}" for p in declared[name].params]
        assert params == want, f"{name}: source {params} != table {want}"


RANGE = re.compile(r"__device__ __forceinline__ void (\w+_range)\(")


@pytest.mark.parametrize("source", SOURCES)
def test_source_rules(source):
    text = KERNELS.read_source(source)
    assert "atomic" not in text.lower(), f"{source} uses atomics"
    assert "#include" not in text
    # a grid-stride kernel may keep its loop in a helper templated on the index type
    # (`name_range<unsigned>` where 32 bits suffice, `<long long>` otherwise)
    helpers = {m.group(1): text[m.end():text.find("\n}\n", m.end())] for m in RANGE.finditer(text)}
    for name, (_, body) in kernels_in(source).items():
        assert not re.search(r"\b(?:float|double)\b|\d\.?\d*f\b", body), f"{name} hard-codes a type"
        if KERNELS[name].cooperative:  # a declared grid: the launch covers the work, no stride loop
            assert "blockIdx.x" in body, f"{name}: cooperative kernel ignores its block"
            continue
        if f"{name}_range<long long>" in body:
            assert f"{name}_range<unsigned>" in body
            body = helpers[f"{name}_range"]
            assert "(I)blockIdx.x * blockDim.x + threadIdx.x" in body, f"{name}: not grid-stride"
            assert "(I)blockDim.x * gridDim.x" in body, f"{name}: not grid-stride"
            continue
        if "DN_FOR_EACH(" in body:  # device.cuh's grid-stride loop (checked below)
            continue
        assert "(long long)blockIdx.x * blockDim.x + threadIdx.x" in body, f"{name}: not grid-stride"
        assert "(long long)blockDim.x * gridDim.x" in body, f"{name}: not grid-stride"


def test_the_shared_loop_is_grid_stride():
    text = KERNELS.read_source("pooling.cu")
    loop = text[text.index("#define DN_FOR_EACH"):]
    loop = loop[:loop.index("\n\n")]
    assert "(long long)blockIdx.x * blockDim.x + threadIdx.x" in loop
    assert "(long long)blockDim.x * gridDim.x" in loop


def test_name_expressions_and_signature():
    assert KERNELS.name_expressions("im2col.cu") == ["im2col<float>", "im2col<double>",
                                                     "col2im<float>", "col2im<double>"]
    assert len(KERNELS.instantiations()) == 2 * len(KERNELS) >= 38
    assert KERNELS["relu_backward"].signature("float") == (
        "relu_backward<float>(const float* dy, const float* y, float* dx, long long size)")


def test_conv_and_pool_families_share_argument_order():
    conv = [p.name for p in KERNELS["im2col"].params[2:]]
    assert conv == [p.name for p in KERNELS["col2im"].params[2:]]
    assert conv == "n c h w kh kw sh sw ph pw dh dw out_h out_w".split()
    # pooling windows are convolution windows (dilation included); average pooling adds its divisor rule
    for name in ("maxpool_forward", "maxpool_backward"):
        assert [p.name for p in KERNELS[name].params if not p.is_pointer] == conv
    for name in ("avgpool_forward", "avgpool_backward"):
        assert [p.name for p in KERNELS[name].params if not p.is_pointer] == conv + ["include_pad"]


def test_bad_declarations_rejected():
    with pytest.raises(ValueError, match="bad size expression"):
        Kernel("k", "k.cu", (array_out("y", "__import__('os')"), int32("n")), "n")
    with pytest.raises(ValueError, match="bad size expression"):
        Kernel("k", "k.cu", (array_out("y", "m"), int32("n")), "n")
    with pytest.raises(ValueError, match="must be declared const"):
        Kernel("k", "k.cu", (Param("T*", "x", "in", "n"), int32("n")), "n")
    with pytest.raises(ValueError, match="pointers need a role"):
        Kernel("k", "k.cu", (Param("T*", "x", None, "n"), int32("n")), "n")
    with pytest.raises(ValueError, match="declared twice"):
        k = Kernel("k", "k.cu", (array_out("y", "n"), int32("n")), "n")
        KernelTable([k, k], ".")


def test_grid_size():
    assert grid_size(0, 256, 65535) == 0
    assert grid_size(1, 256, 65535) == 1
    assert grid_size(257, 256, 65535) == 2
    assert grid_size(10**9, 256, 65535) == 65535
