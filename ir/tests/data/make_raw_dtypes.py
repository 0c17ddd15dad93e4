"""Writes raw_dtypes.txt: every byte (bfloat16: every 16-bit pattern with a step of 251) of each raw
element type, decoded by ml_dtypes, the reference `raw_dtype.rs` is checked against
(ir/tests/raw_dtypes.rs). Run by hand: `python3 ir/tests/data/make_raw_dtypes.py`."""
import os
import numpy as np
import ml_dtypes as m

TYPES = {
    "INT2": m.int2, "UINT2": m.uint2, "INT4": m.int4, "UINT4": m.uint4,
    "FLOAT4E2M1": m.float4_e2m1fn, "FLOAT8E4M3FN": m.float8_e4m3fn,
    "FLOAT8E4M3FNUZ": m.float8_e4m3fnuz, "FLOAT8E5M2": m.float8_e5m2,
    "FLOAT8E5M2FNUZ": m.float8_e5m2fnuz, "FLOAT8E8M0": m.float8_e8m0fnu,
}
n_bits = {"INT2": 2, "UINT2": 2, "INT4": 4, "UINT4": 4, "FLOAT4E2M1": 4}
lines = [f"# ml_dtypes {m.__version__}: TYPE then the value of each stored pattern 0, 1, ..."]
for name, t in TYPES.items():
    patterns = np.arange(1 << n_bits.get(name, 8), dtype=np.uint8)
    vals = patterns.view(t).astype(np.float64)
    lines.append(name + " " + " ".join(repr(float(v)) for v in vals))
pat = np.arange(0, 1 << 16, 251, dtype=np.uint16)
vals = pat.view(m.bfloat16).astype(np.float64)
lines.append("BFLOAT16/251 " + " ".join(repr(float(v)) for v in vals))
with open(os.path.join(os.path.dirname(__file__), "raw_dtypes.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
