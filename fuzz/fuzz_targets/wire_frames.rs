//! The frame reader (`veil_runtime::net::Channel::recv`) on a byte stream a peer controls: a
//! 4-byte length, then the payload, refused above the step's maximum before any allocation.
//! The first input byte picks the maximum; the reader must return frames that are within it
//! and that tile the stream exactly, then one error (the end of the stream or a refusal), never
//! a panic or a hang.
#![no_main]
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use veil_runtime::net::{Channel, Meter, NetError};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap())
}

/// The length a frame starting at `b` announces.
fn announced(b: &[u8]) -> usize {
    u32::from_le_bytes(b[..4].try_into().unwrap()) as usize
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, stream)) = data.split_first() else { return };
    let max = [0usize, 1, 8, 64, 1 << 12, 1 << 20][pick as usize % 6];
    let stream = stream.to_vec();
    runtime().block_on(async move {
        let reader = Box::pin(std::io::Cursor::new(stream.clone()));
        let mut ch = Channel::new(reader, Box::pin(tokio::io::sink()), Meter::default(), Duration::from_secs(5));
        let mut at = 0usize;
        loop {
            match ch.recv("fuzz", max).await {
                Ok(frame) => {
                    assert!(frame.len() <= max);
                    let len = announced(&stream[at..]);
                    assert_eq!(frame.len(), len);
                    assert_eq!(frame, stream[at + 4..at + 4 + len]);
                    at += 4 + len;
                }
                Err(NetError::Closed { .. }) => {
                    // The stream ended inside (or right at the start of) a frame.
                    let rest = &stream[at..];
                    assert!(rest.len() < 4 || 4 + announced(rest) > rest.len());
                    break;
                }
                Err(NetError::TooLarge { len, max: m, .. }) => {
                    assert_eq!(len as usize, announced(&stream[at..]));
                    assert!(len > m && m == max as u64);
                    break;
                }
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(ch.meter().snapshot().bytes_received, at as u64);
    });
});
