#!/usr/bin/env python3
"""Generates CIFAR-style ResNets with the onnx helper (no torch), with BatchNorm kept as nodes and
its statistics calibrated on random inputs so every layer's activations are normalised, as a
trained network's are (random BN statistics would make activations grow through 32 layers).

  models/bench/resnet32.onnx  ResNet-32 for CIFAR-100 (He et al. 2016: 3 stages x 5 basic blocks,
                              16/32/64 channels, 1x1 projection shortcuts), input [N, 3, 32, 32],
                              303,104 ReLUs, 0.47 M parameters
  inputs/resnet32.npy         one sample input;  inputs/resnet32_ort.npy  onnxruntime's logits
  inputs/resnet32_calib.npz   16 calibration inputs (array `x`) for --calibrate

  python3 models/bench/make_resnet.py                        # writes the ResNet-32 above
  python3 models/bench/make_resnet.py --resnet18 OUT.onnx    # also a ResNet-18 shape on 64x64 inputs
                                                       # (2.23 M ReLUs, 11.2 M parameters, 45 MB:
                                                       # not committed; for benchmarks)
Needs: onnx, onnxruntime, numpy. CI never runs this; it reads the committed outputs.
"""

import argparse
import os

import numpy as np
import onnx
import onnxruntime as ort
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def conv2d(x, w, stride, pad):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[2]
    win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwij,ocij->nohw", win, w, optimize=True)


class Builder:
    """Builds the graph and runs it in numpy on a calibration batch as it goes."""

    def __init__(self, rng, x):
        self.rng, self.nodes, self.inits, self.n = rng, [], [], 0
        self.x = x  # calibration activations of the current tensor

    def name(self, kind):
        self.n += 1
        return f"{kind}{self.n}"

    def conv_bn(self, src, act, cin, cout, k, stride):
        """Conv (He init, no bias) then BatchNorm with statistics of the calibration batch."""
        w = (self.rng.normal(0, 1, (cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32)
        y = conv2d(act, w, stride, k // 2)
        mean, var = y.mean(axis=(0, 2, 3)), y.var(axis=(0, 2, 3))
        gamma = self.rng.uniform(0.5, 1.0, cout).astype(np.float32)
        beta = self.rng.normal(0, 0.1, cout).astype(np.float32)
        c, b = self.name("conv"), self.name("bn")
        self.inits += [numpy_helper.from_array(w, f"{c}.w")] + [
            numpy_helper.from_array(v.astype(np.float32), f"{b}.{s}")
            for v, s in [(gamma, "scale"), (beta, "bias"), (mean, "mean"), (var, "var")]
        ]
        self.nodes += [
            helper.make_node("Conv", [src, f"{c}.w"], [c], pads=[k // 2] * 4, strides=[stride] * 2, name=c),
            helper.make_node("BatchNormalization", [c, f"{b}.scale", f"{b}.bias", f"{b}.mean", f"{b}.var"], [b], epsilon=1e-5, name=b),
        ]
        out = (y - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
        return b, (out * gamma[None, :, None, None] + beta[None, :, None, None]).astype(np.float32)

    def relu(self, src, act):
        r = self.name("relu")
        self.nodes.append(helper.make_node("Relu", [src], [r], name=r))
        return r, np.maximum(act, 0)

    def block(self, src, act, cin, cout, stride):
        h, a = self.relu(*self.conv_bn(src, act, cin, cout, 3, stride))
        h, a = self.conv_bn(h, a, cout, cout, 3, 1)
        if stride != 1 or cin != cout:
            s, sa = self.conv_bn(src, act, cin, cout, 1, stride)
        else:
            s, sa = src, act
        add = self.name("add")
        self.nodes.append(helper.make_node("Add", [h, s], [add], name=add))
        return self.relu(add, a + sa)


def resnet(name, blocks, widths, size, classes, seed, out):
    rng = np.random.default_rng(seed)
    calib = rng.normal(0, 1, (8, 3, size, size)).astype(np.float32)
    b = Builder(rng, calib)
    t, a = b.relu(*b.conv_bn("input", calib, 3, widths[0], 3, 1))
    cin = widths[0]
    for stage, (n, cout) in enumerate(zip(blocks, widths)):
        for i in range(n):
            t, a = b.block(t, a, cin, cout, 2 if (i == 0 and stage > 0) else 1)
            cin = cout
    fc_w = (rng.normal(0, 1, (classes, cin)) * np.sqrt(1.0 / cin)).astype(np.float32)
    fc_b = rng.normal(0, 0.1, classes).astype(np.float32)
    b.inits += [numpy_helper.from_array(fc_w, "fc.w"), numpy_helper.from_array(fc_b, "fc.b")]
    b.nodes += [
        helper.make_node("GlobalAveragePool", [t], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], transB=1, name="fc"),
    ]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])]
    graph = helper.make_graph(b.nodes, name, inputs, outputs, b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, out)
    relus = sum(1 for n in b.nodes if n.op_type == "Relu")
    params = sum(int(np.prod(i.dims)) for i in b.inits)
    print(f"{out}: {relus} ReLU nodes, {params} parameters")
    return rng


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--resnet18", help="also write a ResNet-18 shape on 64x64 inputs here")
    args = p.parse_args()
    out = os.path.join(HERE, "resnet32.onnx")
    rng = resnet("resnet32", [5, 5, 5], [16, 32, 64], 32, 100, 32, out)
    x = rng.normal(0, 1, (1, 3, 32, 32)).astype(np.float32)
    np.save(os.path.join(HERE, "inputs", "resnet32.npy"), x)
    logits = ort.InferenceSession(out, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.save(os.path.join(HERE, "inputs", "resnet32_ort.npy"), logits.astype(np.float32))
    calib = rng.normal(0, 1, (16, 3, 32, 32)).astype(np.float32)
    np.savez(os.path.join(HERE, "inputs", "resnet32_calib.npz"), x=calib)
    print("resnet32 top-1", int(logits.argmax()), "logit range", float(logits.min()), float(logits.max()))
    if args.resnet18:
        resnet("resnet18_64", [2, 2, 2, 2], [64, 128, 256, 512], 64, 200, 18, args.resnet18)


if __name__ == "__main__":
    main()
