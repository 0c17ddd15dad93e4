"""Makes models/attention/hf_bert*.onnx: Hugging Face's BertForSequenceClassification (transformers'
own modelling code, random init with seed 0, eval mode) shrunk to one layer of width 32 with 2
heads, a vocabulary of 100 and 3 labels, exported on token ids alone (int64 [1, 8]; token types
and positions are the model's defaults, the attention mask all ones) with both of torch's
exporters: hf_bert.onnx (TorchScript, `dynamo=False`) and hf_bert_dynamo.onnx (the default,
weights in `.data`). Writes the input (hf_bert_input.npy), 16 calibration inputs
(hf_bert_calib.npz, array `x`, int64 [16, 8]) and onnxruntime's output of each export
(`*_ort.npy`). Then the same on `input_ids` and `attention_mask` (Hugging Face's usual two
inputs; the last three positions padding): hf_bert_mask.onnx, hf_bert_mask_dynamo.onnx, the
inputs hf_bert_mask_ids.npy and hf_bert_mask_mask.npy, 16 calibration samples
(hf_bert_mask_calib.npz, arrays `input_ids` and `attention_mask`, padded at random) and
`_ort.npy`. Needs transformers (written with 5.25), torch (2.15), onnxscript, onnx and
onnxruntime; the tests only read the committed files. Run from the repository root."""

import numpy as np
import onnxruntime as ort
import torch
from transformers import BertConfig, BertForSequenceClassification

OUT = "models/attention"
torch.manual_seed(0)
config = BertConfig(
    vocab_size=100,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=16,
    num_labels=3,
)
model = BertForSequenceClassification(config).eval()
ids = torch.tensor([[2, 15, 7, 33, 3, 61, 9, 4]])
np.save(f"{OUT}/hf_bert_input.npy", ids.numpy())
np.savez(f"{OUT}/hf_bert_calib.npz", x=torch.randint(0, 100, (16, 8)).numpy())
for suffix, dynamo in [("", False), ("_dynamo", True)]:
    path = f"{OUT}/hf_bert{suffix}.onnx"
    torch.onnx.export(model, (ids,), path, dynamo=dynamo, input_names=["input_ids"])
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = sess.run(None, {"input_ids": ids.numpy()})[0]
    np.save(f"{OUT}/hf_bert{suffix}_ort.npy", y)
    print(path, y.shape, float(np.abs(y - model(ids).logits.detach().numpy()).max()))

ids = torch.tensor([[2, 15, 7, 33, 3, 0, 0, 0]])
mask = (ids != 0).long()
np.save(f"{OUT}/hf_bert_mask_ids.npy", ids.numpy())
np.save(f"{OUT}/hf_bert_mask_mask.npy", mask.numpy())
calib_ids = torch.randint(1, 100, (16, 8))
calib_mask = torch.ones(16, 8, dtype=torch.long)
for row, m in zip(calib_ids, calib_mask):
    n = int(torch.randint(2, 9, ()))
    row[n:], m[n:] = 0, 0
np.savez(f"{OUT}/hf_bert_mask_calib.npz", input_ids=calib_ids.numpy(), attention_mask=calib_mask.numpy())
for suffix, dynamo in [("", False), ("_dynamo", True)]:
    path = f"{OUT}/hf_bert_mask{suffix}.onnx"
    torch.onnx.export(model, (ids, mask), path, dynamo=dynamo, input_names=["input_ids", "attention_mask"])
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = sess.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    np.save(f"{OUT}/hf_bert_mask{suffix}_ort.npy", y)
    print(path, y.shape, float(np.abs(y - model(ids, attention_mask=mask).logits.detach().numpy()).max()))
