"""Makes models/qdq_cnn/model.onnx: a small CNN quantized by onnxruntime's static quantizer in
its default QDQ format (uint8 activations, per-channel int8 weights, int32 biases), as users
quantize a model for deployment: every activation passes QuantizeLinear then
DequantizeLinear, and the weights are int8 initializers read through DequantizeLinear. The
float model: Conv 1→4 (3×3, pad 1), Relu, MaxPool 2×2, Conv 4→8, Relu, GlobalAveragePool,
Flatten, Gemm 8→10 on a 1×1×8×8 input; the quantizer folds each Relu into the uint8
quantization after it. Writes a fixed input (input.npy, |x| ≤ 4) and onnxruntime's output of
the quantized model for it (ort.npy) beside this script. Needs onnx, onnxruntime and numpy;
the tests only read the committed files. Run from the repository root."""

import os
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

OUT = "models/qdq_cnn"


def conv(rng, name, cin, cout, inp, out):
    w = numpy_helper.from_array((rng.standard_normal((cout, cin, 3, 3)) * 0.3).astype(np.float32), name + "_w")
    b = numpy_helper.from_array((rng.standard_normal(cout) * 0.1).astype(np.float32), name + "_b")
    return [w, b], helper.make_node("Conv", [inp, name + "_w", name + "_b"], [out], pads=[1, 1, 1, 1], name=name)


def float_model(rng, opset=17, ir_version=8):
    """The float CNN (weights drawn from `rng`), at `opset`: shared with make_fp8.py."""
    inits, nodes = [], []
    i, n = conv(rng, "c1", 1, 4, "x", "h1")
    inits += i
    nodes += [n, helper.make_node("Relu", ["h1"], ["r1"], name="relu1")]
    nodes.append(helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"))
    i, n = conv(rng, "c2", 4, 8, "p1", "h2")
    inits += i
    nodes += [n, helper.make_node("Relu", ["h2"], ["r2"], name="relu2")]
    nodes.append(helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["g"], ["f"], name="flat"))
    inits.append(numpy_helper.from_array((rng.standard_normal((8, 10)) * 0.5).astype(np.float32), "fc_w"))
    inits.append(numpy_helper.from_array((rng.standard_normal(10) * 0.1).astype(np.float32), "fc_b"))
    nodes.append(helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc"))
    graph = helper.make_graph(
        nodes,
        "qdq_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return model


def main():
    rng = np.random.default_rng(7)
    model = float_model(rng)


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
            os.path.join(OUT, "model.onnx"),
            Calibration(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
    x = rng.uniform(-2, 2, (1, 1, 8, 8)).astype(np.float32)
    np.save(os.path.join(OUT, "input.npy"), x)
    y = ort.InferenceSession(os.path.join(OUT, "model.onnx")).run(None, {"x": x})[0]
    np.save(os.path.join(OUT, "ort.npy"), y)
    print([n.op_type for n in onnx.load(os.path.join(OUT, "model.onnx")).graph.node].count("QuantizeLinear"), "QuantizeLinear,", y)


if __name__ == "__main__":
    main()
