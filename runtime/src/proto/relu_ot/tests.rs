//! The cores of ReLU over OT at every shift and ring width: equal to the garbled circuit,
//! flights and counts as the plan's scripts say.

use super::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use veil_ir::circuit::relu_trunc_mask_narrow;

/// The plan's scripts count this protocol's OTs and flights without the runtime
/// (`veil_ir::schedule::relu_ot`): the same numbers as [`Spec`], for every shift at a few
/// ring widths and element counts (including ones that do not fill a byte).
#[test]
fn the_scripts_counts_equal_the_spec() {
    use veil_ir::schedule::relu_ot as script;
    use veil_ir::schedule::script::Dir;
    for ell in [2u8, 8, 10, 32, 39, 41, 43, 61] {
        // Every shift unnarrowed, and narrowed (the read width `w`) at a few widths.
        let narrowed = (1..u32::from(ell)).flat_map(|f| {
            [f + 3, f + 4, (f + u32::from(ell)) / 2 + 1, u32::from(ell) - 1]
                .into_iter()
                .filter(move |&w| f + 2 < w && w < u32::from(ell))
                .map(move |w| (f, w))
        });
        let cases = (0..u32::from(ell)).map(|f| (f, u32::from(ell))).chain(narrowed);
        // Each also with a narrower output ring (`out`, ℓ of the products), the wrap product
        // shrinking or vanishing.
        let cases = cases.flat_map(|(f, w)| {
            let narrower = f == 0 || f + 2 < w;
            [ell, ell / 2, 2]
                .into_iter()
                .filter(|&o| o == ell || (o >= 2 && narrower))
                .map(move |o| (f, w, o))
                .collect::<Vec<_>>()
        });
        for (shift, w, out) in cases {
            let spec = if w < u32::from(ell) || out < ell {
                Spec::reading(Ring::new(out), shift, w)
            } else {
                Spec::new(Ring::new(ell), shift)
            };
            assert_eq!(spec.fused(), script::fused(w, shift), "ℓ = {ell}, w = {w}, f = {shift}");
            assert_eq!(script::rots(w, shift), spec.rots() as u64, "ℓ = {ell}, w = {w}, f = {shift}");
            assert_eq!(script::rots_reversed(w, shift), spec.rots_reversed() as u64, "ℓ = {ell}, w = {w}, f = {shift}");
            for n in [1usize, 7, 1000] {
                let want: Vec<(Dir, u64)> = spec
                    .flights(n)
                    .into_iter()
                    .map(|f| match f {
                        Flight::ToServer(b) => (Dir::ClientToServer, b as u64),
                        Flight::ToClient(b) => (Dir::ServerToClient, b as u64),
                    })
                    .collect();
                assert_eq!(
                    script::flights(out.into(), w, shift, n as u64),
                    want,
                    "ℓ = {ell}, w = {w}, f = {shift}, out = {out}, n = {n}"
                );
            }
        }
    }
    for (ell, shift) in [(61u8, 12u32), (39, 13), (40, 0), (8, 3)] {
        let spec = Spec::new(Ring::new(ell), shift);
        let reversed = script::rots_reversed(ell.into(), shift);
        assert_eq!(reversed, spec.rots_reversed() as u64, "ℓ = {ell}, f = {shift}: the product's and one per pair");
        assert_eq!(reversed, 1 + spec.groups().1 as u64);
    }
}

/// Runs the protocol for both parties in memory with a dealer's OTs: the server's output
/// shares, and checks every flight's size against [`Spec::flights`].
pub(super) fn run(spec: Spec, ys: &[u64], yc: &[u64], r: &[u64], rng: &mut ChaCha8Rng) -> Vec<u64> {
    let n = ys.len();
    let (s_off, c_off) = offline::dealt(spec, r.to_vec(), rng);
    let mut server = Server::new(spec, s_off, ys.to_vec());
    let (mut client, mut msg) = Client::start(spec, c_off, yc.to_vec());
    let flights = spec.flights(n);
    let mut k = 0;
    loop {
        assert_eq!(flights[k], Flight::ToServer(msg.len()), "flight {k}");
        k += 1;
        match server.reply(&msg, rng) {
            None => break,
            Some(back) => {
                assert_eq!(flights[k], Flight::ToClient(back.len()), "flight {k}");
                k += 1;
                msg = client.reply(&back);
            }
        }
    }
    assert_eq!(k, flights.len(), "every flight ran");
    server.output()
}

/// The reference, computed twice independently: the GC circuit's output in plaintext (reading
/// the shares' low [`Spec::width`] bits, as the narrowed garbled ReLU does, its output taken in
/// the spec's output ring) and the signed arithmetic on the operand read as a signed
/// `width`-bit value.
fn check(spec: Spec, ys: &[u64], yc: &[u64], rng: &mut ChaCha8Rng) {
    let ring = spec.ring;
    let (w, narrow) = (spec.width, Ring::new(spec.width as u8));
    let r: Vec<u64> = ys.iter().map(|_| ring.reduce(rng.random())).collect();
    let out = run(spec, ys, yc, &r, rng);
    let c = relu_trunc_mask_narrow(w, w.max(u32::from(ring.bits)), spec.shift);
    for i in 0..ys.len() {
        let y = narrow.to_signed(ys[i].wrapping_add(yc[i]));
        let want = ring.reduce(((y.max(0) >> spec.shift) as u64).wrapping_sub(r[i]));
        let circuit = ring.reduce(c.eval_u64(&[low_bits(ys[i], w), low_bits(yc[i], w), r[i]]));
        assert_eq!(circuit, want, "the references agree");
        assert_eq!(out[i], want, "ℓ={} w={w} f={} y_s={} y_c={}", ring.bits, spec.shift, ys[i], yc[i]);
    }
}

/// Narrowed ([`Spec::reading`]): the comparison reads the shares' low `w` bits and the wrap
/// term is taken at `2^(w − f)`, so the output is the ReLU of the operand read as a signed
/// `w`-bit value, the narrowed garbled circuit's, whether or not the value fits `w` bits, and
/// modulo `2^out` for the output ring's `out` bits: every pair of shares of an 8-bit ring at
/// each valid width and shift into 3- and 8-bit outputs, then random shares (values of any size:
/// wrapped) and values inside the width split at random, at the widths of calibrated ResNets
/// (fused carries and not) and with outputs narrower than ℓ.
#[test]
fn narrowed_reads_equal_the_narrowed_gc_circuit_in_and_beyond_their_width() {
    let mut rng = ChaCha8Rng::seed_from_u64(25);
    let (ys, yc): (Vec<u64>, Vec<u64>) = (0..256u64).flat_map(|a| (0..256u64).map(move |b| (a, b))).unzip();
    for w in 4..8u32 {
        for f in 1..w - 2 {
            for out in [3u8, 8] {
                check(Spec::reading(Ring::new(out), f, w), &ys, &yc, &mut rng);
            }
        }
    }
    // (ℓ of the shares, w, f, the output ring): narrowed reads into the whole ring, an output
    // narrower than the read, between the read and ℓ, one whose wrap term vanishes (w − f ≥
    // out), and whole reads with narrower outputs at a shift and at shift 0.
    let cases = [
        (37u8, 36u32, 11u32, 37u8),
        (39, 30, 13, 39),
        (61, 28, 12, 61),
        (61, 40, 16, 61),
        (32, 14, 8, 32),
        (16, 9, 6, 16),
        (61, 28, 12, 20),
        (61, 28, 12, 40),
        (32, 14, 8, 6),
        (37, 37, 11, 30),
        (40, 40, 0, 25),
    ];
    for (bits, w, f, out) in cases {
        let ring = Ring::new(bits);
        let spec = Spec::reading(Ring::new(out), f, w);
        let mut ys: Vec<u64> = (0..1500).map(|_| ring.reduce(rng.random())).collect();
        let mut yc: Vec<u64> = ys.iter().map(|_| ring.reduce(rng.random())).collect();
        let half = 1i64 << (w - 1);
        for k in 0..1500i64 {
            let v = if k < 200 { k - 100 } else { rng.random_range(-half..half) };
            let s = ring.reduce(rng.random());
            ys.push(s);
            yc.push(ring.reduce(ring.from_signed(v).wrapping_sub(s)));
        }
        check(spec, &ys, &yc, &mut rng);
    }
}

#[test]
fn exhaustive_at_six_bits_equals_the_gc_circuit() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let ring = Ring::new(6);
    let (ys, yc): (Vec<u64>, Vec<u64>) = (0..64u64).flat_map(|a| (0..64u64).map(move |b| (a, b))).unzip();
    for f in 0..6 {
        check(Spec::new(ring, f), &ys, &yc, &mut rng);
    }
}

/// The fused carry (`gt_hi ⊕ (eq_hi ∧ c_low)`, the low bits compared once): every value of a
/// 10-bit ring at shifts where it is taken, each split 48 ways (wraps of the low bits, of the
/// high bits and of both), and the widths and shifts of calibrated ResNets.
#[test]
fn the_fused_carry_equals_the_gc_circuit() {
    let mut rng = ChaCha8Rng::seed_from_u64(24);
    let ring = Ring::new(10);
    for f in [1u32, 4, 5, 8] {
        let spec = Spec::new(ring, f);
        assert!(spec.fused(), "f = {f}");
        let (ys, yc): (Vec<u64>, Vec<u64>) = (0..1024u64)
            .flat_map(|y| (0..48).map(move |k| (y, k)))
            .map(|(y, k)| {
                let s = if k < 16 { k * 67 % 1024 } else { ring.reduce(rng.random()) };
                (s, ring.reduce(y.wrapping_sub(s)))
            })
            .collect();
        check(spec, &ys, &yc, &mut rng);
    }
    for (bits, f) in [(39u8, 13u32), (43, 15), (40, 12), (18, 9)] {
        let ring = Ring::new(bits);
        let spec = Spec::new(ring, f);
        assert!(spec.fused(), "ℓ = {bits}, f = {f}");
        let mut ys: Vec<u64> = (0..3000).map(|_| ring.reduce(rng.random())).collect();
        let mut yc: Vec<u64> = ys.iter().map(|_| ring.reduce(rng.random())).collect();
        // Values whose bits above the shift are equal across the split: the join decides.
        for v in -300i64..300 {
            let s = ring.reduce(rng.random::<u64>() << f);
            ys.push(s);
            yc.push(ring.reduce(ring.from_signed(v << f).wrapping_add(ring.from_signed(v)).wrapping_sub(s)));
        }
        check(spec, &ys, &yc, &mut rng);
    }
}

#[test]
fn random_and_edge_values_at_every_width_equal_the_gc_circuit() {
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    for bits in [2u8, 3, 9, 16, 33, 61] {
        let ring = Ring::new(bits);
        let half = 1u64 << (bits - 1);
        for f in [0, 1, 2, 5, 12, u32::from(bits) - 1].into_iter().filter(|&f| f < u32::from(bits)) {
            let mut ys: Vec<u64> = (0..300).map(|_| ring.reduce(rng.random())).collect();
            // Edges: y = 0, ±1, the largest and smallest values, split every way.
            let ends = [0, 1, ring.mask(), half - 1, half, half + 1, ring.mask() - 1];
            let mut yc: Vec<u64> = ys.iter().map(|_| ring.reduce(rng.random())).collect();
            for &y in &ends {
                for &s in &[0, 1, half, ring.mask(), ring.reduce(rng.random())] {
                    ys.push(s);
                    yc.push(ring.reduce(y.wrapping_sub(s)));
                }
            }
            // Small magnitudes (around the sign change) with random splits.
            for v in -40i64..40 {
                let s = ring.reduce(rng.random());
                ys.push(s);
                yc.push(ring.reduce(ring.from_signed(v).wrapping_sub(s)));
            }
            check(Spec::new(ring, f), &ys, &yc, &mut rng);
        }
    }
}

#[test]
fn bytes_per_relu_at_61_bits() {
    let spec = Spec::new(Ring::new(61), 12);
    let n = 8000;
    let (mut c2s, mut s2c) = (0, 0);
    for f in spec.flights(n) {
        match f {
            Flight::ToServer(b) => c2s += b,
            Flight::ToClient(b) => s2c += b,
        }
    }
    let per = (c2s + s2c) as f64 / n as f64;
    // The target is 150 B per ReLU in total (the silent OTs add under 0.1 B per OT).
    assert!(per < 150.0 - 0.1 * spec.rots() as f64, "{per} B per ReLU online, {} OTs", spec.rots());
    // Carry tree (15 digits) + low tree (3 digits) + ms ∧ mc, then the final two; as singles
    // and pairs (a node's two ANDs share eq_hi, the last two keep): a level opens 2 bits per
    // single and 3 per pair, 11 pairs in all, so each way 11 bits less than 2 per AND.
    assert_eq!(spec.level_ands(), vec![13 + 1 + 1, 7 + 1, 3, 1, 2]);
    assert_eq!(spec.level_groups(), vec![(1 + 1 + 1, 6), (1 + 1, 3), (1, 1), (1, 0), (0, 1)]);
    assert_eq!((c2s / n, s2c / n), (30, 90), "bytes per ReLU each way");
}

/// Shift 0 drops the low comparison, `ms ∧ mc` and the last AND level: fewer OTs, flights
/// and bytes than any shift, and the same exact ReLU (the tests above run every shift from 0).
#[test]
fn shift_zero_costs_less_than_a_shift() {
    let (zero, twelve) = (Spec::new(Ring::new(61), 0), Spec::new(Ring::new(61), 12));
    assert_eq!(zero.level_ands(), vec![13, 7, 3, 1], "the carry tree alone");
    // 60 leaves, 4 singles (two OTs each) and 10 pairs (one each way), the product.
    assert_eq!(zero.rots(), 60 + 2 * 4 + 10 + 1);
    assert_eq!(zero.rots_reversed(), 1 + 10);
    assert!(zero.rots() < twelve.rots());
    // Piggybacked openings: 2 + L flights of levels and comparisons, then the products (and
    // the product choices on their own flight when the server sends the last level).
    assert_eq!((zero.flights(1).len(), twelve.flights(1).len()), (2 + 4 + 3, 2 + 5 + 2));
    let n = 8000;
    let bytes = |s: Spec| {
        s.flights(n)
            .iter()
            .map(|f| match f {
                Flight::ToServer(b) | Flight::ToClient(b) => *b,
            })
            .sum::<usize>()
    };
    // 10 pairs: each opens 3 bits, not 4, each way (100 B before the pairs).
    assert_eq!(bytes(zero) / n, 98, "bytes per ReLU online at shift 0");
    // ℓ ≤ 5: one digit, no AND level, the server's derandomisation rides on its tables.
    let tiny = Spec::new(Ring::new(5), 0);
    assert!(tiny.level_ands().is_empty());
    assert_eq!(tiny.flights(8).len(), 5);
}

#[test]
fn states_redact_their_secrets() {
    let spec = Spec::new(Ring::new(8), 2);
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let (s_off, c_off) = offline::dealt(spec, vec![99], &mut rng);
    let s = Server::new(spec, s_off, vec![77]);
    let (c, _) = Client::start(spec, c_off, vec![5]);
    let text = format!("{s:?} {c:?}");
    assert!(text.contains("<redacted>") && !text.contains("77") && !text.contains("99"), "{text}");
}
