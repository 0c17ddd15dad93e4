"""Makes models/layer_norm/model.onnx: MatMul, LayerNormalization (opset 17, axis -1, with scale and
bias), MatMul, on a [1, 4, 8] input, with a fixed input (input.npy) and
onnxruntime's output for it (ort.npy), beside this script. Kept out of the bundled models: its
row-broadcast `select` has more indices than the text IR prints, so it does not round-trip.
Needs onnx, onnxruntime and numpy; the tests only read the committed files. Run from the
repository root."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(17)
w1 = rng.uniform(-1, 1, (8, 8)).astype(np.float32)
gamma = rng.uniform(0.5, 1.5, 8).astype(np.float32)
beta = rng.uniform(-0.5, 0.5, 8).astype(np.float32)
w2 = rng.uniform(-1, 1, (8, 3)).astype(np.float32)
nodes = [
    helper.make_node("MatMul", ["x", "w1"], ["h"], name="first"),
    helper.make_node("LayerNormalization", ["h", "gamma", "beta"], ["n"], name="ln", axis=-1, epsilon=1e-5),
    helper.make_node("MatMul", ["n", "w2"], ["y"], name="next"),
]
graph = helper.make_graph(
    nodes,
    "layer_norm",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 3])],
    [numpy_helper.from_array(a, n) for a, n in [(w1, "w1"), (gamma, "gamma"), (beta, "beta"), (w2, "w2")]],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
onnx.checker.check_model(model)
onnx.save(model, "models/layer_norm/model.onnx")
x = rng.uniform(-2, 2, (1, 4, 8)).astype(np.float32)
x[0, 1] = 1.0 + 0.05 * x[0, 1]  # a row of small spread
np.save("models/layer_norm/input.npy", x)
y = ort.InferenceSession("models/layer_norm/model.onnx").run(None, {"x": x})[0]
np.save("models/layer_norm/ort.npy", y)
