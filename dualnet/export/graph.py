"""Graph: the one place that touches onnx; collects nodes and float32 initializers by unique name.

Imported only by `export_onnx` once onnx is known to be installed; converters use its methods
(`op`, `weight`, `const`) and never onnx itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..backend import to_numpy
from ..layers.base import Parameter


def host_array(value: Any) -> np.ndarray:
    """A Parameter, a device array or a host array as a NumPy array (a copy off the GPU)."""
    return to_numpy(value.data if isinstance(value, Parameter) else value)


class Graph:
    """An ONNX graph under construction; names are made unique and prefixed by the layer path."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._scope: list[str] = []
        self._used: set[str] = set()

    # --- names ---------------------------------------------------------------------------
    def path(self, name: str = "") -> str:
        """The dotted layer path of `name` inside the current scope (for names and errors)."""
        return ".".join([*self._scope, name] if name else self._scope)

    @contextlib.contextmanager
    def scope(self, name: str) -> Iterator[None]:
        self._scope.append(name)
        try:
            yield
        finally:
            self._scope.pop()

    def fresh(self, hint: str) -> str:
        """A value name not used before: the scoped hint, with a counter if it was taken."""
        base = self.path(hint) or hint
        name, i = base, 1
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._used.add(name)
        return name

    # --- values --------------------------------------------------------------------------
    def weight(self, value: Any, hint: str) -> str:
        """A float32 initializer from a Parameter or array (float64 weights are cast)."""
        return self.const(host_array(value).astype(np.float32), hint)

    def const(self, array: np.ndarray, hint: str) -> str:
        """An initializer of the array's own dtype (int64 shapes, float32 constants)."""
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], hint: str | None = None, **attrs: Any) -> str:
        """Add one node with one output; returns the output's name. `""` skips an optional input."""
        out = self.fresh(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def _rename(self, old: str, new: str) -> str:
        """Give a value a plain name (the model's output is "output", not "fc3.gemm")."""
        if new in self._used:
            return old
        for node in self.nodes:
            for seq in (node.input, node.output):
                for i, name in enumerate(seq):
                    if name == old:
                        seq[i] = new
        self._used.add(new)
        return new

    # --- the model -----------------------------------------------------------------------
    def model(self, x: str, y: str, in_shape: Sequence[int], out_shape: Sequence[int], opset: int,
              name: str, metadata: dict[str, str], producer_version: str) -> onnx.ModelProto:
        """The finished model: input `x` (N, *in_shape), output `y` (N, *out_shape), float32."""
        if y == x:  # a graph of identities: ONNX wants the output produced by a node
            y = self.op("Identity", [x], "output")
        y = self._rename(y, "output")
        inputs = [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", *in_shape])]
        outputs = [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["N", *out_shape])]
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        opsets = [helper.make_opsetid("", opset)]
        # the oldest IR version that carries this opset: the widest range of runtimes loads it
        model = helper.make_model(graph, opset_imports=opsets, producer_name="dualnet",
                                  producer_version=producer_version,
                                  ir_version=helper.find_min_ir_version_for(opsets))
        helper.set_model_props(model, metadata)
        return model
