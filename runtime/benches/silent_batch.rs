//! `cargo bench -p veil-runtime --bench silent_batch`: random-choice silent OT's rate against its
//! batch size, between two processes on loopback (the bench re-executes itself as the client).
//! Each row makes the same total number of OTs, as one batch or as several smaller ones.

// A bench binary: its table on stdout is its output.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use veil_runtime::net::quic::{Identity, Listener, Session, connect};
use veil_runtime::ot::{OtReceiver, OtSender};

const TOTAL: usize = 1 << 22;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn party(mut s: Session, client: bool) {
    let oc = s.channel().await.unwrap();
    let conn = s.ot_connection();
    let (mut snd, mut rcv) =
        if client { (None, Some(OtReceiver::new(conn, oc))) } else { (Some(OtSender::new(conn, oc)), None) };
    if !client {
        println!("| batch | batches | seconds | M OTs/s |");
        println!("|---|---|---|---|");
    }
    for log in [12u32, 14, 16, 17, 18, 19, 20, 21, 22, 14, 22] {
        let batch = 1usize << log;
        let t0 = Instant::now();
        for _ in 0..TOTAL / batch {
            match (rcv.as_mut(), snd.as_mut()) {
                (Some(r), _) => drop(r.rand_choice("silent", batch).await.unwrap()),
                (_, Some(t)) => drop(t.rand_choice("silent", batch).await.unwrap()),
                _ => unreachable!(),
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        if !client {
            println!("| 2^{log} | {} | {secs:.3} | {:.2} |", TOTAL / batch, TOTAL as f64 / secs / 1e6);
        }
    }
}

fn main() {
    if let (Ok(addr), Ok(cert)) = (std::env::var("VEIL_BENCH_PEER"), std::env::var("VEIL_BENCH_CERT")) {
        rt().block_on(async {
            let s = connect(addr.parse().unwrap(), &cert, Duration::from_secs(60)).await.unwrap();
            party(s, true).await;
        });
        return;
    }
    let id = Identity::generate().unwrap();
    rt().block_on(async {
        let mut l = Listener::bind("127.0.0.1:0".parse().unwrap(), &id, Duration::from_secs(60)).unwrap();
        let addr = l.local_addr().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .env("VEIL_BENCH_PEER", addr.to_string())
            .env("VEIL_BENCH_CERT", &id.cert_pem)
            .spawn()
            .unwrap();
        let s = l.accept().await.unwrap().unwrap();
        party(s, false).await;
        child.wait().unwrap();
    });
}
