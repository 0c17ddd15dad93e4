"""Makes models/attention/torch*.onnx: a small transformer classifier written in torch, exported
with both of torch's exporters at their default opsets: a token embedding (Linear), one
nn.TransformerEncoderLayer (2 heads, Gelu, pre-norm) whose attention weights are a Softmax in
the middle of the network, a final LayerNorm and a Linear head on the mean over the sequence, on
a batch-first [1, 6, 8] input. Random init (seed 0), eval mode. Writes the input
(torch_input.npy), 8 calibration inputs (torch_calib.npz, array `x`, [8, 6, 8]) and onnxruntime's output of each export: torch.onnx (TorchScript,
`dynamo=False`, torch_ort.npy) and torch_dynamo.onnx (the default, weights in `.data`;
torch_dynamo_ort.npy). Then the same with a causal mask (`is_causal`: the TorchScript
exporter builds it with Trilu, the dynamo one as a constant of −∞ and 0; post-norm, ReLU):
torch_causal.onnx, torch_causal_dynamo.onnx and their `_ort.npy`, same input. Needs torch (written with 2.15), onnxscript, onnx and onnxruntime; the
tests only read the committed files. Run from the repository root."""

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn

OUT = "models/attention"
torch.manual_seed(0)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(8, 16)
        self.layer = nn.TransformerEncoderLayer(
            16, 2, dim_feedforward=32, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        h = self.layer(self.embed(x))
        return self.head(self.norm(h).mean(1))


model = Classifier().eval()
x = torch.randn(1, 6, 8)
np.save(f"{OUT}/torch_input.npy", x.numpy())
np.savez(f"{OUT}/torch_calib.npz", x=torch.randn(8, 6, 8).numpy())
for suffix, dynamo in [("", False), ("_dynamo", True)]:
    path = f"{OUT}/torch{suffix}.onnx"
    # With gradients on, the layer takes its composite path (ops ONNX has), not the fused kernel.
    torch.onnx.export(model, (x,), path, dynamo=dynamo)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.save(f"{OUT}/torch{suffix}_ort.npy", y)
    print(path, y.shape, float(np.abs(y - model(x).detach().numpy()).max()))


class Causal(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(8, 16)
        self.layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        return self.head(self.layer(self.embed(x), src_mask=mask, is_causal=True)[:, -1])


causal = Causal().eval()
for suffix, dynamo in [("", False), ("_dynamo", True)]:
    path = f"{OUT}/torch_causal{suffix}.onnx"
    torch.onnx.export(causal, (x,), path, dynamo=dynamo)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.save(f"{OUT}/torch_causal{suffix}_ort.npy", y)
    print(path, y.shape, float(np.abs(y - causal(x).detach().numpy()).max()))
