//! Debug builds: every frame a party sends or receives is checked against the message script of
//! the step it is in ([`veil_ir::schedule::script`], the same description the cost model folds),
//! so a protocol that drifts from its description fails at the first wrong frame, naming the
//! phase, the layer and both messages.
//!
//! One [`ScriptCheck`] per party and session is shared by the party's channels (the main channel
//! and the OT go-ahead channel); the executors set each step's script with [`ScriptCheck::expect`]
//! and stop checking with [`ScriptCheck::end`]. Frames are checked for direction, exact payload
//! size and label. The OT library's own stream bytes ([`Wire::Ot`]) are not framed by Veil and
//! are skipped: an OT batch is checked through its go-ahead and done frames, which carry the
//! batch's label. Release builds do not check (the channel's hook is `cfg(debug_assertions)`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use veil_ir::schedule::script::{Dir, Message, Wire};

/// A frame that does not match the script.
#[derive(Debug, thiserror::Error)]
#[error("script mismatch in {at}: expected {expected}, got {got}")]
pub struct ScriptMismatch {
    /// The position: phase and layer.
    pub at: String,
    /// The message the script expected next (direction, label, bytes), or that the step had no
    /// more frames.
    pub expected: String,
    /// The frame seen instead (direction, label, payload bytes), or the end of the step.
    pub got: String,
}

/// One party's expected messages for the current step.
#[derive(Debug)]
pub struct ScriptCheck {
    client: bool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    at: String,
    /// `None`: not checking (before the first step, after [`ScriptCheck::end`]).
    expected: Option<VecDeque<Message>>,
}

impl State {
    /// The next message a frame can match (OT stream entries skipped), removed.
    fn next_frame(&mut self) -> Option<Message> {
        let q = self.expected.as_mut()?;
        while q.front().is_some_and(|m| m.wire == Wire::Ot) {
            q.pop_front();
        }
        q.pop_front()
    }

    /// An error if frames of the current step are still expected.
    fn complete(&mut self) -> Result<(), ScriptMismatch> {
        match self.next_frame() {
            Some(m) => {
                Err(ScriptMismatch { at: self.at.clone(), expected: m.to_string(), got: "the end of the step".into() })
            }
            None => Ok(()),
        }
    }
}

impl ScriptCheck {
    /// A check for the client's channels (`client`) or the server's; it checks nothing until
    /// the first [`ScriptCheck::expect`].
    pub fn new(client: bool) -> Arc<ScriptCheck> {
        Arc::new(ScriptCheck { client, state: Mutex::new(State::default()) })
    }

    /// Starts a step at position `at` ("offline, layer \"/Relu\" (GC)") whose messages are
    /// `script`; an error if the previous step's script still expected frames.
    pub fn expect(&self, at: String, script: Vec<Message>) -> Result<(), ScriptMismatch> {
        let mut s = self.state.lock().expect("script lock");
        s.complete()?;
        s.at = at;
        s.expected = Some(script.into());
        Ok(())
    }

    /// Ends checking (after the last step; the traffic counts exchanged next are not scripted);
    /// an error if the last step's script still expected frames.
    pub fn end(&self) -> Result<(), ScriptMismatch> {
        let mut s = self.state.lock().expect("script lock");
        let r = s.complete();
        s.expected = None;
        r
    }

    /// Checks one frame of `bytes` payload bytes labelled `label`, sent by this party (`sent`)
    /// or received.
    pub fn frame(&self, sent: bool, label: &str, bytes: usize) -> Result<(), ScriptMismatch> {
        let mut s = self.state.lock().expect("script lock");
        if s.expected.is_none() {
            return Ok(());
        }
        let dir = if sent == self.client { Dir::ClientToServer } else { Dir::ServerToClient };
        let got = format!("{dir} frame {label:?} of {bytes} bytes");
        match s.next_frame() {
            Some(m) if m.dir == dir && m.bytes == bytes as u64 && m.label == label => Ok(()),
            Some(m) => Err(ScriptMismatch { at: s.at.clone(), expected: m.to_string(), got }),
            None => Err(ScriptMismatch { at: s.at.clone(), expected: "no more frames in this step".into(), got }),
        }
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use std::time::Duration;

    use veil_ir::schedule::script::{Phase, label};

    use super::*;
    use crate::net::NetError;
    use crate::net::memory::pair as memory_pair;

    fn frame(dir: Dir, bytes: u64, label: &'static str) -> Message {
        Message { phase: Phase::Online, dir, bytes, label, wire: Wire::Frame }
    }

    /// Both parties follow a script with an OT entry in it; then a deliberately wrong script (a
    /// reveal of 3 elements where the server sends 4) is caught on both sides, naming the step
    /// and both messages.
    #[tokio::test]
    async fn frames_off_the_script_are_errors_naming_the_step() {
        let (mut c, mut s) = memory_pair(Duration::from_secs(5));
        let (cc, sc) = (ScriptCheck::new(true), ScriptCheck::new(false));
        c.check_script(cc.clone());
        s.check_script(sc.clone());
        let share = vec![
            frame(Dir::ClientToServer, 16, label::SHARE),
            Message { phase: Phase::Online, dir: Dir::ServerToClient, bytes: 9, label: "x", wire: Wire::Ot },
        ];
        for check in [&cc, &sc] {
            check.expect("online, layer \"x\" (share)".into(), share.clone()).unwrap();
        }
        c.send_u64s(label::SHARE, &[1, 2]).await.unwrap();
        s.recv_u64s(label::SHARE, 2).await.unwrap();

        let wrong = vec![frame(Dir::ServerToClient, 24, label::REVEAL)];
        let at = "online, layer \"reveal:out\" (reveal)";
        for check in [&cc, &sc] {
            check.expect(at.into(), wrong.clone()).unwrap();
        }
        let err = s.send_u64s(label::REVEAL, &[1, 2, 3, 4]).await.unwrap_err();
        assert!(matches!(err, NetError::Script(_)), "{err}");
        assert_eq!(
            err.to_string(),
            "script mismatch in online, layer \"reveal:out\" (reveal): expected server→client frame \
             \"revealing the output\" of 24 bytes, got server→client frame \"revealing the output\" of 32 bytes"
        );
        // The receiving side catches it too (the sender's check is off here).
        s.script = None;
        s.send_u64s(label::REVEAL, &[1, 2, 3, 4]).await.unwrap();
        let err = c.recv(label::REVEAL, 64).await.unwrap_err().to_string();
        assert!(err.starts_with(&format!("script mismatch in {at}: expected server→client")), "{err}");
        assert!(err.ends_with("of 32 bytes"), "{err}");

        // A frame in the wrong direction, and a step that ends with frames still expected.
        cc.expect(at.into(), wrong.clone()).unwrap();
        let err = c.send(label::REVEAL, &[0; 24]).await.unwrap_err().to_string();
        assert!(err.contains("got client→server frame"), "{err}");
        cc.expect(at.into(), wrong).unwrap();
        let err = cc.end().unwrap_err().to_string();
        assert!(err.contains("got the end of the step") && err.contains(at), "{err}");
        // After the end nothing is checked.
        c.send(label::REVEAL, &[0; 3]).await.unwrap();
    }
}
