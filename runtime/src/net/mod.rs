//! Transport: one authenticated, encrypted QUIC connection per session ([`quic`]), carrying our
//! framed messages on [`Channel`]s and `cryprot-ot`'s OT streams on sub-connections.
//!
//! Every byte each way and every round goes through one [`Meter`] per session: [`Channel`]
//! counts its frames (4-byte length prefix plus payload), and [`meter::metered`] attributes the
//! OT library's stream traffic to the same meter. Bytes are application bytes on QUIC streams
//! (QUIC/TLS framing and acknowledgements are not counted). A **round** is one flight: a run of
//! messages in one direction; each change of speaking direction starts the next, and so does the
//! first message of each protocol step ([`Meter::begin_step`]), so a layer's rounds are its own.
//!
//! Every receive has a timeout; a closed or silent peer is an error naming the protocol step.
//! [`memory_pair`] gives two connected channels in one process for unit tests.

pub mod admission;
#[cfg(feature = "test-hooks")]
pub mod fault;
pub mod link;
pub mod meter;
pub mod quic;
pub mod script_check;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::wire::{bytes_to_u64s, u64s_to_bytes};

/// Default receive timeout: long enough for the largest offline step of the bundled models.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A transport failure, naming the protocol step it happened in.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{step}: the peer sent nothing for {secs} s")]
    Timeout { step: String, secs: u64 },
    #[error("{step}: the peer closed the connection")]
    Closed { step: String },
    #[error("{step}: {source}")]
    Io { step: String, source: std::io::Error },
    #[error("{step}: the peer announced a {len}-byte message; at most {max} are expected here")]
    TooLarge { step: String, len: u64, max: u64 },
    #[error("{step}: malformed message: {reason}")]
    Malformed { step: String, reason: String },
    #[error("connection: {0}")]
    Connect(String),
    #[error("oblivious transfer ({step}): {reason}")]
    Ot { step: String, reason: String },
    #[error("{0}")]
    Script(#[from] script_check::ScriptMismatch),
}

/// Traffic in one direction pair, as one party sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Traffic {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub rounds: u64,
}

impl std::ops::Sub for Traffic {
    type Output = Traffic;
    fn sub(self, o: Traffic) -> Traffic {
        Traffic {
            bytes_sent: self.bytes_sent - o.bytes_sent,
            bytes_received: self.bytes_received - o.bytes_received,
            rounds: self.rounds - o.rounds,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Out,
    In,
}

#[derive(Debug, Default)]
struct MeterState {
    traffic: Traffic,
    last: Option<Dir>,
    /// Where the session is ("offline, layer \"/Relu\" (GC)"), for error messages.
    at: String,
}

/// Counts one session's traffic (shared by all its channels and OT streams).
#[derive(Debug, Clone, Default)]
pub struct Meter(Arc<Mutex<MeterState>>);

impl Meter {
    fn record(&self, dir: Dir, n: u64) {
        if n == 0 {
            return;
        }
        let mut s = self.0.lock().expect("meter lock");
        if s.last != Some(dir) {
            s.traffic.rounds += 1;
            s.last = Some(dir);
        }
        match dir {
            Dir::Out => s.traffic.bytes_sent += n,
            Dir::In => s.traffic.bytes_received += n,
        }
    }

    /// Starts a new step: its first message opens a new flight whatever the last direction was,
    /// so per-step rounds count the step's own flights.
    pub fn begin_step(&self) {
        self.0.lock().expect("meter lock").last = None;
    }

    /// Starts a new step (as [`Meter::begin_step`]) at position `at` (phase and layer), which
    /// transport errors from now on name beside their message.
    pub fn enter(&self, at: String) {
        let mut s = self.0.lock().expect("meter lock");
        s.last = None;
        s.at = at;
    }

    /// `step`, with the session's position when there is one.
    pub fn locate(&self, step: &str) -> String {
        let s = self.0.lock().expect("meter lock");
        if s.at.is_empty() { step.to_string() } else { format!("{}: {step}", s.at) }
    }

    pub fn snapshot(&self) -> Traffic {
        self.0.lock().expect("meter lock").traffic
    }
}

type Reader = Pin<Box<dyn AsyncRead + Send>>;
type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// A framed, metered, timed message stream to the peer.
pub struct Channel {
    reader: Reader,
    writer: Writer,
    meter: Meter,
    timeout: Duration,
    #[cfg(feature = "test-hooks")]
    fault: Option<Arc<fault::FaultState>>,
    #[cfg(feature = "test-hooks")]
    transcript: Option<Arc<fault::Transcript>>,
    /// Debug builds: the script every frame is checked against ([`script_check`]).
    #[cfg(debug_assertions)]
    script: Option<Arc<script_check::ScriptCheck>>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Channel {{ timeout: {:?} }}", self.timeout)
    }
}

impl Channel {
    pub fn new(reader: Reader, writer: Writer, meter: Meter, timeout: Duration) -> Self {
        Channel {
            reader,
            writer,
            meter,
            timeout,
            #[cfg(feature = "test-hooks")]
            fault: None,
            #[cfg(feature = "test-hooks")]
            transcript: None,
            #[cfg(debug_assertions)]
            script: None,
        }
    }

    /// Debug builds: checks every frame from now on against `check`'s script (a party shares
    /// one check between its channels). Release builds: does nothing.
    pub fn check_script(&mut self, _check: Arc<script_check::ScriptCheck>) {
        #[cfg(debug_assertions)]
        {
            self.script = Some(_check);
        }
    }

    /// Injects the session's fault into this channel's sends (tests only).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn with_hooks(
        mut self,
        fault: Option<Arc<fault::FaultState>>,
        transcript: Option<Arc<fault::Transcript>>,
    ) -> Self {
        self.fault = fault;
        self.transcript = transcript;
        self
    }

    /// Misbehaves instead of sending `payload` at `step`.
    #[cfg(feature = "test-hooks")]
    async fn inject(&mut self, step: &str, kind: fault::FaultKind, payload: &[u8]) -> Result<(), NetError> {
        use fault::FaultKind;
        let io = |source| NetError::Io { step: step.into(), source };
        let injected = || NetError::Io { step: step.into(), source: std::io::Error::other("injected fault") };
        match kind {
            FaultKind::Disconnect => {
                let _ = self.writer.shutdown().await;
                Err(injected())
            }
            FaultKind::Garbage => {
                // Not a secret: any bytes will do; a xorshift keeps the feature dependency-free.
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ payload.len() as u64;
                let junk: Vec<u8> = (0..payload.len())
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                self.writer.write_all(&(junk.len() as u32).to_le_bytes()).await.map_err(io)?;
                self.writer.write_all(&junk).await.map_err(io)?;
                self.writer.flush().await.map_err(io)
            }
            FaultKind::HugeLength => {
                self.writer.write_all(&u32::MAX.to_le_bytes()).await.map_err(io)?;
                self.writer.flush().await.map_err(io)?;
                Err(injected())
            }
            FaultKind::Stall => loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            },
        }
    }

    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Sets the receive timeout; returns the previous one.
    pub fn set_timeout(&mut self, timeout: Duration) -> Duration {
        std::mem::replace(&mut self.timeout, timeout)
    }

    /// Sends one frame: a 4-byte little-endian length, then `payload`.
    pub async fn send(&mut self, step: &str, payload: &[u8]) -> Result<(), NetError> {
        let len = u32::try_from(payload.len()).map_err(|_| NetError::TooLarge {
            step: self.meter.locate(step),
            len: payload.len() as u64,
            max: u32::MAX as u64,
        })?;
        #[cfg(debug_assertions)]
        if let Some(c) = &self.script {
            c.frame(true, step, payload.len())?;
        }
        #[cfg(feature = "test-hooks")]
        if let Some(kind) = self.fault.as_ref().and_then(|f| f.check(step)) {
            return self.inject(step, kind, payload).await;
        }
        let fut = async {
            self.writer.write_all(&len.to_le_bytes()).await?;
            self.writer.write_all(payload).await?;
            self.writer.flush().await
        };
        // Errors name the session's position; the string is built only when one happens.
        match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => return Err(NetError::Timeout { step: self.meter.locate(step), secs: self.timeout.as_secs() }),
            Ok(Err(source)) => return Err(NetError::Io { step: self.meter.locate(step), source }),
            Ok(Ok(())) => {}
        }
        self.meter.record(Dir::Out, 4 + payload.len() as u64);
        #[cfg(feature = "test-hooks")]
        if let Some(t) = &self.transcript {
            t.record(true, step, payload);
        }
        Ok(())
    }

    /// Ends our direction of the channel and waits until the peer has acknowledged everything
    /// sent on it, so the process may exit right after without losing its last message (QUIC
    /// flushes do not wait for acknowledgements; closing the stream does).
    pub async fn finish(&mut self, step: &str) -> Result<(), NetError> {
        match tokio::time::timeout(self.timeout, self.writer.shutdown()).await {
            Err(_) => Err(NetError::Timeout { step: self.meter.locate(step), secs: self.timeout.as_secs() }),
            Ok(r) => r.map_err(|source| NetError::Io { step: self.meter.locate(step), source }),
        }
    }

    /// Receives one frame of at most `max` bytes (larger announcements are refused before any
    /// allocation).
    pub async fn recv(&mut self, step: &str, max: usize) -> Result<Vec<u8>, NetError> {
        let timeout = self.timeout;
        // `Err(len)`: an announcement above `max`, refused before allocating.
        let fut = async {
            let mut len = [0u8; 4];
            self.reader.read_exact(&mut len).await?;
            let len = u32::from_le_bytes(len) as u64;
            if len > max as u64 {
                return Ok::<_, std::io::Error>(Err(len));
            }
            let mut buf = vec![0u8; len as usize];
            self.reader.read_exact(&mut buf).await?;
            Ok(Ok(buf))
        };
        // Errors name the session's position; the string is built only when one happens.
        let at = || self.meter.locate(step);
        let buf = match tokio::time::timeout(timeout, fut).await {
            Err(_) => return Err(NetError::Timeout { step: at(), secs: timeout.as_secs() }),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(NetError::Closed { step: at() }),
            Ok(Err(source)) => return Err(NetError::Io { step: at(), source }),
            Ok(Ok(Err(len))) => return Err(NetError::TooLarge { step: at(), len, max: max as u64 }),
            Ok(Ok(Ok(buf))) => buf,
        };
        self.meter.record(Dir::In, 4 + buf.len() as u64);
        #[cfg(debug_assertions)]
        if let Some(c) = &self.script {
            c.frame(false, step, buf.len())?;
        }
        #[cfg(feature = "test-hooks")]
        if let Some(t) = &self.transcript {
            t.record(false, step, &buf);
        }
        Ok(buf)
    }

    /// Receives exactly `len` bytes in one frame.
    pub async fn recv_exact(&mut self, step: &str, len: usize) -> Result<Vec<u8>, NetError> {
        let buf = self.recv(step, len).await?;
        if buf.len() != len {
            return Err(NetError::Malformed {
                step: self.meter.locate(step),
                reason: format!("{} bytes, expected {len}", buf.len()),
            });
        }
        Ok(buf)
    }

    /// Sends ring elements, 8 bytes each.
    pub async fn send_u64s(&mut self, step: &str, xs: &[u64]) -> Result<(), NetError> {
        self.send(step, &u64s_to_bytes(xs)).await
    }

    /// Receives exactly `n` ring elements.
    pub async fn recv_u64s(&mut self, step: &str, n: usize) -> Result<Vec<u64>, NetError> {
        Ok(bytes_to_u64s(&self.recv_exact(step, n * 8).await?))
    }
}

/// Two connected in-memory channels (client side, server side) with their own meters.
pub fn memory_pair(timeout: Duration) -> (Channel, Channel) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    (
        Channel::new(Box::pin(ar), Box::pin(aw), Meter::default(), timeout),
        Channel::new(Box::pin(br), Box::pin(bw), Meter::default(), timeout),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_counted_and_limited() {
        let (mut a, mut b) = memory_pair(Duration::from_millis(200));
        a.send("hello", b"abc").await.unwrap();
        a.send_u64s("values", &[1, 2]).await.unwrap();
        assert_eq!(b.recv("hello", 10).await.unwrap(), b"abc");
        assert_eq!(b.recv_u64s("values", 2).await.unwrap(), vec![1, 2]);
        b.send("reply", &[0; 100]).await.unwrap();
        assert!(matches!(a.recv("reply", 10).await, Err(NetError::TooLarge { len: 100, .. })));
        let t = a.meter().snapshot();
        assert_eq!((t.bytes_sent, t.bytes_received, t.rounds), (7 + 20, 0, 1));
        assert_eq!(b.meter().snapshot(), Traffic { bytes_sent: 104, bytes_received: 27, rounds: 2 });
        let err = b.recv("silence", 10).await.unwrap_err();
        assert!(err.to_string().starts_with("silence: the peer sent nothing"), "{err}");
        drop(a);
        let err = b.recv("after close", 10).await.unwrap_err();
        assert!(matches!(err, NetError::Closed { .. }), "{err}");
    }
}
