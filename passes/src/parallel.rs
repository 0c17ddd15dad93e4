//! The compiler's parallel loops run on a rayon pool of their own, never on rayon's global
//! pool: the runtime sizes the global pool for the OT library's jobs, which block on the
//! network (`veil_runtime::init_threads`), and a process that compiles and then runs both
//! parties (the tests, benches) must not have built that pool first at one thread per core.

/// Runs `f` (and the `par_iter`s in it) on the compiler's pool: one thread per core.
pub(crate) fn install<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match POOL.as_ref() {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

static POOL: std::sync::LazyLock<Option<rayon::ThreadPool>> = std::sync::LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    rayon::ThreadPoolBuilder::new().num_threads(cores).thread_name(|i| format!("veilc-{i}")).build().ok()
});
