"""Makes models/attention/torch_tokens*.onnx: a small text classifier written in torch whose input
is token ids (int64 [1, 8]), exported with both of torch's exporters at their default opsets: a
token embedding (nn.Embedding, 50 × 16: a Gather of the table by the ids) plus a learned
position embedding, a LayerNorm, one nn.TransformerEncoderLayer (2 heads, ReLU, post-norm) with
a padding mask computed from the ids (`src_key_padding_mask = ids == 0`: an Equal and a Where
of −∞ on the client's input), and a Linear head on the first token. Random init (seed 0), eval
mode. Writes the input (torch_tokens_input.npy, three padding tokens at the end), 32
calibration inputs (torch_tokens_calib.npz, array `x`, int64 [32, 8], padded at random) and
onnxruntime's output of each export: torch_tokens.onnx (TorchScript, `dynamo=False`,
torch_tokens_ort.npy) and torch_tokens_dynamo.onnx (the default, weights in `.data`;
torch_tokens_dynamo_ort.npy). Needs torch (written with 2.15), onnxscript, onnx and onnxruntime;
the tests only read the committed files. Run from the repository root."""

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn

OUT = "models/attention"
VOCAB, T = 50, 8
torch.manual_seed(0)


class Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, 16)
        self.pos = nn.Embedding(T, 16)
        self.norm = nn.LayerNorm(16)
        self.layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, ids):
        x = self.norm(self.tok(ids) + self.pos(torch.arange(ids.shape[1]).unsqueeze(0)))
        return self.head(self.layer(x, src_key_padding_mask=(ids == 0))[:, 0])


def padded(n):
    ids = torch.randint(1, VOCAB, (n, T))
    for row in ids:
        row[int(torch.randint(2, T + 1, ())) :] = 0
    return ids


model = Tokens().eval()
ids = torch.tensor([[7, 31, 2, 49, 12, 0, 0, 0]])
np.save(f"{OUT}/torch_tokens_input.npy", ids.numpy())
np.savez(f"{OUT}/torch_tokens_calib.npz", x=padded(32).numpy())
for suffix, dynamo in [("", False), ("_dynamo", True)]:
    path = f"{OUT}/torch_tokens{suffix}.onnx"
    torch.onnx.export(model, (ids,), path, dynamo=dynamo, input_names=["ids"])
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = sess.run(None, {"ids": ids.numpy()})[0]
    np.save(f"{OUT}/torch_tokens{suffix}_ort.npy", y)
    print(path, y.shape, float(np.abs(y - model(ids).detach().numpy()).max()))
