//! Attributes `cryprot-net` stream traffic (the OT library's messages) to a session's [`Meter`].
//!
//! `cryprot-net` reports every read and write on its streams as a `tracing` event with target
//! `cryprot_metrics`. [`install`] registers a process-wide subscriber whose only layer looks for
//! the nearest enclosing `veil_metered` span (opened by [`metered`] around an OT call) and adds
//! the bytes to that span's meter, so concurrent sessions stay apart.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::{Instrument, Metadata, Subscriber, subscriber::Interest};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use super::{Dir, Meter};

const SPAN: &str = "veil_metered";

fn meters() -> &'static Mutex<HashMap<u64, Meter>> {
    static M: OnceLock<Mutex<HashMap<u64, Meter>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

/// Installs the metering subscriber once per process (a no-op if one is installed already;
/// then OT bytes are not counted, which [`metered`] callers can detect from the meter).
pub fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(MeterLayer));
    });
}

/// Runs `fut` with `cryprot-net` traffic counted into `meter`.
pub async fn metered<F: Future>(meter: &Meter, fut: F) -> F::Output {
    install();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    meters().lock().expect("meters lock").insert(id, meter.clone());
    let out = fut.instrument(tracing::info_span!(target: "veil", SPAN, meter_id = id)).await;
    meters().lock().expect("meters lock").remove(&id);
    out
}

struct MeterLayer;

#[derive(Default)]
struct Fields {
    meter_id: Option<u64>,
    written: u64,
    read: u64,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "meter_id" => self.meter_id = Some(value),
            "bytes_written" => self.written += value,
            "bytes_read" => self.read += value,
            _ => {}
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, value.max(0) as u64)
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

fn wanted(m: &Metadata<'_>) -> bool {
    (m.is_span() && m.name() == SPAN) || (m.is_event() && m.target() == "cryprot_metrics")
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for MeterLayer {
    fn register_callsite(&self, m: &'static Metadata<'static>) -> Interest {
        if wanted(m) { Interest::always() } else { Interest::never() }
    }

    fn enabled(&self, m: &Metadata<'_>, _: Context<'_, S>) -> bool {
        wanted(m)
    }

    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        let Some(mid) = f.meter_id else { return };
        let Some(meter) = meters().lock().expect("meters lock").get(&mid).cloned() else { return };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(meter);
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let Some(scope) = ctx.event_scope(event) else { return };
        for span in scope {
            if let Some(meter) = span.extensions().get::<Meter>() {
                meter.record(Dir::Out, f.written);
                meter.record(Dir::In, f.read);
                return;
            }
        }
    }
}
