"""The op interface: one declared table of ops, three tables that implement it.

`ReferenceOps` (reference.py, device "ref") declares and implements every op a layer, loss or
optimizer calls; `CpuOps` (cpu.py; batch norm and pooling in cpu_norm.py, device "cpu") and
`CupyOps` (cuda.py, devices "gpu"/"gpu:N"; `EmulatedOps` for "emu"; its products in
products.py, batch norm in cuda_norm.py) override only what they make faster. Which
table overrides which op (`tests/ops/test_op_table.py` holds this table to the code):

| op                         | reference | cpu | cuda (kernel) |
| -------------------------- | --------- | --- | ------------- |
| im2col                     | yes       |     | im2col.cu     |
| col2im                     | yes       |     | im2col.cu     |
| conv2d_forward             | yes       | yes | products.py   |
| conv2d_backward            | yes       | yes | products.py, grads.cu, conv_dgrad.cu |
| conv_relu_maxpool_forward  | yes       | yes | fused.cu      |
| conv_relu_maxpool_backward | yes       | yes | fused.cu      |
| conv_relu_maxpool_inference| yes       | yes |               |
| inference_in_chunks        | yes       | yes |               |
| maxpool_forward            | yes       | yes | pooling.cu    |
| maxpool_backward           | yes       | yes | pooling.cu    |
| avgpool_forward            | yes       |     | pooling.cu    |
| avgpool_backward           | yes       |     | pooling.cu    |
| global_avgpool_forward     | yes       | yes | pooling.cu    |
| global_avgpool_backward    | yes       | yes | pooling.cu    |
| batchnorm_forward          | yes       | yes | norm.cu       |
| batchnorm_eval             | yes       | yes | norm.cu       |
| batchnorm_backward         | yes       | yes | norm.cu       |
| bias_act                   | yes       |     | activation.cu |
| relu_forward               | yes       |     |               |
| relu_backward              | yes       | yes | activation.cu |
| leaky_relu_forward         | yes       |     | activation.cu |
| leaky_relu_backward        | yes       |     | activation.cu |
| tanh_forward               | yes       |     |               |
| tanh_backward              | yes       |     |               |
| sigmoid_forward            | yes       |     |               |
| sigmoid_backward           | yes       |     |               |
| linear_forward             | yes       | yes | products.py   |
| linear_backward            | yes       |     | products.py   |
| dropout_mask               | yes       |     |               |
| softmax_xent_forward       | yes       | yes | loss.cu       |
| softmax_xent_backward      | yes       |     | loss.cu       |
| sgd_update                 | yes       | yes | optim.cu      |
| adam_update                | yes       |     | optim.cu      |
| adamw_update               | yes       |     | optim.cu      |
| accumulate_grads           | yes       |     | grads.cu      |
| gather_batch               | yes       |     | train.cu      |
| step_stats                 | yes       |     | train.cu      |
| softmax_forward            | yes       |     | softmax.cu    |
| softmax_backward           | yes       |     | softmax.cu    |
| pad2d_forward              | yes       |     | pad.cu        |
| pad2d_backward             | yes       |     | pad.cu        |
| upsample_forward           | yes       |     | upsample.cu   |
| upsample_backward          | yes       |     | upsample.cu   |
| batchnorm_eval_backward    | yes       |     |               |
| conv2d_input_grad          | yes       |     |               |
| batchnorm_act_forward      | yes       | yes | norm.cu       |
| batchnorm_act_backward     | yes       | yes | norm.cu       |
| batchnorm_act_eval         | yes       | yes | norm.cu       |
| add_relu_forward           | yes       | yes | norm.cu       |
| linear_relu_backward       | yes       |     | fused_grads.cu |

`saved` values (what a forward op returns for its own backward) belong to the table that made
them; see reference.py.
"""

from __future__ import annotations

from .geometry import ConvGeometry, PoolGeometry, out_size
from .reference import ReferenceOps

#: every op of the interface, in the order of the table above
OPS: tuple[str, ...] = (
    "im2col", "col2im", "conv2d_forward", "conv2d_backward", "conv_relu_maxpool_forward",
    "conv_relu_maxpool_backward", "conv_relu_maxpool_inference", "inference_in_chunks",
    "maxpool_forward", "maxpool_backward", "avgpool_forward",
    "avgpool_backward", "global_avgpool_forward", "global_avgpool_backward", "batchnorm_forward",
    "batchnorm_eval", "batchnorm_backward", "bias_act", "relu_forward", "relu_backward", "leaky_relu_forward",
    "leaky_relu_backward", "tanh_forward", "tanh_backward",
    "sigmoid_forward", "sigmoid_backward", "linear_forward", "linear_backward", "dropout_mask",
    "softmax_xent_forward", "softmax_xent_backward", "sgd_update", "adam_update", "adamw_update", "accumulate_grads",
    "gather_batch", "step_stats", "softmax_forward", "softmax_backward",
    "pad2d_forward", "pad2d_backward", "upsample_forward", "upsample_backward", "batchnorm_eval_backward",
    "conv2d_input_grad", "batchnorm_act_forward", "batchnorm_act_backward", "batchnorm_act_eval", "add_relu_forward",
    "linear_relu_backward",
)


def overrides(table: type) -> list[str]:
    """The ops of OPS that `table` (a ReferenceOps subclass) defines itself or inherits from a
    table between it and the reference."""
    # a table may wrap ops it inherits (CupyOps enters its CUDA device around each): the
    # wrapper is not an override, what it wraps is compared
    return [op for op in OPS
            if getattr(getattr(table, op), "__wrapped__", getattr(table, op)) is not getattr(ReferenceOps, op)]


__all__ = ["OPS", "ConvGeometry", "PoolGeometry", "ReferenceOps", "out_size", "overrides"]
