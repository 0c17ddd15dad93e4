//! Integer-typed graph inputs (a `uint8` image, `int8` codes, `bool` masks) and the values
//! computed from them.
//!
//! Veil's values are reals (f32 before quantisation, fixed point after), and an integer is a
//! real like any other: an op that only moves, selects or compares values (Reshape, Pad, Slice,
//! Concat, Clip, Relu, Max, MaxPool, ReduceMax, ...) gives, on the integers an input holds, the
//! integers ONNX's integer kernel gives, exactly, in float and in fixed point. ONNX's integer
//! arithmetic (`Add`, `Mul`, `Div`, `MatMul` on `int8`, ...) wraps around or truncates instead,
//! which a real-valued computation does not reproduce, so it is refused by name; a `Cast` to a
//! float type first (what exporters write after a `uint8` image input) makes the value an
//! ordinary real. A `Cast` between integer types is exact when the target holds every value of
//! the source type, and refused otherwise (ONNX would wrap).

use super::proto::tensor_proto::DataType;

/// The integer element types a graph input may have, with their value ranges.
pub fn range(t: DataType) -> Option<(i128, i128)> {
    use DataType::*;
    Some(match t {
        Bool => (0, 1),
        Uint2 => (0, 3),
        Int2 => (-2, 1),
        Uint4 => (0, 15),
        Int4 => (-8, 7),
        Uint8 => (0, u8::MAX as i128),
        Int8 => (i8::MIN as i128, i8::MAX as i128),
        Uint16 => (0, u16::MAX as i128),
        Int16 => (i16::MIN as i128, i16::MAX as i128),
        Uint32 => (0, u32::MAX as i128),
        Int32 => (i32::MIN as i128, i32::MAX as i128),
        Uint64 => (0, u64::MAX as i128),
        Int64 => (i64::MIN as i128, i64::MAX as i128),
        _ => return None,
    })
}

/// Ops that are exact on integer-valued operands: data movement, selection and comparison.
/// Their integer-typed outputs keep the type of their integer-typed operand.
const EXACT: &[&str] = &[
    "Identity",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Concat",
    "Split",
    "Slice",
    "Gather",
    "GatherND",
    "GatherElements",
    "Tile",
    "Expand",
    "DepthToSpace",
    "SpaceToDepth",
    "Pad",
    "Clip",
    "Relu",
    "Max",
    "Min",
    "MaxPool",
    "GlobalMaxPool",
    "ReduceMax",
    "ReduceMin",
];

/// Ops whose outputs are compile-time constants whatever their operand's type.
const STATIC: &[&str] = &["Shape", "Size"];

/// The element type of a node's integer-typed outputs, given the integer type `t` of (one of)
/// its computed operands: `Ok(Some(t))` for the exact ops, `Ok(None)` where the output is a
/// real (a cast to a float type) or a constant, or the reason the op is refused.
pub fn output_type(op: &str, t: DataType, cast_to: Option<DataType>) -> Result<Option<DataType>, String> {
    if EXACT.contains(&op) {
        return Ok(Some(t));
    }
    if STATIC.contains(&op) {
        return Ok(None);
    }
    // A comparison of integers is a boolean; a Where's values are its (constant) branches'.
    if matches!(op, "Equal" | "Not" | "And" | "Or" | "Xor") {
        return Ok(Some(DataType::Bool));
    }
    if op == "Where" {
        return Ok(None);
    }
    // (q − zero point) · scale: the integers become reals again.
    if op == "DequantizeLinear" {
        return Ok(None);
    }
    if op == "Cast" || op == "CastLike" {
        let to = cast_to.unwrap_or(DataType::Float);
        if matches!(to, DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16) {
            return Ok(None);
        }
        // `x ≠ 0` (lowered by the caller), not a wrap.
        if to == DataType::Bool {
            return Ok(Some(to));
        }
        let (Some((lo, hi)), Some((tlo, thi))) = (range(t), range(to)) else {
            return Err(format!("cast of a {} value to {} is not supported", t.as_str_name(), to.as_str_name()));
        };
        if tlo <= lo && hi <= thi {
            return Ok(Some(to));
        }
        return Err(format!(
            "cast of a {} value (computed from the model input) to {}, which does not hold all of its values: \
ONNX would wrap them around, and Veil does not; cast to a float type or a wider integer type",
            t.as_str_name(),
            to.as_str_name()
        ));
    }
    Err(format!(
        "{op} on a {} value (computed from an integer model input) is not supported: ONNX's integer {op} wraps \
around or rounds, which Veil's real-valued computation does not reproduce; Cast the input to FLOAT first \
(on integers Veil computes data movement, Clip, Relu, Max, Min, MaxPool, ReduceMax and ReduceMin exactly)",
        t.as_str_name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_ops_keep_the_type_and_arithmetic_is_refused() {
        assert_eq!(output_type("MaxPool", DataType::Uint8, None), Ok(Some(DataType::Uint8)));
        assert_eq!(output_type("Shape", DataType::Int8, None), Ok(None));
        let err = output_type("Add", DataType::Int8, None).unwrap_err();
        assert!(err.contains("Add on a INT8 value") && err.contains("Cast the input to FLOAT"), "{err}");
        assert!(output_type("Conv", DataType::Uint8, None).is_err());
    }

    #[test]
    fn casts_are_exact_only_into_a_type_holding_every_value() {
        assert_eq!(output_type("Cast", DataType::Uint8, Some(DataType::Float)), Ok(None));
        assert_eq!(output_type("Cast", DataType::Int4, Some(DataType::Int8)), Ok(Some(DataType::Int8)));
        assert_eq!(output_type("Cast", DataType::Uint4, Some(DataType::Int8)), Ok(Some(DataType::Int8)));
        assert_eq!(output_type("Cast", DataType::Bool, Some(DataType::Uint2)), Ok(Some(DataType::Uint2)));
        let err = output_type("Cast", DataType::Int8, Some(DataType::Uint8)).unwrap_err();
        assert!(err.contains("does not hold all of its values"), "{err}");
        assert!(output_type("Cast", DataType::Uint8, Some(DataType::Int8)).is_err());
        assert!(output_type("Cast", DataType::Int8, Some(DataType::String)).is_err());
    }
}
