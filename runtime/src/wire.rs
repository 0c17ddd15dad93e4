//! The codecs of Veil's own messages: every function here turns bytes a peer sent into values,
//! or values into the bytes the peer decodes. They are pure (no I/O), so the fuzz targets
//! `wire_messages` and `wire_frames` (`fuzz/`) can drive them with arbitrary bytes.
//!
//! Framing (a 4-byte little-endian length, then the payload, refused above the step's maximum
//! before any allocation) is [`crate::net::Channel::recv`]. Fixed-size messages arrive through
//! [`crate::net::Channel::recv_exact`], so the decoders of ring elements, labels and bit fields
//! here may rely on their length; the variable ones (hello, its reply, ciphertext lists) check
//! everything. HE ciphertexts themselves are decoded by the `fhe` crate (fuzz target
//! `he_messages`); OT messages by `cryprot-ot`.

use veil_ir::plan::{FORMAT_VERSION, Hash, hex};

use crate::garble::Block;

/// First bytes of a session.
pub const SESSION_MAGIC: [u8; 8] = *b"VEILSESS";

/// The version of Veil's session protocol: every message of every step, in order and size
/// (docs/protocols.md). Bump it whenever a step's messages change, so that two Veil builds that
/// would misunderstand each other are refused at the hello, naming the older side.
///
/// 1: everything before the hello carried it. 2: the client's HE public key and re-randomised
/// responses; a hash key ahead of each garbling's tables. 3: strided convolutions' HE requests and
/// responses by stride phases; ReLU and truncation over OT with their AND levels' openings
/// piggybacked on fewer flights.
pub const PROTOCOL_VERSION: u16 = 3;

/// Length of the client's hello: magic, plan format version, protocol version, plan hash.
pub const HELLO_LEN: usize = SESSION_MAGIC.len() + 2 + 2 + 32;

/// Length of a protocol-1 hello (no protocol version).
const HELLO_V1_LEN: usize = SESSION_MAGIC.len() + 2 + 32;

/// The client's hello: magic, plan format version, protocol version, plan hash.
pub fn hello(hash: &Hash) -> Vec<u8> {
    let mut v = SESSION_MAGIC.to_vec();
    v.extend(FORMAT_VERSION.to_le_bytes());
    v.extend(PROTOCOL_VERSION.to_le_bytes());
    v.extend(hash);
    v
}

/// Which side is older when two versions differ, as the refusal says it.
fn older(what: &str, client: u16, server: u16) -> String {
    let side = if client < server { "client" } else { "server" };
    format!("the {side} is older: the client speaks {what} {client}, the server {server}; update the {side}")
}

/// The server's check of a hello against its plan hash: why the session cannot go on, if so.
pub fn check_hello(hello: &[u8], hash: &Hash) -> Result<(), String> {
    if hello.len() < 10 || hello[..8] != SESSION_MAGIC {
        return Err("not a Veil client (bad hello)".to_string());
    }
    let format = u16::from_le_bytes([hello[8], hello[9]]);
    if hello.len() == HELLO_V1_LEN {
        return Err(older("protocol version", 1, PROTOCOL_VERSION));
    }
    if hello.len() != HELLO_LEN {
        return Err("not a Veil client (bad hello)".to_string());
    }
    let protocol = u16::from_le_bytes([hello[10], hello[11]]);
    if protocol != PROTOCOL_VERSION {
        return Err(older("protocol version", protocol, PROTOCOL_VERSION));
    }
    if format != FORMAT_VERSION {
        return Err(older("plan format version", format, FORMAT_VERSION));
    }
    if hello[12..] != hash[..] {
        let theirs: Hash = hello[12..].try_into().expect("length checked above");
        return Err(format!("different plans: the client has {}, the server {}", hex(&theirs), hex(hash)));
    }
    Ok(())
}

/// The server's answer to a hello: accepted, or refused with the reason.
pub fn hello_reply(verdict: &Result<(), String>) -> Vec<u8> {
    match verdict {
        Ok(()) => vec![0],
        Err(reason) => {
            let mut reply = vec![1u8];
            reply.extend(reason.as_bytes());
            reply
        }
    }
}

/// The client's reading of [`hello_reply`]: the server's reason when it refused (bytes that
/// are not UTF-8 are replaced, so a hostile server cannot inject control sequences through
/// invalid encodings; printable text is all it can choose).
pub fn parse_hello_reply(reply: &[u8]) -> Result<(), String> {
    match reply.split_first() {
        Some((0, [])) => Ok(()),
        Some((0, _)) => Err("the server's acceptance had trailing bytes".to_string()),
        Some((_, reason)) => {
            let text = String::from_utf8_lossy(reason);
            Err(text.chars().map(|c| if c.is_control() { '?' } else { c }).collect())
        }
        None => Err("the server's reply was empty".to_string()),
    }
}

/// A list of byte strings (HE ciphertexts), each with a 4-byte little-endian length.
pub fn pack_blobs(blobs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(blobs.iter().map(|b| b.len() + 4).sum());
    for b in blobs {
        out.extend((b.len() as u32).to_le_bytes());
        out.extend(b);
    }
    out
}

/// Exactly `count` byte strings packed by [`pack_blobs`], nothing after them.
pub fn unpack_blobs(bytes: &[u8], count: usize) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut out = Vec::with_capacity(count.min(bytes.len() / 4));
    let mut rest = bytes;
    for _ in 0..count {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or("truncated ciphertext list")?;
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            return Err("truncated ciphertext");
        }
        out.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    if !rest.is_empty() {
        return Err("trailing bytes after the ciphertexts");
    }
    Ok(out)
}

/// Ring elements, 8 little-endian bytes each.
pub fn u64s_to_bytes(xs: &[u64]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The ring elements in `b` (a whole number of 8-byte words; a partial tail is ignored).
pub fn bytes_to_u64s(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
}

/// Wire labels, 16 bytes each.
pub fn blocks_to_bytes(bs: impl IntoIterator<Item = Block>) -> Vec<u8> {
    bs.into_iter().flat_map(|b| b.to_bytes()).collect()
}

/// The labels in `b` (a whole number of 16-byte blocks; a partial tail is ignored).
pub fn bytes_to_blocks(b: &[u8]) -> Vec<Block> {
    b.chunks_exact(16).map(|c| Block::from_bytes(c.try_into().expect("16 bytes"))).collect()
}

/// Packs bits, least significant first.
pub fn pack_bits(bits: &[bool]) -> Vec<u8> {
    let mut packed = vec![0u8; bits.len().div_ceil(8)];
    for (j, &b) in bits.iter().enumerate() {
        packed[j / 8] |= u8::from(b) << (j % 8);
    }
    packed
}

/// The first `n` bits packed by [`pack_bits`]; bits past the end of `packed` read as zero.
pub fn unpack_bits(packed: &[u8], n: usize) -> Vec<bool> {
    (0..n).map(|j| packed.get(j / 8).is_some_and(|byte| (byte >> (j % 8)) & 1 == 1)).collect()
}

/// Appends bit fields (at most 64 bits each) to a byte vector, least significant first.
#[derive(Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    acc: u128,
    held: u32,
}

impl BitWriter {
    /// Appends the low `n` bits of `v` (`n` ≤ 64; higher bits of `v` are ignored).
    pub fn push(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 64, "bit fields are at most 64 bits");
        let v = if n >= 64 { v } else { v & ((1u64 << n) - 1) };
        self.acc |= (v as u128) << self.held;
        self.held += n;
        while self.held >= 64 {
            self.bytes.extend_from_slice(&(self.acc as u64).to_le_bytes());
            self.acc >>= 64;
            self.held -= 64;
        }
    }

    /// The bytes written, the last one zero-padded: `ceil(total bits / 8)` bytes.
    pub fn finish(mut self) -> Vec<u8> {
        let tail = self.held.div_ceil(8) as usize;
        self.bytes.extend_from_slice(&(self.acc as u64).to_le_bytes()[..tail]);
        self.bytes
    }
}

/// Reads bit fields written by [`BitWriter`]; reading past the end yields zero bits (callers
/// check message lengths first).
pub struct BitReader<'a> {
    bytes: &'a [u8],
    next: usize,
    acc: u128,
    held: u32,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, next: 0, acc: 0, held: 0 }
    }

    /// The next `n` bits (`n` ≤ 64).
    pub fn take(&mut self, n: u32) -> u64 {
        debug_assert!(n <= 64, "bit fields are at most 64 bits");
        if self.held < n {
            let mut word = [0u8; 8];
            let start = self.next.min(self.bytes.len());
            let end = (self.next + 8).min(self.bytes.len());
            word[..end - start].copy_from_slice(&self.bytes[start..end]);
            self.next += 8;
            self.acc |= (u64::from_le_bytes(word) as u128) << self.held;
            self.held += 64;
        }
        let v = if n >= 64 { self.acc as u64 } else { (self.acc as u64) & ((1u64 << n) - 1) };
        self.acc >>= n;
        self.held -= n;
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trip_and_refusals() {
        let hash = [7u8; 32];
        assert_eq!(check_hello(&hello(&hash), &hash), Ok(()));
        assert!(check_hello(&hello(&hash), &[8u8; 32]).unwrap_err().contains("different plans"));
        assert!(check_hello(&hello(&hash)[..43], &hash).unwrap_err().contains("bad hello"));
        let mut other = hello(&hash);
        other[8] ^= 1;
        assert!(check_hello(&other, &hash).unwrap_err().contains("format version"));
        // Another protocol version names the older side.
        let mut newer = hello(&hash);
        newer[10..12].copy_from_slice(&(PROTOCOL_VERSION + 1).to_le_bytes());
        assert!(check_hello(&newer, &hash).unwrap_err().starts_with("the server is older"));
        let mut older = hello(&hash);
        older[10..12].copy_from_slice(&(PROTOCOL_VERSION - 1).to_le_bytes());
        assert!(check_hello(&older, &hash).unwrap_err().starts_with("the client is older"));
        // A protocol-1 client's hello (no version field) is recognised as older.
        let v1: Vec<u8> = [&hello(&hash)[..10], &hash[..]].concat();
        let err = check_hello(&v1, &hash).unwrap_err();
        assert!(err.starts_with("the client is older") && err.contains("protocol version 1"), "{err}");
        assert_eq!(parse_hello_reply(&hello_reply(&Ok(()))), Ok(()));
        let refused = hello_reply(&Err("no\x1b[2Jway".into()));
        assert_eq!(parse_hello_reply(&refused), Err("no?[2Jway".into()));
        assert!(parse_hello_reply(&[]).is_err());
        assert!(parse_hello_reply(&[0, 0]).is_err());
    }

    #[test]
    fn blobs_round_trip_and_refusals() {
        let blobs = vec![vec![1, 2, 3], vec![], vec![9; 300]];
        let packed = pack_blobs(&blobs);
        assert_eq!(unpack_blobs(&packed, 3).unwrap(), blobs);
        assert_eq!(unpack_blobs(&packed, 2), Err("trailing bytes after the ciphertexts"));
        assert_eq!(unpack_blobs(&packed, 4), Err("truncated ciphertext list"));
        assert_eq!(unpack_blobs(&packed[..packed.len() - 1], 3), Err("truncated ciphertext"));
        // A huge count with few bytes allocates for what the bytes can hold, not the count.
        assert_eq!(unpack_blobs(&[0; 8], usize::MAX), Err("truncated ciphertext list"));
    }

    #[test]
    fn bit_fields_round_trip() {
        let fields: Vec<(u64, u32)> =
            (0..200u64).map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15), (i % 64 + 1) as u32)).collect();
        let mut w = BitWriter::default();
        for &(v, n) in &fields {
            w.push(v, n);
        }
        let bytes = w.finish();
        assert_eq!(bytes.len(), fields.iter().map(|f| f.1 as usize).sum::<usize>().div_ceil(8));
        let mut r = BitReader::new(&bytes);
        for &(v, n) in &fields {
            let want = if n == 64 { v } else { v & ((1 << n) - 1) };
            assert_eq!(r.take(n), want);
        }
        assert_eq!(r.take(64), 0, "past the end reads zeros");
        let bits: Vec<bool> = (0..77).map(|i| i % 3 == 0).collect();
        assert_eq!(unpack_bits(&pack_bits(&bits), 77), bits);
        assert_eq!(unpack_bits(&[0xff], 10)[8..], [false, false]);
    }
}
