//! Compile-time tensors: initializers, `Constant` nodes, and the results of constant folding.

use super::proto::{TensorProto, tensor_proto::DataLocation, tensor_proto::DataType};
use veil_ir::strides;

/// Element storage of a compile-time tensor: floats (any float type, widened or narrowed to f32)
/// or integers (any integer or bool type, widened to i64).
#[derive(Clone, Debug, PartialEq)]
pub enum CData {
    F(Vec<f32>),
    I(Vec<i64>),
}

/// A tensor known at compile time.
#[derive(Clone, Debug, PartialEq)]
pub struct CTensor {
    pub shape: Vec<usize>,
    pub data: CData,
}

impl CData {
    pub fn len(&self) -> usize {
        match self {
            CData::F(v) => v.len(),
            CData::I(v) => v.len(),
        }
    }

    /// The elements at `idx`, in order.
    pub fn pick(&self, idx: impl Iterator<Item = usize>) -> CData {
        match self {
            CData::F(v) => CData::F(idx.map(|i| v[i]).collect()),
            CData::I(v) => CData::I(idx.map(|i| v[i]).collect()),
        }
    }
}

impl CTensor {
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Self {
        Self { shape, data: CData::F(data) }
    }

    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> Self {
        Self { shape, data: CData::I(data) }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Values as f32 (integers converted).
    pub fn floats(&self) -> Vec<f32> {
        match &self.data {
            CData::F(v) => v.clone(),
            CData::I(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// Values as i64; floats must be integral.
    pub fn ints(&self) -> Result<Vec<i64>, String> {
        match &self.data {
            CData::I(v) => Ok(v.clone()),
            CData::F(v) => v
                .iter()
                .map(|&x| if x.fract() == 0.0 { Ok(x as i64) } else { Err(format!("expected integers, got {x}")) })
                .collect(),
        }
    }

    /// The single value of a one-element tensor, as f32.
    pub fn scalar(&self) -> Option<f32> {
        (self.len() == 1).then(|| self.floats()[0])
    }

    /// Same data, new shape (element counts must agree).
    pub fn reshaped(&self, shape: Vec<usize>) -> Result<CTensor, String> {
        if shape.iter().product::<usize>() != self.len() {
            return Err(format!("cannot reshape {:?} to {shape:?}", self.shape));
        }
        Ok(CTensor { shape, data: self.data.clone() })
    }
}

fn le_chunks<const N: usize, T>(raw: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N).map(|c| f(c.try_into().expect("chunks_exact yields N bytes"))).collect()
}

/// IEEE half to single precision.
fn f16_to_f32(h: u16) -> f32 {
    half::f16::from_bits(h).to_f32()
}

/// `x` rounded to the nearest IEEE half (ties to even), as ONNX's `Cast` to FLOAT16 does.
pub fn round_to_f16(x: f32) -> f32 {
    half::f16::from_f32(x).to_f32()
}

/// `x` rounded to the nearest bfloat16 (ties to even), as ONNX's `Cast` to BFLOAT16 does.
pub fn round_to_bf16(x: f32) -> f32 {
    half::bf16::from_f32(x).to_f32()
}

/// Converts a `TensorProto` (initializer or `Constant` value) into a compile-time tensor.
pub fn from_proto(t: &TensorProto) -> Result<CTensor, String> {
    let name = t.name();
    if t.data_location() == DataLocation::External {
        return Err(format!(
            "tensor {name:?} keeps its data in an external file, which Veil reads only for initializers and Constant values"
        ));
    }
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("tensor {name:?} has a negative dimension {d}")))
        .collect::<Result<_, _>>()?;
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or(format!("tensor {name:?} is too large"))?;
    let raw = t.raw_data();
    let dt = DataType::try_from(t.data_type()).unwrap_or(DataType::Undefined);
    let has_raw = t.raw_data.is_some();
    let data = match dt {
        DataType::Float if has_raw => CData::F(le_chunks(raw, f32::from_le_bytes)),
        DataType::Float => CData::F(t.float_data.clone()),
        DataType::Double if has_raw => CData::F(le_chunks(raw, |b| f64::from_le_bytes(b) as f32)),
        DataType::Double => CData::F(t.double_data.iter().map(|&x| x as f32).collect()),
        DataType::Float16 if has_raw => CData::F(le_chunks(raw, |b| f16_to_f32(u16::from_le_bytes(b)))),
        DataType::Float16 => CData::F(t.int32_data.iter().map(|&x| f16_to_f32(x as u16)).collect()),
        DataType::Int64 if has_raw => CData::I(le_chunks(raw, i64::from_le_bytes)),
        DataType::Int64 => CData::I(t.int64_data.clone()),
        DataType::Int32 if has_raw => CData::I(le_chunks(raw, |b| i32::from_le_bytes(b) as i64)),
        DataType::Int16 if has_raw => CData::I(le_chunks(raw, |b| i16::from_le_bytes(b) as i64)),
        DataType::Int8 if has_raw => CData::I(raw.iter().map(|&b| b as i8 as i64).collect()),
        DataType::Uint8 | DataType::Bool if has_raw => CData::I(raw.iter().map(|&b| b as i64).collect()),
        DataType::Uint16 if has_raw => CData::I(le_chunks(raw, |b| u16::from_le_bytes(b) as i64)),
        DataType::Uint32 if has_raw => CData::I(le_chunks(raw, |b| u32::from_le_bytes(b) as i64)),
        // 4- and 2-bit integers: packed low bits first, in raw bytes or one byte per int32.
        DataType::Int4 | DataType::Uint4 | DataType::Int2 | DataType::Uint2 => {
            let bytes: Vec<u8> = if has_raw { raw.to_vec() } else { t.int32_data.iter().map(|&x| x as u8).collect() };
            let bits = if matches!(dt, DataType::Int4 | DataType::Uint4) { 4 } else { 2 };
            let signed = matches!(dt, DataType::Int4 | DataType::Int2);
            CData::I(unpack(&bytes, bits, signed, n))
        }
        // 8- and 4-bit floats and bfloat16: one byte each (FLOAT4E2M1 packed two per byte, low
        // half first), bfloat16 two; in raw bytes or one pattern per int32.
        DataType::Bfloat16
        | DataType::Float8e4m3fn
        | DataType::Float8e4m3fnuz
        | DataType::Float8e5m2
        | DataType::Float8e5m2fnuz
        | DataType::Float8e8m0
        | DataType::Float4e2m1 => {
            let ty = veil_ir::RawDtype::from_name(dt.as_str_name()).ok_or("a raw dtype")?;
            let patterns: Vec<u16> = match (dt, has_raw) {
                (DataType::Bfloat16, true) => le_chunks(raw, u16::from_le_bytes),
                (DataType::Float4e2m1, _) => {
                    let bytes: Vec<u8> =
                        if has_raw { raw.to_vec() } else { t.int32_data.iter().map(|&x| x as u8).collect() };
                    unpack(&bytes, 4, false, n).into_iter().map(|v| v as u16).collect()
                }
                (_, true) => raw.iter().map(|&b| u16::from(b)).collect(),
                (_, false) => t.int32_data.iter().map(|&x| x as u16).collect(),
            };
            CData::F(patterns.into_iter().map(|b| ty.decode(b) as f32).collect())
        }
        DataType::Int32 | DataType::Int16 | DataType::Int8 | DataType::Uint8 | DataType::Bool | DataType::Uint16 => {
            CData::I(t.int32_data.iter().map(|&x| x as i64).collect())
        }
        DataType::Uint64 if has_raw => CData::I(le_chunks(raw, |b| u64::from_le_bytes(b) as i64)),
        DataType::Uint64 | DataType::Uint32 if !has_raw => CData::I(t.uint64_data.iter().map(|&x| x as i64).collect()),
        other => {
            return Err(format!("tensor {name:?} has element type {}, which Veil does not read", other.as_str_name()));
        }
    };
    if data.len() != n {
        return Err(format!("tensor {name:?} has {} values for shape {shape:?} (corrupt or truncated)", data.len()));
    }
    Ok(CTensor { shape, data })
}

/// The first `n` of the `bits`-bit integers packed into `bytes`, lowest bits first (ONNX's
/// layout for 4- and 2-bit types), sign-extended when `signed`. Fewer when the bytes run out.
fn unpack(bytes: &[u8], bits: u32, signed: bool, n: usize) -> Vec<i64> {
    let per = (8 / bits) as usize;
    let mask = (1u8 << bits) - 1;
    (0..n.min(bytes.len() * per))
        .map(|i| {
            let v = (bytes[i / per] >> ((i % per) as u32 * bits)) & mask;
            let top = 1i64 << (bits - 1);
            if signed && i64::from(v) >= top { i64::from(v) - 2 * top } else { i64::from(v) }
        })
        .collect()
}

/// ONNX multidirectional (numpy) broadcast of two shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let r = a.len().max(b.len());
    (0..r)
        .map(|i| {
            let da = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
            let db = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
            match (da, db) {
                (x, y) if x == y => Ok(x),
                (1, y) => Ok(y),
                (x, 1) => Ok(x),
                _ => Err(format!("shapes {a:?} and {b:?} do not broadcast")),
            }
        })
        .collect()
}

/// Flat source indices of a `from`-shaped tensor broadcast to `to`.
pub fn broadcast_indices(from: &[usize], to: &[usize]) -> Vec<usize> {
    let at = veil_ir::eval::kernels::broadcast_index(from, to);
    (0..to.iter().product()).map(at).collect()
}

/// Elementwise binary op with numpy broadcasting; integer inputs stay integer.
pub fn binary(
    a: &CTensor,
    b: &CTensor,
    f: fn(f64, f64) -> f64,
    fi: fn(i64, i64) -> Option<i64>,
) -> Result<CTensor, String> {
    let shape = broadcast_shape(&a.shape, &b.shape)?;
    let (ia, ib) = (broadcast_indices(&a.shape, &shape), broadcast_indices(&b.shape, &shape));
    let data = match (&a.data, &b.data) {
        (CData::I(x), CData::I(y)) => CData::I(
            ia.iter()
                .zip(&ib)
                .map(|(&i, &j)| fi(x[i], y[j]).ok_or("integer overflow or division by zero"))
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            let (x, y) = (a.floats(), b.floats());
            CData::F(ia.iter().zip(&ib).map(|(&i, &j)| f(x[i] as f64, y[j] as f64) as f32).collect())
        }
    };
    Ok(CTensor { shape, data })
}

/// Axis permutation of a compile-time tensor.
pub fn transpose(t: &CTensor, perm: &[usize]) -> CTensor {
    let shape: Vec<usize> = perm.iter().map(|&p| t.shape[p]).collect();
    let (xs, os) = (strides(&t.shape), strides(&shape));
    let idx = (0..t.len()).map(|flat| (0..shape.len()).map(|i| (flat / os[i]) % shape[i] * xs[perm[i]]).sum());
    CTensor { data: t.data.pick(idx), shape }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4- and 2-bit integers unpack low bits first, signed ones sign-extended, and a tensor
    /// whose bytes hold fewer values than its shape is refused as truncated.
    #[test]
    fn packed_small_integers_unpack_low_bits_first() {
        assert_eq!(unpack(&[0x8f, 0x07], 4, true, 3), vec![-1, -8, 7]);
        assert_eq!(unpack(&[0x8f, 0x07], 4, false, 4), vec![15, 8, 7, 0]);
        assert_eq!(unpack(&[0b1110_0100], 2, true, 4), vec![0, 1, -2, -1]);
        assert_eq!(unpack(&[0b1110_0100], 2, false, 4), vec![0, 1, 2, 3]);
        let mut t = TensorProto {
            name: Some("z".into()),
            data_type: Some(DataType::Int4 as i32),
            dims: vec![3],
            raw_data: Some(vec![0x21]),
            ..Default::default()
        };
        assert!(from_proto(&t).unwrap_err().contains("corrupt or truncated"));
        t.raw_data = Some(vec![0x21, 0x0d]);
        assert_eq!(from_proto(&t).unwrap().ints().unwrap(), vec![1, 2, -3]);
    }
}
