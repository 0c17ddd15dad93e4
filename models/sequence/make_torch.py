"""Makes models/sequence/torch_*.onnx: small sequence classifiers written in torch, exported with
both of torch's exporters at their default opsets, which write nn.RNN, nn.GRU and nn.LSTM as
ONNX's RNN, GRU (linear_before_reset = 1) and LSTM ops: a 2-layer GRU, a bidirectional LSTM and
a tanh RNN, each on a batch-first [1, 6, 8] input (a keyword-spotting or sensor-window shape)
with a Linear head on the last step. Random init (seed 0), eval mode. Writes each input
(torch_<name>_input.npy) and onnxruntime's output of each export: torch_<name>.onnx
(TorchScript, `dynamo=False`, torch_<name>_ort.npy) and torch_<name>_dynamo.onnx (the default,
weights in `.data`; torch_<name>_dynamo_ort.npy). Needs torch (written with 2.15), onnxscript,
onnx and onnxruntime; the tests only read the committed files. Run from the repository root."""

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn

OUT = "models/sequence"
torch.manual_seed(0)


class Head(nn.Module):
    def __init__(self, rnn, width):
        super().__init__()
        self.rnn = rnn
        self.fc = nn.Linear(width, 4)

    def forward(self, x):
        return self.fc(self.rnn(x)[0][:, -1])


models = {
    "gru": Head(nn.GRU(8, 12, num_layers=2, batch_first=True), 12),
    "lstm": Head(nn.LSTM(8, 10, batch_first=True, bidirectional=True), 20),
    "rnn": Head(nn.RNN(8, 12, batch_first=True), 12),
}
for name, model in models.items():
    model = model.eval()
    x = torch.randn(1, 6, 8)
    np.save(f"{OUT}/torch_{name}_input.npy", x.numpy())
    for suffix, dynamo in [("", False), ("_dynamo", True)]:
        path = f"{OUT}/torch_{name}{suffix}.onnx"
        torch.onnx.export(model, (x,), path, dynamo=dynamo)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        y = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        np.save(f"{OUT}/torch_{name}{suffix}_ort.npy", y)
        print(path, y.shape, float(np.abs(y - model(x).detach().numpy()).max()))
