//! Test-only hooks on a session (cargo feature `test-hooks`): transcript capture, and fault
//! injection, where one party of a session
//! misbehaves at its n-th framed message, so tests can check what the *other* party does: one
//! readable error naming the protocol step, no panic, and (a server) serving the next client.
//!
//! Faults touch only the injecting party's own messages. The OT library's streams are not
//! framed by us; a disconnect during OT is covered by the process-level tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What the faulty party does instead of sending its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Closes its side and gives up.
    Disconnect,
    /// Sends a frame of the right length holding random bytes, then carries on.
    Garbage,
    /// Announces a frame of 4 GiB − 1 bytes and gives up.
    HugeLength,
    /// Sends nothing more and never returns.
    Stall,
}

/// A fault at the `at`-th message (0-based, counted over all of the session's channels).
#[derive(Clone, Copy, Debug)]
pub struct Fault {
    pub at: usize,
    pub kind: FaultKind,
}

/// A session's fault and what became of it.
#[derive(Debug)]
pub struct FaultState {
    fault: Fault,
    sent: AtomicUsize,
    fired: Mutex<Option<String>>,
}

impl FaultState {
    pub(crate) fn new(fault: Fault) -> Arc<FaultState> {
        eprintln!("warning: fault injection is enabled for this session (a test-only feature)");
        Arc::new(FaultState { fault, sent: AtomicUsize::new(0), fired: Mutex::new(None) })
    }

    /// Counts one message; the fault to inject instead of it, if this is the one.
    pub(crate) fn check(&self, step: &str) -> Option<FaultKind> {
        if self.sent.fetch_add(1, Ordering::SeqCst) != self.fault.at {
            return None;
        }
        *self.fired.lock().expect("fault lock") = Some(step.to_string());
        Some(self.fault.kind)
    }

    /// The step of the message the fault replaced (`None`: the session sent fewer messages).
    pub fn fired_at(&self) -> Option<String> {
        self.fired.lock().expect("fault lock").clone()
    }

    /// Messages the session has sent (or tried to) so far.
    pub fn messages(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }
}

/// Every frame a session's channels sent and received, with its step, in order (the OT
/// library's own streams are not captured).
#[derive(Debug, Default)]
pub struct Transcript {
    frames: Mutex<Vec<Frame>>,
}

/// One captured frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub sent: bool,
    pub step: String,
    pub payload: Vec<u8>,
}

impl Transcript {
    pub(crate) fn record(&self, sent: bool, step: &str, payload: &[u8]) {
        let frame = Frame { sent, step: step.to_string(), payload: payload.to_vec() };
        self.frames.lock().expect("transcript lock").push(frame);
    }

    /// The frames so far.
    pub fn frames(&self) -> Vec<Frame> {
        self.frames.lock().expect("transcript lock").clone()
    }
}
