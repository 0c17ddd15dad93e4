"""Makes models/layer_norm_forms/*.onnx: LayerNormalization written out as exporters below opset 17
write it, each after a MatMul (so the normalised value is secret), with a fixed input
(input_<name>.npy) and onnxruntime's output for it (ort_<name>.npy), beside this script:

- torchscript: ReduceMean, Sub, Pow(d, 2), ReduceMean, Add ε, Sqrt, Div, Mul γ, Add β (opset 13,
  axes as an attribute), as torch's TorchScript exporter writes nn.LayerNorm;
- reciprocal: Mul(d, d), Add(ε, v) (constant first), Sqrt, Reciprocal, Mul(1/s, d) (operands
  swapped), Mul γ, Add β, then a MatMul (opset 18, axes as an input), over the last axis;
- two_axes: the torchscript form over the last two axes (opset 18), without γ and β.

Needs onnx, onnxruntime and numpy; the tests only read the committed files. Run from the
repository root."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(23)
OUT = "models/layer_norm_forms"
SHAPE = [1, 4, 8]


def reduce_mean(opset, axes, x, y, name):
    """ReduceMean with keepdims: axes as an attribute below opset 18, as the input "axes" from 18."""
    if opset < 18:
        return helper.make_node("ReduceMean", [x], [y], name=name, axes=axes, keepdims=1)
    return helper.make_node("ReduceMean", [x, "axes"], [y], name=name, keepdims=1)


def build(name, opset, axes, square, recip, affine, then_linear):
    inits = [numpy_helper.from_array(rng.uniform(-1, 1, (8, 8)).astype(np.float32), "w1")]
    if opset >= 18:
        inits.append(numpy_helper.from_array(np.array(axes, np.int64), "axes"))
    if square == "pow":
        inits.append(numpy_helper.from_array(np.array(2.0, np.float32), "two"))
    inits.append(numpy_helper.from_array(np.array(1e-5, np.float32), "eps"))
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="first"),
        reduce_mean(opset, axes, "h", "mu", "mean"),
        helper.make_node("Sub", ["h", "mu"], ["d"], name="centre"),
    ]
    if square == "pow":
        nodes.append(helper.make_node("Pow", ["d", "two"], ["d2"], name="square"))
    else:
        nodes.append(helper.make_node("Mul", ["d", "d"], ["d2"], name="square"))
    nodes.append(reduce_mean(opset, axes, "d2", "var", "variance"))
    if recip:
        nodes += [
            helper.make_node("Add", ["eps", "var"], ["ve"], name="add_eps"),
            helper.make_node("Sqrt", ["ve"], ["s"], name="std"),
            helper.make_node("Reciprocal", ["s"], ["r"], name="inv_std"),
            helper.make_node("Mul", ["r", "d"], ["n"], name="norm"),
        ]
    else:
        nodes += [
            helper.make_node("Add", ["var", "eps"], ["ve"], name="add_eps"),
            helper.make_node("Sqrt", ["ve"], ["s"], name="std"),
            helper.make_node("Div", ["d", "s"], ["n"], name="norm"),
        ]
    last = "n"
    if affine:
        k = 8
        inits.append(numpy_helper.from_array(rng.uniform(0.5, 1.5, k).astype(np.float32), "gamma"))
        inits.append(numpy_helper.from_array(rng.uniform(-0.5, 0.5, k).astype(np.float32), "beta"))
        nodes += [
            helper.make_node("Mul", ["n", "gamma"], ["ng"], name="scale"),
            helper.make_node("Add", ["ng", "beta"], ["nb"], name="shift"),
        ]
        last = "nb"
    out_shape = SHAPE
    if then_linear:
        inits.append(numpy_helper.from_array(rng.uniform(-1, 1, (8, 3)).astype(np.float32), "w2"))
        nodes.append(helper.make_node("MatMul", [last, "w2"], ["z"], name="next"))
        last, out_shape = "z", [1, 4, 3]
    nodes.append(helper.make_node("Identity", [last], ["y"], name="out"))
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    onnx.checker.check_model(model)
    path = f"{OUT}/{name}.onnx"
    onnx.save(model, path)
    x = rng.uniform(-2, 2, SHAPE).astype(np.float32)
    x[0, 1] = 1.0 + 0.05 * x[0, 1]  # a row of small spread
    np.save(f"{OUT}/input_{name}.npy", x)
    y = ort.InferenceSession(path).run(None, {"x": x})[0]
    np.save(f"{OUT}/ort_{name}.npy", y)


build("torchscript", 13, [-1], "pow", False, True, False)
build("reciprocal", 18, [-1], "mul", True, True, True)
build("two_axes", 18, [1, 2], "pow", False, False, False)
