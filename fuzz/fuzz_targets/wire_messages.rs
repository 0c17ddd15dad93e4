//! Veil's own message codecs (`veil_runtime::wire`) on bytes a peer controls: the hello and its
//! reply, ciphertext lists, ring elements, labels, packed bits and bit fields. Beyond "no
//! panic", each decoder must agree with its encoder: whatever decodes re-encodes to the same
//! bytes (the encodings are canonical), and what the encoder writes decodes to what it was given.
#![no_main]
use libfuzzer_sys::fuzz_target;
use veil_runtime::wire::{self, BitReader, BitWriter};

const HASH: [u8; 32] = [0x5a; 32];

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 6 {
        0 => {
            // The server reading a hello: only the exact hello of its plan passes.
            let verdict = wire::check_hello(rest, &HASH);
            assert_eq!(verdict.is_ok(), rest == wire::hello(&HASH).as_slice());
            let reply = wire::hello_reply(&verdict);
            assert_eq!(wire::parse_hello_reply(&reply).is_ok(), verdict.is_ok());
        }
        1 => {
            // The client reading the server's reply: accepted only as the single byte 0, and
            // a refusal's text carries no control characters.
            match wire::parse_hello_reply(rest) {
                Ok(()) => assert_eq!(rest, [0]),
                Err(reason) => assert!(!reason.chars().any(char::is_control)),
            }
        }
        2 => {
            // A ciphertext list of `count` entries: decodes only when canonical.
            let Some((&count, body)) = rest.split_first() else { return };
            if let Ok(blobs) = wire::unpack_blobs(body, count as usize) {
                assert_eq!(blobs.len(), count as usize);
                assert_eq!(wire::pack_blobs(&blobs), body);
            }
            // A count far beyond what the bytes can hold is refused without allocating for it.
            assert!(wire::unpack_blobs(body, usize::MAX).is_err());
        }
        3 => {
            // Ring elements and labels arrive with exact lengths (`recv_exact`).
            let words = &rest[..rest.len() / 8 * 8];
            assert_eq!(wire::u64s_to_bytes(&wire::bytes_to_u64s(words)), words);
            let blocks = &rest[..rest.len() / 16 * 16];
            assert_eq!(wire::blocks_to_bytes(wire::bytes_to_blocks(blocks)), blocks);
        }
        4 => {
            // Packed bits: the first byte says how many of the last byte's bits count.
            let Some((&spare, packed)) = rest.split_first() else { return };
            let n = (packed.len() * 8).saturating_sub(spare as usize % 8);
            let bits = wire::unpack_bits(packed, n);
            let again = wire::pack_bits(&bits);
            assert_eq!(again.len(), n.div_ceil(8));
            let mask = |i: usize| if i + 1 == again.len() && n % 8 != 0 { (1u8 << (n % 8)) - 1 } else { 0xff };
            for (i, (&a, &b)) in again.iter().zip(packed).enumerate() {
                assert_eq!(a, b & mask(i));
            }
        }
        _ => {
            // Bit fields: widths from the first half, the message from the second; reading
            // and writing back the same widths reproduces the message's bits, and reading past
            // the end yields zeros.
            let (widths, msg) = rest.split_at(rest.len() / 2);
            let widths: Vec<u32> = widths.iter().map(|&w| u32::from(w) % 64 + 1).collect();
            let mut r = BitReader::new(msg);
            let mut w = BitWriter::default();
            let mut total = 0usize;
            for &n in &widths {
                let v = r.take(n);
                assert!(n == 64 || v >> n == 0, "a field wider than asked");
                if total >= msg.len() * 8 {
                    assert_eq!(v, 0, "bits past the end");
                }
                w.push(v, n);
                total += n as usize;
            }
            let out = w.finish();
            assert_eq!(out.len(), total.div_ceil(8));
            let common = total.min(msg.len() * 8);
            let bits_out = wire::unpack_bits(&out, common);
            assert_eq!(bits_out, wire::unpack_bits(msg, common));
        }
    }
});
