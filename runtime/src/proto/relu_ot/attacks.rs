//! Attacks on the ReLU over OT by a curious party (semi-honest: it follows the protocol and
//! studies what it received). Each collects its view over many runs with one secret and many
//! with another and runs the generic distinguisher ([`crate::proto::distinguish`]) on it; the
//! same distinguisher must separate a leaky view (the peer's share itself), so a test that
//! could not see a leak fails.
//!
//! The secrets differ where the protocol is most delicate: a value just above zero against one
//! just below (the sign the comparisons decide), both split against one fixed share of the
//! attacker, so the attacker's own share is the same in both worlds.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use veil_ir::ring::Ring;

use super::{Client, Server, Spec};
use crate::proto::distinguish::{Z_LEAK, max_bit_z};

/// One run: both parties with fresh dealer OTs; returns (what the server received, what the
/// client received), each flight's bytes concatenated.
fn views(spec: Spec, ys: &[u64], yc: &[u64], rng: &mut ChaCha8Rng) -> (Vec<u8>, Vec<u8>) {
    let n = ys.len();
    let r = (0..n).map(|_| spec.ring.reduce(rng.random())).collect();
    let (s_off, c_off) = super::offline::dealt(spec, r, rng);
    let mut server = Server::new(spec, s_off, ys.to_vec());
    let (mut client, mut msg) = Client::start(spec, c_off, yc.to_vec());
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    loop {
        to_server.extend_from_slice(&msg);
        match server.reply(&msg, rng) {
            None => break,
            Some(back) => {
                to_client.extend_from_slice(&back);
                msg = client.reply(&back);
            }
        }
    }
    (to_server, to_client)
}

const RUNS: usize = 300;

fn le_bytes(ring: Ring, v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|&x| ring.reduce(x).to_le_bytes()).collect()
}

/// The values of the two worlds: `+3` against `−3` at scale 2^shift (one element of each
/// sign per world would leak nothing, so every element has the world's sign).
fn worlds(ring: Ring, shift: u32, n: usize) -> [Vec<u64>; 2] {
    [3i64, -3].map(|v| vec![ring.from_signed(v << shift); n])
}

/// The server (when `server_attacks`) or the client studies what it received from `spec` on 12
/// elements valued `±3·2^scale` ([`worlds`]), its own share fixed and the peer's share making the
/// world's value, and receives more than `min_bytes`; the control view is the peer's share itself.
/// Circa over OT's attack runs this too.
pub(super) fn cannot_tell_the_sign(spec: Spec, scale: u32, min_bytes: usize, server_attacks: bool, seed: u64) {
    let ring = spec.ring;
    let n = 12;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let own: Vec<u64> = (0..n).map(|_| ring.reduce(rng.random())).collect();
    let mut seen = [Vec::new(), Vec::new()];
    let mut leak = [Vec::new(), Vec::new()];
    for (w, y) in worlds(ring, scale, n).iter().enumerate() {
        let peer: Vec<u64> = y.iter().zip(&own).map(|(&y, &s)| ring.reduce(y.wrapping_sub(s))).collect();
        for _ in 0..RUNS {
            let (to_server, to_client) =
                if server_attacks { views(spec, &own, &peer, &mut rng) } else { views(spec, &peer, &own, &mut rng) };
            seen[w].push(if server_attacks { to_server } else { to_client });
            leak[w].push(le_bytes(ring, &peer));
        }
    }
    let who = if server_attacks { "server" } else { "client" };
    assert!(seen[0][0].len() > min_bytes, "{} bytes received by the {who}", seen[0][0].len());
    let z = max_bit_z(&seen[0], &seen[1]);
    assert!(z < Z_LEAK, "the {who}'s view tells the worlds apart: |z| = {z:.1}");
    let z_leak = max_bit_z(&leak[0], &leak[1]);
    assert!(z_leak > Z_LEAK, "the distinguisher misses the peer's share itself: |z| = {z_leak:.1}");
}

#[test]
fn the_server_cannot_tell_a_positive_client_value_from_a_negative_one() {
    cannot_tell_the_sign(Spec::new(Ring::new(16), 4), 4, 100, true, 71);
}

#[test]
fn the_client_cannot_tell_a_positive_server_value_from_a_negative_one() {
    cannot_tell_the_sign(Spec::new(Ring::new(16), 4), 4, 100, false, 72);
}

/// The OTs are used once: if a run reused the previous run's OTs, the client's derandomisation
/// messages for two different values would XOR to a function of the values alone (the pads'
/// choices cancel), and the distinguisher sees it across the worlds.
#[test]
fn reusing_the_ots_would_let_the_server_tell_the_worlds_apart() {
    let spec = Spec::new(Ring::new(16), 4);
    let ring = spec.ring;
    let n = 12;
    let mut rng = ChaCha8Rng::seed_from_u64(73);
    let ys: Vec<u64> = (0..n).map(|_| ring.reduce(rng.random())).collect();
    // A reference value (0) in the first session, the world's value in the second, same OTs.
    let zero = vec![0u64; n];
    let mut seen = [Vec::new(), Vec::new()];
    for (w, y) in worlds(ring, spec.shift, n).iter().enumerate() {
        for _ in 0..RUNS {
            let seed: u64 = rng.random();
            let mut first = ChaCha8Rng::seed_from_u64(seed);
            let mut second = ChaCha8Rng::seed_from_u64(seed);
            let split =
                |v: &[u64]| v.iter().zip(&ys).map(|(&y, &s)| ring.reduce(y.wrapping_sub(s))).collect::<Vec<_>>();
            let a = views(spec, &ys, &split(&zero), &mut first).0;
            let b = views(spec, &ys, &split(y), &mut second).0;
            seen[w].push(a.iter().zip(&b).map(|(a, b)| a ^ b).collect());
        }
    }
    let z = max_bit_z(&seen[0], &seen[1]);
    assert!(z > Z_LEAK, "reused OTs should leak the client's comparison digits: |z| = {z:.1}");
}
