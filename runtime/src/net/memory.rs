//! An in-memory transport for tests: two [`Channel`]s joined by a tokio duplex pipe, so a
//! protocol's two parties run in one process without QUIC or TLS.
//!
//! The channels are the same [`Channel`] type the QUIC session hands out, over other byte
//! streams: framing, metering (bytes and rounds), size limits, timeouts and error messages are
//! those of a QUIC channel. What differs is below the frames: a write completes once the pipe's
//! buffer ([`BUFFER`] bytes each way) has room, where QUIC waits for flow-control credit, and a
//! dropped peer reads as closed at once, where a QUIC session lingers first.
//!
//! The OT library (`cryprot-net`) cannot run here: its `Connection` is bound to s2n-quic's
//! connection and stream types. Protocol tests in memory use `ot::ideal` instead.

use std::time::Duration;

use super::{Channel, Meter};

/// Bytes each direction of a pair buffers before a write waits for the reader.
pub const BUFFER: usize = 1 << 20;

/// Two connected channels (client side, server side), each party with a fresh [`Meter`].
pub fn pair(timeout: Duration) -> (Channel, Channel) {
    pair_metered(Meter::default(), Meter::default(), timeout)
}

/// Two connected channels counted into the given meters (pass a party's meter again to give it
/// a second channel on the same meter, as a session's channels share one).
pub fn pair_metered(a_meter: Meter, b_meter: Meter, timeout: Duration) -> (Channel, Channel) {
    let (a, b) = tokio::io::duplex(BUFFER);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    (
        Channel::new(Box::pin(ar), Box::pin(aw), a_meter, timeout),
        Channel::new(Box::pin(br), Box::pin(bw), b_meter, timeout),
    )
}

/// One party's end of an in-memory session (**insecure, tests only**: its OT is
/// [`crate::ot::ideal`], framed like the real OT): two channels, as the executors open them
/// (messages, OT synchronisation), on the party's own meter.
#[cfg(any(test, feature = "insecure-ideal-ot"))]
pub struct MemorySession {
    meter: Meter,
    channels: std::collections::VecDeque<Channel>,
    ot_sender: Option<crate::ot::ideal::IdealOtSender>,
    ot_receiver: Option<crate::ot::ideal::IdealOtReceiver>,
    timeout: Duration,
}

#[cfg(any(test, feature = "insecure-ideal-ot"))]
impl std::fmt::Debug for MemorySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemorySession(<insecure, test-only>)")
    }
}

/// A connected in-memory session (client end, server end) with the ideal OT seeded by `seed`
/// (which prints its warning); every receive waits at most `timeout`.
#[cfg(any(test, feature = "insecure-ideal-ot"))]
pub fn session_pair(timeout: Duration, seed: u64) -> (MemorySession, MemorySession) {
    let (cm, sm) = (Meter::default(), Meter::default());
    let (mut cc, mut sc) = (std::collections::VecDeque::new(), std::collections::VecDeque::new());
    for _ in 0..2 {
        let (c, s) = pair_metered(cm.clone(), sm.clone(), timeout);
        cc.push_back(c);
        sc.push_back(s);
    }
    let (ot_s, ot_r) = crate::ot::ideal::pair(seed);
    (
        MemorySession { meter: cm, channels: cc, ot_sender: None, ot_receiver: Some(ot_r), timeout },
        MemorySession { meter: sm, channels: sc, ot_sender: Some(ot_s), ot_receiver: None, timeout },
    )
}

#[cfg(any(test, feature = "insecure-ideal-ot"))]
impl super::session::PartySession for MemorySession {
    fn meter(&self) -> &Meter {
        &self.meter
    }

    async fn channel(&mut self) -> Result<Channel, super::NetError> {
        self.channels
            .pop_front()
            .ok_or_else(|| super::NetError::Connect("the in-memory session has no more channels".into()))
    }

    fn ot_sender(&mut self, sync: Channel) -> crate::ot::SessionOtSender {
        let ot = self.ot_sender.take().expect("the server end of an in-memory session, one OT sender");
        crate::ot::SessionOtSender::Ideal(Box::new(crate::ot::ideal::Framed::new(ot, sync)))
    }

    fn ot_receiver(&mut self, sync: Channel) -> crate::ot::SessionOtReceiver {
        let ot = self.ot_receiver.take().expect("the client end of an in-memory session, one OT receiver");
        crate::ot::SessionOtReceiver::Ideal(crate::ot::ideal::Framed::new(ot, sync))
    }

    fn hello_timeout(&self) -> Duration {
        self.timeout
    }

    fn input_wait(&self) -> Duration {
        self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{NetError, Traffic};

    #[tokio::test]
    async fn frames_are_counted_and_limited() {
        let (mut a, mut b) = pair(Duration::from_millis(200));
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

    /// Two channels of one party on one meter count as one session: the rounds follow the
    /// direction changes across both, and `enter` names the position in errors.
    #[tokio::test]
    async fn channels_sharing_a_meter_count_one_session() {
        let (ma, mb) = (Meter::default(), Meter::default());
        let (mut a1, mut b1) = pair_metered(ma.clone(), mb.clone(), Duration::from_millis(200));
        let (mut a2, mut b2) = pair_metered(ma.clone(), mb.clone(), Duration::from_millis(200));
        a1.send("one", &[1]).await.unwrap();
        a2.send("two", &[2, 2]).await.unwrap();
        b1.recv_exact("one", 1).await.unwrap();
        b2.recv_exact("two", 2).await.unwrap();
        b2.send("three", &[]).await.unwrap();
        a2.recv("three", 0).await.unwrap();
        assert_eq!(ma.snapshot(), Traffic { bytes_sent: 11, bytes_received: 4, rounds: 2 });
        assert_eq!(mb.snapshot(), Traffic { bytes_sent: 4, bytes_received: 11, rounds: 2 });
        mb.enter("online, layer \"/Relu\" (GC)".into());
        let err = b1.recv("colours", 8).await.unwrap_err();
        let want = "online, layer \"/Relu\" (GC): colours: the peer sent nothing for";
        assert!(err.to_string().starts_with(want), "{err}");
        drop(a1);
        let err = b1.recv_exact("colours", 8).await.unwrap_err();
        assert_eq!(err.to_string(), "online, layer \"/Relu\" (GC): colours: the peer closed the connection");
    }
}
