"""Makes models/qdq_cnn/model_fp8.onnx: the float CNN of make.py quantized by onnxruntime's static
quantizer to FP8 (FLOAT8E4M3FN activations and weights, QDQ format), as NVIDIA-style FP8
deployment writes it: every activation passes QuantizeLinear to FLOAT8E4M3FN and back, the
weights are FP8 initializers read through DequantizeLinear. Writes onnxruntime's output for
make.py's input (ort_fp8.npy). Needs onnx, onnxruntime and numpy; the tests only read the
committed files. Run from the repository root after make.py (it reuses input.npy)."""

import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make import float_model  # noqa: E402  (the float CNN, shared)

OUT = "models/qdq_cnn"
rng = np.random.default_rng(7)
model = float_model(rng, opset=19, ir_version=9)


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
