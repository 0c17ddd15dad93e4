//! Plan and weights files: round trip, no weights in the plan, and every corruption refused.

use veil_ir::plan::{PlanError, attach_weights, decode_plan, encode};
use veil_passes::Options;
use veil_tests::{bundled_models, compile_bundled, root};

/// The bundled model compiled for its sample input's range.
fn compiled(name: &str) -> veil_ir::Graph {
    let x = veil_ir::npy::read_npy(&root().join("models/inputs").join(format!("{name}.npy"))).unwrap();
    let bound = x.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    compile_bundled(name, Options { input_bound: bound, ..Options::default() }).unwrap().graph
}

#[test]
fn plans_round_trip_and_simulate_identically() {
    for name in bundled_models() {
        let g = compiled(&name);
        let (plan, weights, hash) = encode(&g).unwrap();
        let (mut decoded, h) = decode_plan(&plan).unwrap();
        assert_eq!(h, hash);
        attach_weights(&mut decoded, &h, &weights).unwrap();
        assert_eq!(veil_ir::print::to_text(&decoded.graph), veil_ir::print::to_text(&g), "{name}");
        assert_eq!(veil_ir::print::to_json(&decoded.graph), veil_ir::print::to_json(&g), "{name}");
        let x = veil_ir::npy::read_npy(&root().join("models/inputs").join(format!("{name}.npy"))).unwrap();
        let a = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 3).unwrap().outputs;
        let b = veil_ir::eval::run_fixed(&decoded.graph, &[x], 3).unwrap().outputs;
        assert_eq!(a, b, "{name}: the decoded plan computes something else");
        // Re-encoding is deterministic.
        assert_eq!(encode(&decoded.graph).unwrap().0, plan, "{name}");
    }
}

#[test]
fn no_weight_value_appears_in_a_plan() {
    for name in ["digits_relu", "lenet", "resnet_small"] {
        let g = compiled(name);
        let (plan, weights, _) = encode(&g).unwrap();
        let mut checked = 0;
        for (_, c) in g.consts.iter().filter(|(_, c)| c.domain == veil_ir::Domain::Server) {
            for &q in &c.qdata {
                // Quantized values as they would be stored (LE i64 and postcard's zig-zag varint)
                // and the float weights as f32: none may occur in the plan. Values with fewer
                // than three significant bytes can occur by chance in any encoding; skip those.
                if q.unsigned_abs() < 1 << 16 {
                    continue;
                }
                let le = q.to_le_bytes();
                let mut zz = postcard::to_allocvec(&q).unwrap();
                zz.truncate(zz.len().min(4));
                assert!(!plan.windows(8).any(|w| w == le), "{name}: i64 {q} found in the plan");
                assert!(!plan.windows(zz.len()).any(|w| w == zz.as_slice()), "{name}: varint of {q} found in the plan");
            }
            for &f in &c.data {
                checked += 1;
                assert!(!plan.windows(4).any(|w| w == f.to_le_bytes()), "{name}: f32 {f} found in the plan");
            }
        }
        assert!(checked > 500, "{name}: too few weights checked ({checked})");
        assert!(weights.len() > plan.len(), "{name}: the weights live in the weights file");
    }
}

#[test]
fn corrupted_truncated_and_foreign_files_are_refused() {
    let g = compiled("digits_relu");
    let (plan, weights, hash) = encode(&g).unwrap();
    let err = |bytes: &[u8]| decode_plan(bytes).unwrap_err();
    assert!(matches!(err(&plan[..plan.len() - 1]), PlanError::Length { .. }));
    assert!(matches!(err(&plan[..5]), PlanError::Length { .. }));
    assert!(matches!(err(&[]), PlanError::Length { .. }));
    assert!(matches!(err(&weights), PlanError::Magic { what: "plan" }));
    let mut flipped = plan.clone();
    flipped[plan.len() / 2] ^= 0x10;
    assert!(matches!(err(&flipped), PlanError::Hash { .. }));
    let mut version = plan.clone();
    version[8] = 99;
    assert!(matches!(err(&version), PlanError::Version { found: 99, .. }));
    // A huge length prefix is a length error, not an allocation.
    let mut long = plan.clone();
    long[10..18].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(err(&long), PlanError::Length { .. }));

    // Weights of another plan.
    let other = compiled("digits_poly");
    let (_, other_weights, _) = encode(&other).unwrap();
    let (mut p, h) = decode_plan(&plan).unwrap();
    assert!(matches!(attach_weights(&mut p, &h, &other_weights), Err(PlanError::WrongPlan { .. })));
    let mut bad = weights.clone();
    bad[weights.len() - 40] ^= 1;
    assert!(matches!(attach_weights(&mut p, &hash, &bad), Err(PlanError::Hash { what: "weights" })));
    attach_weights(&mut p, &hash, &weights).unwrap();
}

/// A hostile plan (valid frame and hash, huge declared shapes) is refused by the verifier, not
/// by an overflow. Found by reading `decode_plan` for what a peer controls.
#[test]
fn a_plan_declaring_enormous_shapes_is_refused() {
    let mut g = compiled("mlp");
    // Element counts of constants are multiplied out before any typing rule: 2^64 overflows.
    let c = g.consts.iter().next().unwrap().0;
    g.consts[c].shape = vec![1 << 32, 1 << 32];
    let body = postcard::to_allocvec(&veil_ir::plan::Plan { graph: g, public: Vec::new() }).unwrap();
    let mut bytes = veil_ir::plan::PLAN_MAGIC.to_vec();
    bytes.extend_from_slice(&veil_ir::plan::FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&body);
    let h: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&bytes).into();
    bytes.extend_from_slice(&h);
    let e = decode_plan(&bytes).unwrap_err();
    assert!(matches!(e, PlanError::Invalid(_)), "{e}");
    assert!(e.to_string().contains("more than 2^40 elements"), "{e}");
}
