#!/usr/bin/env python3
"""Generates the ONNX backend node-test cases for the operators Veil's front end supports.

Run from the repository root:  python3 tests/conformance/make_cases.py [REGEX]
With REGEX, only the cases whose names (without `test_`) match it are (re)written, and the
others are left as they are: how cases are added without regenerating the rest.
Needs: onnx (1.23, which defines opsets up to 28) and numpy. CI never runs this;
`tests/tests/conformance.rs` reads the output.

For every official node test of a supported operator (cases come from
`onnx.backend.test.case.node.collect_testcases`), writes tests/conformance/cases/<name>/ with:
  model.onnx      the test model, adapted to Veil's two-party setting (see below)
  input_<i>.npy   the inputs that stay graph inputs (float32)
  output_<i>.npy  the expected outputs (float64, whatever their ONNX type)
  case.txt        how the model was adapted
Data over 2 MB is not written (no case today: the largest, the two 32×32×32 three-channel 3-D
pooling cases, take 1.1 MB each); case.txt would say so, and the Rust test then only imports the
model.

Adaptation, recorded in case.txt:
  * Input 0 is the client's data. Other inputs become initializers holding the test's values
    (in Veil weights are constants of the model), except the second operand of Add/Sub when it
    has input 0's shape, which stays a computed input (a residual add).
  * Concat cases are written twice: as is (input 0 computed, the others constants: a constant
    concatenated to a computed value) and as `<name>_all_computed` (every float input computed).
  * Each model keeps the operator set it was written for (22 to 25 for the newest operator
    versions); nothing is converted, so the manifest shows what Veil makes of today's opsets.

Whether each case passes or is rejected (and why) is decided by the Rust test, which checks
it against tests/conformance/manifest.txt.
"""

import os
import re
import shutil
import warnings

import numpy as np
import onnx
from onnx import numpy_helper

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
OPS = (
    "conv|gemm|matmul|add|sub|mul|div|neg|relu|clip|leakyrelu|maxpool|averagepool|globalaveragepool|"
    "globalmaxpool|batchnorm|flatten|reshape|squeeze|unsqueeze|transpose|concat|pad|constant_pad|identity|"
    "dropout|constant|cast|shape|gather|slice|softmax|logsoftmax|argmax|range|constantofshape|basic_conv|"
    "edge_pad|reflect_pad|wrap_pad|reduce_mean|reduce_sum|reduce_max|reduce_min|split|gelu|layer_normalization|"
    "instancenorm|group_normalization|round|floor|ceil|quantizelinear|dequantizelinear|convtranspose|resize|"
    "upsample|depthtospace|spacetodepth|tile|expand|abs|prelu|mean|gathernd|gru|lstm|rnn|simple_rnn"
)
# Same prefix, different operator.
NOT_OURS = re.compile(
    r"convinteger|castlike|matmulinteger|qlinear|dynamicquantize|"
    r"constantofshape_.*_int32_shape_zero|softmax_cross_entropy|sce_|_bfloat16|float8|float4|int4|uint4|"
    r"cast_.*string|string|training_dropout|dropout_default_mask|dropout_.*_mask|mul_uint|add_uint|sub_uint|div_uint|"
    r"add_int|sub_int|mul_int|div_int|reduce_sum_square|split_to_sequence"
)
# Cases whose inputs and outputs exceed this keep only their model.
DATA_LIMIT = 2 * 1024 * 1024


def default_opset(model):
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def as_array(v):
    return numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else np.asarray(v)


def adapt(case, all_computed=False):
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    inputs, outputs = case.data_sets[0]
    inputs, outputs = [as_array(v) for v in inputs], [as_array(v) for v in outputs]
    g = model.graph
    names = [i.name for i in g.input]
    op = g.node[0].op_type if len(g.node) == 1 else None
    keep, notes = [], []
    for k, (name, value) in enumerate(zip(names, inputs)):
        value = np.asarray(value)
        stays = (
            k == 0
            or (op in ("Add", "Sub") and value.dtype.kind == "f" and value.shape == np.asarray(inputs[0]).shape)
            or (all_computed and value.dtype.kind == "f")
        )
        if stays:
            keep.append((name, value))
        else:
            g.initializer.append(numpy_helper.from_array(value, name))
            notes.append(f"input {k} ({name}) bound as a constant")
    # Initializers are not graph inputs from IR v4 on; drop the bound ones from the input list.
    bound = {t.name for t in g.initializer}
    kept_inputs = [i for i in g.input if i.name not in bound]
    del g.input[:]
    g.input.extend(kept_inputs)
    return model, keep, outputs, notes + [f"opset {default_opset(model)}"]


def write(out, name, model, keep, outputs, notes):
    d = os.path.join(out, name)
    os.makedirs(d)
    onnx.save(model, os.path.join(d, "model.onnx"))
    if sum(np.asarray(v).nbytes for v in [*(v for _, v in keep), *outputs]) > DATA_LIMIT:
        notes.append(f"data omitted (over {DATA_LIMIT // 1024} KB)")
        keep, outputs = [], []
    for i, (_, v) in enumerate(keep):
        np.save(os.path.join(d, f"input_{i}.npy"), np.asarray(v).astype(np.float32) if v.dtype.kind == "f" else v)
    for i, v in enumerate(outputs):
        np.save(os.path.join(d, f"output_{i}.npy"), np.asarray(v).astype(np.float64))
    with open(os.path.join(d, "case.txt"), "w") as f:
        f.write("\n".join(notes) + "\n")


def main():
    import sys

    from onnx.backend.test.case.node import collect_testcases

    out = os.path.join(HERE, "cases")
    only = re.compile(sys.argv[1]) if len(sys.argv) > 1 else None
    if only is None:
        shutil.rmtree(out, ignore_errors=True)
    pat = re.compile(rf"^test_({OPS})(_|$)")
    n = 0
    for case in sorted(collect_testcases(None), key=lambda c: c.name):
        if not pat.match(case.name) or NOT_OURS.search(case.name) or not case.data_sets:
            continue
        name = case.name[len("test_"):]
        if only is not None:
            if not only.search(name):
                continue
            shutil.rmtree(os.path.join(out, name), ignore_errors=True)
        write(out, name, *adapt(case))
        n += 1
        if name.startswith("concat_"):
            write(out, f"{name}_all_computed", *adapt(case, all_computed=True))
            n += 1
    print(f"{n} cases written to {out}")


if __name__ == "__main__":
    main()
