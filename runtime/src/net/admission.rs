//! Admission of new connections: a limit on the sessions one address may hold at once (waiting
//! for a slot or running), so that a few idle connections from one host cannot take every
//! session slot, and a readable refusal for the connections over it.
//!
//! An address is an IPv4 address, or an IPv6 /64 (the block one host or site is usually given);
//! IPv4-mapped IPv6 addresses count as IPv4. QUIC validates a client's address before its
//! connection is accepted, so a client cannot claim an address it does not receive at. This is
//! no defence against a peer with many addresses: `--max-clients` still bounds the total.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::quic::Session;

/// How long a refusal may take (send the reason, wait for its acknowledgement) before the
/// connection is closed anyway.
pub const REFUSAL_TIME: Duration = Duration::from_secs(3);

/// The address `ip` counts against: itself for IPv4, its /64 for IPv6.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !((1u128 << 64) - 1))),
        },
    }
}

type Counts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Counts the sessions each address holds, up to a limit.
#[derive(Debug, Clone)]
pub struct Admission {
    limit: usize,
    held: Counts,
}

/// One session's place in its address's count; dropping it frees the place.
#[derive(Debug)]
pub struct Ticket {
    key: IpAddr,
    held: Counts,
}

impl Admission {
    /// At most `limit` sessions (at least one) per address at once.
    pub fn new(limit: usize) -> Admission {
        Admission { limit: limit.max(1), held: Counts::default() }
    }

    /// A place for a session from `peer`, or the reason it is refused.
    pub fn admit(&self, peer: SocketAddr) -> Result<Ticket, String> {
        let key = address_key(peer.ip());
        let mut held = self.held.lock().expect("admission lock");
        let n = held.entry(key).or_insert(0);
        if *n >= self.limit {
            return Err(format!(
                "{} already holds {} session{} with this server, the most one address may hold; try again later",
                peer.ip(),
                *n,
                if *n == 1 { "" } else { "s" }
            ));
        }
        *n += 1;
        Ok(Ticket { key, held: self.held.clone() })
    }

    /// The sessions `peer`'s address holds now.
    pub fn held(&self, peer: IpAddr) -> usize {
        self.held.lock().expect("admission lock").get(&address_key(peer)).copied().unwrap_or(0)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut held = self.held.lock().expect("admission lock");
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// Refuses a session: sends `reason` as the reply to the client's hello (a Veil client prints
/// it) and closes the connection once the client has, or after [`REFUSAL_TIME`].
pub async fn refuse(mut session: Session, reason: String) {
    const STEP: &str = "refusing the session";
    let reply = crate::wire::hello_reply(&Err(reason));
    let exchange = async {
        let mut ch = session.channel().await?;
        ch.send(STEP, &reply).await?;
        ch.finish(STEP).await?;
        // Our end stays open until the client closes: dropped, it would reset the client's
        // hello stream, and a client still sending its hello would fail before reading why.
        loop {
            ch.recv(STEP, 64).await?;
        }
    };
    let _: Result<Result<(), crate::net::NetError>, _> = tokio::time::timeout(REFUSAL_TIME, exchange).await;
    session.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 4433)
    }

    #[test]
    fn an_address_holds_at_most_the_limit_and_frees_places_on_drop() {
        let a = Admission::new(2);
        let (t1, t2) = (a.admit(at("127.0.0.1")).unwrap(), a.admit(at("127.0.0.1")).unwrap());
        let err = a.admit(at("127.0.0.1")).unwrap_err();
        assert!(err.contains("127.0.0.1 already holds 2 sessions"), "{err}");
        // Another address is not affected.
        let other = a.admit(at("127.0.0.2")).unwrap();
        drop(t1);
        let t3 = a.admit(at("127.0.0.1")).unwrap();
        assert_eq!(a.held("127.0.0.1".parse().unwrap()), 2);
        drop((t2, t3, other));
        assert_eq!(a.held("127.0.0.1".parse().unwrap()), 0);
        assert!(a.held.lock().unwrap().is_empty(), "no entry is left behind");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a = Admission::new(1);
        let _t = a.admit(at("2001:db8:1:2::1")).unwrap();
        assert!(a.admit(at("2001:db8:1:2:ffff::9")).is_err(), "same /64");
        assert!(a.admit(at("2001:db8:1:3::1")).is_ok(), "another /64");
        let _v4 = a.admit(at("192.0.2.7")).unwrap();
        assert!(a.admit(at("::ffff:192.0.2.7")).is_err(), "the mapped form of the same IPv4 address");
    }
}
