//! Reading and writing `.npy` tensors: float32 or float64 in, float32 or int64 out.
//!
//! Reads check the header against the file size before allocating, so a corrupt header cannot
//! cause a huge allocation; Fortran-ordered arrays are converted to row-major. Writes go through
//! [`crate::files::write_output`], so a failure never leaves a partial file.

use std::path::Path;

use npyz::{DType, NpyFile, Order, TypeChar, WriterBuilder};

use crate::raw_dtype::RawDtype;
use crate::tensor::Tensor;
use crate::types::ElemType;

/// A `.npy` file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file could not be opened or read.
    #[error("cannot read {path}")]
    Io {
        /// The file's path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a well-formed `.npy` / `.npz` file.
    #[error("{path} is not a valid .npy file: {reason}")]
    Format {
        /// The file's path.
        path: String,
        /// The decoder's message.
        reason: String,
    },
    /// The array's element type is not supported (`.npy`: float32/64, integers of 8 to 64 bits
    /// and bool; `.npz`: float32/64, int64/32 and uint8).
    #[error("{path} holds {dtype} values; expected float32, float64, integers or bool{}", raw_hint(dtype))]
    DType {
        /// The file's path.
        path: String,
        /// The element type found, as the decoder names it.
        dtype: String,
    },
}

/// What a raw-byte dtype (`|V1`, `|V2`) may be.
fn raw_hint(dtype: &str) -> &'static str {
    if dtype.contains('V') {
        " (raw bytes: Veil reads ml_dtypes' 2- and 4-bit integers, 8- and 4-bit floats and bfloat16 \
only for a graph input the model declares with that type)"
    } else {
        ""
    }
}

/// Reads a float32 or float64 `.npy` file as an f32 tensor.
pub fn read_npy(path: &Path) -> Result<Tensor, NpyError> {
    read_npy_as(path, None)
}

/// A `.npy` header is a flat Python dictionary: `{'descr': '<f4', 'fortran_order': False,
/// 'shape': (1, 784), }`. Anything nested is refused before `npyz` parses it: its parser takes
/// exponential time on nested braces (found by the `npy_decode` fuzz target; the input is kept
/// in `fuzz/regressions/npy_decode/`).
fn check_header(bytes: &[u8]) -> Result<(), &'static str> {
    let (len, start): (usize, usize) = match bytes.get(6) {
        Some(1) if bytes.len() >= 10 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        Some(2 | 3) if bytes.len() >= 12 => {
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        _ => return Ok(()), // npyz reports what is wrong with the preamble
    };
    let header = &bytes[start..bytes.len().min(start.saturating_add(len))];
    let count = |c: u8| header.iter().filter(|&&b| b == c).count();
    if count(b'{') > 1 || count(b'}') > 1 || count(b'(') > 1 || count(b')') > 1 || count(b'[') > 0 {
        return Err("the header is not a flat dictionary with one shape tuple");
    }
    Ok(())
}

/// Decodes `.npy` bytes (`what` names the source in errors).
pub fn decode_npy(bytes: &[u8], what: &str) -> Result<Tensor, NpyError> {
    decode_npy_as(bytes, what, None)
}

/// Reads a `.npy` file whose raw-byte elements (`|V1`, `|V2`) are of type `raw` (a graph
/// input's declared type, [`crate::Graph::raw_inputs`]); other dtypes read as [`read_npy`] does.
pub fn read_npy_as(path: &Path, raw: Option<RawDtype>) -> Result<Tensor, NpyError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io { path: p.clone(), source })?;
    decode_npy_as(&bytes, &p, raw)
}

/// [`decode_npy`], reading raw-byte elements as `raw`: ml_dtypes saves ONNX's 2- and 4-bit
/// integers, 8- and 4-bit floats and bfloat16 that way. Without `raw`, or when the element size
/// is not `raw`'s, such a file is refused naming the dtype.
pub fn decode_npy_as(bytes: &[u8], what: &str, raw: Option<RawDtype>) -> Result<Tensor, NpyError> {
    let fmt = |reason: String| NpyError::Format { path: what.to_string(), reason };
    check_header(bytes).map_err(|r| fmt(r.into()))?;
    let file = NpyFile::new(bytes).map_err(|e| fmt(e.to_string()))?;
    let DType::Plain(ts) = file.dtype() else {
        return Err(NpyError::DType { path: what.into(), dtype: format!("{:?}", file.dtype()) });
    };
    let (kind, width) = (ts.type_char(), ts.size_field() as usize);
    let raw = raw.filter(|t| kind == TypeChar::RawData && t.bytes() == width);
    if raw.is_none()
        && !matches!(
            (kind, width),
            (TypeChar::Float, 4 | 8) | (TypeChar::Int | TypeChar::Uint, 1 | 2 | 4 | 8) | (TypeChar::Bool, 1)
        )
    {
        return Err(NpyError::DType { path: what.into(), dtype: ts.to_string() });
    }
    let shape: Vec<usize> = file.shape().iter().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect();
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| fmt("shape overflows".into()))?;
    if n.checked_mul(width).is_none_or(|need| need > bytes.len()) {
        return Err(fmt(format!("header promises {n} values of {width} bytes, the file has {} bytes", bytes.len())));
    }
    let order = file.order();
    let io = |e: std::io::Error| fmt(e.to_string());
    let data: Vec<f32> = match (kind, width) {
        (TypeChar::RawData, _) => raw_values(file, raw.expect("checked above"), what)?,
        (TypeChar::Float, 4) => file.into_vec::<f32>().map_err(io)?,
        (TypeChar::Float, _) => file.into_vec::<f64>().map_err(io)?.into_iter().map(|v| v as f32).collect(),
        (TypeChar::Bool, _) => file.into_vec::<bool>().map_err(io)?.into_iter().map(|b| b as u8 as f32).collect(),
        _ => integers(file, kind, width)
            .map_err(io)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| exact_f32(v, i))
            .collect::<Result<_, _>>()
            .map_err(fmt)?,
    };
    if data.len() != n {
        return Err(fmt(format!("expected {n} values, read {}", data.len())));
    }
    Ok(match order {
        Order::C => Tensor { shape, data },
        Order::Fortran => {
            // Column-major data is the row-major layout of the reversed shape.
            let rev: Vec<usize> = shape.iter().rev().copied().collect();
            let perm: Vec<usize> = (0..shape.len()).rev().collect();
            crate::eval::kernels::transpose(&Tensor { shape: rev, data }, &perm)
        }
    })
}

/// The elements of a raw-byte `.npy` array of type `t`, as f32 (each of these types' values is
/// an f32 exactly, E8M0's 2^−127 as a subnormal).
fn raw_values(file: NpyFile<&[u8]>, t: RawDtype, what: &str) -> Result<Vec<f32>, NpyError> {
    let io = |e: std::io::Error| NpyError::Format { path: what.to_string(), reason: e.to_string() };
    let patterns: Vec<u16> = if t.bytes() == 2 {
        file.into_vec::<npyz::FixedSizeBytes<2>>().map_err(io)?.into_iter().map(|b| u16::from_le_bytes(b.0)).collect()
    } else {
        file.into_vec::<npyz::FixedSizeBytes<1>>().map_err(io)?.into_iter().map(|b| u16::from(b.0[0])).collect()
    };
    Ok(patterns.into_iter().map(|b| t.decode(b) as f32).collect())
}

/// The elements of an integer `.npy` array.
fn integers(file: NpyFile<&[u8]>, kind: TypeChar, width: usize) -> std::io::Result<Vec<i128>> {
    Ok(match (kind, width) {
        (TypeChar::Int, 1) => file.into_vec::<i8>()?.into_iter().map(i128::from).collect(),
        (TypeChar::Int, 2) => file.into_vec::<i16>()?.into_iter().map(i128::from).collect(),
        (TypeChar::Int, 4) => file.into_vec::<i32>()?.into_iter().map(i128::from).collect(),
        (TypeChar::Int, _) => file.into_vec::<i64>()?.into_iter().map(i128::from).collect(),
        (_, 1) => file.into_vec::<u8>()?.into_iter().map(i128::from).collect(),
        (_, 2) => file.into_vec::<u16>()?.into_iter().map(i128::from).collect(),
        (_, 4) => file.into_vec::<u32>()?.into_iter().map(i128::from).collect(),
        _ => file.into_vec::<u64>()?.into_iter().map(i128::from).collect(),
    })
}

/// An integer as f32, when f32 holds it exactly (|v| ≤ 2^24, and more for multiples of powers
/// of two): Veil's values are reals, and an input must not change on the way in.
fn exact_f32(v: i128, at: usize) -> Result<f32, String> {
    let f = v as f32;
    if f.is_finite() && f as i128 == v {
        Ok(f)
    } else {
        Err(format!("the integer {v} at flat index {at} has no exact float32 value (beyond 2^24)"))
    }
}

/// An array from an `.npz` archive: floats (any float dtype) or integers (labels).
#[derive(Clone, Debug, PartialEq)]
pub enum NpzArray {
    /// Float data (float32 or float64), as `f32`.
    Float(Tensor),
    /// Integer data (int64, int32 or uint8), widened to `i64`.
    Int {
        /// Dimensions, outermost first.
        shape: Vec<usize>,
        /// Elements in row-major order.
        data: Vec<i64>,
    },
}

impl NpzArray {
    /// The array as model inputs (reals): floats as they are, integers (token ids, `uint8`
    /// images) as their values, or why one has no exact `f32` value.
    pub fn into_reals(self) -> Result<Tensor, String> {
        match self {
            NpzArray::Float(t) => Ok(t),
            NpzArray::Int { shape, data } => {
                let data =
                    data.into_iter().enumerate().map(|(at, v)| exact_f32(v.into(), at)).collect::<Result<_, _>>()?;
                Tensor::new(shape, data).ok_or_else(|| "the data does not fill its shape".to_string())
            }
        }
    }
}

/// Reads array `key` of the `.npz` archive at `path`; the error lists the keys it has.
pub fn read_npz(path: &Path, key: &str) -> Result<NpzArray, NpyError> {
    let p = path.display().to_string();
    let fmt = |reason: String| NpyError::Format { path: p.clone(), reason };
    let mut archive = npyz::npz::NpzArchive::open(path).map_err(|source| NpyError::Io { path: p.clone(), source })?;
    let names: Vec<String> = archive.array_names().map(str::to_string).collect();
    let Some(file) = archive.by_name(key).map_err(|e| fmt(e.to_string()))? else {
        return Err(fmt(format!("has no array {key:?} (it has: {})", names.join(", "))));
    };
    let DType::Plain(ts) = file.dtype() else { return Err(fmt(format!("array {key:?} is not a plain numeric array"))) };
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    let n: usize = shape.iter().product();
    if n > 1 << 30 {
        return Err(fmt(format!("array {key:?} is too large ({n} elements)")));
    }
    if file.order() == Order::Fortran && shape.len() > 1 {
        return Err(fmt(format!("array {key:?} is Fortran-ordered; save it with np.ascontiguousarray")));
    }
    let what = |e: std::io::Error| fmt(format!("array {key:?}: {e}"));
    let arr = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 4) => NpzArray::Float(Tensor { shape, data: file.into_vec::<f32>().map_err(what)? }),
        (TypeChar::Float, 8) => NpzArray::Float(Tensor {
            shape,
            data: file.into_vec::<f64>().map_err(what)?.into_iter().map(|v| v as f32).collect(),
        }),
        (TypeChar::Int, 8) => NpzArray::Int { shape, data: file.into_vec::<i64>().map_err(what)? },
        (TypeChar::Int, 4) => {
            NpzArray::Int { shape, data: file.into_vec::<i32>().map_err(what)?.into_iter().map(i64::from).collect() }
        }
        (TypeChar::Uint, 1) => {
            NpzArray::Int { shape, data: file.into_vec::<u8>().map_err(what)?.into_iter().map(i64::from).collect() }
        }
        _ => return Err(NpyError::DType { path: format!("{p} (array {key:?})"), dtype: ts.to_string() }),
    };
    Ok(arr)
}

/// Encodes `t` as `.npy` bytes: float32, or int64 when `elem` is [`ElemType::I64`].
pub fn encode_npy(t: &Tensor, elem: ElemType) -> Vec<u8> {
    let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
    let mut buf = Vec::new();
    let result = if elem == ElemType::I64 {
        npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut buf)
            .begin_nd()
            .and_then(|mut w| w.extend(t.data.iter().map(|&v| v as i64)).and_then(|_| w.finish()))
    } else {
        npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut buf)
            .begin_nd()
            .and_then(|mut w| w.extend(t.data.iter().copied()).and_then(|_| w.finish()))
    };
    result.expect("writing to a Vec cannot fail");
    buf
}

/// Writes `bytes` to an output path the user named: [`crate::files::write_output`] (`-` is
/// standard output; regular files are replaced atomically through an unpredictable temporary
/// name; symbolic links and special files are written through).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::files::write_output(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_round_trip() {
        let t = Tensor::new(vec![2, 3], vec![1.5, -2.0, 0.0, 3.25, 1e-3, -7.0]).unwrap();
        let back = decode_npy(&encode_npy(&t, ElemType::F32), "mem").unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn truncated_file_is_an_error_not_an_allocation() {
        let t = Tensor::new(vec![4, 4], vec![1.0; 16]).unwrap();
        let bytes = encode_npy(&t, ElemType::F32);
        let err = decode_npy(&bytes[..bytes.len() - 8], "x.npy").unwrap_err();
        assert!(err.to_string().contains("x.npy"), "{err}");
    }

    #[test]
    fn integers_and_bools_read_as_their_values() {
        let t = Tensor::new(vec![2, 2], vec![1.0, -2.0, 300.0, 0.0]).unwrap();
        assert_eq!(decode_npy(&encode_npy(&t, ElemType::I64), "x.npy").unwrap(), t);
        let bytes = |v: &[u8], descr: &str| {
            let mut buf = Vec::new();
            let mut w = npyz::WriteOptions::new()
                .dtype(DType::parse(descr).unwrap())
                .shape(&[v.len() as u64])
                .writer(&mut buf)
                .begin_nd()
                .unwrap();
            w.extend(v.iter().copied()).unwrap();
            w.finish().unwrap();
            buf
        };
        assert_eq!(decode_npy(&bytes(&[0, 7, 255], "'|u1'"), "img.npy").unwrap().data, vec![0.0, 7.0, 255.0]);
        let mut b = Vec::new();
        let mut w = npyz::WriteOptions::new().default_dtype().shape(&[3]).writer(&mut b).begin_nd().unwrap();
        w.extend([true, false, true]).unwrap();
        w.finish().unwrap();
        assert_eq!(decode_npy(&b, "mask.npy").unwrap().data, vec![1.0, 0.0, 1.0]);
        let big = Tensor::new(vec![1], vec![0.0]).unwrap();
        let mut enc = encode_npy(&big, ElemType::I64);
        let at = enc.len() - 8;
        enc[at..].copy_from_slice(&((1i64 << 24) + 1).to_le_bytes());
        let err = decode_npy(&enc, "x.npy").unwrap_err().to_string();
        assert!(err.contains("16777217") && err.contains("no exact float32 value"), "{err}");
    }

    #[test]
    fn half_floats_are_refused() {
        // A hand-written version 1.0 header: npyz writes no `<f2` arrays.
        let dict = "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }";
        let pad = 64 - (10 + dict.len() + 1) % 64;
        let header = format!("{dict}{}\n", " ".repeat(pad));
        let mut buf = b"\x93NUMPY\x01\x00".to_vec();
        buf.extend((header.len() as u16).to_le_bytes());
        buf.extend(header.as_bytes());
        buf.extend([0u8, 0]);
        let err = decode_npy(&buf, "h.npy").unwrap_err();
        assert!(matches!(err, NpyError::DType { .. }), "{err}");
    }

    /// A hand-written version 1.0 file of raw elements (`|V1`, `|V2`), as ml_dtypes saves them.
    fn raw_file(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        let pad = 64 - (10 + dict.len() + 1) % 64;
        let header = format!("{dict}{}\n", " ".repeat(pad));
        let mut buf = b"\x93NUMPY\x01\x00".to_vec();
        buf.extend((header.len() as u16).to_le_bytes());
        buf.extend(header.as_bytes());
        buf.extend(data);
        buf
    }

    #[test]
    fn raw_elements_read_as_the_declared_type_and_only_so() {
        // ml_dtypes' int4 −8, −1, 7, 0 (low nibbles), a bfloat16 1.0 and −5.0, a float8 e4m3fn 448.
        let int4 = raw_file("|V1", "(2, 2)", &[0x08, 0x0F, 0x07, 0x00]);
        let t = decode_npy_as(&int4, "q.npy", Some(RawDtype::Int4)).unwrap();
        assert_eq!((t.shape, t.data), (vec![2, 2], vec![-8.0, -1.0, 7.0, 0.0]));
        let bf16 = raw_file("|V2", "(2,)", &[0x80, 0x3F, 0xA0, 0xC0]);
        assert_eq!(decode_npy_as(&bf16, "b.npy", Some(RawDtype::Bfloat16)).unwrap().data, vec![1.0, -5.0]);
        let fp8 = raw_file("|V1", "(1,)", &[0x7E]);
        assert_eq!(decode_npy_as(&fp8, "f.npy", Some(RawDtype::Float8E4M3FN)).unwrap().data, vec![448.0]);
        // Undeclared, or declared with another element size: refused, naming the dtype.
        let err = decode_npy(&int4, "q.npy").unwrap_err().to_string();
        assert!(err.contains("|V1") && err.contains("only for a graph input the model declares"), "{err}");
        assert!(matches!(decode_npy_as(&bf16, "b.npy", Some(RawDtype::Int4)), Err(NpyError::DType { .. })));
        // A declared type does not change how other dtypes read.
        let t = Tensor::new(vec![2], vec![1.5, -2.0]).unwrap();
        assert_eq!(decode_npy_as(&encode_npy(&t, ElemType::F32), "x.npy", Some(RawDtype::Int4)).unwrap(), t);
        // Too few bytes for the shape.
        assert!(matches!(
            decode_npy_as(&raw_file("|V1", "(8,)", &[1, 2]), "s.npy", Some(RawDtype::Uint4)),
            Err(NpyError::Format { .. })
        ));
    }
}
