"""The one declared table of every kernel (binding.py checks each call's arguments against it).

Each kernel is declared once: its source file, its template types and, for every parameter, the
C type, the name, the role (pointers: ``in``, ``out`` or ``inout``) and the element count a
pointer must hold, as an expression over the scalar parameters.  From this table come the NVRTC
name expressions (``launch.py``, ``nvrtc_check.py``), the emulator's C wrappers (``emulator.py``)
and the dtype / size checks and scalar casts of ``binding.bind`` (both launchers).

Launch shape: a kernel declared without ``block`` is a grid-stride loop over ``size`` elements,
launched with the launcher's block size on min(ceil(size / block), max_blocks) blocks, and the
emulator runs its threads one after another. A *cooperative* kernel declares ``block`` (threads
per block, fixed: its shared arrays and tree reductions are sized for it) and ``grid`` (1 to 3
block-count expressions, x first); the emulator runs its threads as fibers so it may use shared
memory, ``__syncthreads()`` and the warp primitives (docs/gpu-emulator.md).

Roles: ``in`` arrays are only read; ``out`` arrays are fully overwritten (every element, always:
the checking emulator enforces it); ``inout`` arrays are read and may be written.
"""

from __future__ import annotations

from pathlib import Path

from .table import (  # re-exported: the declaration API is imported from here by tests and tools
    FIXED_DTYPES,
    POINTER_TYPES,
    ROLES,
    SCALAR_TYPES,
    TYPE_DTYPES,
    Kernel,
    KernelTable,
    Param,
    array_in,
    array_inout,
    array_out,
    int32,
    int64,
    real,
)

__all__ = ["FIXED_DTYPES", "POINTER_TYPES", "ROLES", "SCALAR_TYPES", "TYPE_DTYPES", "Kernel", "KernelTable", "Param",
           "array_in", "array_inout", "array_out", "int32", "int64", "real", "KERNELS", "COOP_BLOCK", "BN_BLOCK",
           "RESEARCH_KERNELS", "LAYER_KERNELS"]


# ----------------------------------------------------------------------------- the table

_CONV = [int32(s) for s in "n c h w kh kw sh sw ph pw dh dw out_h out_w".split()]
# pooling windows take the convolution's geometry arguments (dilated max pooling, ONNX's dilated
# average pooling); average pooling adds whether its divisor counts padding
_POOL = _CONV
_AVG = [*_CONV, int32("include_pad")]
_X, _COLS, _Y = "n*c*h*w", "c*kh*kw*n*out_h*out_w", "n*c*out_h*out_w"
_FPOOL = [int32(s) for s in "pkh pkw psh psw pph ppw pout_h pout_w".split()]
_FY = "n*o*pout_h*pout_w"

#: threads per block of the cooperative kernels (DN_BLOCK in device.cuh)
COOP_BLOCK = 256
#: blocks of a warp-per-row kernel over {} rows (COOP_BLOCK // 32 rows per block)
_WARP_ROWS = "({} + 7) // 8"

# --- research-grade layers (layers-and-models branch): batch norm, global pooling, leaky ReLU
# (n, c, inner) arrays of the per-channel kernels
_NCI, _NCI_DIMS = "n*c*inner", (int32("n"), int32("c"), int32("inner"))
# the batch-norm training kernels (norm.cu): x read through an image and a channel stride, one block
# of BN_BLOCK threads per channel (DN_BN_BLOCK in norm.cu: 32 warps, enough 16-byte loads in flight
# per SM that a layer of 16 channels is not latency-bound)
_BN_DIMS = (*_NCI_DIMS, int64("sn"), int64("sc"))
BN_BLOCK = 1024

RESEARCH_KERNELS = [
    Kernel("bn_forward", "norm.cu",
           (array_in("x", _NCI), array_in("weight", "c"), array_in("bias", "c"),
            array_in("residual", "has_residual*n*c*inner"), array_inout("running_mean", "c"),
            array_inout("running_var", "c"), array_out("y", _NCI), array_out("mean", "c"), array_out("inv_std", "c"),
            array_out("scale", "c"), *_BN_DIMS, real("eps"), real("momentum"), int32("act"), int32("has_residual")),
           "c", block=BN_BLOCK, grid=("c",)),
    Kernel("bn_apply", "norm.cu",
           (array_in("x", _NCI), array_in("mean", "c"), array_in("scale", "c"), array_in("bias", "c"),
            array_in("residual", "has_residual*n*c*inner"), array_out("y", _NCI), *_NCI_DIMS, int64("sn"),
            int64("sc"), int32("act"), int32("has_residual")), _NCI),
    Kernel("bn_backward", "norm.cu",
           (array_in("dy", _NCI), array_in("y", "act*n*c*inner"), array_in("x", _NCI), array_in("mean", "c"),
            array_in("inv_std", "c"), array_in("scale", "c"), array_out("dz", "write_dz*n*c*inner"),
            array_out("dx", "write_dx*n*c*inner"), array_inout("wgrad", "has_wgrad*c"),
            array_inout("bgrad", "has_bgrad*c"), *_BN_DIMS, int32("act"), int32("write_dz"), int32("write_dx"),
            int32("has_wgrad"), int32("has_bgrad")), "c", block=BN_BLOCK, grid=("c",)),
    Kernel("global_avgpool_forward", "pooling.cu",
           (array_in("x", _NCI), array_out("y", "n*c"), *_NCI_DIMS), "n*c", block=COOP_BLOCK,
           grid=(_WARP_ROWS.format("n*c"),)),
    Kernel("global_avgpool_backward", "pooling.cu",
           (array_in("dy", "n*c"), array_out("dx", _NCI), *_NCI_DIMS), _NCI),
    Kernel("leaky_relu_forward", "activation.cu",
           (array_in("x", "size"), array_out("y", "size"), int64("size"), real("slope")), "size"),
    Kernel("leaky_relu_backward", "activation.cu",
           (array_in("dy", "size"), array_in("x", "size"), array_out("dx", "size"), int64("size"),
            real("slope")), "size"),
]
# --- end of the research-grade layers' kernels

# --- real-model layers: softmax along an axis, 2-D padding, upsampling from per-axis tables
_OKI, _PAD_X, _PAD_Y = "outer*k*inner", "n*c*h*w", "n*c*out_h*out_w"
_PAD_DIMS = tuple(int32(s) for s in "n c h w out_h out_w top left mode".split())
_UP_DIMS = tuple(int32(s) for s in "n c h w out_h out_w".split())
_UP_ROWS = (array_in("row0", "out_h", "int"), array_in("row1", "out_h", "int"), array_in("rlam", "out_h"))
_UP_COLS = (array_in("col0", "out_w", "int"), array_in("col1", "out_w", "int"), array_in("clam", "out_w"))

LAYER_KERNELS = [
    Kernel("softmax_forward", "softmax.cu",
           (array_in("x", _OKI), array_out("y", _OKI), int32("outer"), int32("k"), int32("inner"), int32("log")),
           "outer*inner"),
    Kernel("softmax_backward", "softmax.cu",
           (array_in("dy", _OKI), array_in("y", _OKI), array_out("dx", _OKI), int32("outer"), int32("k"),
            int32("inner"), int32("log")), "outer*inner"),
    Kernel("pad2d_forward", "pad.cu", (array_in("x", _PAD_X), array_out("y", _PAD_Y), *_PAD_DIMS, real("value")),
           _PAD_Y),
    Kernel("pad2d_backward", "pad.cu", (array_in("dy", _PAD_Y), array_out("dx", _PAD_X), *_PAD_DIMS), _PAD_X),
    Kernel("upsample2d_forward", "upsample.cu",
           (array_in("x", _PAD_X), array_out("y", _PAD_Y), *_UP_ROWS, *_UP_COLS, *_UP_DIMS), _PAD_Y),
    Kernel("upsample2d_backward", "upsample.cu",
           (array_in("dy", _PAD_Y), array_out("dx", _PAD_X), *_UP_ROWS, array_in("rfirst", "h", "int"),
            array_in("rlast", "h", "int"), *_UP_COLS, array_in("cfirst", "w", "int"), array_in("clast", "w", "int"),
            *_UP_DIMS), _PAD_X),
]
# --- end of the real-model layers' kernels

KERNELS = KernelTable([
    Kernel("im2col", "im2col.cu", (array_in("x", _X), array_out("cols", _COLS), *_CONV), _COLS),
    Kernel("col2im", "im2col.cu", (array_in("cols", _COLS), array_out("x", _X), *_CONV), _X),
    Kernel("maxpool_forward", "pooling.cu",
           (array_in("x", _X), array_out("y", _Y), array_out("argmax", _Y, "int"), *_POOL), _Y),
    Kernel("maxpool_backward", "pooling.cu",
           (array_in("dy", _Y), array_in("argmax", _Y, "int"), array_out("dx", _X), *_POOL), _X),
    Kernel("avgpool_forward", "pooling.cu", (array_in("x", _X), array_out("y", _Y), *_AVG), _Y),
    Kernel("avgpool_backward", "pooling.cu",
           (array_in("dy", _Y), array_out("dx", _X), *_AVG), _X),
    Kernel("bias_act_forward", "activation.cu",
           (array_in("x", "n*c*inner"), array_in("bias", "c"), array_out("y", "n*c*inner"),
            int32("n"), int32("c"), int32("inner"), int32("act"), int32("channel_major")),
           "n*c*inner"),
    Kernel("relu_backward", "activation.cu",
           (array_in("dy", "size"), array_in("y", "size"), array_out("dx", "size"),
            int64("size")), "size"),
    Kernel("relu_bias_grad", "fused_grads.cu",
           (array_in("dy", "n*o"), array_in("y", "n*o"), array_out("dz", "n*o"), array_inout("bgrad", "o"),
            int32("n"), int32("o")), "o", block=COOP_BLOCK, grid=(_WARP_ROWS.format("o"),)),
    Kernel("softmax_xent_forward", "loss.cu",
           (array_in("logits", "n*k"), array_in("labels", "n", "int"), array_out("probs", "n*k"),
            array_out("loss", "n"), int32("n"), int32("k")), "n", block=COOP_BLOCK, grid=(_WARP_ROWS.format("n"),)),
    Kernel("softmax_xent_backward", "loss.cu",
           (array_in("probs", "n*k"), array_in("labels", "n", "int"), array_out("dlogits", "n*k"),
            int32("n"), int32("k"), real("scale")), "n*k"),
    Kernel("sgd_update", "optim.cu",
           (array_inout("param", "size"), array_in("grad", "size"),
            array_inout("velocity", "size"), int64("size"), real("lr"), real("momentum"),
            real("weight_decay"), int32("nesterov")), "size"),
    Kernel("adam_update", "optim.cu",
           (array_inout("param", "size"), array_in("grad", "size"), array_inout("m", "size"),
            array_inout("v", "size"), int64("size"), real("lr"), real("beta1"), real("beta2"),
            real("eps"), real("weight_decay"), real("bias_correction1"),
            real("bias_correction2")), "size"),
    Kernel("adamw_update", "optim.cu",
           (array_inout("param", "size"), array_in("grad", "size"), array_inout("m", "size"),
            array_inout("v", "size"), int64("size"), real("lr"), real("beta1"), real("beta2"),
            real("eps"), real("decay"), real("bias_correction1"), real("bias_correction2")), "size"),
    # conv + bias + ReLU + max pooling (fused.cu); geometry: conv (kh..out_w), then pooling
    Kernel("conv_relu_maxpool_forward", "fused.cu",
           (array_in("x", "n*c*h*w"), array_in("weight", "o*c*kh*kw"), array_in("bias", "o"),
            array_out("y", _FY), array_out("argmax", _FY, "int"), int32("n"), int32("c"), int32("h"),
            int32("w"), int32("o"), *_CONV[4:], *_FPOOL, int32("has_bias")), _FY),
    Kernel("conv_relu_maxpool_dz", "fused.cu",
           (array_in("dy", _FY), array_in("y", _FY), array_in("argmax", _FY, "int"),
            array_out("dz", "o*n*out_h*out_w"), int32("n"), int32("o"), int32("out_h"), int32("out_w"),
            *_FPOOL), "o*n*out_h*out_w"),
    Kernel("accumulate_grads", "grads.cu",
           (array_in("dw", "nw"), array_in("db", "nb"), array_inout("wgrad", "nw"), array_inout("bgrad", "nb"),
            int64("nw"), int64("nb")), "nw+nb"),
    Kernel("conv_wgrad_direct", "fused_grads.cu",
           (array_in("dz", "o*n*out_h*out_w"), array_in("x", _X), array_inout("wgrad", "has_wgrad*o*c*kh*kw"),
            array_inout("bgrad", "has_bgrad*o"), int32("n"), int32("c"), int32("h"), int32("w"), int32("o"),
            *_CONV[4:], int32("has_wgrad"), int32("has_bgrad")), "o*(c*kh*kw+1)", block=COOP_BLOCK,
           grid=("c*kh*kw+1", "o")),
    # a convolution's input gradient as one implicit GEMM (conv_dgrad.cu): tiles of bm channels x
    # 4096 / bm pixels of dx (bm in {16, 32, 64}) within one stride phase; the addend summed in when has_add
    Kernel("conv_dgrad", "conv_dgrad.cu",
           (array_in("dy", "o*n*out_h*out_w"), array_in("weight", "o*c*kh*kw"), array_in("add", "has_add*n*c*h*w"),
            array_out("dx", _X), int32("n"), int32("c"), int32("h"), int32("w"), int32("o"), *_CONV[4:], int32("bm"),
            int32("has_add")), _X, block=COOP_BLOCK,
           grid=("sh*sw*((n*((h+sh-1)//sh)*((w+sw-1)//sw)*bm+4095)//4096)", "(c+bm-1)//bm")),
    Kernel("channel_sums", "grads.cu", (array_in("x", _NCI), array_inout("y", "c"), *_NCI_DIMS), "c",
           block=COOP_BLOCK, grid=("c",)),
    Kernel("gather_batch", "train.cu",
           (array_in("images", "count*per"), array_in("labels", "count", "int"), array_in("order", "total", "int"),
            array_out("xb", "b*per"), array_out("yb", "b", "int"), int32("count"), int32("per"), int32("total"),
            int32("start"), int32("b")), "b*per+b"),
    Kernel("step_stats", "train.cu",
           (array_in("loss", "1"), array_in("logits", "n*k"), array_in("labels", "n", "int"),
            array_in("grad", "size"), array_inout("tally", "2*cap+nchunks"), int32("n"), int32("k"),
            int64("size"), int32("chunk"), int32("nchunks"), int32("cap"), int32("slot"), int32("step")),
           "1+nchunks", block=COOP_BLOCK, grid=("1+nchunks",)),
    *RESEARCH_KERNELS,
    *LAYER_KERNELS,
], source_dir=Path(__file__).resolve().parent)
