//! Circa's stochastic ReLU over OT ([`Spec::circa`]) at the core: the output is exactly
//! `y·[circa_nonnegative(shares)]`, the simulator's sign test on the very shares, faults
//! included; the counts are the plan's scripts'; and a curious party's view does not tell the
//! sign of the peer's value.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use veil_ir::CircaVariant;
use veil_ir::ring::{Ring, circa_fault_probability, circa_nonnegative};

use super::attacks::cannot_tell_the_sign;
use super::offline::dealt;
use super::tests::run;
use super::{Flight, Spec};
use crate::proto::circa::SignTest;

const VARIANTS: [CircaVariant; 2] = [CircaVariant::PosZero, CircaVariant::NegPass];

fn spec(ell: u8, m: u8, k: u8, variant: CircaVariant) -> Spec {
    Spec::circa(Ring::new(ell), SignTest { ring: Ring::new(m), drop_bits: k, variant })
}

/// Runs `spec` on the shares and checks every element against the simulator's sign test on the
/// same shares: `out + r = y·[circa_nonnegative(y_c, y_s)]`. Returns how many elements the test
/// read wrongly (a fault: the sign of `y` as a signed `ℓ`-bit value disagrees), so callers can
/// require that faults were exercised.
fn check(spec: Spec, ys: &[u64], yc: &[u64], rng: &mut ChaCha8Rng) -> usize {
    let ring = spec.ring;
    let t = spec.test.expect("a Circa spec");
    let r: Vec<u64> = ys.iter().map(|_| ring.reduce(rng.random())).collect();
    let out = run(spec, ys, yc, &r, rng);
    let mut faults = 0;
    for i in 0..ys.len() {
        let y = ring.reduce(ys[i].wrapping_add(yc[i]));
        let keep = circa_nonnegative(t.ring, yc[i], ys[i], t.drop_bits, t.variant);
        faults += usize::from(keep != (ring.to_signed(y) >= 0));
        let got = ring.reduce(out[i].wrapping_add(r[i]));
        let at =
            format!("ℓ={} m={} k={} {:?} y_s={} y_c={}", ring.bits, t.ring.bits, t.drop_bits, t.variant, ys[i], yc[i]);
        assert_eq!(got, if keep { y } else { 0 }, "{at}");
    }
    faults
}

/// Every pair of 6-bit shares at every test ring `m ≤ 6` and every `k < m − 1`, both variants:
/// the protocol's output is the sign test's, bit for bit, and where the test drops bits, reads
/// a narrower ring or adds NegPass's offset it errs on some pairs, identically.
#[test]
fn exhaustive_at_six_bits_equals_the_sign_test_faults_included() {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let (ys, yc): (Vec<u64>, Vec<u64>) = (0..64u64).flat_map(|a| (0..64u64).map(move |b| (a, b))).unzip();
    for m in 2..=6u8 {
        for k in (0..m).filter(|&k| k + 1 < m) {
            for variant in VARIANTS {
                let faults = check(spec(6, m, k, variant), &ys, &yc, &mut rng);
                // Exact only with nothing dropped in the full ring and no offset (NegPass at
                // k = 0 still passes y = −1, its window [−2^k, 0)).
                let exact = k == 0 && m == 6 && variant == CircaVariant::PosZero;
                assert_eq!(faults == 0, exact, "m = {m}, k = {k}, {variant:?}: {faults} faults");
            }
        }
    }
}

/// Random shares, and shares built to make the test err, at wider rings: values in the fault
/// window near zero (`[0, 2^k)` for PosZero, `[−2^k, 0)` for NegPass), values around the test
/// ring's wrap-around `±2^(m−1)`, and the ring's edges, each split at random.
#[test]
fn random_and_fault_shares_at_wide_rings_equal_the_sign_test() {
    let mut rng = ChaCha8Rng::seed_from_u64(32);
    for (ell, m, k) in [(16u8, 16u8, 0u8), (16, 12, 3), (24, 14, 12), (37, 23, 8), (61, 61, 20), (61, 30, 6), (9, 3, 1)]
    {
        let ring = Ring::new(ell);
        for variant in VARIANTS {
            let mut y: Vec<i64> = (0..200).map(|_| ring.to_signed(ring.reduce(rng.random()))).collect();
            let (w, half) = (1i64 << k, 1i64 << (m - 1));
            y.extend((-w - 3..w + 3).step_by((w as usize / 16).max(1)));
            y.extend((-5..5).flat_map(|d| [half + d, -half + d]));
            y.extend([0, 1, -1, ring.to_signed(ring.mask() >> 1), ring.to_signed(1 << (ell - 1))]);
            let ys: Vec<u64> = y.iter().map(|_| ring.reduce(rng.random())).collect();
            let yc: Vec<u64> =
                y.iter().zip(&ys).map(|(&v, &s)| ring.reduce(ring.from_signed(v).wrapping_sub(s))).collect();
            let faults = check(spec(ell, m, k, variant), &ys, &yc, &mut rng);
            if k > 0 {
                assert!(faults > 0, "ℓ = {ell}, m = {m}, k = {k}, {variant:?}: no fault exercised");
            }
        }
    }
}

/// The fault rate of a value over fresh random splits is the simulator's exact probability
/// ([`circa_fault_probability`]): at `k = 8`, PosZero reads 64 as negative with probability
/// 0.75, NegPass passes −64 with probability 0.75, and values outside the window never err.
#[test]
fn fault_rates_over_random_splits_are_the_simulators() {
    let mut rng = ChaCha8Rng::seed_from_u64(33);
    let (ell, m, k) = (20u8, 16u8, 8u8);
    let ring = Ring::new(ell);
    let n = 4000;
    for (variant, x) in [(CircaVariant::PosZero, 64i64), (CircaVariant::NegPass, -64), (CircaVariant::PosZero, 300)] {
        let ys: Vec<u64> = (0..n).map(|_| ring.reduce(rng.random())).collect();
        let yc: Vec<u64> = ys.iter().map(|&s| ring.reduce(ring.from_signed(x).wrapping_sub(s))).collect();
        let faults = check(spec(ell, m, k, variant), &ys, &yc, &mut rng) as f64;
        let p = circa_fault_probability(Ring::new(m), x, k, variant);
        let sd = (n as f64 * p * (1.0 - p)).sqrt().max(1e-9);
        assert!((faults - n as f64 * p).abs() <= 5.0 * sd, "{variant:?} x = {x}: {faults} faults, expected {p}·{n}");
    }
}

/// At `m = ℓ`, `k = 0` the test is the exact sign: the protocol and its costs are the exact
/// ReLU over OT's at shift 0; a narrower test costs fewer OTs and bytes.
#[test]
fn full_width_test_costs_the_exact_relu_and_narrower_costs_less() {
    let exact = Spec::new(Ring::new(37), 0);
    let full = spec(37, 37, 0, CircaVariant::PosZero);
    assert_eq!(
        (full.rots(), full.level_ands(), full.flights(99)),
        (exact.rots(), exact.level_ands(), exact.flights(99))
    );
    assert_eq!((full.client_bytes(9), full.server_bytes(9)), (exact.client_bytes(9), exact.server_bytes(9)));
    let narrow = spec(37, 23, 8, CircaVariant::NegPass);
    let bytes = |s: Spec| {
        s.flights(1000)
            .iter()
            .map(|f| match f {
                Flight::ToServer(b) | Flight::ToClient(b) => *b,
            })
            .sum::<usize>()
    };
    assert!(narrow.rots() < exact.rots() && bytes(narrow) < bytes(exact), "{} vs {}", bytes(narrow), bytes(exact));
}

/// The plan's scripts (`veil_ir::schedule::circa_ot`) count what the runtime does: OTs,
/// flights, and both parties' stored material, for test widths from 2 bits to 61 and element
/// counts that do and do not fill bytes.
#[test]
fn the_scripts_counts_equal_the_spec_and_the_material() {
    use veil_ir::schedule::circa_ot as plan;
    use veil_ir::schedule::script::Dir;
    let mut rng = ChaCha8Rng::seed_from_u64(34);
    for (ell, m, k) in [(8u8, 3u8, 1u8), (8, 8, 0), (16, 12, 5), (37, 23, 8), (61, 61, 20), (61, 40, 0)] {
        let s = spec(ell, m, k, CircaVariant::NegPass);
        let w = plan::width(k, m);
        assert_eq!(plan::rots(w), s.rots() as u64, "m = {m}, k = {k}");
        assert_eq!(plan::rots_reversed(w), s.rots_reversed() as u64, "m = {m}, k = {k}");
        for n in [1usize, 7, 64] {
            let want: Vec<(Dir, u64)> = s
                .flights(n)
                .into_iter()
                .map(|f| match f {
                    Flight::ToServer(b) => (Dir::ClientToServer, b as u64),
                    Flight::ToClient(b) => (Dir::ServerToClient, b as u64),
                })
                .collect();
            assert_eq!(plan::flights(ell.into(), w, n as u64), want, "ℓ = {ell}, m = {m}, k = {k}, n = {n}");
            let (so, co) = dealt(s, vec![0; n], &mut rng);
            assert_eq!(co.ot_bytes() as u64, plan::client_bytes(ell.into(), w, n as u64), "client, n = {n}");
            assert_eq!(so.bytes() as u64, plan::server_bytes(ell.into(), w, n as u64), "server, n = {n}");
            assert_eq!((co.ot_bytes(), so.bytes()), (s.client_bytes(n), s.server_bytes(n)));
        }
    }
}

/// A curious party (server or client) studies what it received with its own share fixed and the
/// peer's share making `+3·2^k` in one world and `−3·2^k` in the other (outside the fault
/// window, so the test's answer differs between the worlds): the distinguisher that sees the
/// peer's share itself cannot tell the views apart ([`cannot_tell_the_sign`]).
fn circa_cannot_tell_the_sign(server_attacks: bool, seed: u64) {
    let k = 3u8;
    cannot_tell_the_sign(spec(16, 12, k, CircaVariant::NegPass), u32::from(k), 30, server_attacks, seed);
}

#[test]
fn the_server_cannot_tell_the_sign_of_the_clients_value() {
    circa_cannot_tell_the_sign(true, 81);
}

#[test]
fn the_client_cannot_tell_the_sign_of_the_servers_value() {
    circa_cannot_tell_the_sign(false, 82);
}
