"""Makes models/convnext_block/model.onnx: one ConvNeXt block, width-reduced (8 channels on a 4×4
map), as torchvision's CNBlock computes it and torch's exporters write it at opset 20:
depthwise 7×7 Conv, Transpose to channels-last, LayerNormalization (ε 1e-6), MatMul 8→32, Gelu,
MatMul 32→8, the layer scale (Mul), Transpose back, and the residual Add of the block's input,
after a 1×1 stem Conv (so the block's input is secret, as inside the network). Writes a fixed
input (input.npy) and onnxruntime's output for it (ort.npy) beside this script. Needs onnx,
onnxruntime and numpy; the tests only read the committed files. Run from the repository root."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = "models/convnext_block"
C, H = 8, 4
rng = np.random.default_rng(31)
weights = {
    "stem_w": rng.uniform(-0.6, 0.6, (C, 3, 1, 1)),
    "stem_b": rng.uniform(-0.2, 0.2, C),
    "dw_w": rng.uniform(-0.2, 0.2, (C, 1, 7, 7)),
    "dw_b": rng.uniform(-0.1, 0.1, C),
    "ln_g": rng.uniform(0.5, 1.5, C),
    "ln_b": rng.uniform(-0.3, 0.3, C),
    "pw1": rng.uniform(-0.5, 0.5, (C, 4 * C)),
    "pw1_b": rng.uniform(-0.1, 0.1, 4 * C),
    "pw2": rng.uniform(-0.3, 0.3, (4 * C, C)),
    "pw2_b": rng.uniform(-0.1, 0.1, C),
    "layer_scale": rng.uniform(0.1, 0.5, (C, 1, 1)),
}
nodes = [
    helper.make_node("Conv", ["x", "stem_w", "stem_b"], ["s"], name="stem"),
    helper.make_node("Conv", ["s", "dw_w", "dw_b"], ["dw"], name="dwconv", group=C, pads=[3, 3, 3, 3]),
    helper.make_node("Transpose", ["dw"], ["nhwc"], name="to_last", perm=[0, 2, 3, 1]),
    helper.make_node("LayerNormalization", ["nhwc", "ln_g", "ln_b"], ["n"], name="norm", axis=-1, epsilon=1e-6),
    helper.make_node("MatMul", ["n", "pw1"], ["h1"], name="pwconv1"),
    helper.make_node("Add", ["h1", "pw1_b"], ["h1b"], name="pwconv1_bias"),
    helper.make_node("Gelu", ["h1b"], ["g"], name="gelu"),
    helper.make_node("MatMul", ["g", "pw2"], ["h2"], name="pwconv2"),
    helper.make_node("Add", ["h2", "pw2_b"], ["h2b"], name="pwconv2_bias"),
    helper.make_node("Transpose", ["h2b"], ["nchw"], name="to_first", perm=[0, 3, 1, 2]),
    helper.make_node("Mul", ["nchw", "layer_scale"], ["scaled"], name="layer_scale_mul"),
    helper.make_node("Add", ["s", "scaled"], ["y"], name="residual"),
]
graph = helper.make_graph(
    nodes,
    "convnext_block",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, H, H])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, C, H, H])],
    [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=9)
onnx.checker.check_model(model)
onnx.save(model, f"{OUT}/model.onnx")
x = rng.uniform(-1, 1, (1, 3, H, H)).astype(np.float32)
np.save(f"{OUT}/input.npy", x)
np.save(f"{OUT}/ort.npy", ort.InferenceSession(f"{OUT}/model.onnx").run(None, {"x": x})[0])
