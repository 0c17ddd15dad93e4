"""Makes models/video/torch_*.onnx: a small video (3-D) network written in torch, exported with
both of torch's exporters at their default opset: `dynamo=True` (the default; weights in
`torch_dynamo.onnx.data`) and `dynamo=False` (TorchScript). What each writes for the 3-D
modules of video and volumetric models: Conv3d (padded, strided in space only, and a grouped
temporal (3, 1, 1) convolution as R(2+1)D factorises them), BatchNorm3d, MaxPool3d,
ConvTranspose3d (stride 2, as 3-D U-Nets upsample), adaptive average pooling and a Linear
head. Random init (seed 0; the BatchNorm statistics drawn too), eval mode, input
[1, 3, 4, 16, 16] (channels, frames, height, width). Writes the input (torch_input.npy) and
onnxruntime's output of each export (torch_dynamo_ort.npy, torch_torchscript_ort.npy). Needs
torch (written with 2.15), onnxscript, onnx and onnxruntime; the tests only read the committed
files. Run from the repository root."""

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = "models/video"
torch.manual_seed(0)


class Video(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv3d(3, 8, 3, padding=1)
        self.b1 = nn.BatchNorm3d(8)
        self.c2 = nn.Conv3d(8, 16, 3, stride=(1, 2, 2), padding=1)
        self.b2 = nn.BatchNorm3d(16)
        self.t = nn.Conv3d(16, 16, (3, 1, 1), padding=(1, 0, 0), groups=4)
        self.up = nn.ConvTranspose3d(16, 8, 2, stride=2)
        self.fc = nn.Linear(8, 5)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)

    def forward(self, x):
        h = F.relu(self.b1(self.c1(x)))
        h = F.max_pool3d(h, (1, 2, 2))
        h = F.relu(self.b2(self.c2(h)))
        h = F.relu(self.t(h))
        h = self.up(h)
        return self.fc(F.adaptive_avg_pool3d(h, 1).flatten(1))


model = Video().eval()
x = torch.randn(1, 3, 4, 16, 16)
np.save(f"{OUT}/torch_input.npy", x.numpy())
for name, dynamo in [("dynamo", True), ("torchscript", False)]:
    path = f"{OUT}/torch_{name}.onnx"
    torch.onnx.export(model, (x,), path, dynamo=dynamo)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.save(f"{OUT}/torch_{name}_ort.npy", y)
    print(path, y.shape, float(np.abs(y - model(x).detach().numpy()).max()))
