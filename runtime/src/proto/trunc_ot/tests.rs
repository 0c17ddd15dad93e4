//! The truncation over OT at every shift and ring width: equal to the simulator's exact
//! truncation and to the garbled circuit, flights and stored material as the plan's scripts
//! say, and a curious party's view independent of the value.

use super::*;
use crate::proto::distinguish::{Z_LEAK, max_bit_z};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use veil_ir::circuit::trunc_mask;
use veil_ir::schedule::script::Dir;
use veil_ir::schedule::trunc_ot as plan;

/// Runs the protocol for both parties in memory with a dealer's OTs; checks every flight's size
/// against [`Spec::flights`]. Returns the server's output shares and what each party received
/// (every flight's bytes concatenated: the server's view, the client's view).
fn run(spec: Spec, ys: &[u64], yc: &[u64], r: &[u64], rng: &mut ChaCha8Rng) -> (Vec<u64>, Vec<u8>, Vec<u8>) {
    let (s_off, c_off) = offline::dealt(spec, r.to_vec(), rng);
    let mut server = Server::new(spec, s_off, ys.to_vec());
    let (mut client, mut msg) = Client::start(spec, c_off, yc.to_vec());
    let flights = spec.flights(ys.len());
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    let mut k = 0;
    loop {
        assert_eq!(flights[k], Flight::ToServer(msg.len()), "flight {k}");
        to_server.extend_from_slice(&msg);
        k += 1;
        match server.reply(&msg, rng) {
            None => break,
            Some(back) => {
                assert_eq!(flights[k], Flight::ToClient(back.len()), "flight {k}");
                to_client.extend_from_slice(&back);
                k += 1;
                msg = client.reply(&back);
            }
        }
    }
    assert_eq!(k, flights.len(), "every flight ran");
    (server.output(), to_server, to_client)
}

/// Checks the protocol on shares `(ys, yc)` against two independent references: the
/// simulator's exact truncation (`Ring::truncate`, the signed shift) and the garbled circuit
/// `trunc_mask` evaluated in plaintext.
fn check(spec: Spec, ys: &[u64], yc: &[u64], rng: &mut ChaCha8Rng) {
    let ring = spec.ring;
    let r: Vec<u64> = ys.iter().map(|_| ring.reduce(rng.random())).collect();
    let (out, _, _) = run(spec, ys, yc, &r, rng);
    let c = trunc_mask(u32::from(ring.bits), spec.shift);
    for i in 0..ys.len() {
        let y = ring.reduce(ys[i].wrapping_add(yc[i]));
        let want = ring.reduce(ring.truncate(y, spec.shift as u8).wrapping_sub(r[i]));
        assert_eq!(c.eval_u64(&[ys[i], yc[i], r[i]]), want, "the references agree");
        assert_eq!(out[i], want, "ℓ={} f={} y_s={} y_c={}", ring.bits, spec.shift, ys[i], yc[i]);
    }
}

/// The plan's scripts count this protocol's OTs, flights and stored bytes without the runtime
/// (`veil_ir::schedule::trunc_ot`): the same numbers as [`Spec`] and as the material the
/// parties really hold, for every shift at a few ring widths and element counts (including ones
/// that do not fill a byte).
#[test]
fn the_scripts_counts_equal_the_spec_and_the_material() {
    let mut rng = ChaCha8Rng::seed_from_u64(51);
    for ell in [2u8, 4, 5, 8, 32, 41, 61] {
        for shift in 1..u32::from(ell) {
            let spec = Spec::new(Ring::new(ell), shift);
            let at = format!("ℓ = {ell}, f = {shift}");
            assert_eq!(plan::rots(ell.into(), shift), spec.rots() as u64, "{at}");
            assert_eq!(plan::ROTS_REVERSED, spec.rots_reversed() as u64);
            for n in [1usize, 7, 64] {
                let want: Vec<(Dir, u64)> = spec
                    .flights(n)
                    .into_iter()
                    .map(|f| match f {
                        Flight::ToServer(b) => (Dir::ClientToServer, b as u64),
                        Flight::ToClient(b) => (Dir::ServerToClient, b as u64),
                    })
                    .collect();
                assert_eq!(plan::flights(ell.into(), shift, n as u64), want, "{at}, n = {n}");
                let (s, c) = offline::dealt(spec, vec![0; n], &mut rng);
                assert_eq!(c.ot_bytes() as u64, plan::client_bytes(ell.into(), shift, n as u64), "client, {at}");
                assert_eq!(s.bytes() as u64, plan::server_bytes(ell.into(), shift, n as u64), "server, {at}");
                assert_eq!((c.ot_bytes(), s.bytes()), (spec.client_bytes(n), spec.server_bytes(n)), "{at}");
                // Hashed down: far below the 16-byte pads it came from.
                let ots = n * (spec.rots() + spec.rots_reversed());
                assert!(8 * c.ot_bytes() < 17 * ots && 8 * s.bytes() < 32 * ots, "{at}");
            }
        }
    }
}

/// Every pair of shares of an 8-bit ring (so every value, each split every way) under every
/// shift.
#[test]
fn exhaustive_at_eight_bits_equals_the_simulator() {
    let mut rng = ChaCha8Rng::seed_from_u64(52);
    let ring = Ring::new(8);
    let (ys, yc): (Vec<u64>, Vec<u64>) = (0..256u64).flat_map(|a| (0..256u64).map(move |b| (a, b))).unzip();
    for f in 1..8 {
        check(Spec::new(ring, f), &ys, &yc, &mut rng);
    }
}

/// Random values, values of small magnitude around 0 and the ring's edges (0, ±1, the largest
/// and smallest, values with all low bits set), split every way, at several widths including
/// ℓ = 41 and 61, for the shifts at the ends and in between.
#[test]
fn random_and_edge_values_at_every_width_equal_the_simulator() {
    let mut rng = ChaCha8Rng::seed_from_u64(53);
    for bits in [2u8, 3, 5, 9, 16, 33, 41, 61] {
        let ring = Ring::new(bits);
        let half = 1u64 << (bits - 1);
        for f in [1, 2, 4, 5, 12, 13, 16, 24, u32::from(bits) - 1].into_iter().filter(|&f| f < u32::from(bits)) {
            let mut ys: Vec<u64> = (0..300).map(|_| ring.reduce(rng.random())).collect();
            let mut yc: Vec<u64> = ys.iter().map(|_| ring.reduce(rng.random())).collect();
            let low = (1u64 << f) - 1;
            let ends =
                [0, 1, ring.mask(), half - 1, half, half + 1, ring.mask() - 1, low, ring.reduce(!low), half | low];
            for &y in &ends {
                for &s in &[0, 1, half, half - 1, ring.mask(), low, ring.reduce(rng.random())] {
                    ys.push(s);
                    yc.push(ring.reduce(y.wrapping_sub(s)));
                }
            }
            for v in -70i64..70 {
                let s = ring.reduce(rng.random());
                ys.push(s);
                yc.push(ring.reduce(ring.from_signed(v).wrapping_sub(s)));
            }
            check(Spec::new(ring, f), &ys, &yc, &mut rng);
        }
    }
}

/// Bytes per element at ℓ = 41, f = 13, by hand.
#[test]
fn bytes_per_truncation() {
    let per = |spec: Spec, n: usize| {
        spec.flights(n).iter().fold((0, 0), |(c, s), f| match f {
            Flight::ToServer(b) => (c + b, s),
            Flight::ToClient(b) => (c, s + b),
        })
    };
    let spec = Spec::new(Ring::new(41), 13);
    // c→s: 41 + 13 choice bits, openings 2·20 bits, products 2·41 + 13 bits: 189 bits;
    // s→c: the tables, 16 bits for a lowest digit, 32 for another of 4 bits, 4 for one of 1 bit
    // (wrap: 16 + 9·32 + 4, low: 16 + 2·32 + 4), openings 40 bits, derandomisations 2 bits:
    // 434 bits.
    assert_eq!(per(spec, 8), (189, 434));
    // Piggybacked openings: two flights, four level flights, the client's products.
    assert_eq!(spec.flights(8).len(), 2 + 4 + 1);
    assert_eq!(spec.rots(), 54 + 40);
}

#[test]
fn states_redact_their_secrets() {
    let spec = Spec::new(Ring::new(8), 2);
    let mut rng = ChaCha8Rng::seed_from_u64(54);
    let (s_off, c_off) = offline::dealt(spec, vec![99], &mut rng);
    let text = format!("{s_off:?} {c_off:?}");
    let s = Server::new(spec, s_off, vec![77]);
    let (c, _) = Client::start(spec, c_off, vec![5]);
    let text = format!("{text} {s:?} {c:?}");
    assert!(text.contains("<redacted>") && !text.contains("77") && !text.contains("99"), "{text}");
}

const RUNS: usize = 300;

/// A curious party studies what it received over many runs in each of two worlds: the value
/// `+3·2^f + (2^f − 1)` (positive, the low bits' carry set for most splits) against `−3·2^f`
/// (negative, no low bits), its own share the same in both, the peer's share making the world's
/// value. Fresh OTs every run. The same distinguisher must see the control leak (the peer's
/// share itself), so a test that could not see a leak fails.
fn cannot_tell_the_value(spec: Spec, server_attacks: bool, seed: u64) {
    let ring = spec.ring;
    let (n, f) = (12, spec.shift);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let own: Vec<u64> = (0..n).map(|_| ring.reduce(rng.random())).collect();
    let worlds = [(3i64 << f) + (1 << f) - 1, -3i64 << f].map(|v| vec![ring.from_signed(v); n]);
    let (mut seen, mut leak) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for (w, y) in worlds.iter().enumerate() {
        let peer: Vec<u64> = y.iter().zip(&own).map(|(&y, &s)| ring.reduce(y.wrapping_sub(s))).collect();
        for _ in 0..RUNS {
            let r: Vec<u64> = (0..n).map(|_| ring.reduce(rng.random())).collect();
            let (ys, yc) = if server_attacks { (&own, &peer) } else { (&peer, &own) };
            let (_, to_server, to_client) = run(spec, ys, yc, &r, &mut rng);
            seen[w].push(if server_attacks { to_server } else { to_client });
            leak[w].push(peer.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
        }
    }
    let who = if server_attacks { "server" } else { "client" };
    assert!(seen[0][0].len() > 50, "{} bytes received by the {who}", seen[0][0].len());
    let z = max_bit_z(&seen[0], &seen[1]);
    assert!(z < Z_LEAK, "the {who}'s view tells the worlds apart: |z| = {z:.1}");
    let z_leak = max_bit_z(&leak[0], &leak[1]);
    assert!(z_leak > Z_LEAK, "the distinguisher misses the peer's share itself: |z| = {z_leak:.1}");
}

#[test]
fn the_server_cannot_tell_two_values_apart() {
    cannot_tell_the_value(Spec::new(Ring::new(16), 4), true, 55);
}

#[test]
fn the_client_cannot_tell_two_values_apart() {
    cannot_tell_the_value(Spec::new(Ring::new(16), 4), false, 56);
}

/// The OTs are used once: if a run reused the previous run's OTs, the client's derandomisation
/// messages for two different values would XOR to a function of the values alone (the OTs'
/// choices cancel), and the distinguisher sees it across the worlds: the attack the fresh OTs of
/// the tests above defeat.
#[test]
fn reusing_the_ots_would_let_the_server_tell_the_worlds_apart() {
    let spec = Spec::new(Ring::new(16), 4);
    let ring = spec.ring;
    let n = 12;
    let mut rng = ChaCha8Rng::seed_from_u64(57);
    let ys: Vec<u64> = (0..n).map(|_| ring.reduce(rng.random())).collect();
    let split = |v: &[u64]| v.iter().zip(&ys).map(|(&y, &s)| ring.reduce(y.wrapping_sub(s))).collect::<Vec<_>>();
    let worlds = [(3i64 << 4) + 15, -3i64 << 4].map(|v| vec![ring.from_signed(v); n]);
    let mut seen = [Vec::new(), Vec::new()];
    for (w, y) in worlds.iter().enumerate() {
        for _ in 0..RUNS {
            // A reference value (0) in the first session, the world's value in the second, the
            // same OTs (the same dealer stream).
            let seed: u64 = rng.random();
            let r = vec![0; n];
            let a = run(spec, &ys, &split(&vec![0; n]), &r, &mut ChaCha8Rng::seed_from_u64(seed)).1;
            let b = run(spec, &ys, &split(y), &r, &mut ChaCha8Rng::seed_from_u64(seed)).1;
            seen[w].push(a.iter().zip(&b).map(|(a, b)| a ^ b).collect());
        }
    }
    let z = max_bit_z(&seen[0], &seen[1]);
    assert!(z > Z_LEAK, "reused OTs should leak the client's comparison digits: |z| = {z:.1}");
}
