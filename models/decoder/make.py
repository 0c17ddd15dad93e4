"""Makes models/decoder/model.onnx: a small encoder-decoder (U-Net-shaped) segmentation network
with the upsampling ops users' exporters write, on a 1×3×16×16 input:

  encoder  Conv 3→8 (3×3, pad 1), PRelu (one slope per channel), MaxPool 2×2,
           Conv 8→8, Relu
  decoder  ConvTranspose 8→8 (3×3, stride 2, pads 1, output_padding 1: torch's
           ConvTranspose2d(..., stride=2, padding=1, output_padding=1)), Concat with the
           encoder's first activation (the skip), Conv 16→8, Abs,
           Resize ×2 (nearest, asymmetric, floor: torch's interpolate(scale_factor=2)),
           Conv 8→12, DepthToSpace (CRD: torch's PixelShuffle(2)) → 3 channels at 64×64,
           Resize to 32×32 by sizes (linear, pytorch_half_pixel: torch's bilinear,
           align_corners=False), Tile ×(1, 2, 1, 1), Mean with a 1×1 Conv of itself
  output   [1, 6, 32, 32] per-pixel scores.

Random weights (seed 11), opset 17. Writes a fixed input (input.npy, |x| ≤ 2) and
onnxruntime's output for it (ort.npy) beside this script. Needs onnx, onnxruntime and numpy;
the tests only read the committed files. Run from the repository root."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = "models/decoder"
rng = np.random.default_rng(11)
inits, nodes = [], []


def init(name, array):
    inits.append(numpy_helper.from_array(np.asarray(array), name))
    return name


def weight(name, shape, scale):
    return init(name, (rng.standard_normal(shape) * scale).astype(np.float32))


def conv(name, cin, cout, inp, k=3, pad=1):
    w = weight(name + "_w", (cout, cin, k, k), 1.0 / np.sqrt(cin * k * k))
    b = weight(name + "_b", (cout,), 0.1)
    nodes.append(helper.make_node("Conv", [inp, w, b], [name], pads=[pad] * 4, name=name))
    return name


h = conv("enc1", 3, 8, "x")
slope = init("prelu_slope", (rng.uniform(0.05, 0.3, (8, 1, 1))).astype(np.float32))
nodes.append(helper.make_node("PRelu", [h, slope], ["enc1_act"], name="prelu"))
nodes.append(helper.make_node("MaxPool", ["enc1_act"], ["pool"], kernel_shape=[2, 2], strides=[2, 2], name="pool"))
h = conv("enc2", 8, 8, "pool")
nodes.append(helper.make_node("Relu", [h], ["enc2_act"], name="relu"))
wt = weight("up_w", (8, 8, 3, 3), 1.0 / np.sqrt(8 * 9))
bt = weight("up_b", (8,), 0.1)
nodes.append(
    helper.make_node(
        "ConvTranspose", ["enc2_act", wt, bt], ["up"], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1], name="up"
    )
)
nodes.append(helper.make_node("Concat", ["up", "enc1_act"], ["skip"], axis=1, name="skip"))
h = conv("dec1", 16, 8, "skip")
nodes.append(helper.make_node("Abs", [h], ["dec1_abs"], name="abs"))
roi = init("roi", np.array([], dtype=np.float32))
up2 = init("up2_scales", np.array([1, 1, 2, 2], dtype=np.float32))
nodes.append(
    helper.make_node(
        "Resize",
        ["dec1_abs", roi, up2],
        ["nearest"],
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
        name="nearest",
    )
)
h = conv("dec2", 8, 12, "nearest")
nodes.append(helper.make_node("DepthToSpace", [h], ["shuffle"], blocksize=2, mode="CRD", name="shuffle"))
sizes = init("down_sizes", np.array([1, 3, 32, 32], dtype=np.int64))
nodes.append(
    helper.make_node(
        "Resize",
        ["shuffle", roi, "", sizes],
        ["bilinear"],
        mode="linear",
        coordinate_transformation_mode="pytorch_half_pixel",
        name="bilinear",
    )
)
reps = init("tile_reps", np.array([1, 2, 1, 1], dtype=np.int64))
nodes.append(helper.make_node("Tile", ["bilinear", reps], ["tiled"], name="tile"))
h = conv("mix", 6, 6, "tiled", k=1, pad=0)
nodes.append(helper.make_node("Mean", ["tiled", h], ["y"], name="mean"))

graph = helper.make_graph(
    nodes,
    "decoder",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 32, 32])],
    inits,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model, full_check=True)
onnx.save(model, f"{OUT}/model.onnx")
x = rng.uniform(-2, 2, (1, 3, 16, 16)).astype(np.float32)
np.save(f"{OUT}/input.npy", x)
y = ort.InferenceSession(f"{OUT}/model.onnx", providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
np.save(f"{OUT}/ort.npy", y)
print("wrote", OUT, y.shape, float(np.abs(y).max()))
