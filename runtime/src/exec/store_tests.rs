//! The client's preprocessing store under the executors, in memory (the ideal OT, as in
//! `memory_tests`): a plan run with its garbled-circuit material in files gives the same outputs
//! and traffic as in memory, leaves no file, and a file changed or cut between the phases stops
//! the online phase with the store's refusal (and still leaves no file).

use std::path::Path;
use std::time::Duration;

use rand::SeedableRng;
use veil_ir::plan::{attach_weights, decode_plan, encode};
use veil_ir::{Graph, Tensor};
use veil_passes::Activation;

use super::memory_tests::compiled;
use super::{ExecError, Stats, client, server};
use crate::net::memory::session_pair;
use crate::store::{Store, StoreError};

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// Runs `g` on `x` in memory, the client's offline material in a store in `dir` when given;
/// `between` sees the directory after the offline phase. The client's result or error and the
/// number of files the store held between the phases.
fn run(
    g: &Graph,
    x: &Tensor,
    dir: Option<&Path>,
    between: impl FnOnce(&Path),
) -> (Result<(Vec<Tensor>, Stats), ExecError>, usize) {
    let (plan, weights, hash) = encode(g).unwrap();
    let (public, h) = decode_plan(&plan).unwrap();
    let mut private = public.clone();
    attach_weights(&mut private, &h, &weights).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (mut cs, mut ss) = session_pair(Duration::from_secs(10), 21);
        let mut srng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let mut crng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        // The store's own randomness: the client's stream stays that of the run without it.
        let store = dir.map(|d| Store::create(d, &h, &mut rand_chacha::ChaCha20Rng::seed_from_u64(3)).unwrap());
        let client = async {
            let quiet = &super::Quiet;
            let pre = client::offline_with_store(&mut cs, &public.graph, &h, &mut crng, quiet, store).await?;
            let held = dir.map_or(0, |d| files(d).len());
            if let Some(d) = dir {
                between(d);
            }
            let r = pre.online(std::slice::from_ref(x), quiet).await;
            drop(cs);
            r.map(|r| ((r.outputs, r.stats), held))
        };
        let (c, _server) = tokio::join!(client, server::run(&mut ss, &private.graph, &hash, &mut srng));
        match c {
            Ok((r, held)) => (Ok(r), held),
            Err(e) => (Err(e), usize::MAX),
        }
    })
}

fn bytes(s: &Stats) -> Vec<[u64; 4]> {
    s.layers
        .iter()
        .map(|l| {
            let (a, b) = (&l.offline, &l.online);
            [a.bytes_client_to_server, a.bytes_server_to_client, b.bytes_client_to_server, b.bytes_server_to_client]
        })
        .collect()
}

#[test]
fn a_stored_plan_runs_bit_exact_and_leaves_no_file() {
    let three_halves = |activation| {
        let (mut g, x) = compiled("digits_relu", activation);
        g.garbling = veil_ir::Garbling::ThreeHalves;
        (g, x, format!("{activation:?} three halves"))
    };
    let half_gates = |activation| {
        let (g, x) = compiled("digits_relu", activation);
        (g, x, format!("{activation:?}"))
    };
    for (g, x, activation) in [
        half_gates(Activation::Relu),
        half_gates(Activation::Circa),
        three_halves(Activation::Relu),
        three_halves(Activation::Circa),
    ] {
        let (memory, _) = run(&g, &x, None, |_| {});
        let (memory, mem_stats) = memory.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut modes = Vec::new();
        let (stored, held) = run(&g, &x, Some(dir.path()), |d| {
            #[cfg(unix)]
            for f in files(d) {
                use std::os::unix::fs::PermissionsExt;
                modes.push(std::fs::metadata(f).unwrap().permissions().mode() & 0o777);
            }
        });
        let (stored, stats) = stored.unwrap();
        // Same seeds, same protocol: the outputs agree bit for bit (Circa's faults included).
        assert_eq!(stored, memory, "{activation}");
        assert_eq!(bytes(&stats), bytes(&mem_stats), "{activation}: traffic changed");
        let gc_layers = stats.layers.iter().filter(|l| l.protocol.contains("GC") || l.protocol.contains("Circa"));
        assert!(held >= 1 && held >= gc_layers.count(), "{activation}: {held} files between the phases");
        assert!(modes.iter().all(|&m| m == 0o600), "{activation}: modes {modes:?} (decimal)");
        assert!(files(dir.path()).is_empty(), "{activation}: {:?} left", files(dir.path()));
    }
}

/// Between the phases, one byte of the largest file flipped, or its last byte cut: the online
/// phase stops with the store's refusal, and no file is left.
#[test]
fn a_changed_or_torn_store_stops_the_online_phase() {
    let (g, x) = compiled("digits_relu", Activation::Relu);
    let largest = |d: &Path| files(d).into_iter().max_by_key(|f| std::fs::metadata(f).unwrap().len()).unwrap();
    type Change = fn(&mut Vec<u8>);
    let cases: [(Change, &str); 2] = [
        (
            |b| {
                let mid = b.len() / 2;
                b[mid] ^= 0x10
            },
            "was changed",
        ),
        (|b| b.truncate(b.len() - 1), "torn"),
    ];
    for (change, words) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (r, _) = run(&g, &x, Some(dir.path()), |d| {
            let f = largest(d);
            let mut b = std::fs::read(&f).unwrap();
            change(&mut b);
            std::fs::write(&f, b).unwrap();
        });
        match r {
            Err(ExecError::Store(StoreError::Refused { reason, .. })) => assert!(reason.contains(words), "{reason}"),
            other => panic!("expected a refusal with {words:?}, got {:?}", other.map(|_| ())),
        }
        assert!(files(dir.path()).is_empty(), "{:?} left", files(dir.path()));
    }
}
