//! `cargo bench -p veil-runtime --bench silent_batch`: random-choice silent OT's rate against its
//! batch size, between two processes on loopback (the bench re-executes itself as the client):
//! the library in one run per batch, then Veil's batches, which run the library in runs of at
//! most `SILENT_RUN` OTs (docs/decisions.md). Each row makes the same total number of OTs.

// A bench binary: its table on stdout is its output.
#![allow(clippy::print_stdout)]

#[path = "common/two_process.rs"]
mod two_process;

use std::time::Instant;

use cryprot_ot::RandChoiceRotReceiver;
use cryprot_ot::silent_ot::{SemiHonestSilentOtReceiver, SemiHonestSilentOtSender};
use veil_runtime::net::quic::Session;
use veil_runtime::ot::{OtReceiver, OtSender};

const TOTAL: usize = 1 << 22;

async fn party(mut s: Session, client: bool) {
    // The library itself, one run per batch: one instance per direction of use here.
    let mut conn = s.ot_connection();
    let (mut snd, mut rcv) = if client {
        (None, Some(SemiHonestSilentOtReceiver::new(conn.sub_connection())))
    } else {
        (Some(SemiHonestSilentOtSender::new(conn.sub_connection())), None)
    };
    if !client {
        println!("cryprot-ot's silent OT, one library run per batch:\n");
        println!("| batch | batches | seconds | M OTs/s |");
        println!("|---|---|---|---|");
    }
    for log in [12u32, 14, 16, 17, 18, 19, 20, 21, 22, 14, 22] {
        let batch = 1usize << log;
        let t0 = Instant::now();
        for _ in 0..TOTAL / batch {
            match (rcv.as_mut(), snd.as_mut()) {
                (Some(r), _) => drop(r.rand_choice_receive(batch).await.unwrap()),
                (_, Some(t)) => drop(t.random_send(batch).await.unwrap()),
                _ => unreachable!(),
            }
        }
        row(client, log, batch, t0.elapsed().as_secs_f64());
    }
    // Veil's batches (`ot::OtSender::rand_choice`: library runs of at most `SILENT_RUN` OTs).
    let oc = s.channel().await.unwrap();
    let conn = s.ot_connection();
    let (mut snd, mut rcv) =
        if client { (None, Some(OtReceiver::new(conn, oc))) } else { (Some(OtSender::new(conn, oc)), None) };
    if !client {
        println!("\nVeil's random-choice OT batches (runs of at most 2^19):\n");
        println!("| batch | batches | seconds | M OTs/s |");
        println!("|---|---|---|---|");
    }
    for log in [16u32, 19, 20, 22] {
        let batch = 1usize << log;
        let t0 = Instant::now();
        for _ in 0..TOTAL / batch {
            match (rcv.as_mut(), snd.as_mut()) {
                (Some(r), _) => drop(r.rand_choice("silent", batch).await.unwrap()),
                (_, Some(t)) => drop(t.rand_choice("silent", batch).await.unwrap()),
                _ => unreachable!(),
            }
        }
        row(client, log, batch, t0.elapsed().as_secs_f64());
    }
}

fn row(client: bool, log: u32, batch: usize, secs: f64) {
    if !client {
        println!("| 2^{log} | {} | {secs:.3} | {:.2} |", TOTAL / batch, TOTAL as f64 / secs / 1e6);
    }
}

fn main() {
    two_process::run(party, || ());
}
