#!/usr/bin/env python3
"""Generates two hand-built blocks of today's mobile families with the onnx helper:
models/mobile_block.onnx, MobileNetV3-style (HardSwish, a HardSigmoid squeeze-excite gate: products
of two computed values), and models/efficient_block.onnx, EfficientNet-style (SiLU as
Sigmoid + Mul, a Sigmoid squeeze-excite gate, and a Tanh).

Run from the repository root:  python3 models/make_mobile.py
Needs: onnx, onnxruntime, numpy (no torch). CI never runs this; it reads the committed outputs:
  <name>.onnx               opset 18, random weights (seeded)
  inputs/<name>.npy         one sample input [1, 3, 8, 8]
  inputs/<name>_ort.npy     onnxruntime's logits for that input (the float reference)
"""

import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def save(nodes, inits, name, rng):
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 8, 8])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])]
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    out = os.path.join(HERE, f"{name}.onnx")
    onnx.save(model, out)
    x = rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)
    np.save(os.path.join(HERE, "inputs", f"{name}.npy"), x)
    logits = ort.InferenceSession(out, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.save(os.path.join(HERE, "inputs", f"{name}_ort.npy"), logits.astype(np.float32))
    print(name, "logits", logits)


def block_weights(rng):
    """Both blocks' random weights (same shapes, drawn in this order)."""

    def w(name, *shape, s=0.3):
        return numpy_helper.from_array(rng.normal(0, s, shape).astype(np.float32), name)

    return [
        w("c1.w", 8, 3, 3, 3), w("c1.b", 8, s=0.1),
        w("se1.w", 4, 8, 1, 1), w("se1.b", 4, s=0.1),
        w("se2.w", 8, 4, 1, 1), w("se2.b", 8, s=0.1),
        w("c2.w", 8, 8, 3, 3, s=0.2), w("c2.b", 8, s=0.1),
        w("fc.w", 10, 128, s=0.1), w("fc.b", 10, s=0.1),
    ]


def efficient_block():
    rng = np.random.default_rng(32)
    inits = block_weights(rng)
    nodes = [
        helper.make_node("Conv", ["input", "c1.w", "c1.b"], ["h1"], pads=[1, 1, 1, 1], name="conv1"),
        # SiLU as torch exports it: x * Sigmoid(x).
        helper.make_node("Sigmoid", ["h1"], ["g1"], name="silu/sigmoid"),
        helper.make_node("Mul", ["h1", "g1"], ["a1"], name="silu/mul"),
        helper.make_node("GlobalAveragePool", ["a1"], ["p"], name="se/pool"),
        helper.make_node("Conv", ["p", "se1.w", "se1.b"], ["s1"], name="se/reduce"),
        helper.make_node("Relu", ["s1"], ["s2"], name="se/relu"),
        helper.make_node("Conv", ["s2", "se2.w", "se2.b"], ["s3"], name="se/expand"),
        helper.make_node("Sigmoid", ["s3"], ["gate"], name="se/gate"),
        helper.make_node("Mul", ["a1", "gate"], ["e"], name="se/excite"),
        helper.make_node("Conv", ["e", "c2.w", "c2.b"], ["h2"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv2"),
        helper.make_node("Tanh", ["h2"], ["a2"], name="tanh"),
        helper.make_node("Flatten", ["a2"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["logits"], transB=1, name="fc"),
    ]
    save(nodes, inits, "efficient_block", rng)


def mobile_block():
    rng = np.random.default_rng(31)
    inits = block_weights(rng)
    nodes = [
        helper.make_node("Conv", ["input", "c1.w", "c1.b"], ["h1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("HardSwish", ["h1"], ["a1"], name="hswish"),
        helper.make_node("GlobalAveragePool", ["a1"], ["p"], name="se/pool"),
        helper.make_node("Conv", ["p", "se1.w", "se1.b"], ["s1"], name="se/reduce"),
        helper.make_node("Relu", ["s1"], ["s2"], name="se/relu"),
        helper.make_node("Conv", ["s2", "se2.w", "se2.b"], ["s3"], name="se/expand"),
        # torch's Hardsigmoid: alpha = 1/6, beta = 1/2.
        helper.make_node("HardSigmoid", ["s3"], ["gate"], alpha=1.0 / 6.0, beta=0.5, name="se/gate"),
        helper.make_node("Mul", ["a1", "gate"], ["e"], name="se/excite"),
        helper.make_node("Conv", ["e", "c2.w", "c2.b"], ["h2"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv2"),
        helper.make_node("Relu", ["h2"], ["a2"], name="relu2"),
        helper.make_node("Flatten", ["a2"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["logits"], transB=1, name="fc"),
    ]
    save(nodes, inits, "mobile_block", rng)


def main():
    mobile_block()
    efficient_block()


if __name__ == "__main__":
    main()
