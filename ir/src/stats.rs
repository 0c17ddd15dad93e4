//! The costs of a two-party session as `veil --stats` writes them (JSON) and `veilc run`,
//! `bench` and `explore` read them back: one schema for both sides.
//!
//! The JSON form is the serde form of [`Stats`], field names and order as declared here:
//!
//! ```json
//! {
//!   "offline": { "seconds": 0.5, "bytes_client_to_server": 10, "bytes_server_to_client": 20, "rounds": 2 },
//!   "online": { ... },
//!   "layers": [ { "name": "/conv1/Conv", "op": "conv2d", "protocol": "HE", "offline": { ... }, "online": { ... } } ]
//! }
//! ```
//!
//! Byte counts are the sender's count for each direction (the number the compiler predicts);
//! rounds are the reporting party's own flights.

use serde::{Deserialize, Serialize};

/// Cost of one phase (offline or online) of a session or of one step.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Phase {
    /// Wall-clock time of the phase measured by the reporting party, in seconds.
    pub seconds: f64,
    /// Bytes the client sent (its own count).
    pub bytes_client_to_server: u64,
    /// Bytes the server sent (its own count).
    pub bytes_server_to_client: u64,
    /// Flights seen by the reporting party: each run of messages in one direction counts one.
    pub rounds: u64,
}

impl Phase {
    /// Bytes both ways (saturating).
    pub fn bytes(&self) -> u64 {
        self.bytes_client_to_server.saturating_add(self.bytes_server_to_client)
    }
}

/// Saturating: half of every byte count is the peer's own claim (the runtime's traffic-count
/// exchange), which a hostile peer may set to anything; a lie spoils the report, never the
/// process.
impl std::ops::AddAssign for Phase {
    fn add_assign(&mut self, o: Phase) {
        self.seconds += o.seconds;
        self.bytes_client_to_server = self.bytes_client_to_server.saturating_add(o.bytes_client_to_server);
        self.bytes_server_to_client = self.bytes_server_to_client.saturating_add(o.bytes_server_to_client);
        self.rounds = self.rounds.saturating_add(o.rounds);
    }
}

/// One step's costs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerStats {
    /// The node's name (ONNX node name).
    pub name: String,
    /// The op's mnemonic (`conv2d`, `relu`, ...).
    pub op: String,
    /// The step's protocol label.
    pub protocol: String,
    /// Offline (input-independent) phase of this step.
    pub offline: Phase,
    /// Online (input-dependent) phase of this step.
    pub online: Phase,
}

/// A session's costs (`veil --stats` JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    /// Offline phase: the sum of the steps' (the hello and the count exchange are not counted).
    pub offline: Phase,
    /// Online phase: the sum of the steps'.
    pub online: Phase,
    /// One entry per schedule step, in execution order.
    pub layers: Vec<LayerStats>,
}

/// The protocol label of a layer whose steps have `labels`: each distinct label once, sorted,
/// joined by `+` (`HE+share` for a convolution that shares its input and then runs HE).
pub fn join_protocols<'a>(labels: impl IntoIterator<Item = &'a str>) -> String {
    let mut v: Vec<&str> = labels.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v.join("+")
}

impl Stats {
    /// One entry per layer (node), in the order of their first step: the steps of one node (a
    /// convolution's `share` and `HE`) summed, their protocols joined ([`join_protocols`]).
    /// The per-step detail stays in [`Stats::layers`].
    pub fn per_layer(&self) -> Vec<LayerStats> {
        let mut out: Vec<LayerStats> = Vec::new();
        let mut labels: Vec<Vec<String>> = Vec::new();
        for l in &self.layers {
            match out.iter().position(|o| o.name == l.name && o.op == l.op) {
                Some(i) => {
                    out[i].offline += l.offline;
                    out[i].online += l.online;
                    labels[i].push(l.protocol.clone());
                }
                None => {
                    out.push(l.clone());
                    labels.push(vec![l.protocol.clone()]);
                }
            }
        }
        for (o, l) in out.iter_mut().zip(&labels) {
            o.protocol = join_protocols(l.iter().map(String::as_str));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that claims `u64::MAX` bytes for every step (the faults test's garbage) must not
    /// overflow the totals (a panic in debug builds, a wrapped lie in release).
    #[test]
    fn a_peer_claiming_huge_counts_saturates_the_totals() {
        let huge =
            Phase { seconds: 0.0, bytes_client_to_server: u64::MAX, bytes_server_to_client: 7, rounds: u64::MAX };
        let mut total = Phase::default();
        total += huge;
        total += huge;
        assert_eq!(total.bytes_client_to_server, u64::MAX);
        assert_eq!(total.bytes_server_to_client, 14);
        assert_eq!(total.rounds, u64::MAX);
        assert_eq!(huge.bytes(), u64::MAX);
    }

    #[test]
    fn the_steps_of_one_layer_merge_into_one_row() {
        let p =
            |c2s, s2c, rounds| Phase { seconds: 0.5, bytes_client_to_server: c2s, bytes_server_to_client: s2c, rounds };
        let step = |name: &str, op: &str, protocol: &str, off, on| LayerStats {
            name: name.into(),
            op: op.into(),
            protocol: protocol.into(),
            offline: off,
            online: on,
        };
        let s = Stats {
            offline: Phase::default(),
            online: Phase::default(),
            layers: vec![
                step("/conv1/Conv", "conv2d", "share", p(0, 0, 0), p(516, 0, 1)),
                step("/conv1/Conv", "conv2d", "HE", p(409_712, 204_840, 2), p(0, 0, 0)),
                step("/Relu", "relu", "GC", p(1, 2, 3), p(4, 5, 6)),
            ],
        };
        let rows = s.per_layer();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].protocol, "HE+share");
        assert_eq!(rows[0].offline, Phase { seconds: 1.0, ..p(409_712, 204_840, 2) });
        assert_eq!((rows[0].online.bytes_client_to_server, rows[0].online.rounds), (516, 1));
        assert_eq!(rows[0].online.seconds, 1.0);
        assert_eq!(rows[1], s.layers[2]);
        assert_eq!(join_protocols(["share", "HE", "share"]), "HE+share");
    }

    /// The JSON `veil --stats` wrote before the schema moved here (written out by hand, keys
    /// in the old order) parses, and prints back byte for byte.
    #[test]
    fn the_stats_json_keeps_its_keys_and_bytes() {
        let old = r#"{
  "offline": {
    "seconds": 1.25,
    "bytes_client_to_server": 1000,
    "bytes_server_to_client": 2000,
    "rounds": 3
  },
  "online": {
    "seconds": 0.5,
    "bytes_client_to_server": 40,
    "bytes_server_to_client": 50,
    "rounds": 6
  },
  "layers": [
    {
      "name": "/conv1/Conv",
      "op": "conv2d",
      "protocol": "HE",
      "offline": {
        "seconds": 1.25,
        "bytes_client_to_server": 1000,
        "bytes_server_to_client": 2000,
        "rounds": 3
      },
      "online": {
        "seconds": 0.0,
        "bytes_client_to_server": 0,
        "bytes_server_to_client": 0,
        "rounds": 0
      }
    }
  ]
}"#;
        let s: Stats = serde_json::from_str(old).unwrap();
        assert_eq!(s.online.bytes_server_to_client, 50);
        assert_eq!(s.layers[0].protocol, "HE");
        assert_eq!(s.layers[0].offline, s.offline);
        assert_eq!(serde_json::to_string_pretty(&s).unwrap(), old);
        // A renamed or missing key is an error, not a silent zero.
        assert!(serde_json::from_str::<Stats>(&old.replace("\"rounds\": 6", "\"round\": 6")).is_err());
    }
}
