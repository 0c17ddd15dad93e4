//! # Veil runtime
//!
//! The two-party runtime. Each protocol is one module of [`proto`] with both parties in it (a
//! synchronous core without I/O and thin async drivers); the executors ([`exec`]) are loops over
//! a plan's steps through [`exec::step::Protocol`], over any [`net::session::PartySession`]; the
//! `veil` binary ties them to QUIC.

pub mod exec;
pub mod garble;
pub mod he;
pub mod net;
pub mod ot;
pub mod progress;
pub mod proto;
pub mod store;
pub mod wire;

/// Runs CPU-heavy work (garbling, HE) from async code without starving the tokio worker it runs
/// on: on a multi-threaded runtime the worker's other tasks (QUIC I/O, stream managers) move to
/// another thread meanwhile.
///
/// The work runs in a pool of one thread per core (its `par_iter`s included), apart from
/// rayon's global pool, which `cryprot-ot` fills with jobs that block on the network.
pub(crate) fn compute<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let run = || match COMPUTE_POOL.as_ref() {
        Some(pool) => pool.install(f),
        None => f(),
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(run),
        _ => run(),
    }
}

/// [`compute`]'s pool: one thread per core.
static COMPUTE_POOL: std::sync::LazyLock<Option<rayon::ThreadPool>> = std::sync::LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    rayon::ThreadPoolBuilder::new().num_threads(cores).thread_name(|i| format!("veil-compute-{i}")).build().ok()
});

/// Starts `f` on [`compute`]'s pool and returns at once; the future resolves to its result, so
/// the caller's async work (sending the previous chunk) overlaps it. A panic in `f` resumes in
/// the awaiting task. Dropping the future does not stop `f`; its result is then discarded.
pub(crate) fn compute_spawn<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> impl std::future::Future<Output = T> + Send {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    };
    match COMPUTE_POOL.as_ref() {
        Some(pool) => pool.spawn(job),
        None => {
            std::thread::spawn(job);
        }
    }
    async move {
        match rx.await {
            Ok(Ok(v)) => v,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => panic!("a compute job ended without a result"),
        }
    }
}

/// Threads of rayon's global pool beyond the cores. `cryprot-ot` runs each OT extension as a
/// rayon job that *blocks* on the network while its peer computes: with one rayon thread per
/// core, a few concurrent sessions in one process (a server's clients, or both parties in a
/// test) can occupy every thread with jobs waiting for peers whose jobs are queued behind them,
/// and all stall. Spare threads cost nothing while idle.
pub const SPARE_RAYON_THREADS: usize = 32;

/// Sizes rayon's global pool (cores + [`SPARE_RAYON_THREADS`]) unless something already built
/// it; every session calls this before its first OT, binaries should call it first thing.
pub fn init_threads() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(cores + SPARE_RAYON_THREADS)
            .thread_name(|i| format!("veil-rayon-{i}"))
            .build_global();
    });
}
