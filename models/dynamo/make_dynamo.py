#!/usr/bin/env python3
"""Exports a small CNN with torch's default (dynamo) ONNX exporter, as a user of today's torch would.

Run from the repository root:  python3 models/dynamo/make_dynamo.py
Needs: torch (2.9 or newer: `dynamo=True` is the default there; written with 2.15), onnxscript,
onnx and onnxruntime. CI never runs this; `compiler/tests/frontend/dynamo.rs` reads the outputs.

The network is ResNet/MobileNetV2-shaped: a strided stem (Conv, BatchNorm, ReLU), a MobileNetV2
inverted residual (1x1 expand, ReLU6, depthwise 3x3, ReLU6, 1x1 project, skip add), a ResNet
basic block with a strided 1x1 downsample, then `AdaptiveAvgPool2d(1)` + flatten + Linear, the
head torchvision's ResNet and MobileNetV2 use. The exporter writes that pool as `ReduceMean` over
the spatial axes and keeps the weights in an external file, its defaults. Random weights (eval
mode, BatchNorm statistics drawn at random so BN folding is not trivial), seeded.

Outputs (models/dynamo/):
  cnn_gap.onnx, cnn_gap.onnx.data   the exported model and its external weights
  cnn_gap_input.npy                 one input [1, 3, 32, 32] float32
  cnn_gap_logits.npy                onnxruntime's output on it [1, 10] float32 (the reference)
"""

import os
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))


def conv_bn(cin, cout, k, stride=1, groups=1):
    return [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]


class InvertedResidual(nn.Module):
    def __init__(self, c, expand):
        super().__init__()
        h = c * expand
        self.body = nn.Sequential(
            *conv_bn(c, h, 1), nn.ReLU6(), *conv_bn(h, h, 3, groups=h), nn.ReLU6(), *conv_bn(h, c, 1)
        )

    def forward(self, x):
        return x + self.body(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(*conv_bn(cin, cout, 3, stride), nn.ReLU(), *conv_bn(cout, cout, 3))
        self.down = nn.Sequential(*conv_bn(cin, cout, 1, stride))

    def forward(self, x):
        return torch.relu(self.body(x) + self.down(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(3, 8, 3, 2), nn.ReLU())
        self.ir = InvertedResidual(8, 2)
        self.block = BasicBlock(8, 16, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.block(self.ir(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def main():
    torch.manual_seed(16)
    net = Net()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    x = torch.randn(1, 3, 32, 32)
    path = os.path.join(HERE, "cnn_gap.onnx")
    for stale in (path, path + ".data"):
        if os.path.exists(stale):
            os.remove(stale)
    torch.onnx.export(net, (x,), path, input_names=["input"], output_names=["logits"])  # dynamo=True: the default
    model = onnx.load(path, load_external_data=False)
    ops = sorted({n.op_type for n in model.graph.node})
    external = sum(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    assert "ReduceMean" in ops and external > 0, (ops, external)
    want = ort.InferenceSession(path).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        assert np.allclose(want, net(x).numpy(), rtol=1e-4, atol=1e-5)
    np.save(os.path.join(HERE, "cnn_gap_input.npy"), x.numpy())
    np.save(os.path.join(HERE, "cnn_gap_logits.npy"), want.astype(np.float32))
    print(f"torch {torch.__version__}: opset {opset}, ops {ops}, {external} external initializers")


if __name__ == "__main__":
    main()
