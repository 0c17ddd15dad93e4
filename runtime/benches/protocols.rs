//! `cargo bench -p veil-runtime --bench protocols`: OT and per-ReLU costs between **two
//! processes** on loopback (this bench re-executes itself as the client). Prints tables:
//! - OTs per second (random and correlated, IKNP over cryprot-ot; random-choice silent OT in
//!   both directions, with its bytes per OT);
//! - bytes and time per ReLU, offline and online, for the exact GC ReLU (ℓ = 61, f = 12) and
//!   the exact ReLU over silent OT (`proto::relu_ot`, at f = 12 and f = 0), and Circa at two drop-bit values. Bytes
//!   are counted by each direction's sender.

// A bench binary: its tables on stdout are its output.
#![allow(clippy::print_stdout)]

#[path = "common/two_process.rs"]
mod two_process;

use std::time::Instant;

use rand::SeedableRng;
use veil_ir::ring::Ring;
use veil_ir::{CircaVariant, circuit::relu_trunc_mask};
use veil_runtime::garble::Block;
use veil_runtime::net::quic::Session;
use veil_runtime::net::{Channel, Traffic};
use veil_runtime::ot::{OtReceiver, OtSender};
use veil_runtime::proto::{circa, gc, relu_ot};

const OTS: usize = 1 << 21;
const RELUS: usize = 10_000;
use veil_ir::schedule::ACTIVATION_SERVER_GROUPS as RELU_GROUPS;

async fn sent(ch: &mut Channel, mine: u64, client: bool) -> u64 {
    // Each side tells the other what it sent.
    if client {
        ch.send_u64s("bench counts", &[mine]).await.unwrap();
        ch.recv_u64s("bench counts", 1).await.unwrap()[0]
    } else {
        let t = ch.recv_u64s("bench counts", 1).await.unwrap()[0];
        ch.send_u64s("bench counts", &[mine]).await.unwrap();
        t
    }
}

/// One measured phase on the server's side: (seconds, bytes c→s, bytes s→c).
async fn phase<F: Future<Output = ()>>(s: &Session, ch: &mut Channel, client: bool, f: F) -> (f64, u64, u64) {
    let (t0, m0) = (Instant::now(), s.meter().snapshot());
    f.await;
    let secs = t0.elapsed().as_secs_f64();
    let d: Traffic = s.meter().snapshot() - m0;
    let theirs = sent(ch, d.bytes_sent, client).await;
    if client { (secs, d.bytes_sent, theirs) } else { (secs, theirs, d.bytes_sent) }
}

async fn party(mut s: Session, client: bool) {
    let mut ch = s.channel().await.unwrap();
    let oc = s.channel().await.unwrap();
    let conn = s.ot_connection();
    let mut cnt = s.channel().await.unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::from_os_rng();
    let (mut snd, mut rcv) =
        if client { (None, Some(OtReceiver::new(conn, oc))) } else { (Some(OtSender::new(conn, oc)), None) };
    let bits: Vec<bool> = (0..OTS).map(|i| i % 3 == 0).collect();
    // Warm-up batch (base OTs).
    let p = phase(&s, &mut cnt, client, async {
        if let Some(r) = rcv.as_mut() {
            r.random("warm-up", &bits[..1024]).await.unwrap();
        } else {
            snd.as_mut().unwrap().random("warm-up", 1024).await.unwrap();
        }
    })
    .await;
    let _ = p;
    let (t_rot, ..) = phase(&s, &mut cnt, client, async {
        if let Some(r) = rcv.as_mut() {
            r.random("rot", &bits).await.unwrap();
        } else {
            snd.as_mut().unwrap().random("rot", OTS).await.unwrap();
        }
    })
    .await;
    let (t_cot, c2s, s2c) = phase(&s, &mut cnt, client, async {
        if let Some(r) = rcv.as_mut() {
            r.correlated("cot", &bits).await.unwrap();
        } else {
            snd.as_mut().unwrap().correlated("cot", Block(3), OTS).await.unwrap();
        }
    })
    .await;
    // Silent random-choice OT (the OT-based non-linear protocols' correlations), both
    // directions; a warm-up batch first (the instance's own base OTs).
    let mut silent = [(0.0, 0, 0); 2];
    for (i, reversed) in [false, true].into_iter().enumerate() {
        let _ = phase(&s, &mut cnt, client, async {
            match (rcv.as_mut(), snd.as_mut(), reversed) {
                (Some(r), _, false) => drop(r.rand_choice("warm-up", 1024).await.unwrap()),
                (Some(r), _, true) => drop(r.rand_choice_reversed("warm-up", 1024).await.unwrap()),
                (_, Some(t), false) => drop(t.rand_choice("warm-up", 1024).await.unwrap()),
                (_, Some(t), true) => drop(t.rand_choice_reversed("warm-up", 1024).await.unwrap()),
                _ => unreachable!(),
            }
        })
        .await;
        silent[i] = phase(&s, &mut cnt, client, async {
            match (rcv.as_mut(), snd.as_mut(), reversed) {
                (Some(r), _, false) => drop(r.rand_choice("silent", OTS).await.unwrap()),
                (Some(r), _, true) => drop(r.rand_choice_reversed("silent", OTS).await.unwrap()),
                (_, Some(t), false) => drop(t.rand_choice("silent", OTS).await.unwrap()),
                (_, Some(t), true) => drop(t.rand_choice_reversed("silent", OTS).await.unwrap()),
                _ => unreachable!(),
            }
        })
        .await;
    }
    if !client {
        println!("\n| OT (IKNP, semi-honest) | count | seconds | OTs/s | bytes c→s | bytes s→c |");
        println!("|---|---|---|---|---|---|");
        println!("| random OT | {OTS} | {t_rot:.3} | {:.2} M | | |", OTS as f64 / t_rot / 1e6);
        println!("| correlated OT | {OTS} | {t_cot:.3} | {:.2} M | {c2s} | {s2c} |", OTS as f64 / t_cot / 1e6);
        for (name, (t, c2s, s2c)) in ["silent random-choice OT, s→c", "silent random-choice OT, c→s"].iter().zip(silent)
        {
            let per = (c2s + s2c) as f64 / OTS as f64;
            println!("| {name} | {OTS} | {t:.3} | {:.2} M | {c2s} | {s2c} | ({per:.3} B/OT)", OTS as f64 / t / 1e6);
        }
        println!(
            "\n| per ReLU ({RELUS} at once, ℓ = 61, f = 12) | AND gates | offline s | offline B c→s | offline B s→c | online s | online B c→s | online B s→c |"
        );
        println!("|---|---|---|---|---|---|---|---|");
    }
    let ring = Ring::new(61);
    let mut offset = 0u64;
    // Exact ReLU.
    let c = relu_trunc_mask(61, 12);
    let spec = gc::GcSpec { circuit: &c, server_groups: &RELU_GROUPS, garbling: veil_ir::Garbling::HalfGates };
    let vals: Vec<u64> = (0..RELUS as u64).map(|i| ring.reduce(i.wrapping_mul(0x9e3779b97f4a7c15))).collect();
    let (mut gst, mut est) = (None, None);
    let off = phase(&s, &mut cnt, client, async {
        if client {
            let ins: Vec<Vec<u64>> = vals.iter().map(|&v| vec![v, v ^ 5]).collect();
            est = Some(gc::evaluate_offline(&mut ch, rcv.as_mut().unwrap(), spec, &ins).await.unwrap());
        } else {
            gst =
                Some(gc::garble_offline(&mut ch, snd.as_mut().unwrap(), spec, RELUS, offset, &mut rng).await.unwrap());
        }
    })
    .await;
    let on = phase(&s, &mut cnt, client, async {
        if client {
            gc::evaluate_online(&mut ch, spec, est.take().unwrap(), offset).await.unwrap();
        } else {
            let ins: Vec<Vec<u64>> = vals.iter().map(|&v| vec![v]).collect();
            gc::garble_online(&mut ch, spec, gst.take().unwrap(), &ins).await.unwrap();
        }
    })
    .await;
    offset += (RELUS * c.and_count()) as u64;
    report(client, "exact GC ReLU", c.and_count(), off, on);
    // Exact ReLU over silent OT (same output as the circuit): offline the random-choice OTs,
    // online the flights. The "AND gates" column is its Boolean triples. Shift 12, then shift 0
    // (a ReLU with no truncation fused, MaxPool's max-tree step).
    for (shift, name) in [(12, "exact ReLU over silent OT"), (0, "ReLU over silent OT, f = 0")] {
        let spec = relu_ot::Spec::new(ring, shift);
        let (mut so, mut co) = (None, None);
        let off = phase(&s, &mut cnt, client, async {
            if client {
                let r = vals.clone();
                co = Some(relu_ot::drive::client_offline(rcv.as_mut().unwrap(), spec, r).await.unwrap());
            } else {
                so = Some(relu_ot::drive::server_offline(snd.as_mut().unwrap(), spec, RELUS).await.unwrap());
            }
        })
        .await;
        let on = phase(&s, &mut cnt, client, async {
            if client {
                relu_ot::drive::client_online(&mut ch, spec, co.take().unwrap(), vals.clone()).await.unwrap();
            } else {
                let out = relu_ot::drive::server_online(&mut ch, spec, so.take().unwrap(), vals.clone(), &mut rng);
                out.await.unwrap();
            }
        })
        .await;
        report(client, name, spec.level_ands().iter().sum(), off, on);
    }
    for k in [19u8, 12] {
        let test = circa::SignTest { ring, drop_bits: k, variant: CircaVariant::PosZero };
        let circ = test.circuit();
        let (mut cs, mut ss) = (None, None);
        let off = phase(&s, &mut cnt, client, async {
            if client {
                let f = circa::client_offline(
                    &mut ch,
                    rcv.as_mut().unwrap(),
                    ring,
                    (&circ, veil_ir::Garbling::HalfGates),
                    test,
                    &vals,
                    vals.clone(),
                    &mut rng,
                    None,
                );
                cs = Some(f.await.unwrap());
            } else {
                ss = Some(
                    circa::server_offline(
                        &mut ch,
                        snd.as_mut().unwrap(),
                        ring,
                        (&circ, veil_ir::Garbling::HalfGates),
                        RELUS,
                        offset,
                        &mut rng,
                    )
                    .await
                    .unwrap(),
                );
            }
        })
        .await;
        let on = phase(&s, &mut cnt, client, async {
            if client {
                circa::client_online(
                    &mut ch,
                    ring,
                    (&circ, veil_ir::Garbling::HalfGates),
                    cs.take().unwrap(),
                    &vals,
                    offset,
                )
                .await
                .unwrap();
            } else {
                circa::server_online(
                    &mut ch,
                    ring,
                    (test, &circ, veil_ir::Garbling::HalfGates),
                    ss.take().unwrap(),
                    &vals,
                    &mut rng,
                )
                .await
                .unwrap();
            }
        })
        .await;
        offset += (RELUS * circ.and_count()) as u64;
        report(client, &format!("Circa, {k} drop bits"), circ.and_count(), off, on);
    }
}

fn report(client: bool, name: &str, ands: usize, off: (f64, u64, u64), on: (f64, u64, u64)) {
    if client {
        return;
    }
    let n = RELUS as f64;
    println!(
        "| {name} | {ands} | {:.2} µs | {:.0} | {:.0} | {:.2} µs | {:.1} | {:.1} |",
        off.0 / n * 1e6,
        off.1 as f64 / n,
        off.2 as f64 / n,
        on.0 / n * 1e6,
        on.1 as f64 / n,
        on.2 as f64 / n
    );
}

fn main() {
    two_process::run(party, || {
        println!("two processes on loopback, 2 tokio workers each; machine threads: {}", rayon::current_num_threads())
    });
}
