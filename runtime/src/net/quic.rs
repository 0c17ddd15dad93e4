//! The session connection: QUIC (s2n-quic) with TLS 1.3, wrapped by `cryprot-net` so OT and our
//! channels share it. The server presents a certificate ([`Identity`]); the client's trust store
//! holds the certificate it was given and nothing else (no system CAs, and `SSL_CERT_FILE` /
//! `SSL_CERT_DIR` are not read), so there is no plaintext or unauthenticated mode.
//!
//! A peer may hold at most [`MAX_STREAMS`] streams open at once (QUIC's stream limit, each way),
//! and `cryprot-net` (vendored, `vendor/cryprot-net`) reads each stream's header within a size and
//! time bound, so what a peer can make either party allocate is bounded before any hello. A
//! [`Session`] closes its QUIC connection when dropped, so a session that ends, well or not, frees
//! the connection, its streams and their tasks: as soon as the peer has closed it too, and after
//! [`LINGER`] at the latest. (A close discards data the peer has received but not read yet; the
//! wait lets the peer read a last message, or a last error, first.) [`Session::close`] closes at
//! once, and [`Session::shutdown`] also waits until the close is sent, for a party that has read
//! all it expects and owes the peer nothing: the client, after the server's last message.

use std::net::SocketAddr;
use std::time::Duration;

use cryprot_net::Connection;
use s2n_quic::provider::limits::Limits;
use s2n_quic::provider::tls::default as tls;
use s2n_quic::{Client, Server, client::Connect};

use super::{Channel, Meter, NetError};

/// The name certificates are issued for and clients check.
pub const SERVER_NAME: &str = "veil-server";

/// A server's TLS certificate and private key (PEM).
#[derive(Clone)]
pub struct Identity {
    /// The certificate, public: clients pin it (`connect`'s `server_cert_pem`).
    pub cert_pem: String,
    /// The private key. Secret: stays with the server, redacted from `Debug`.
    pub key_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity { key: <redacted> }")
    }
}

impl Identity {
    /// A fresh self-signed certificate for [`SERVER_NAME`] (ECDSA P-256).
    pub fn generate() -> Result<Identity, NetError> {
        let c = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])
            .map_err(|e| NetError::Connect(format!("generating a certificate: {e}")))?;
        Ok(Identity { cert_pem: c.cert.pem(), key_pem: c.signing_key.serialize_pem() })
    }
}

/// Unidirectional streams one party may hold open at once (QUIC credits more as streams close).
///
/// A session opens one stream each way per [`Session::channel`] (two, held for the whole session)
/// and per `cryprot-net` stream of the OT library: the base OTs (one, once) and one per OT batch,
/// each closed when its batch ends; batches run one at a time. So a session needs three open at
/// once, plus streams whose close is not acknowledged yet: every bundled model under every
/// activation policy ran with a limit of 4 (exact ReLU with 3). 32 leaves a wide margin (a stall
/// here would be a protocol deadlock, not a slowdown) while keeping what a hostile peer can open
/// small: each open stream costs a header read of at most `cryprot_net::MAX_HEADER_LEN` bytes, and
/// the data all streams buffer is bounded by QUIC's connection-wide flow-control window.
pub const MAX_STREAMS: u64 = 32;

fn limits() -> Result<Limits, NetError> {
    const MIB: u32 = 1024 * 1024;
    fn e(err: impl std::fmt::Display) -> NetError {
        NetError::Connect(err.to_string())
    }
    Limits::new()
        .with_max_send_buffer_size(12 * MIB)
        .map_err(e)?
        .with_max_open_local_unidirectional_streams(MAX_STREAMS)
        .map_err(e)?
        .with_max_open_remote_unidirectional_streams(MAX_STREAMS)
        .map_err(e)?
        // Nothing in a session uses bidirectional streams: the peer may open none.
        .with_max_open_local_bidirectional_streams(0)
        .map_err(e)?
        .with_max_open_remote_bidirectional_streams(0)
        .map_err(e)?
        // A peer that vanishes without a close (killed, unplugged) is noticed after this long;
        // a live one sends keep-alives (`Session::new`), so waiting for input is not idleness.
        .with_max_idle_timeout(IDLE_TIMEOUT)
        .map_err(e)
}

/// One party's end of a session. Dropping it closes the QUIC connection.
pub struct Session {
    conn: Connection,
    /// Closes the connection when the session ends.
    handle: s2n_quic::connection::Handle,
    /// `cryprot-net`'s stream manager, which accepts the peer's streams; it ends when the
    /// connection closes.
    manager: Option<tokio::task::JoinHandle<()>>,
    /// On drop, how long to wait for the peer to close first.
    linger: Duration,
    /// The client's endpoint (one per connection), to wait for its close to be sent.
    endpoint: Option<Client>,
    meter: Meter,
    timeout: Duration,
    hello_timeout: Duration,
    input_wait: Duration,
    /// The other party's address (UDP), as QUIC sees it.
    pub peer: SocketAddr,
    #[cfg(feature = "test-hooks")]
    fault: Option<std::sync::Arc<super::fault::FaultState>>,
    #[cfg(feature = "test-hooks")]
    transcript: Option<std::sync::Arc<super::fault::Transcript>>,
}

/// QUIC's idle timeout: with keep-alives on both sides, only a peer that vanished without
/// closing (killed, unplugged) goes this long without a packet. Long enough that a party busy
/// computing on a loaded machine still answers keep-alives in time.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a server waits, by default, for a preprocessed client's input.
pub const DEFAULT_INPUT_WAIT: Duration = Duration::from_secs(600);

/// How long a dropped session waits for the peer to close the connection before closing it
/// itself.
pub const LINGER: Duration = Duration::from_secs(2);

/// How long [`Session::shutdown`] waits for the close to be sent.
pub const SHUTDOWN_WAIT: Duration = Duration::from_millis(500);

/// How long a server waits, by default, for a new client's hello (later messages get the
/// session's receive timeout).
pub const DEFAULT_HELLO_TIMEOUT: Duration = Duration::from_secs(10);

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session {{ peer: {} }}", self.peer)
    }
}

impl Session {
    fn new(mut quic: s2n_quic::Connection, timeout: Duration, endpoint: Option<Client>) -> Result<Session, NetError> {
        crate::init_threads(0);
        crate::check_threads().map_err(NetError::Connect)?;
        let peer = quic.remote_addr().map_err(|e| NetError::Connect(e.to_string()))?;
        // A preprocessed client may wait for its input longer than the idle timeout.
        quic.keep_alive(true).map_err(|e| NetError::Connect(format!("keep-alive: {e}")))?;
        let handle = quic.handle();
        let (conn, manager) = Connection::new(quic);
        let manager = Some(tokio::spawn(manager.start()));
        Ok(Session {
            conn,
            handle,
            manager,
            linger: LINGER,
            endpoint,
            meter: Meter::default(),
            timeout,
            hello_timeout: DEFAULT_HELLO_TIMEOUT.min(timeout),
            input_wait: DEFAULT_INPUT_WAIT.max(timeout),
            peer,
            #[cfg(feature = "test-hooks")]
            fault: None,
            #[cfg(feature = "test-hooks")]
            transcript: None,
        })
    }

    /// How long the server waits between the offline phase and the client's input (a client
    /// that preprocesses may hold the session open while its input is not there yet).
    pub fn input_wait(&self) -> Duration {
        self.input_wait
    }

    /// Sets [`Session::input_wait`] (server side; `veil server --input-wait`).
    pub fn set_input_wait(&mut self, wait: Duration) {
        self.input_wait = wait;
    }

    /// How long the server waits for the client's hello, the session's first message.
    pub fn hello_timeout(&self) -> Duration {
        self.hello_timeout
    }

    /// Sets [`Session::hello_timeout`].
    pub fn set_hello_timeout(&mut self, timeout: Duration) {
        self.hello_timeout = timeout;
    }

    /// Closes the QUIC connection now: the peer's streams and their reads end, and data not yet
    /// sent, or sent but not yet read by the peer, is discarded. Dropping the session closes it
    /// too, once the peer has (at most [`LINGER`] later).
    pub fn close(&mut self) {
        self.handle.close(s2n_quic::application::Error::UNKNOWN);
        if let Some(m) = self.manager.take() {
            m.abort();
        }
    }

    /// Closes the connection at once ([`Session::close`]) and waits, at most
    /// [`SHUTDOWN_WAIT`], until the client's endpoint has sent the close: a process that exits
    /// right after would otherwise leave the server waiting for it (it keeps the session, and
    /// the client address's place, until [`LINGER`] has passed).
    pub async fn shutdown(mut self) {
        self.close();
        if let Some(mut endpoint) = self.endpoint.take() {
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, endpoint.wait_idle()).await;
        }
    }

    /// The session's meter: every channel's frames and the OT streams' bytes.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The next message channel; the n-th call on one side pairs with the n-th on the other.
    pub async fn channel(&mut self) -> Result<Channel, NetError> {
        let (send, recv) =
            self.conn.byte_stream().await.map_err(|e| NetError::Connect(format!("opening a stream: {e}")))?;
        let ch = Channel::new(Box::pin(recv), Box::pin(send), self.meter.clone(), self.timeout);
        #[cfg(feature = "test-hooks")]
        let ch = super::fault::layer(ch, self.fault.clone(), self.transcript.clone());
        Ok(ch)
    }

    /// Captures this party's framed traffic from now on (tests only). Set before the session's
    /// first channel.
    #[cfg(feature = "test-hooks")]
    pub fn capture(&mut self) -> std::sync::Arc<super::fault::Transcript> {
        let t = std::sync::Arc::new(super::fault::Transcript::default());
        self.transcript = Some(t.clone());
        t
    }

    /// Makes this party misbehave at its `fault.at`-th message (tests only; prints a warning).
    /// Set before the session's first channel.
    #[cfg(feature = "test-hooks")]
    pub fn inject_fault(&mut self, fault: super::fault::Fault) -> std::sync::Arc<super::fault::FaultState> {
        let state = super::fault::FaultState::new(fault);
        self.fault = Some(state.clone());
        state
    }

    /// A sub-connection for one OT instance (pairs like [`Session::channel`]).
    pub fn ot_connection(&mut self) -> Connection {
        self.conn.sub_connection()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let (Ok(rt), Some(mut manager)) = (tokio::runtime::Handle::try_current(), self.manager.take()) else {
            return self.close();
        };
        let linger = self.linger;
        let handle = self.handle.clone();
        rt.spawn(async move {
            // The manager ends when the peer has closed the connection.
            if tokio::time::timeout(linger, &mut manager).await.is_err() {
                manager.abort();
            }
            handle.close(s2n_quic::application::Error::UNKNOWN);
        });
    }
}

/// A listening server endpoint.
pub struct Listener {
    server: Server,
    timeout: Duration,
}

impl Listener {
    /// Listens on `addr` with `identity`'s certificate; `timeout`: each session's receive timeout.
    pub fn bind(addr: SocketAddr, identity: &Identity, timeout: Duration) -> Result<Listener, NetError> {
        let e = |what: &str, err: String| NetError::Connect(format!("{what} {addr}: {err}"));
        let server = Server::builder()
            .with_tls((identity.cert_pem.as_str(), identity.key_pem.as_str()))
            .map_err(|x| e("TLS setup for", x.to_string()))?
            .with_io(addr)
            .map_err(|x| e("binding", x.to_string()))?
            .with_limits(limits()?)
            .map_err(|x| e("limits for", x.to_string()))?
            .start()
            .map_err(|x| e("listening on", x.to_string()))?;
        Ok(Listener { server, timeout })
    }

    /// The bound address (with the port chosen when `addr` had port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        self.server.local_addr().map_err(|e| NetError::Connect(e.to_string()))
    }

    /// The next client's session, or `None` when the endpoint closed.
    pub async fn accept(&mut self) -> Option<Result<Session, NetError>> {
        let conn = self.server.accept().await?;
        Some(Session::new(conn, self.timeout, None))
    }
}

/// TLS for a client that trusts `server_cert_pem` and nothing else: the trust store starts
/// empty, so neither the system's CAs nor `SSL_CERT_FILE` / `SSL_CERT_DIR` are consulted.
fn pinned_tls(server_cert_pem: &str) -> Result<tls::Client, tls::error::Error> {
    tls::Client::builder().with_empty_trust_store()?.with_certificate(server_cert_pem)?.build()
}

/// Connects to `addr`, trusting only `server_cert_pem`.
pub async fn connect(addr: SocketAddr, server_cert_pem: &str, timeout: Duration) -> Result<Session, NetError> {
    let bind: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("an address");
    let e = |what: &str, err: String| NetError::Connect(format!("{what}: {err}"));
    let tls = pinned_tls(server_cert_pem)
        .map_err(|x| e("TLS setup (is the server certificate a PEM file?)", x.to_string()))?;
    let client = Client::builder()
        .with_tls(tls)
        .map_err(|x| e("TLS setup", x.to_string()))?
        .with_io(bind)
        .map_err(|x| e("binding", x.to_string()))?
        .with_limits(limits()?)
        .map_err(|x| e("limits", x.to_string()))?
        .start()
        .map_err(|x| e("starting the client", x.to_string()))?;
    let connect = Connect::new(addr).with_server_name(SERVER_NAME);
    let silent = |why: String| {
        NetError::Connect(format!("no server answered at {addr} ({why}); is `veil server` running there?"))
    };
    let conn = tokio::time::timeout(timeout, client.connect(connect))
        .await
        .map_err(|_| silent(format!("nothing within {} s", timeout.as_secs())))?
        .map_err(|x| match x.to_string() {
            // s2n-quic gives up on a handshake nobody answers after its idle timeout.
            m if m.contains("handshake took longer") || m.contains("idle") || m.contains("timed out") => silent(m),
            m => e(&format!("connecting to {addr}"), m),
        })?;
    Session::new(conn, timeout, Some(client))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn quic_session_carries_metered_frames() {
        let id = Identity::generate().unwrap();
        let mut l = Listener::bind("127.0.0.1:0".parse().unwrap(), &id, Duration::from_secs(10)).unwrap();
        let addr = l.local_addr().unwrap();
        let cert = id.cert_pem.clone();
        let client = tokio::spawn(async move {
            let mut s = connect(addr, &cert, Duration::from_secs(10)).await.unwrap();
            let mut ch = s.channel().await.unwrap();
            ch.send("ping", b"hello").await.unwrap();
            let r = ch.recv("pong", 100).await.unwrap();
            (r, s.meter().snapshot())
        });
        let mut s = l.accept().await.unwrap().unwrap();
        let mut ch = s.channel().await.unwrap();
        assert_eq!(ch.recv("ping", 100).await.unwrap(), b"hello");
        ch.send("pong", b"world!").await.unwrap();
        let (r, t) = client.await.unwrap();
        assert_eq!(r, b"world!");
        assert_eq!((t.bytes_sent, t.bytes_received, t.rounds), (9, 10, 2));
    }

    async fn pair(timeout: Duration) -> (Session, Session) {
        let id = Identity::generate().unwrap();
        let mut l = Listener::bind("127.0.0.1:0".parse().unwrap(), &id, timeout).unwrap();
        let addr = l.local_addr().unwrap();
        let (c, s) = tokio::join!(connect(addr, &id.cert_pem, timeout), async { l.accept().await.unwrap() });
        (c.unwrap(), s.unwrap())
    }

    /// Sessions close their connection when they end: the peer's next receive fails at once
    /// instead of running into its timeout. (Found in issue 14: nothing closed connections, and
    /// keep-alives held a failed session's connection and buffers open.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_ended_session_closes_its_connection() {
        let t = Duration::from_secs(10);
        // The client's shutdown: the server learns at once.
        let (c, mut s) = pair(t).await;
        let mut sc = s.channel().await.unwrap();
        let t0 = std::time::Instant::now();
        c.shutdown().await;
        let shutdown = t0.elapsed();
        let err = sc.recv("after the client's shutdown", 10).await.unwrap_err();
        assert!(!matches!(err, NetError::Timeout { .. }), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?} (shutdown {shutdown:?})", t0.elapsed());
        // A dropped server session: the client learns within LINGER.
        let (mut c, s) = pair(t).await;
        let mut cc = c.channel().await.unwrap();
        let t0 = std::time::Instant::now();
        drop(s);
        let err = cc.recv("after the server's drop", 10).await.unwrap_err();
        assert!(!matches!(err, NetError::Timeout { .. }), "{err}");
        assert!(t0.elapsed() < LINGER + Duration::from_secs(1), "{:?}", t0.elapsed());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_refuses_an_unpinned_certificate() {
        let (id, other) = (Identity::generate().unwrap(), Identity::generate().unwrap());
        let mut l = Listener::bind("127.0.0.1:0".parse().unwrap(), &id, Duration::from_secs(5)).unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { while l.accept().await.is_some() {} });
        let err = connect(addr, &other.cert_pem, Duration::from_secs(5)).await.unwrap_err();
        assert!(err.to_string().contains("connecting to"), "{err}");
    }
}
