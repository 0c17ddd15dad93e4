//! What the executors need of a session, whatever carries it: [`PartySession`], implemented by
//! the QUIC [`Session`] and, for tests, by an in-memory pair
//! (`net::memory::session_pair`, feature `insecure-ideal-ot`).

use std::time::Duration;

use super::quic::Session;
use super::{Channel, Meter, NetError};
use crate::ot::{OtReceiver, OtSender, SessionOtReceiver, SessionOtSender};

/// One party's end of a session.
pub trait PartySession: Send {
    /// The party's meter, shared by all its channels.
    fn meter(&self) -> &Meter;
    /// The next message channel; the n-th call on one side pairs with the n-th on the other.
    fn channel(&mut self) -> impl Future<Output = Result<Channel, NetError>> + Send;
    /// The session's OT sender (the server), synchronised over `sync`.
    fn ot_sender(&mut self, sync: Channel) -> SessionOtSender;
    /// The session's OT receiver (the client), synchronised over `sync`.
    fn ot_receiver(&mut self, sync: Channel) -> SessionOtReceiver;
    /// How long the server waits for the client's hello.
    fn hello_timeout(&self) -> Duration;
    /// How long the server waits between the offline phase and the client's input.
    fn input_wait(&self) -> Duration;
}

impl PartySession for Session {
    fn meter(&self) -> &Meter {
        Session::meter(self)
    }

    fn channel(&mut self) -> impl Future<Output = Result<Channel, NetError>> + Send {
        Session::channel(self)
    }

    fn ot_sender(&mut self, sync: Channel) -> SessionOtSender {
        SessionOtSender::Real(Box::new(OtSender::new(self.ot_connection(), sync)))
    }

    fn ot_receiver(&mut self, sync: Channel) -> SessionOtReceiver {
        SessionOtReceiver::Real(Box::new(OtReceiver::new(self.ot_connection(), sync)))
    }

    fn hello_timeout(&self) -> Duration {
        Session::hello_timeout(self)
    }

    fn input_wait(&self) -> Duration {
        Session::input_wait(self)
    }
}
