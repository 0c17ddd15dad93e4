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
    let run = || in_compute_pool(f);
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(run),
        _ => run(),
    }
}

/// Runs `f` and its `par_iter`s on [`compute`]'s pool, so no parallel loop of ours builds or
/// fills rayon's global pool, which belongs to the OT library's blocking jobs ([`init_threads`]).
/// On a worker of any rayon pool (this one, or a caller's own, such as the garbling bench's
/// one-thread pool) `f` runs at once, on that pool: our code never runs on the global pool's
/// workers, and a caller that chose a pool keeps it.
pub(crate) fn in_compute_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    match COMPUTE_POOL.as_ref() {
        Some(pool) => pool.install(f),
        None => f(),
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
    spawn_on(COMPUTE_POOL.as_ref(), f)
}

/// Work done ahead of the step that needs it (the server's next HE layer): one thread per core,
/// at a lower priority (nice 10 on Unix) than the session's own threads, so it fills the cores
/// the current step leaves idle and never queues ahead of [`compute`]'s jobs.
static AHEAD_POOL: std::sync::LazyLock<Option<rayon::ThreadPool>> = std::sync::LazyLock::new(|| {
    rayon::ThreadPoolBuilder::new()
        .num_threads(cores())
        .thread_name(|i| format!("veil-ahead-{i}"))
        .start_handler(|_| {
            // Linux: nice applies to the calling thread. Best effort: a refusal leaves it at the
            // session's priority.
            #[cfg(target_os = "linux")]
            // SAFETY: setpriority reads no memory; `who = 0` is the calling thread on Linux.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, 0, 10);
            }
        })
        .build()
        .ok()
});

/// [`compute_spawn`] on the ahead-of-need pool ([`AHEAD_POOL`]); its parallel loops stay there.
pub(crate) fn ahead_spawn<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> impl std::future::Future<Output = T> + Send {
    spawn_on(AHEAD_POOL.as_ref(), f)
}

fn spawn_on<T: Send + 'static>(
    pool: Option<&'static rayon::ThreadPool>,
    f: impl FnOnce() -> T + Send + 'static,
) -> impl std::future::Future<Output = T> + Send {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    };
    match pool {
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

/// Threads of rayon's global pool beyond the cores, at least. `cryprot-ot` runs each OT
/// extension as a rayon job that *blocks* on the network while its peer computes: with one rayon
/// thread per core, a few concurrent sessions in one process (a server's clients, or both
/// parties in a test) can occupy every thread with jobs waiting for peers whose jobs are queued
/// behind them, and all stall; a peer that stalls mid-batch holds its thread until the batch's
/// timeout. Spare threads cost nothing while idle.
pub const SPARE_RAYON_THREADS: usize = 32;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The global pool's size for `sessions` concurrent sessions: the cores, plus two blocked jobs
/// per session (one per OT direction), plus at least [`SPARE_RAYON_THREADS`].
fn threads_for(sessions: usize) -> usize {
    cores() + SPARE_RAYON_THREADS.max(2 * sessions)
}

/// Sizes rayon's global pool for up to `sessions` sessions at once (see [`threads_for`])
/// unless something already built it. Binaries call it first thing; every session calls it
/// (with 0) and then refuses to start if the pool is too small ([`check_threads`]).
pub fn init_threads(sessions: usize) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads_for(sessions))
            .thread_name(|i| format!("veil-rayon-{i}"))
            .build_global();
    });
}

/// Whether rayon's global pool has room for the OT library's blocking jobs: a pool that
/// something else built first at one thread per core would deadlock sessions under load, so
/// that is an error naming the fix rather than a hang.
pub(crate) fn check_threads() -> Result<(), String> {
    if rayon::current_thread_index().is_some() {
        // On a rayon thread `current_num_threads` is that pool's size, not the global one's.
        return Ok(());
    }
    let (have, need) = (rayon::current_num_threads(), threads_for(0));
    if have >= need {
        return Ok(());
    }
    Err(format!(
        "rayon's global thread pool has {have} threads, fewer than the {need} the OT library needs (its jobs \
         block on the network); call veil_runtime::init_threads before anything else in this process uses rayon"
    ))
}
