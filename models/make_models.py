#!/usr/bin/env python3
"""Generates Veil's bundled ONNX models, their sample inputs, and the bad files.

Run from the repository root:  python3 models/make_models.py
Needs: torch (CPU is enough), onnx, numpy, scikit-learn. CI never runs this; it only reads the
committed outputs. Everything is seeded, so a rerun with the same package versions reproduces
the files (torch's training on CPU is deterministic with one thread).

Outputs (all under models/):
  mlp.onnx            784-128-128-10 ReLU MLP (Gemm), random weights, opset 11
  lenet.onnx          MiniONN-style MNIST CNN: Conv16 5x5, MaxPool, Conv16 5x5, MaxPool, Dense 100, Dense 10
  cifar_cnn.onnx      CIFAR-shaped CNN with BatchNorm, depthwise conv and AveragePool (both count_include_pad)
  resnet_small.onnx   small residual network (Add skip, BatchNorm, GlobalAveragePool)
  torch_flatten.onnx  x.view(x.size(0), -1): torch's Shape->Gather->Unsqueeze->Concat->Reshape chain
  activations.onnx    hand-built opset 13 MLP with LeakyRelu and Clip (bounds as inputs).
  legacy_opset9.onnx  hand-built opset 9 model: initializers listed as graph inputs, Clip attributes,
                      Dropout, Flatten, trailing Softmax
  digits_relu.onnx    CNN trained on scikit-learn's digits (ReLU)
  digits_poly.onnx    the same network trained with x*x + x in place of ReLU
  digits_test.npz     the digits test split: x [500,1,8,8] float32, y [500] int64
  inputs/<model>.npy  one sample input per model
  bad/                empty.onnx, truncated.onnx, random.onnx, unsupported_op.onnx
  ACCURACY.md         float accuracies of the trained models (written by this script)
"""

import os
import warnings

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))


def path(*p):
    out = os.path.join(HERE, *p)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    return out


def export(model, shape, name, opset, seed, keep_bn=False):
    """Exports with a dynamic batch axis (Veil fixes it to 1) and saves a sample input.

    With keep_bn, BatchNormalization stays a node (the exporter otherwise folds it into Conv)."""
    model.eval()
    torch.manual_seed(seed)
    x = torch.randn(*shape)
    torch.onnx.export(
        model,
        (x,),
        path(f"{name}.onnx"),
        dynamo=False,
        opset_version=opset,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        training=torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL,
    )
    np.save(path("inputs", f"{name}.npy"), x.numpy().astype(np.float32))


def randomize_bn(model, seed):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 128), nn.Linear(128, 128), nn.Linear(128, 10)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 16, 5), nn.Conv2d(16, 16, 5)
        self.fc1, self.fc2 = nn.Linear(16 * 4 * 4, 100), nn.Linear(100, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class CifarCnn(nn.Module):
    """About 50k ReLUs: the runtime's memory target model."""

    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.dw, self.b2 = nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16)
        self.p1 = nn.AvgPool2d(2)
        self.c3, self.b3 = nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)
        self.c4, self.b4 = nn.Conv2d(32, 32, 1), nn.BatchNorm2d(32)
        self.p2 = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.p3 = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=True)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.b1(self.c1(x)))
        x = self.p1(torch.relu(self.b2(self.dw(x))))
        x = torch.relu(self.b3(self.c3(x)))
        x = self.p3(self.p2(torch.relu(self.b4(self.c4(x)))))
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.c2, self.b2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.b1(self.c1(x)))
        return torch.relu(self.b2(self.c2(y)) + x)


class ResNetSmall(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8)
        self.block1, self.block2 = Block(8), Block(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        x = self.block2(self.block1(x))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


class TorchFlatten(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3, stride=2), nn.Linear(4 * 6 * 6, 10)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return self.fc(y.view(y.size(0), -1))


class Digits(nn.Module):
    def __init__(self, act):
        super().__init__()
        self.act = act
        self.conv1, self.conv2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(16 * 2 * 2, 32), nn.Linear(32, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(self.act(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(self.act(self.conv2(x)), 2)
        return self.fc2(self.act(self.fc1(torch.flatten(x, 1))))


def x2_plus_x(x):
    return x * x + x


def train_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=500, random_state=0, stratify=y)
    np.savez_compressed(path("digits_test.npz"), x=xte, y=yte)
    results = {}
    for name, act, epochs, lr in [("digits_relu", torch.relu, 60, 3e-3), ("digits_poly", x2_plus_x, 60, 1e-3)]:
        torch.manual_seed(0)
        model = Digits(act)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
        for _ in range(epochs):
            perm = torch.randperm(len(xt))
            model.train()
            for i in range(0, len(xt), 64):
                idx = perm[i : i + 64]
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
        model.eval()
        with torch.no_grad():
            acc = (model(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean()
        results[name] = acc
        torch.onnx.export(
            model,
            (torch.from_numpy(xte[:1]),),
            path(f"{name}.onnx"),
            dynamo=False,
            opset_version=13,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
        np.save(path("inputs", f"{name}.npy"), xte[:1])
    with open(path("ACCURACY.md"), "w") as f:
        f.write("# Float accuracy of the trained bundled models\n\n")
        f.write("Written by `models/make_models.py` (PyTorch float32 on the 500-image test split in\n")
        f.write("`digits_test.npz`; scikit-learn's digits, 8x8 grey levels scaled to [0, 1]).\n\n")
        f.write("| model | activation | test accuracy |\n|---|---|---|\n")
        f.write(f"| digits_relu.onnx | ReLU | {results['digits_relu'] * 100:.1f}% |\n")
        f.write(f"| digits_poly.onnx | x*x + x | {results['digits_poly'] * 100:.1f}% |\n")
    print("digits accuracy:", results)


def legacy_opset9():
    """Opset 9, initializers also listed as graph inputs (as exporters before IR v4 did)."""
    rng = np.random.default_rng(9)
    w1 = rng.normal(0, 0.3, (16, 12)).astype(np.float32)  # Gemm with transB=1: [N, K]
    b1 = rng.normal(0, 0.1, (16,)).astype(np.float32)
    w2 = rng.normal(0, 0.3, (16, 5)).astype(np.float32)  # MatMul: [K, N]
    b2 = rng.normal(0, 0.1, (5,)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in [(w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2")]]
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["flat", "w1", "b1"], ["h"], transB=1, alpha=0.5, beta=2.0, name="fc1"),
        helper.make_node("Clip", ["h"], ["h6"], min=0.0, max=6.0, name="relu6"),
        helper.make_node("Dropout", ["h6"], ["hd"], ratio=0.5, name="dropout"),
        helper.make_node("MatMul", ["hd", "w2"], ["z"], name="fc2"),
        helper.make_node("Add", ["z", "b2"], ["logits"], name="fc2_bias"),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1, name="softmax"),
    ]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 4])]
    inputs += [helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.dims)) for t in inits]
    graph = helper.make_graph(nodes, "legacy", inputs, [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)], ir_version=3)
    onnx.checker.check_model(model)
    onnx.save(model, path("legacy_opset9.onnx"))
    np.save(path("inputs", "legacy_opset9.npy"), rng.normal(0, 1, (1, 3, 4)).astype(np.float32))


def activations():
    """Hand-built opset 13 MLP with LeakyReLU and a two-sided Clip (bounds as inputs)."""
    rng = np.random.default_rng(13)
    w1 = rng.normal(0, 0.4, (16, 8)).astype(np.float32)
    b1 = rng.normal(0, 0.1, (16,)).astype(np.float32)
    w2 = rng.normal(0, 0.3, (16, 16)).astype(np.float32)
    b2 = rng.normal(0, 0.1, (16,)).astype(np.float32)
    w3 = rng.normal(0, 0.3, (4, 16)).astype(np.float32)
    b3 = rng.normal(0, 0.1, (4,)).astype(np.float32)
    lo, hi = np.array(-1.0, np.float32), np.array(1.0, np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in
             [(w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"), (w3, "w3"), (b3, "b3"), (lo, "lo"), (hi, "hi")]]
    nodes = [
        helper.make_node("Gemm", ["input", "w1", "b1"], ["h1"], transB=1, name="fc1"),
        helper.make_node("LeakyRelu", ["h1"], ["a1"], alpha=0.1, name="leaky"),
        helper.make_node("Gemm", ["a1", "w2", "b2"], ["h2"], transB=1, name="fc2"),
        helper.make_node("Clip", ["h2", "lo", "hi"], ["a2"], name="hardtanh"),
        helper.make_node("Gemm", ["a2", "w3", "b3"], ["logits"], transB=1, name="fc3"),
    ]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 8])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])]
    graph = helper.make_graph(nodes, "activations", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    onnx.checker.check_model(model)
    onnx.save(model, path("activations.onnx"))
    np.save(path("inputs", "activations.npy"), rng.normal(0, 1, (1, 8)).astype(np.float32))


def bad_files():
    good = open(path("mlp.onnx"), "rb").read()
    open(path("bad", "empty.onnx"), "wb").close()
    open(path("bad", "truncated.onnx"), "wb").write(good[: len(good) // 3])
    open(path("bad", "random.onnx"), "wb").write(np.random.default_rng(7).bytes(4096))
    # Unsupported nodes (an ONNX op and a custom-domain op) between supported ones: the front
    # end must report them all at once. (The Sigmoid was a third until issue 16 made a trailing
    # Sigmoid run on the client; this one reads the LSTM's result and is not reported.)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16])
    w = numpy_helper.from_array(np.zeros((4 * 16, 8, 4), np.float32), "W")
    r = numpy_helper.from_array(np.zeros((4 * 16, 8, 4), np.float32), "R")
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu_0"),
        helper.make_node("LSTM", ["a", "W", "R"], ["seq"], hidden_size=4, name="encoder/LSTM_0"),
        helper.make_node("Sigmoid", ["seq"], ["s"], name="gate/Sigmoid"),
        helper.make_node("FusedGelu", ["x"], ["g"], domain="com.example", name="custom/FusedGelu"),
        helper.make_node("Concat", ["g", "g"], ["y"], axis=2, name="concat"),
    ]
    graph = helper.make_graph(nodes, "unsupported", [x], [y], [w, r])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    onnx.save(model, path("bad", "unsupported_op.onnx"))


def main():
    torch.manual_seed(1)
    export(Mlp(), (1, 784), "mlp", 11, 1)
    torch.manual_seed(2)
    export(LeNet(), (1, 1, 28, 28), "lenet", 13, 2)
    torch.manual_seed(3)
    m = CifarCnn()
    randomize_bn(m, 3)
    export(m, (1, 3, 32, 32), "cifar_cnn", 17, 3, keep_bn=True)
    torch.manual_seed(4)
    m = ResNetSmall()
    randomize_bn(m, 4)
    export(m, (1, 3, 16, 16), "resnet_small", 18, 4, keep_bn=True)
    torch.manual_seed(5)
    export(TorchFlatten(), (1, 1, 14, 14), "torch_flatten", 13, 5)
    legacy_opset9()
    activations()
    train_digits()
    bad_files()


if __name__ == "__main__":
    main()
