"""Makes models/decoder/torch_*.onnx: a decoder written in torch, exported with both of torch's
exporters at their default opset (20): `dynamo=True` (the default; weights in
`torch_dynamo.onnx.data`) and `dynamo=False` (TorchScript). What each writes for the upsampling
modules users reach for: ConvTranspose2d (stride 2 with output_padding, and kernel 2 stride 2),
PixelShuffle (DepthToSpace, CRD), PReLU (per channel and single), torch.abs, and F.interpolate
as nearest (asymmetric, floor), bilinear with align_corners (by size), nn.Upsample bilinear
(half_pixel) and bicubic (by size). Random init (seed 0), eval mode, input [1, 3, 16, 16].
Writes the input (torch_input.npy) and onnxruntime's output of each export
(torch_dynamo_ort.npy, torch_torchscript_ort.npy). Also a 1-D (audio-shaped) decoder,
torch_audio_*.onnx on a [1, 2, 32] input: Conv1d, GroupNorm, leaky_relu, ConvTranspose1d,
nn.Upsample linear (which the dynamo exporter writes as GatherND with constant indices and a
weighted difference) and flip. Needs torch (written with 2.15), onnxscript,
onnx and onnxruntime; the tests only read the committed files. Run from the repository root."""

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = "models/decoder"
torch.manual_seed(0)


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.p1 = nn.PReLU(8)
        self.p2 = nn.PReLU()
        self.up = nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.c2 = nn.Conv2d(12, 12, 3, padding=1)
        self.ps = nn.PixelShuffle(2)
        self.us = nn.Upsample(scale_factor=2, mode="bilinear")

    def forward(self, x):
        h = self.p1(self.c1(x))
        d = F.max_pool2d(h, 2)
        y = self.ps(self.c2(torch.cat([self.up(d), self.up2(d)], 1)))
        y = F.interpolate(y, size=(24, 24), mode="bilinear", align_corners=True)
        y = self.p2(y).abs()
        y = F.interpolate(y, scale_factor=2, mode="nearest")
        y = self.us(y)
        return F.interpolate(y, size=(20, 20), mode="bicubic", align_corners=False)


class Audio(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(2, 8, 5, stride=2, padding=2)
        self.n = nn.GroupNorm(2, 8)
        self.t = nn.ConvTranspose1d(8, 4, 4, stride=2, padding=1)
        self.u = nn.Upsample(scale_factor=2, mode="linear")

    def forward(self, x):
        return self.u(self.t(F.leaky_relu(self.n(self.c(x)), 0.2))).flip(-1)


for prefix, model, x in [
    ("torch", Decoder().eval(), torch.randn(1, 3, 16, 16)),
    ("torch_audio", Audio().eval(), torch.randn(1, 2, 32)),
]:
    np.save(f"{OUT}/{prefix}_input.npy", x.numpy())
    for name, dynamo in [("dynamo", True), ("torchscript", False)]:
        path = f"{OUT}/{prefix}_{name}.onnx"
        torch.onnx.export(model, (x,), path, dynamo=dynamo)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        y = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        np.save(f"{OUT}/{prefix}_{name}_ort.npy", y)
        print(path, y.shape, float(np.abs(y - model(x).detach().numpy()).max()))
