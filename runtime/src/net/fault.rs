//! Test-only hooks on a session (cargo feature `test-hooks`, and this crate's unit tests):
//! transcript capture, and fault injection, where one party of a session misbehaves at its n-th
//! framed message, so tests can check what the *other* party does: one readable error naming
//! the protocol step, no panic, and (a server) serving the next client.
//!
//! Both are a layer around a [`Channel`]'s byte streams ([`layer`]), which the channel tells
//! each frame's step ([`FrameRead`], [`FrameWrite`]); the channel itself knows nothing of them,
//! and any transport can carry them (a QUIC session applies its hooks to every channel it opens,
//! an in-memory pair can be wrapped the same way).
//!
//! Faults touch only the injecting party's own messages. The OT library's streams are not
//! framed by us; a disconnect during OT is covered by the process-level tests.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::{Channel, FrameRead, FrameWrite, Reader, Replacement, Writer};

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
    /// Index of the message replaced, from 0, over the party's framed sends on all channels.
    pub at: usize,
    /// What the party does instead of sending it.
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
    // Intended: fault injection in use must show on stderr whoever the caller is (not a log level).
    #[allow(clippy::print_stderr)]
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
    /// `true` when this party sent it, `false` when it received it.
    pub sent: bool,
    /// The message's label (`veil_ir::schedule::script::label`), without the session position.
    pub step: String,
    /// The payload as on the wire, without its 4-byte length prefix.
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

/// Puts a session's hooks around `ch`'s streams: from now on its sends count towards `fault`
/// (and the chosen one is replaced by the fault), and its frames are captured in `transcript`.
pub fn layer(ch: Channel, fault: Option<Arc<FaultState>>, transcript: Option<Arc<Transcript>>) -> Channel {
    if fault.is_none() && transcript.is_none() {
        return ch;
    }
    let Channel {
        reader,
        writer,
        meter,
        timeout,
        #[cfg(debug_assertions)]
        script,
    } = ch;
    let reader = Box::new(HookedReader { inner: reader, transcript: transcript.clone() });
    let writer = Box::new(HookedWriter { inner: writer, fault, transcript });
    #[allow(unused_mut)]
    let mut ch = Channel::over(reader, writer, meter, timeout);
    #[cfg(debug_assertions)]
    if let Some(check) = script {
        ch.check_script(check);
    }
    ch
}

struct HookedReader {
    inner: Reader,
    transcript: Option<Arc<Transcript>>,
}

struct HookedWriter {
    inner: Writer,
    fault: Option<Arc<FaultState>>,
    transcript: Option<Arc<Transcript>>,
}

impl AsyncRead for HookedReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl FrameRead for HookedReader {
    fn received(&self, step: &str, payload: &[u8]) {
        if let Some(t) = &self.transcript {
            t.record(false, step, payload);
        }
    }
}

impl AsyncWrite for HookedWriter {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl FrameWrite for HookedWriter {
    fn replace<'a>(&'a mut self, step: &'a str, payload: &'a [u8]) -> Option<Replacement<'a>> {
        let kind = self.fault.as_ref()?.check(step)?;
        Some(Box::pin(misbehave(&mut self.inner, kind, payload.len())))
    }

    fn sent(&self, step: &str, payload: &[u8]) {
        if let Some(t) = &self.transcript {
            t.record(true, step, payload);
        }
    }
}

/// What the faulty party does on `writer` instead of sending a `len`-byte frame.
async fn misbehave(writer: &mut Writer, kind: FaultKind, len: usize) -> std::io::Result<()> {
    let injected = || std::io::Error::other("injected fault");
    match kind {
        FaultKind::Disconnect => {
            let _ = writer.shutdown().await;
            Err(injected())
        }
        FaultKind::Garbage => {
            // Not a secret: any bytes will do; a xorshift keeps the feature dependency-free.
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ len as u64;
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            writer.write_all(&(junk.len() as u32).to_le_bytes()).await?;
            writer.write_all(&junk).await?;
            writer.flush().await
        }
        FaultKind::HugeLength => {
            writer.write_all(&u32::MAX.to_le_bytes()).await?;
            writer.flush().await?;
            Err(injected())
        }
        FaultKind::Stall => loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Meter, NetError, memory};

    /// A (faulty, honest) pair in memory: the fault layer works on any transport.
    fn faulty_pair(fault: Fault, timeout: Duration) -> (Channel, Channel, Arc<FaultState>, Arc<Transcript>) {
        let (bad, good) = memory::pair_metered(Meter::default(), Meter::default(), timeout);
        let (state, transcript) = (FaultState::new(fault), Arc::new(Transcript::default()));
        (layer(bad, Some(state.clone()), Some(transcript.clone())), good, state, transcript)
    }

    /// Each kind of fault reaches the honest peer as its doc says, at the chosen message, and
    /// the transcript holds the frames that were really sent and received.
    #[tokio::test]
    async fn each_fault_reaches_the_peer_as_documented() {
        let timeout = Duration::from_millis(150);
        for kind in [FaultKind::Disconnect, FaultKind::Garbage, FaultKind::HugeLength, FaultKind::Stall] {
            let (mut bad, mut good, state, transcript) = faulty_pair(Fault { at: 1, kind }, timeout);
            bad.send("first", b"ok").await.unwrap();
            assert_eq!(good.recv("first", 8).await.unwrap(), b"ok");
            good.send("answer", b"yes").await.unwrap();
            assert_eq!(bad.recv("answer", 8).await.unwrap(), b"yes");
            let payload = [7u8; 32];
            let sent = tokio::time::timeout(timeout, bad.send("second", &payload)).await;
            let got = good.recv("second", 64).await;
            let case = format!("{kind:?}: sent {sent:?}, received {got:?}");
            match kind {
                FaultKind::Disconnect => {
                    assert!(sent.unwrap().unwrap_err().to_string().contains("injected fault"), "{case}");
                    assert!(matches!(got, Err(NetError::Closed { .. })), "{case}");
                }
                FaultKind::Garbage => {
                    assert!(matches!(sent, Ok(Ok(()))), "{case}");
                    let junk = got.unwrap();
                    assert!(junk.len() == 32 && junk != payload, "{junk:?}");
                }
                FaultKind::HugeLength => {
                    assert!(sent.unwrap().is_err(), "{case}");
                    assert!(matches!(got, Err(NetError::TooLarge { len: 4_294_967_295, .. })), "{case}");
                }
                FaultKind::Stall => {
                    assert!(sent.is_err(), "{case}: the send never returns");
                    assert!(matches!(got, Err(NetError::Timeout { .. })), "{case}");
                }
            }
            assert_eq!(state.fired_at().as_deref(), Some("second"), "{kind:?}");
            assert_eq!(state.messages(), 2, "{kind:?}");
            let frames: Vec<(bool, String, Vec<u8>)> =
                transcript.frames().into_iter().map(|f| (f.sent, f.step, f.payload)).collect();
            let want =
                vec![(true, "first".to_string(), b"ok".to_vec()), (false, "answer".to_string(), b"yes".to_vec())];
            assert_eq!(frames, want, "{kind:?}: the replaced frame is not captured");
        }
    }
}
