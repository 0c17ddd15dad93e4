#!/usr/bin/env python3
"""Exports torchvision's CNN families, width/depth-reduced, with both of torch's ONNX exporters.

Run from the repository root:  /path/to/python models/zoo/make_zoo.py [--only NAME ...]
Needs: torch (2.9 or newer; written with 2.15), torchvision (0.29), onnxscript, onnx (1.23) and
onnxruntime (1.32). CI never runs this; `compiler/tests/frontend/zoo.rs` and
`tests/tests/two_party.rs` read what it writes.

Every model is built from torchvision's own classes and modules (random init, seed 16, eval mode,
10 classes, input [1, 3, 32, 32]) and exported twice, each exporter at its default opset:
`torch.onnx.export(..., dynamo=True)` (the default; weights in an external `.onnx.data` file) and
`dynamo=False` (the TorchScript exporter). The full-size networks are 5-100 MB each; what is
reduced, family by family (`FAMILIES` below), is:

  resnet18           ResNet-18's layout (7x7 stem, max pool, 4 stages x 2 torchvision BasicBlocks,
                     1x1 strided downsample, global average pool, Linear) at widths 8/16/32/64
                     instead of 64/128/256/512 (the torchvision ResNet class fixes its widths).
  mobilenet_v2       torchvision MobileNetV2 with width_mult 0.25, one block per stage instead of
                     1/2/3/4/3/3/1, last conv 320 channels instead of 1280.
  mobilenet_v3_small torchvision MobileNetV3 with the mobilenet_v3_small configuration at
                     width_mult 0.25 (all 11 blocks, Hardswish, squeeze-excite with Hardsigmoid),
                     classifier hidden width 128 instead of 1024.
  efficientnet_b0    torchvision EfficientNet with the efficientnet_b0 configuration at width_mult
                     0.25 and depth_mult 0.5 (SiLU, squeeze-excite with Sigmoid gates).
  shufflenet_v2      torchvision ShuffleNetV2 (x0.5's layout: channel split, channel shuffle) with
                     stage repeats 2/2/2 instead of 4/8/4 and channels 24/24/48/96/256 instead of
                     24/48/96/192/1024.
  squeezenet1_1      torchvision SqueezeNet 1.1 (all 8 Fire modules, ceil-mode max pools, the
                     Conv + ReLU + average-pool classifier) with its Fire widths quartered.
  densenet121        torchvision DenseNet with DenseNet-121's block configuration (6, 12, 24, 16)
                     at growth rate 4, 16 initial features and bottleneck size 2 (instead of 32,
                     64 and 4).
  regnet_x_400mf     torchvision RegNet with X-type blocks (grouped 3x3, no squeeze-excite) from
                     BlockParams.from_init_params(depth 7, w_0 8, w_a 8, w_m 2.54, group width 8)
                     instead of (22, 24, 24.48, 2.54, 16), stem width 8 instead of 32.
  lraspp_mobilenet_v3     torchvision's LRASPP segmentation head (inter_channels 16 instead of 128)
                     on MobileNetV3-large's dilated features at width 0.25 with the reduced tail,
                     4 classes: per-pixel scores [1, 4, 32, 32] (bilinear Resize, the head's
                     Sigmoid gate on a global average pool).
  deeplabv3_mobilenet_v3  torchvision's DeepLabV3 on the same backbone, its ASPP (atrous rates
                     12/24/36, the pooling branch upsampled from 1x1) at 16 channels instead of
                     256, 4 classes.
  convnext_tiny      torchvision ConvNeXt with one block per stage at widths 8/16/32/64 instead of
                     3/3/9/3 blocks at 96/192/384/768. Veil refuses it (LayerNormalization, Gelu
                     or its Erf form); the test checks the refusal.

BatchNorm is not left at its initial statistics (mean 0, variance 1, which folding would leave
unchanged): its scale and shift are drawn at random, then its running statistics are estimated
on 64 random inputs in train mode (cumulative average), so every layer's activations are
normalised as a trained network's are, and BN folding has real work to do.

Outputs per model (models/zoo/<name>/):
  dynamo.onnx, dynamo.onnx.data     the default exporter's model and its external weights
  torchscript.onnx                  the TorchScript exporter's model (weights inline)
  input.npy                         the checked input [1, 3, 32, 32] float32: the first of the seeded
                                    random draws whose top-1 logit leads the second by at least 5%
                                    of the logits' range (so "keeps top-1" at a 1% error target is
                                    a meaningful check, not a coin toss between near-ties)
  dynamo_ort.npy, torchscript_ort.npy  onnxruntime's output for input.npy on each export [1, 10]
  calib.npz                         4 calibration inputs (array `x`, [4, 3, 32, 32]) for --calibrate
"""

import argparse
import os
import shutil
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn
from torchvision.models import (
    MobileNetV2,
    ShuffleNetV2,
    SqueezeNet,
    densenet,
    efficientnet,
    mobilenetv3,
    regnet,
)
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.convnext import CNBlockConfig, ConvNeXt
from torchvision.models.segmentation.deeplabv3 import ASPP, DeepLabV3
from torchvision.models.segmentation.lraspp import LRASPP
from torchvision.models.resnet import BasicBlock, conv1x1
from torchvision.models.squeezenet import Fire

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES = 10
# Classes of the segmentation families' per-pixel scores.
SEG_CLASSES = 4


class ResNet18Narrow(nn.Module):
    """ResNet-18's layout and forward (torchvision's ResNet) with torchvision's BasicBlock at
    widths 8/16/32/64."""

    def __init__(self, widths=(8, 16, 32, 64)):
        super().__init__()
        w0 = widths[0]
        self.conv1 = nn.Conv2d(3, w0, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w0)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, cin = [], w0
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or cin != w:
                down = nn.Sequential(conv1x1(cin, w, stride), nn.BatchNorm2d(w))
            stages.append(nn.Sequential(BasicBlock(cin, w, stride, down), BasicBlock(w, w)))
            cin = w
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, CLASSES)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18():
    return ResNet18Narrow()


def mobilenet_v2():
    # t, c, n, s as torchvision's default setting, with n = 1 in every stage.
    setting = [[1, 16, 1, 1], [6, 24, 1, 2], [6, 32, 1, 2], [6, 64, 1, 2], [6, 96, 1, 1], [6, 160, 1, 2], [6, 320, 1, 1]]
    net = MobileNetV2(num_classes=CLASSES, width_mult=0.25, inverted_residual_setting=setting)
    # The last 1x1 conv widens to 1280 whatever the width multiplier; narrow it (and the head).
    last = net.features[-1]
    cin = last[0].in_channels
    net.features[-1] = type(last)(cin, 320, kernel_size=1, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6)
    net.classifier[-1] = nn.Linear(320, CLASSES)
    return net


def mobilenet_v3_small():
    setting, _ = mobilenetv3._mobilenet_v3_conf("mobilenet_v3_small", width_mult=0.25)
    return mobilenetv3.MobileNetV3(setting, last_channel=128, num_classes=CLASSES)


def efficientnet_b0():
    setting, last = efficientnet._efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.5)
    return efficientnet.EfficientNet(setting, dropout=0.2, last_channel=last, num_classes=CLASSES)


def shufflenet_v2():
    return ShuffleNetV2([2, 2, 2], [24, 24, 48, 96, 256], num_classes=CLASSES)


def squeezenet1_1():
    net = SqueezeNet(version="1_1", num_classes=CLASSES)
    q = 4  # every Fire width divided by 4
    net.features = nn.Sequential(
        nn.Conv2d(3, 64 // q, 3, 2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(64 // q, 16 // q, 64 // q, 64 // q),
        Fire(128 // q, 16 // q, 64 // q, 64 // q),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(128 // q, 32 // q, 128 // q, 128 // q),
        Fire(256 // q, 32 // q, 128 // q, 128 // q),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(256 // q, 48 // q, 192 // q, 192 // q),
        Fire(384 // q, 48 // q, 192 // q, 192 // q),
        Fire(384 // q, 64 // q, 256 // q, 256 // q),
        Fire(512 // q, 64 // q, 256 // q, 256 // q),
    )
    net.classifier[1] = nn.Conv2d(512 // q, CLASSES, 1)
    return net


def densenet121():
    return densenet.DenseNet(4, (6, 12, 24, 16), num_init_features=16, bn_size=2, num_classes=CLASSES)


def regnet_x_400mf():
    params = regnet.BlockParams.from_init_params(depth=7, w_0=8, w_a=8.0, w_m=2.54, group_width=8)
    return regnet.RegNet(params, num_classes=CLASSES, stem_width=8)


def _mobilenet_v3_large_dilated():
    """MobileNetV3-large's features as torchvision's segmentation models build them (dilated, so
    the output stride is 16), at width 0.25 with the reduced tail."""
    return mobilenetv3.mobilenet_v3_large(weights=None, width_mult=0.25, reduced_tail=True, dilated=True).features


def _stage_indices(features):
    # As torchvision's _lraspp_mobilenetv3 / _deeplabv3_mobilenetv3 pick their taps.
    return [0] + [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)] + [len(features) - 1]


class _Segmentation(nn.Module):
    """A torchvision segmentation model returning its "out" map (the dict output does not export)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)["out"]


def lraspp_mobilenet_v3():
    features = _mobilenet_v3_large_dilated()
    idx = _stage_indices(features)
    low, high = idx[-4], idx[-1]
    backbone = IntermediateLayerGetter(features, return_layers={str(low): "low", str(high): "high"})
    head = LRASPP(backbone, features[low].out_channels, features[high].out_channels, SEG_CLASSES, inter_channels=16)
    return _Segmentation(head)


def deeplabv3_mobilenet_v3():
    features = _mobilenet_v3_large_dilated()
    out = _stage_indices(features)[-1]
    backbone = IntermediateLayerGetter(features, return_layers={str(out): "out"})
    width = 16
    head = nn.Sequential(
        ASPP(features[out].out_channels, [12, 24, 36], out_channels=width),
        nn.Conv2d(width, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, SEG_CLASSES, 1),
    )
    return _Segmentation(DeepLabV3(backbone, head, None))


def convnext_tiny():
    setting = [CNBlockConfig(8, 16, 1), CNBlockConfig(16, 32, 1), CNBlockConfig(32, 64, 1), CNBlockConfig(64, None, 1)]
    return ConvNeXt(setting, num_classes=CLASSES)


FAMILIES = {
    f.__name__: f
    for f in [
        resnet18,
        mobilenet_v2,
        mobilenet_v3_small,
        efficientnet_b0,
        shufflenet_v2,
        squeezenet1_1,
        densenet121,
        regnet_x_400mf,
        convnext_tiny,
        lraspp_mobilenet_v3,
        deeplabv3_mobilenet_v3,
    ]
}
# Families whose output is a per-pixel score map [1, SEG_CLASSES, 32, 32], not logits.
SEGMENTATION = {"lraspp_mobilenet_v3", "deeplabv3_mobilenet_v3"}


def calibrate_batchnorm(net, gen):
    """Random BN scale and shift, then running statistics estimated on random inputs."""
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.weight.uniform_(0.5, 1.5, generator=gen)
            m.bias.uniform_(-0.2, 0.2, generator=gen)
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
        net.train()
        for _ in range(4):
            net(torch.randn(16, 3, 32, 32, generator=gen))
    net.eval()
    return len(bns)


def export(net, x, path, dynamo):
    for stale in (path, path + ".data"):
        if os.path.exists(stale):
            os.remove(stale)
    out = "scores" if isinstance(net, _Segmentation) else "logits"
    torch.onnx.export(net, (x,), path, input_names=["input"], output_names=[out], dynamo=dynamo)
    model = onnx.load(path, load_external_data=False)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    ops = sorted({n.op_type for n in model.graph.node})
    return opset, ops


def make(name):
    gen = torch.Generator().manual_seed(16)
    torch.manual_seed(16)
    net = FAMILIES[name]()
    bns = calibrate_batchnorm(net, gen)
    params = sum(p.numel() for p in net.parameters())
    # The checked input: the first draw with a clear top-1 (see the module doc).
    with torch.no_grad():
        for _ in range(100):
            x = torch.randn(1, 3, 32, 32, generator=gen)
            if name in SEGMENTATION:
                break  # per-pixel classes: the test checks them where the margin is clear
            y = net(x)[0].sort(descending=True).values
            if y[0] - y[1] >= 0.05 * (y[0] - y[-1]):
                break
        else:
            raise SystemExit(f"{name}: no input with a clear top-1 in 100 draws")
        calib = torch.randn(4, 3, 32, 32, generator=gen)
        want = net(x).numpy()
    out = os.path.join(HERE, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    np.save(os.path.join(out, "input.npy"), x.numpy())
    np.savez(os.path.join(out, "calib.npz"), x=calib.numpy())
    sizes = 0
    for kind, dynamo in [("dynamo", True), ("torchscript", False)]:
        path = os.path.join(out, f"{kind}.onnx")
        opset, ops = export(net, x, path, dynamo)
        got = ort.InferenceSession(path).run(None, {"input": x.numpy()})[0]
        assert np.allclose(got, want, rtol=1e-4, atol=1e-5), (name, kind, np.abs(got - want).max())
        np.save(os.path.join(out, f"{kind}_ort.npy"), got.astype(np.float32))
        size = sum(os.path.getsize(p) for p in (path, path + ".data") if os.path.exists(p))
        sizes += size
        print(f"{name:19} {kind:11} opset {opset:2}  {size / 1e3:7.1f} kB  {', '.join(ops)}")
    print(f"{name:19} {params} parameters, {bns} BatchNorms, {sizes / 1e3:.1f} kB in all")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", choices=sorted(FAMILIES), help="regenerate these families only")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    for name in args.only or FAMILIES:
        make(name)


if __name__ == "__main__":
    main()
