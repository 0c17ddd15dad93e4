//! A generic distinguisher for the protocols' attack tests: a curious party collects its view
//! (every byte it received, in order) over many runs with secret A and over as many with
//! secret B, and tests each bit position, and the XOR of each pair of neighbouring bits, for a
//! different frequency of ones (a two-proportion z-test, pooled). A view that depends on the
//! secret in any bit or bit pair shows as a large |z|; the tests also run it on a leaky view, so
//! a distinguisher that could not see a leak fails there.

/// The largest |z| over the bit positions and neighbouring bit pairs of two equally long sets
/// of equally long views. Positions constant over both sets (padding) count as 0.
pub fn max_bit_z(a: &[Vec<u8>], b: &[Vec<u8>]) -> f64 {
    assert!(!a.is_empty() && a.len() == b.len(), "two non-empty sets of the same size");
    let len = a[0].len();
    assert!(a.iter().chain(b).all(|v| v.len() == len), "views of one length");
    let bit = |v: &[u8], i: usize| (v[i / 8] >> (i % 8)) & 1 == 1;
    let ones = |set: &[Vec<u8>], f: &dyn Fn(&[u8]) -> bool| set.iter().filter(|v| f(v)).count() as f64;
    let k = a.len() as f64;
    let z = |f: &dyn Fn(&[u8]) -> bool| {
        let (pa, pb) = (ones(a, f) / k, ones(b, f) / k);
        let p = (pa + pb) / 2.0;
        let var = p * (1.0 - p) * 2.0 / k;
        if var == 0.0 { 0.0 } else { (pa - pb).abs() / var.sqrt() }
    };
    let bits = 8 * len;
    let single = (0..bits).map(|i| z(&|v| bit(v, i)));
    let pairs = (1..bits).map(|i| z(&|v| bit(v, i) ^ bit(v, i - 1)));
    single.chain(pairs).fold(0.0, f64::max)
}

/// The threshold the attack tests use: under no leak, |z| over a few thousand positions stays
/// below about 4.5; 6 is a false alarm in fewer than 1 in 10^5 runs per thousand positions.
pub const Z_LEAK: f64 = 6.0;

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn uniform_views_pass_and_a_one_bit_leak_or_a_parity_leak_fails() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let views = |rng: &mut rand_chacha::ChaCha8Rng, f: &dyn Fn(&mut Vec<u8>)| {
            (0..300)
                .map(|_| {
                    let mut v: Vec<u8> = (0..64).map(|_| rng.random()).collect();
                    f(&mut v);
                    v
                })
                .collect::<Vec<_>>()
        };
        let (a, b) = (views(&mut rng, &|_| {}), views(&mut rng, &|_| {}));
        assert!(max_bit_z(&a, &b) < Z_LEAK, "{}", max_bit_z(&a, &b));
        // Bit 77 set for secret B only.
        let c = views(&mut rng, &|v| v[9] |= 1 << 5);
        assert!(max_bit_z(&a, &c) > Z_LEAK);
        // No single bit leaks, but bits 8 and 9 XOR to the secret (a reused pad would look so).
        let d = views(&mut rng, &|v| {
            let b8 = v[1] & 1;
            v[1] = (v[1] & !2) | ((1 - b8) << 1);
        });
        let e = views(&mut rng, &|v| {
            let b8 = v[1] & 1;
            v[1] = (v[1] & !2) | (b8 << 1);
        });
        assert!(max_bit_z(&d, &e) > Z_LEAK);
    }
}
