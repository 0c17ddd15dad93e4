use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::proto::mul::random_ring as random;

/// A dealer's matrix triples: (the client's, the server's), with `z_error` added to the
/// server's first `Z` entry (a bad triple).
fn deal(ring: Ring, dims: Dims, z_error: u64, rng: &mut impl RngCore) -> (MatrixTriples, MatrixTriples) {
    let (b, m, k, n) = dims;
    let (uc, us) = (random(ring, b * m * k, rng), random(ring, b * m * k, rng));
    let (vc, vs) = (random(ring, b * k * n, rng), random(ring, b * k * n, rng));
    let z = product(ring, &add(ring, &uc, &us), &add(ring, &vc, &vs), dims);
    let zc = random(ring, z.len(), rng);
    let mut zs = sub(ring, &z, &zc);
    zs[0] = ring.reduce(zs[0].wrapping_add(z_error));
    (MatrixTriples { u: uc, v: vc, z: zc }, MatrixTriples { u: us, v: vs, z: zs })
}

fn split(ring: Ring, x: &[u64], rng: &mut impl RngCore) -> (Vec<u64>, Vec<u64>) {
    let c = random(ring, x.len(), rng);
    (c.clone(), sub(ring, x, &c))
}

/// The product by definition, entry by entry (independent of the kernel the protocol uses).
fn by_definition(ring: Ring, x: &[u64], y: &[u64], (b, m, k, n): Dims) -> Vec<u64> {
    let mut out = Vec::new();
    for p in 0..b {
        for i in 0..m {
            for j in 0..n {
                let s = (0..k)
                    .fold(0u64, |s, t| s.wrapping_add(x[p * m * k + i * k + t].wrapping_mul(y[p * k * n + t * n + j])));
                out.push(ring.reduce(s));
            }
        }
    }
    out
}

/// The share algebra alone, no channel: dealer-made triples, messages handed across by hand;
/// the shares reconstruct to `X·Y` in the ring (extreme entries included), and a triple with a
/// wrong `Z` shows in the product.
#[test]
fn shares_reconstruct_the_matrix_product() {
    let ring = Ring::new(43);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let dims = (2, 3, 4, 5);
    let mut x = random(ring, 2 * 3 * 4, &mut rng);
    let y = random(ring, 2 * 4 * 5, &mut rng);
    x[0] = ring.mask();
    x[1] = ring.from_signed(-1);
    let want = by_definition(ring, &x, &y, dims);
    let run = |z_error: u64, rng: &mut ChaCha20Rng| {
        let ((xc, xs), (yc, ys)) = (split(ring, &x, rng), split(ring, &y, rng));
        let (tc, ts) = deal(ring, dims, z_error, rng);
        let r = random(ring, want.len(), rng);
        let (msg, client) = ClientState::new(ring, &xc, &yc, tc, r.clone(), dims);
        assert_eq!(msg.len(), 2 * (3 * 4 + 4 * 5), "the client opens m·k + k·n per batch element");
        let server = ServerState::new(ts, msg, dims);
        let mine = server.masked(ring, &xs, &ys);
        let reshare = client.reshare(ring, &mine);
        add(ring, &server.output(ring, &mine, &reshare), &r)
    };
    assert_eq!(run(0, &mut rng), want);
    assert_ne!(run(1, &mut rng), want, "a bad triple must show in the product");
}

/// The drivers in memory with the ideal OT: the triples' `Z` is `U·V`, the output reconstructs
/// to `X·Y`, and the online phase moves exactly the documented bytes (one frame each way).
#[tokio::test]
async fn drivers_in_memory_make_true_triples_and_the_documented_traffic() {
    let (mut cc, mut sc) = crate::net::memory::pair(std::time::Duration::from_secs(20));
    let (mut ot_s, mut ot_r) = crate::ot::ideal::pair(6);
    let ring = Ring::new(37);
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let dims = (3, 5, 7, 4);
    let (b, m, k, n) = dims;
    let (x, y) = (random(ring, b * m * k, &mut rng), random(ring, b * k * n, &mut rng));
    let ((xc, xs), (yc, ys)) = (split(ring, &x, &mut rng), split(ring, &y, &mut rng));
    let (mut rc, mut rs) = (ChaCha20Rng::seed_from_u64(1), ChaCha20Rng::seed_from_u64(2));

    let (tc, ts) = tokio::join!(
        triples_client(&mut cc, &mut ot_r, ring, dims, &mut rc),
        triples_server(&mut sc, &mut ot_s, ring, dims, &mut rs)
    );
    let (tc, ts) = (tc.unwrap(), ts.unwrap());
    let (u, v) = (add(ring, &tc.u, &ts.u), add(ring, &tc.v, &ts.v));
    assert_eq!(add(ring, &tc.z, &ts.z), by_definition(ring, &u, &v, dims), "Z = U·V");

    let (st_c, st_s) = tokio::join!(
        client_offline(&mut cc, &mut ot_r, ring, &xc, &yc, dims, &mut rc),
        server_offline(&mut sc, &mut ot_s, ring, dims, &mut rs)
    );
    let (st_c, st_s) = (st_c.unwrap(), st_s.unwrap());
    let r = st_c.output_share().to_vec();
    let before = (cc.meter().snapshot(), sc.meter().snapshot());
    let (done, out) = tokio::join!(client_online(&mut cc, ring, st_c), server_online(&mut sc, ring, &xs, &ys, st_s));
    done.unwrap();
    assert_eq!(add(ring, &out.unwrap(), &r), by_definition(ring, &x, &y, dims));
    assert_eq!(cc.meter().snapshot().bytes_sent - before.0.bytes_sent, 4 + 8 * (b * m * n) as u64);
    assert_eq!(sc.meter().snapshot().bytes_sent - before.1.bytes_sent, 4 + 8 * (b * (m * k + k * n)) as u64);
}

/// A curious client studies what it receives online (the server's masked operands) over many
/// runs with one pair of server operand shares and many with another: fresh triples make the
/// two worlds look alike. Reusing one triple for a second product hands it `X₁ − X₂`, and the
/// same distinguisher sees that.
#[test]
fn the_client_cannot_tell_the_servers_operands_apart_unless_a_triple_is_reused() {
    use crate::proto::distinguish::{Z_LEAK, max_bit_z};
    let ring = Ring::new(20);
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let dims = (1, 2, 3, 2);
    let (mk, kn) = (6, 6);
    let worlds = [(vec![5u64; mk], vec![7u64; kn]), (vec![ring.from_signed(-5); mk], vec![ring.from_signed(900); kn])];
    let bytes = |v: &[u64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (mut fresh, mut reused) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for (w, (xs, ys)) in worlds.iter().enumerate() {
        for _ in 0..300 {
            let (_, ts) = deal(ring, dims, 0, &mut rng);
            let server = ServerState::new(ts.clone(), Vec::new(), dims);
            let seen = server.masked(ring, xs, ys);
            fresh[w].push(bytes(&seen));
            let again = ServerState::new(ts, Vec::new(), dims).masked(ring, &vec![0; mk], &vec![0; kn]);
            reused[w].push(bytes(&sub(ring, &seen, &again)));
        }
    }
    let z = max_bit_z(&fresh[0], &fresh[1]);
    assert!(z < Z_LEAK, "the client's view tells the worlds apart: |z| = {z:.1}");
    let z_reused = max_bit_z(&reused[0], &reused[1]);
    assert!(z_reused > Z_LEAK, "a reused triple should leak the operands' difference: |z| = {z_reused:.1}");
}

/// A curious client holding the pads it chose and the server's cross-product corrections (its
/// whole view of one) learns nothing of the server's `V_s`: two worlds with different `V_s` give it views the
/// distinguisher cannot tell apart (the corrections are masked by the other pad's PRG).
#[tokio::test]
async fn the_cross_product_corrections_hide_the_servers_triple_half() {
    use crate::proto::distinguish::{Z_LEAK, max_bit_z};
    let ring = Ring::new(16);
    let dims = (1, 1, 2, 2);
    let mut views = [Vec::new(), Vec::new()];
    for (w, v) in [vec![0u64; 4], vec![ring.mask(); 4]].into_iter().enumerate() {
        for seed in 0..200u64 {
            let (mut cc, mut sc) = crate::net::memory::pair(std::time::Duration::from_secs(20));
            let (mut ot_s, mut ot_r) = crate::ot::ideal::pair(seed + 1000 * w as u64);
            let u = vec![3u64, 5];
            let (got, sent) = tokio::join!(
                async {
                    let bits = choice_bits(ring, &u);
                    let pads = ot_r.random(label::MATMUL_OT, &bits).await.unwrap();
                    let mut view = cc.recv_exact(label::MATMUL_PRODUCT, message_bytes(ring, 2, 2)).await.unwrap();
                    view.extend(pads.iter().flat_map(|p| p.0.to_le_bytes()));
                    view
                },
                cross_server(&mut sc, &mut ot_s, ring, &v, dims)
            );
            sent.unwrap();
            views[w].push(got);
        }
    }
    let z = max_bit_z(&views[0], &views[1]);
    assert!(z < Z_LEAK, "the corrections tell the server's V_s apart: |z| = {z:.1}");
}
