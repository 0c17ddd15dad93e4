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
//!
//! [`Channel`] runs over any pair of byte streams (boxed [`AsyncRead`] / [`AsyncWrite`]): a QUIC
//! session's streams ([`quic`]), or a pipe in memory ([`memory::pair`]) for tests that exercise
//! protocol logic rather than the transport.

pub mod admission;
#[cfg(any(test, feature = "test-hooks"))]
pub mod fault;
pub mod link;
pub mod memory;
pub mod meter;
pub mod quic;
pub mod script_check;
pub mod session;

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
    /// A send or receive did not complete within the channel's timeout.
    #[error("{step}: the peer sent nothing for {secs} s")]
    Timeout {
        /// The session's position and the message's label.
        step: String,
        /// The timeout, in whole seconds.
        secs: u64,
    },
    /// The peer ended its stream or closed the connection.
    #[error("{step}: the peer closed the connection")]
    Closed {
        /// The session's position and the message's label.
        step: String,
    },
    /// Any other stream error.
    #[error("{step}: {source}")]
    Io {
        /// The session's position and the message's label.
        step: String,
        /// The transport's error.
        source: std::io::Error,
    },
    /// A frame's length prefix exceeds what this message may be (refused before allocating), or
    /// a payload to send does not fit the 4-byte prefix.
    #[error("{step}: the peer announced a {len}-byte message; at most {max} are expected here")]
    TooLarge {
        /// The session's position and the message's label.
        step: String,
        /// The announced (or attempted) payload length, in bytes.
        len: u64,
        /// The largest payload accepted here, in bytes.
        max: u64,
    },
    /// A received payload has the wrong size or does not parse.
    #[error("{step}: malformed message: {reason}")]
    Malformed {
        /// The session's position and the message's label.
        step: String,
        /// What is wrong with it (sizes and structure only, never payload contents).
        reason: String,
    },
    /// Setting up the transport failed (certificate, bind, connect, opening a stream, no channel
    /// left).
    #[error("connection: {0}")]
    Connect(String),
    /// An oblivious-transfer batch failed (the OT library's error; the ideal OT's partner
    /// mismatched or gone).
    #[error("oblivious transfer ({step}): {reason}")]
    Ot {
        /// The OT batch's label.
        step: String,
        /// Why, in the OT library's (or the ideal OT's) words.
        reason: String,
    },
    /// Debug builds: a frame does not match the step's message script (a protocol bug, or a peer
    /// off the protocol).
    #[error("{0}")]
    Script(#[from] script_check::ScriptMismatch),
}

impl NetError {
    /// A stream error at `step`: the peer's end of the connection (end of stream, or a QUIC
    /// close from the other side, as when a client is stopped) reads as [`NetError::Closed`].
    fn io(step: String, source: std::io::Error) -> NetError {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, UnexpectedEof};
        let closed = matches!(source.kind(), UnexpectedEof | ConnectionReset | ConnectionAborted)
            || source.to_string().contains("by the remote endpoint");
        if closed { NetError::Closed { step } } else { NetError::Io { step, source } }
    }
}

/// Traffic in one direction pair, as one party sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Traffic {
    /// Bytes this party sent: frames with their 4-byte length prefixes, and OT stream bytes.
    pub bytes_sent: u64,
    /// Bytes this party received, counted the same way.
    pub bytes_received: u64,
    /// Flights: runs of messages in one direction, a new one at each step's first message.
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

    /// The session's traffic so far (subtract two snapshots for a step's).
    pub fn snapshot(&self) -> Traffic {
        self.0.lock().expect("meter lock").traffic
    }
}

/// A channel's incoming byte stream, told the protocol step of each frame read from it. A
/// transport's stream ([`Plain`]) ignores the steps; a test layer wrapped around it
/// (`net::fault`) records them.
pub trait FrameRead: AsyncRead + Send + Unpin {
    /// `payload`, a frame of `step`, has been received and counted.
    fn received(&self, _step: &str, _payload: &[u8]) {}
}

/// A channel's outgoing byte stream, told the protocol step of each frame before it is sent.
pub trait FrameWrite: AsyncWrite + Send + Unpin {
    /// Before a frame of `step`: a test layer (`net::fault`) may do something else instead and
    /// return it; the channel then awaits that, without its timeout, as the send.
    fn replace<'a>(&'a mut self, _step: &'a str, _payload: &'a [u8]) -> Option<Replacement<'a>> {
        None
    }

    /// `payload`, a frame of `step`, has been sent and counted.
    fn sent(&self, _step: &str, _payload: &[u8]) {}
}

/// What a test layer does instead of sending a frame ([`FrameWrite::replace`]).
pub type Replacement<'a> = Pin<Box<dyn Future<Output = std::io::Result<()>> + Send + 'a>>;

/// A transport's byte stream as it is: frames pass through unobserved.
pub struct Plain<S>(pub S);

impl<S: AsyncRead + Send + Unpin> AsyncRead for Plain<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Send + Unpin> AsyncWrite for Plain<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + Send + Unpin> FrameRead for Plain<S> {}
impl<S: AsyncWrite + Send + Unpin> FrameWrite for Plain<S> {}

/// The incoming byte stream a [`Channel`] reads (a transport's, or a test layer around one).
pub type Reader = Box<dyn FrameRead>;
/// The outgoing byte stream a [`Channel`] writes (see [`Reader`]).
pub type Writer = Box<dyn FrameWrite>;

/// A framed, metered, timed message stream to the peer.
pub struct Channel {
    reader: Reader,
    writer: Writer,
    meter: Meter,
    timeout: Duration,
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
    /// A channel over any pair of byte streams (a QUIC session's, a pipe in memory, a file).
    pub fn new(
        reader: impl AsyncRead + Send + Unpin + 'static,
        writer: impl AsyncWrite + Send + Unpin + 'static,
        meter: Meter,
        timeout: Duration,
    ) -> Self {
        Channel::over(Box::new(Plain(reader)), Box::new(Plain(writer)), meter, timeout)
    }

    /// A channel over streams that see each frame's step (a test layer around a transport's).
    pub fn over(reader: Reader, writer: Writer, meter: Meter, timeout: Duration) -> Self {
        Channel {
            reader,
            writer,
            meter,
            timeout,
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

    /// The session's meter this channel counts its frames on.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The receive timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
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
        // A test layer may misbehave here instead (`fault`); what it does is not timed.
        if let Some(instead) = self.writer.replace(step, payload) {
            return instead.await.map_err(|source| NetError::Io { step: step.into(), source });
        }
        let fut = async {
            self.writer.write_all(&len.to_le_bytes()).await?;
            self.writer.write_all(payload).await?;
            self.writer.flush().await
        };
        // Errors name the session's position; the string is built only when one happens.
        match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => return Err(NetError::Timeout { step: self.meter.locate(step), secs: self.timeout.as_secs() }),
            Ok(Err(source)) => return Err(NetError::io(self.meter.locate(step), source)),
            Ok(Ok(())) => {}
        }
        self.meter.record(Dir::Out, 4 + payload.len() as u64);
        self.writer.sent(step, payload);
        Ok(())
    }

    /// Ends our direction of the channel and waits until the peer has acknowledged everything
    /// sent on it, so the process may exit right after without losing its last message (QUIC
    /// flushes do not wait for acknowledgements; closing the stream does).
    pub async fn finish(&mut self, step: &str) -> Result<(), NetError> {
        match tokio::time::timeout(self.timeout, self.writer.shutdown()).await {
            Err(_) => Err(NetError::Timeout { step: self.meter.locate(step), secs: self.timeout.as_secs() }),
            Ok(r) => r.map_err(|source| NetError::io(self.meter.locate(step), source)),
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
            Ok(Err(source)) => return Err(NetError::io(at(), source)),
            Ok(Ok(Err(len))) => return Err(NetError::TooLarge { step: at(), len, max: max as u64 }),
            Ok(Ok(Ok(buf))) => buf,
        };
        self.meter.record(Dir::In, 4 + buf.len() as u64);
        #[cfg(debug_assertions)]
        if let Some(c) = &self.script {
            c.frame(false, step, buf.len())?;
        }
        self.reader.received(step, &buf);
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
