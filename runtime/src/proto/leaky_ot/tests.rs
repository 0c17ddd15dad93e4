//! LeakyReLU over OT against the simulator's fixed-point LeakyReLU and the garbled circuit, its
//! counts against the plan's, and a curious party's view.

use super::*;
use crate::proto::bit_triple::deal;
use crate::proto::distinguish::{Z_LEAK, max_bit_z};
use crate::proto::{relu_ot, trunc_ot};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use veil_ir::circuit::leaky_relu_trunc_mask;
use veil_ir::schedule::leaky_ot as plan;
use veil_ir::schedule::script::Dir;

/// Both parties' layer in memory with a dealer's OTs, cut as the layer cuts its batches. Returns
/// the server's output shares, the client's (fixed offline), and each party's view (every flight
/// it received, concatenated: the server's, then the client's).
fn run(
    ring: Ring,
    shift: u8,
    alpha: u64,
    ys: &[u64],
    yc: &[u64],
    rng: &mut ChaCha8Rng,
) -> (Vec<u64>, Vec<u64>, [Vec<u8>; 2]) {
    let (specs, n) = (Specs::new(ring, shift), ys.len());
    let (pads, ots) = deal(rng, n * specs.rots());
    let (rev_pads, reversed) = deal(rng, n * specs.rots_reversed());
    let r = [random_ring(ring, n, rng), random_ring(ring, n, rng), random_ring(ring, n, rng)];
    let out_c = plus(ring, &r[1], &r[2]);
    let s = split_server(specs, n, &pads, &reversed);
    let c = split_client(specs, &ots, &rev_pads, r);
    let mut views = [Vec::new(), Vec::new()];
    let mut talk =
        |first: Vec<u8>, server: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>, client: &mut dyn FnMut(&[u8]) -> Vec<u8>| {
            let mut msg = first;
            loop {
                views[0].extend_from_slice(&msg);
                match server(&msg) {
                    None => break,
                    Some(back) => {
                        views[1].extend_from_slice(&back);
                        msg = client(&back);
                    }
                }
            }
        };
    let mut srng = ChaCha8Rng::seed_from_u64(rng.random());
    let (zs, zc) = match (specs.first, s.first, c.first) {
        (Some(spec), Some(so), Some(co)) => {
            let zc = co.r.clone();
            let mut server = trunc_ot::Server::new(spec, so, ys.to_vec());
            let (mut client, first) = trunc_ot::Client::start(spec, co, yc.to_vec());
            talk(first, &mut |m| server.reply(m, &mut srng), &mut |m| client.reply(m));
            (server.output(), zc)
        }
        _ => (ys.to_vec(), yc.to_vec()),
    };
    let tc = c.slope.r.clone();
    let mut server = trunc_ot::Server::new(specs.slope, s.slope, scale(ring, alpha, &zs));
    let (mut client, first) = trunc_ot::Client::start(specs.slope, c.slope, scale(ring, alpha, &zc));
    talk(first, &mut |m| server.reply(m, &mut srng), &mut |m| client.reply(m));
    let ts = server.output();
    let (ds, dc) = (minus(ring, &zs, &ts), minus(ring, &zc, &tc));
    let mut server = relu_ot::Server::select(specs.select, s.select, zs, ds);
    let (mut client, first) = relu_ot::Client::select(specs.select, c.select, zc, dc);
    talk(first, &mut |m| server.reply(m, &mut srng), &mut |m| client.reply(m));
    (plus(ring, &ts, &server.output()), out_c, views)
}

/// The simulator's fixed-point LeakyReLU of `y` after the fused truncation (`eval::run_fixed`'s
/// rule, on ring elements).
fn simulator(ring: Ring, shift: u8, alpha: u64, y: u64) -> u64 {
    let v = ring.truncate(y, shift);
    if ring.to_signed(v) >= 0 { v } else { ring.truncate(v.wrapping_mul(alpha), LEAKY_ALPHA_BITS) }
}

/// Checks shares `(ys, yc)` against the simulator's function and the garbled circuit.
fn check(ring: Ring, shift: u8, slope: f64, ys: &[u64], yc: &[u64], circuit_too: bool, rng: &mut ChaCha8Rng) {
    let alpha = ring.encode(slope, LEAKY_ALPHA_BITS).expect("the slope fits");
    let (out_s, out_c, _) = run(ring, shift, alpha, ys, yc, rng);
    let c = leaky_relu_trunc_mask(u32::from(ring.bits), u32::from(shift), ring.to_signed(alpha), 16);
    for i in 0..ys.len() {
        let y = ring.reduce(ys[i].wrapping_add(yc[i]));
        let want = simulator(ring, shift, alpha, y);
        if circuit_too {
            assert_eq!(c.eval_u64(&[ys[i], yc[i], 0]), want, "the references agree at y = {y}");
        }
        let got = ring.reduce(out_s[i].wrapping_add(out_c[i]));
        assert_eq!(got, want, "ℓ = {}, f = {shift}, α = {slope}, y = {}", ring.bits, ring.to_signed(y));
    }
}

/// Every value of an 18-bit ring (the narrowest kind of ring the slope's 16 fractional bits
/// leave room for; `a·z` wraps for most negative `z`), each split at random, at shift 0 and 5
/// and slopes 0.1 and −0.75; then the circuit as a second reference on a sample.
#[test]
fn every_value_of_an_18_bit_ring_equals_the_simulator() {
    let mut rng = ChaCha8Rng::seed_from_u64(61);
    let ring = Ring::new(18);
    let y: Vec<u64> = (0..1u64 << 18).collect();
    for (shift, slope) in [(0u8, 0.1), (5, 0.1), (5, -0.75), (17, 0.3)] {
        let yc: Vec<u64> = y.iter().map(|_| ring.reduce(rng.random())).collect();
        let ys: Vec<u64> = y.iter().zip(&yc).map(|(&v, &c)| ring.reduce(v.wrapping_sub(c))).collect();
        check(ring, shift, slope, &ys, &yc, false, &mut rng);
        check(ring, shift, slope, &ys[..2000], &yc[..2000], true, &mut rng);
    }
}

/// Random values, small magnitudes and the ring's edges, split every way, at ℓ = 41 and 61,
/// several shifts and slopes (including one above 1 and a negative one): the simulator's
/// function and the circuit.
#[test]
fn random_and_edge_values_at_41_and_61_bits_equal_the_simulator() {
    let mut rng = ChaCha8Rng::seed_from_u64(62);
    for bits in [41u8, 61] {
        let ring = Ring::new(bits);
        let half = 1u64 << (bits - 1);
        for (shift, slope) in [(0u8, 0.01), (12, 0.1), (13, 0.2), (bits - 1, 0.1), (12, 1.5), (12, -0.25)] {
            let mut ys: Vec<u64> = (0..200).map(|_| ring.reduce(rng.random())).collect();
            let mut yc: Vec<u64> = ys.iter().map(|_| ring.reduce(rng.random())).collect();
            for &y in &[0, 1, ring.mask(), half - 1, half, half + 1, ring.mask() - 1] {
                for &s in &[0, 1, half, ring.mask(), ring.reduce(rng.random())] {
                    ys.push(s);
                    yc.push(ring.reduce(y.wrapping_sub(s)));
                }
            }
            for v in -40i64..40 {
                let s = ring.reduce(rng.random());
                ys.push(s);
                yc.push(ring.reduce(ring.from_signed(v << shift).wrapping_sub(s)));
            }
            check(ring, shift, slope, &ys, &yc, true, &mut rng);
        }
    }
}

/// The plan's counts (`schedule::leaky_ot`) are the parts' as the runtime runs them: OTs each
/// way, flights in order, and the client's state between the phases (each part's hashed-down
/// OTs and mask).
#[test]
fn the_plans_counts_are_the_parts() {
    let mut rng = ChaCha8Rng::seed_from_u64(63);
    for (bits, shift) in [(18u8, 0u8), (18, 5), (41, 13), (61, 0)] {
        let (ring, n) = (Ring::new(bits), 37);
        let specs = Specs::new(ring, shift);
        let (ell, f) = (u32::from(bits), u32::from(shift));
        assert_eq!(plan::rots(ell, f), specs.rots() as u64);
        assert_eq!(plan::rots_reversed(ell, f), specs.rots_reversed() as u64);
        let mut want: Vec<relu_ot::Flight> = specs.first.map_or(Vec::new(), |s| s.flights(n));
        want.extend(specs.slope.flights(n));
        want.extend(specs.select.flights(n));
        let want: Vec<(Dir, u64)> = want
            .into_iter()
            .map(|f| match f {
                relu_ot::Flight::ToServer(b) => (Dir::ClientToServer, b as u64),
                relu_ot::Flight::ToClient(b) => (Dir::ServerToClient, b as u64),
            })
            .collect();
        assert_eq!(plan::flights(ell, f, n as u64), want, "ℓ = {bits}, f = {shift}");
        let (_, ots) = deal(&mut rng, n * specs.rots());
        let (rev_pads, _) = deal(&mut rng, n * specs.rots_reversed());
        let r = [random_ring(ring, n, &mut rng), random_ring(ring, n, &mut rng), random_ring(ring, n, &mut rng)];
        let c = split_client(specs, &ots, &rev_pads, r);
        let masks = 8 * n * (2 + usize::from(c.first.is_some()));
        let bytes = c.first.as_ref().map_or(0, |p| p.ot_bytes()) + c.slope.ot_bytes() + c.select.ot_bytes() + masks;
        assert_eq!(bytes as u64, plan::client_bytes(ell, f, n as u64), "ℓ = {bits}, f = {shift}");
    }
}

const RUNS: usize = 300;

/// A curious party studies everything it received over many runs with `+3·2^f` and as many with
/// `−3·2^f` (the sign decides which branch the output takes), its own share fixed, fresh OTs
/// each run; the control (the peer's share) must be seen.
fn cannot_tell_the_sign(server_attacks: bool, seed: u64) {
    let (ring, shift, n) = (Ring::new(20), 3u8, 8);
    let alpha = ring.encode(0.1, LEAKY_ALPHA_BITS).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let own: Vec<u64> = (0..n).map(|_| ring.reduce(rng.random())).collect();
    let (mut seen, mut leak) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for (w, v) in [3i64 << shift, -3i64 << shift].into_iter().enumerate() {
        let peer: Vec<u64> = own.iter().map(|&s| ring.reduce(ring.from_signed(v).wrapping_sub(s))).collect();
        for _ in 0..RUNS {
            let (ys, yc) = if server_attacks { (&own, &peer) } else { (&peer, &own) };
            let (_, _, views) = run(ring, shift, alpha, ys, yc, &mut rng);
            let [to_server, to_client] = views;
            seen[w].push(if server_attacks { to_server } else { to_client });
            leak[w].push(peer.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
        }
    }
    let who = if server_attacks { "server" } else { "client" };
    let z = max_bit_z(&seen[0], &seen[1]);
    assert!(z < Z_LEAK, "the {who}'s view tells the worlds apart: |z| = {z:.1}");
    let z_leak = max_bit_z(&leak[0], &leak[1]);
    assert!(z_leak > Z_LEAK, "the distinguisher misses the peer's share itself: |z| = {z_leak:.1}");
}

#[test]
fn the_server_cannot_tell_the_sign_of_the_clients_value() {
    cannot_tell_the_sign(true, 64);
}

#[test]
fn the_client_cannot_tell_the_sign_of_the_servers_value() {
    cannot_tell_the_sign(false, 65);
}
