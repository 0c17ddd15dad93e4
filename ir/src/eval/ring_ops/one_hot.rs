//! The one-hot rows [`crate::Op::OneHot`] computes on the client's plaintext indices: row `i`
//! of the output has a 1 where the index is `k` (or `k − depth`: ONNX's negative indices), and
//! is all zeros for an index outside `[−depth, depth)`. Both forms read the operand rounded to
//! the nearest integer (halves up), so they agree on every integer index, and the fixed-point
//! one still does when its operand is off by less than one half.

use crate::ring::Ring;

/// The column index `i` selects in a table of `depth` rows, if any.
pub fn column(i: i64, depth: usize) -> Option<usize> {
    let d = i64::try_from(depth).ok()?;
    let j = if i < 0 { i.checked_add(d)? } else { i };
    (0..d).contains(&j).then_some(j as usize)
}

/// One-hot rows of `f32` indices (rounded to the nearest integer, halves up).
pub fn real(x: &[f32], depth: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len() * depth];
    for (r, &v) in x.iter().enumerate() {
        // Saturates: an index beyond i64 is out of range either way.
        if let Some(k) = column((v as f64 + 0.5).floor() as i64, depth) {
            out[r * depth + k] = 1.0;
        }
    }
    out
}

/// One-hot rows of ring indices at scale `s` (rounded to the nearest integer, halves up),
/// each 1 encoded at scale `s`.
pub fn eval(ring: Ring, x: &[u64], s: u8, depth: usize) -> Vec<u64> {
    let one = ring.reduce(1u64 << s);
    let half = if s == 0 { 0 } else { 1i64 << (s - 1) };
    let mut out = vec![0u64; x.len() * depth];
    for (r, &v) in x.iter().enumerate() {
        if let Some(k) = column(ring.to_signed(v).saturating_add(half) >> s, depth) {
            out[r * depth + k] = one;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One-hot rows of anything but the client's own plaintext would reveal it to the party
    /// computing them; the typing rule refuses it.
    #[test]
    fn only_the_clients_values_are_one_hot_encoded() {
        use crate::{Domain, Op};
        let consts = crate::Graph::default().consts;
        let op = Op::OneHot { depth: 4 };
        assert_eq!(op.output_domain(&[Domain::Client], &consts), Ok(Domain::Client));
        for d in [Domain::Shared, Domain::Server, Domain::Public] {
            let err = op.output_domain(&[d], &consts).unwrap_err();
            assert!(err.contains("client's own plaintext"), "{d}: {err}");
        }
    }

    #[test]
    fn both_forms_select_the_same_column_for_every_index() {
        let ring = Ring::new(20);
        for depth in [1usize, 3, 7] {
            for i in -10i64..10 {
                let want = if (0..depth as i64).contains(&i) {
                    Some(i as usize)
                } else if (-(depth as i64)..0).contains(&i) {
                    Some((i + depth as i64) as usize)
                } else {
                    None
                };
                let f = real(&[i as f32], depth);
                let x = ring.encode(i as f64, 5).unwrap();
                let q = eval(ring, &[x], 5, depth);
                for k in 0..depth {
                    let hot = want == Some(k);
                    assert_eq!(f[k], if hot { 1.0 } else { 0.0 }, "float, index {i}, depth {depth}");
                    assert_eq!(ring.decode(q[k], 5), if hot { 1.0 } else { 0.0 }, "ring, index {i}, depth {depth}");
                }
            }
        }
        // A fraction reads as the nearest integer in both forms, halves up.
        for (v, hot) in [(-0.5, 0), (-0.75, 2), (1.25, 1), (1.5, 2)] {
            let x = ring.encode(v, 5).unwrap();
            let mut want = vec![0; 3];
            want[hot] = 1 << 5;
            assert_eq!(eval(ring, &[x], 5, 3), want, "ring, {v}");
            assert_eq!(real(&[v as f32], 3), want.iter().map(|&w| (w >> 5) as f32).collect::<Vec<_>>(), "float, {v}");
        }
    }
}
