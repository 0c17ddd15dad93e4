//! An emulated network link for benchmarks: a UDP relay between clients and a server that
//! serialises each direction at a fixed bandwidth behind a drop-tail queue and delays every
//! datagram by half the round-trip time, like `tc qdisc … netem delay RTT/2 rate B limit Q` on
//! both ends. It exists because `netem` is often missing (containers without the `sch_netem`
//! module, as on our CI machines); QUIC runs over it unchanged, congestion control included.
//!
//! `veil relay` runs one; `veilc bench --network wan` puts one between its two processes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The link's shape.
#[derive(Debug, Clone, Copy)]
pub struct LinkSpec {
    /// Bits per second, each direction.
    pub bandwidth_bps: f64,
    /// Round-trip time added (half each way).
    pub rtt: Duration,
    /// Bytes a direction may hold waiting for the wire; datagrams beyond are dropped.
    pub queue_bytes: usize,
}

impl LinkSpec {
    /// `mbit` Mbit/s each way and `rtt` round trip, with a queue of two bandwidth-delay products
    /// (at least 64 KiB).
    pub fn new(mbit: f64, rtt: Duration) -> LinkSpec {
        let bdp = (mbit * 1e6 / 8.0 * rtt.as_secs_f64()) as usize;
        LinkSpec { bandwidth_bps: mbit * 1e6, rtt, queue_bytes: (2 * bdp).max(64 << 10) }
    }
}

/// One direction: when the wire is next free, and the datagrams in flight.
struct Direction {
    spec: LinkSpec,
    free_at: Instant,
    tx: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
}

/// Where a direction delivers: the connected upstream socket, or a client's address.
struct Target(Arc<UdpSocket>, Option<SocketAddr>);

impl Direction {
    /// Spawns the delivery task for datagrams sent through `target`.
    fn new(spec: LinkSpec, target: Target) -> Direction {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
        tokio::spawn(async move {
            while let Some((at, packet)) = rx.recv().await {
                tokio::time::sleep_until(at).await;
                let _ = match target.1 {
                    Some(to) => target.0.send_to(&packet, to).await,
                    None => target.0.send(&packet).await,
                };
            }
        });
        Direction { spec, free_at: Instant::now(), tx }
    }

    /// Queues a datagram (or drops it when the queue is full).
    fn push(&mut self, packet: Vec<u8>) {
        let now = Instant::now();
        let start = self.free_at.max(now);
        let queued = (start - now).as_secs_f64() * self.spec.bandwidth_bps / 8.0;
        if queued > self.spec.queue_bytes as f64 {
            return;
        }
        self.free_at = start + Duration::from_secs_f64(packet.len() as f64 * 8.0 / self.spec.bandwidth_bps);
        let _ = self.tx.send((self.free_at + self.spec.rtt / 2, packet));
    }
}

/// A running relay.
#[derive(Debug)]
pub struct Relay {
    /// The address the relay listens on (the bound `listen`, with the port chosen when it was 0).
    pub local: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Relay {
    /// Waits for the relay (it runs until an I/O error).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// Starts relaying datagrams arriving at `listen` to `upstream` (and the answers back) over an
/// emulated link.
pub async fn start(listen: SocketAddr, upstream: SocketAddr, spec: LinkSpec) -> std::io::Result<Relay> {
    let front = Arc::new(UdpSocket::bind(listen).await?);
    let local = front.local_addr()?;
    let task = tokio::spawn(async move {
        let mut peers: HashMap<SocketAddr, Direction> = HashMap::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, from) = front.recv_from(&mut buf).await?;
            let up = match peers.get_mut(&from) {
                Some(d) => d,
                None => {
                    let bind: SocketAddr =
                        if upstream.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("addr");
                    let back = Arc::new(UdpSocket::bind(bind).await?);
                    back.connect(upstream).await?;
                    // Server → client.
                    let mut down = Direction::new(spec, Target(front.clone(), Some(from)));
                    let back2 = back.clone();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 65536];
                        while let Ok(n) = back2.recv(&mut buf).await {
                            down.push(buf[..n].to_vec());
                        }
                    });
                    // Client → server.
                    let d = Direction::new(spec, Target(back, None));
                    peers.entry(from).or_insert(d)
                }
            };
            up.push(buf[..n].to_vec());
        }
    });
    Ok(Relay { local, task })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Datagrams arrive after half the RTT each way, in order, and a burst is paced at the
    /// link's bandwidth.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_link_delays_and_paces_datagrams() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let relay = start(
            "127.0.0.1:0".parse().unwrap(),
            server.local_addr().unwrap(),
            LinkSpec::new(10.0, Duration::from_millis(40)),
        )
        .await
        .unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.connect(relay.local).await.unwrap();
        let t0 = std::time::Instant::now();
        for i in 0..50u8 {
            client.send(&[i; 1250]).await.unwrap(); // 10 kbit each: 1 ms at 10 Mbit/s
        }
        let mut buf = [0u8; 2000];
        let mut from = None;
        for i in 0..50u8 {
            let (n, f) = server.recv_from(&mut buf).await.unwrap();
            assert_eq!((n, buf[0]), (1250, i));
            from = Some(f);
        }
        let one_way = t0.elapsed();
        // 50 ms of serialisation plus 20 ms of delay.
        assert!(one_way >= Duration::from_millis(69), "{one_way:?}");
        assert!(one_way < Duration::from_millis(200), "{one_way:?}");
        let t1 = std::time::Instant::now();
        server.send_to(b"back", from.unwrap()).await.unwrap();
        let n = client.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"back");
        assert!(t1.elapsed() >= Duration::from_millis(20));
    }
}
