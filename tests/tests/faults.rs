//! Peer faults (feature `test-hooks`): a client or a server that disconnects, sends
//! garbage, announces a 4 GiB message or stalls at each of its messages in turn. The surviving
//! party must end with one readable error naming the phase, layer and step (or, for garbage a
//! semi-honest protocol cannot detect, finish), never panic, and a server must serve the next
//! client normally.

// Prints each case's error so the messages can be read (shown with --nocapture).
#![allow(clippy::print_stdout)]

use std::time::Duration;

use rand::SeedableRng;
use tokio::sync::mpsc;
use veil_ir::plan::{attach_weights, decode_plan};
use veil_ir::schedule::script::label;
use veil_passes::{Activation, NonlinearChoice, Options};
use veil_runtime::exec::{client, server};
use veil_runtime::net::fault::{Fault, FaultKind, Transcript};
use veil_runtime::net::quic::{Identity, Listener, connect};
use veil_tests::{compile_bundled, root};

type Plan = (veil_ir::Graph, veil_ir::Graph, veil_ir::plan::Hash, veil_ir::Tensor);

/// A bundled model compiled with `opts` (calibrated on its input): plan (public), plan with
/// weights, hash, and the input.
fn compiled(name: &str, mut opts: Options) -> Plan {
    let x = veil_ir::npy::read_npy(&root().join(format!("models/inputs/{name}.npy"))).unwrap();
    opts.calibration = vec![x.clone()];
    let veil_compiler::PlanFiles { plan, weights, hash } = compile_bundled(name, opts).unwrap().files.unwrap();
    let (public, h) = decode_plan(&plan).unwrap();
    assert_eq!(h, hash);
    let mut with_weights = public.clone();
    attach_weights(&mut with_weights, &h, &weights).unwrap();
    (public.graph, with_weights.graph, hash, x)
}

/// The digits CNN with every kind of step: HE convolutions, GC ReLU and MaxPool, a Circa
/// layer, a polynomial, and dense layers.
fn plan() -> Plan {
    let mut opts = Options { nonlinear: NonlinearChoice::Gc, ..Options::default() };
    opts.layer_activation.insert("/Relu_1".into(), Activation::Circa);
    opts.layer_activation.insert("/Relu_2".into(), Activation::Poly);
    compiled("digits_relu", opts)
}

/// The MobileNetV3-style block with its ReLUs over OT (silent OT offline, comparisons and
/// products online) and products of two secret values (HardSwish, the squeeze-excite gate).
fn plan_ot_and_products() -> Plan {
    compiled("mobile_block", Options { nonlinear: NonlinearChoice::Ot, ..Options::default() })
}

/// The steps whose messages [`plan_ot_and_products`]'s tests fault.
const OT_AND_PRODUCT_STEPS: [&str; 4] = [label::RELU_OT_OTS, label::RELU_OT, label::MUL_MASKED, label::MUL_RESHARE];

const TIMEOUT: Duration = Duration::from_secs(3);

/// What the surviving party said.
fn check_survivor(who: &str, fault: Fault, fired: Option<String>, result: Result<(), String>) {
    let case = format!("{who} survives {fault:?} (fired at {fired:?})");
    let Some(step) = fired else {
        panic!("{case}: the fault never fired");
    };
    match (fault.kind, result) {
        // Garbage the protocol cannot detect (random-looking shares) may go through.
        (FaultKind::Garbage, Ok(())) => {}
        (_, Ok(())) => panic!("{case}: the session succeeded"),
        (_, Err(e)) => {
            println!("{case}: {e}");
            assert!(!e.contains("panicked"), "{case}: {e}");
            assert!(e.lines().count() == 1, "{case}: one line: {e}");
            // Named: the step (or the OT running beside it), and after the handshake the phase and layer.
            let named = e.contains(step.as_str()) || e.contains("oblivious transfer") || e.contains("handshake");
            assert!(named, "{case}: the error names no step: {e}");
            if step != "handshake" && !e.starts_with("handshake") && !e.contains("oblivious transfer") {
                assert!(e.contains("offline, layer") || e.contains("online, layer"), "{case}: no layer: {e}");
            }
            match fault.kind {
                FaultKind::HugeLength => assert!(e.contains("4294967295-byte message"), "{case}: {e}"),
                FaultKind::Stall => assert!(e.contains("sent nothing for 3 s"), "{case}: {e}"),
                _ => {}
            }
        }
    }
}

/// Faults to inject for a party whose messages belong to `steps` (one entry per message, in
/// order), at the messages of the steps `only` names (every message when `only` is empty):
/// every kind at every message would be hundreds of sessions, so disconnects and oversized
/// lengths at every one, garbage and stalls at every third.
fn faults(steps: &[String], only: &[&str]) -> Vec<Fault> {
    let mut v = Vec::new();
    let chosen = (0..steps.len()).filter(|&at| only.is_empty() || only.contains(&steps[at].as_str()));
    for (k, at) in chosen.enumerate() {
        v.push(Fault { at, kind: FaultKind::Disconnect });
        v.push(Fault { at, kind: FaultKind::HugeLength });
        if k % 3 == 0 {
            v.push(Fault { at, kind: FaultKind::Garbage });
            v.push(Fault { at, kind: FaultKind::Stall });
        }
    }
    v
}

/// The step of each message a party sent, from its transcript.
fn sent_steps(t: &Transcript) -> Vec<String> {
    t.frames().into_iter().filter(|f| f.sent).map(|f| f.step).collect()
}

#[test]
fn a_faulty_client_at_any_message_leaves_the_server_serving() {
    faulty_client(plan(), &[]);
}

#[test]
fn a_faulty_client_in_ot_relus_and_secret_products_leaves_the_server_serving() {
    faulty_client(plan_ot_and_products(), &OT_AND_PRODUCT_STEPS);
}

#[test]
fn a_faulty_server_at_any_message_gives_the_client_a_clear_error() {
    faulty_server(plan(), &[]);
}

#[test]
fn a_faulty_server_in_ot_relus_and_secret_products_gives_the_client_a_clear_error() {
    faulty_server(plan_ot_and_products(), &OT_AND_PRODUCT_STEPS);
}

/// A server serving session after session while each client faults once (at the messages of
/// the steps `only` names, or all), then a healthy client gets the healthy prediction.
fn faulty_client((public, private, hash, x): Plan, only: &[&str]) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let id = Identity::generate().unwrap();
        let mut listener = Listener::bind("127.0.0.1:0".parse().unwrap(), &id, TIMEOUT).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut results) = mpsc::unbounded_channel();
        // One server serving session after session, as `veil server` does.
        tokio::spawn(async move {
            while let Some(conn) = listener.accept().await {
                let r = match conn {
                    Ok(mut s) => {
                        let mut rng = rand_chacha::ChaCha20Rng::from_os_rng();
                        server::run(&mut s, &private, &hash, &mut rng).await.map(|_| ()).map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                };
                if tx.send(r).is_err() {
                    break;
                }
            }
        });
        // A healthy session first, counting the client's messages.
        let mut c = connect(addr, &id.cert_pem, TIMEOUT).await.unwrap();
        let counter = c.inject_fault(Fault { at: usize::MAX, kind: FaultKind::Disconnect });
        let transcript = c.capture();
        let mut rng = rand_chacha::ChaCha20Rng::from_os_rng();
        let want = client::run(&mut c, &public, &hash, std::slice::from_ref(&x), &mut rng).await.unwrap();
        results.recv().await.unwrap().unwrap();
        let steps = sent_steps(&transcript);
        assert_eq!(steps.len(), counter.messages(), "the transcript sees every message");
        let faults = faults(&steps, only);
        assert!(faults.len() >= 10, "{} faults for the client's {} messages", faults.len(), steps.len());
        for fault in faults {
            let mut c = connect(addr, &id.cert_pem, TIMEOUT).await.unwrap();
            let state = c.inject_fault(fault);
            let p = public.clone();
            let xx = x.clone();
            let task = tokio::spawn(async move {
                let mut rng = rand_chacha::ChaCha20Rng::from_os_rng();
                let r = client::run(&mut c, &p, &hash, std::slice::from_ref(&xx), &mut rng).await;
                drop(c);
                r.map(|_| ()).map_err(|e| e.to_string())
            });
            let server_result = tokio::time::timeout(Duration::from_secs(60), results.recv())
                .await
                .unwrap_or_else(|_| panic!("{fault:?}: the server hangs"))
                .expect("the server task is alive");
            task.abort();
            check_survivor("server", fault, state.fired_at(), server_result);
        }
        // Still serving, and still right.
        let mut c = connect(addr, &id.cert_pem, TIMEOUT).await.unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::from_os_rng();
        let got = client::run(&mut c, &public, &hash, std::slice::from_ref(&x), &mut rng).await.unwrap();
        results.recv().await.unwrap().unwrap();
        let top = |t: &veil_ir::Tensor| (0..t.data.len()).max_by(|&a, &b| t.data[a].total_cmp(&t.data[b]));
        assert_eq!(top(&got.outputs[0]), top(&want.outputs[0]));
    });
}

/// A client meeting a server that faults once per session (at the messages of the steps
/// `only` names, or all).
fn faulty_server((public, private, hash, x): Plan, only: &[&str]) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let id = Identity::generate().unwrap();
        let mut listener = Listener::bind("127.0.0.1:0".parse().unwrap(), &id, TIMEOUT).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut faults_rx) = mpsc::unbounded_channel::<Fault>();
        let (state_tx, mut states) = mpsc::unbounded_channel();
        // The server takes each session's fault from the test.
        tokio::spawn(async move {
            while let Some(fault) = faults_rx.recv().await {
                let Some(Ok(mut s)) = listener.accept().await else { break };
                let state = s.inject_fault(fault);
                let transcript = s.capture();
                let _ = state_tx.send((state.clone(), transcript));
                let g = private.clone();
                tokio::spawn(async move {
                    let mut rng = rand_chacha::ChaCha20Rng::from_os_rng();
                    let _ = server::run(&mut s, &g, &hash, &mut rng).await;
                    drop(s);
                });
            }
        });
        let cert = id.cert_pem.clone();
        let run_client = || async {
            let mut c = connect(addr, &cert, TIMEOUT).await.map_err(|e| e.to_string())?;
            let mut rng = rand_chacha::ChaCha20Rng::from_os_rng();
            let r = client::run(&mut c, &public, &hash, std::slice::from_ref(&x), &mut rng).await;
            r.map(|_| ()).map_err(|e| e.to_string())
        };
        tx.send(Fault { at: usize::MAX, kind: FaultKind::Disconnect }).unwrap();
        run_client().await.unwrap();
        let (counter, transcript) = states.recv().await.unwrap();
        let steps = sent_steps(&transcript);
        assert_eq!(steps.len(), counter.messages(), "the transcript sees every message");
        let faults = faults(&steps, only);
        assert!(faults.len() >= 10, "{} faults for the server's {} messages", faults.len(), steps.len());
        for fault in faults {
            tx.send(fault).unwrap();
            let r = tokio::time::timeout(Duration::from_secs(60), run_client())
                .await
                .unwrap_or_else(|_| panic!("{fault:?}: the client hangs"));
            let (state, _) = states.recv().await.unwrap();
            check_survivor("client", fault, state.fired_at(), r);
        }
    });
}
