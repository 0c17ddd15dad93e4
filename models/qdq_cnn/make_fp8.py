"""Makes models/qdq_cnn/model_fp8.onnx: the float CNN of make.py quantized by onnxruntime's static
quantizer to FP8 (FLOAT8E4M3FN activations and weights, QDQ format), as NVIDIA-style FP8
deployment writes it: every activation passes QuantizeLinear to FLOAT8E4M3FN and back, the
weights are FP8 initializers read through DequantizeLinear. Writes onnxruntime's output for
make.py's input (ort_fp8.npy). Needs onnx, onnxruntime and numpy; the tests only read the
committed files. Run from the repository root after make.py (it reuses input.npy)."""

import os
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

OUT = "models/qdq_cnn"
rng = np.random.default_rng(7)


def conv(name, cin, cout, inp, out):
    w = numpy_helper.from_array((rng.standard_normal((cout, cin, 3, 3)) * 0.3).astype(np.float32), name + "_w")
    b = numpy_helper.from_array((rng.standard_normal(cout) * 0.1).astype(np.float32), name + "_b")
    return [w, b], helper.make_node("Conv", [inp, name + "_w", name + "_b"], [out], pads=[1, 1, 1, 1], name=name)


inits, nodes = [], []
i, n = conv("c1", 1, 4, "x", "h1")
inits += i
nodes += [n, helper.make_node("Relu", ["h1"], ["r1"], name="relu1")]
nodes.append(helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"))
i, n = conv("c2", 4, 8, "p1", "h2")
inits += i
nodes += [n, helper.make_node("Relu", ["h2"], ["r2"], name="relu2")]
nodes.append(helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"))
nodes.append(helper.make_node("Flatten", ["g"], ["f"], name="flat"))
inits.append(numpy_helper.from_array((rng.standard_normal((8, 10)) * 0.5).astype(np.float32), "fc_w"))
inits.append(numpy_helper.from_array((rng.standard_normal(10) * 0.1).astype(np.float32), "fc_b"))
nodes.append(helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc"))
graph = helper.make_graph(
    nodes,
    "qdq_cnn_fp8",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
    inits,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
model.ir_version = 9


class Calibration(CalibrationDataReader):
    def __init__(self):
        self.data = iter([{"x": rng.uniform(-2, 2, (1, 1, 8, 8)).astype(np.float32)} for _ in range(16)])

    def get_next(self):
        return next(self.data, None)


with tempfile.TemporaryDirectory() as tmp:
    float_path = os.path.join(tmp, "float.onnx")
    onnx.save(model, float_path)
    quantize_static(
        float_path,
        os.path.join(OUT, "model_fp8.onnx"),
        Calibration(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QFLOAT8E4M3FN,
        weight_type=QuantType.QFLOAT8E4M3FN,
        calibrate_method=CalibrationMethod.Distribution,
    )
x = np.load(os.path.join(OUT, "input.npy"))
y = ort.InferenceSession(os.path.join(OUT, "model_fp8.onnx")).run(None, {"x": x})[0]
np.save(os.path.join(OUT, "ort_fp8.npy"), y)
m = onnx.load(os.path.join(OUT, "model_fp8.onnx"))
print([n.op_type for n in m.graph.node], y)
