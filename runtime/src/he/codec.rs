//! The wire form of the HE layers' ciphertexts, written and read directly: byte for byte the
//! `fhe` crate's protobuf encoding (`Ciphertext::to_bytes`), so the cost model's sizes and the
//! canonical-encoding rule of the requests are unchanged, without its costs.
//!
//! `fhe` serializes a polynomial held in NTT form by transforming a copy back to the
//! coefficient domain, bit-packs the coefficients one bit-buffer byte at a time, and parses by
//! the reverse (then transforms again); the server checked a request's canonical form by
//! re-serializing it. Here the writers take polynomials already in the coefficient domain (the
//! server's responses leave the modulus switch there; the client's requests are made there), the
//! packing moves 64-bit words, and a request is canonical by construction of its parse: every
//! framing byte equal to the only encoding `fhe` writes and every coefficient below its prime.
//!
//! Layout (protobuf, fields in tag order; `varint` lengths):
//! - a polynomial (`Rq`): representation `NTT` (`08 02`), degree (`10`, varint), coefficients
//!   (`1a`, length, then per prime the `N` coefficients of the coefficient domain, LSB first at
//!   the prime's width), variable-time flag set (`20 01`);
//! - a ciphertext: each polynomial as field 1 (`0a`, length, `Rq`), the 32-byte seed of its
//!   uniform half as field 2 (`12 20 …`) if it is a seeded (fresh) one, its level as field 3
//!   (`18`, varint) if not 0.

use std::sync::Arc;

use fhe_math::rq::{Context, Poly, Representation, traits::TryConvertFrom};

/// Width in bits of the residues modulo `p` in the encoding.
fn width(p: u64) -> u32 {
    64 - (p - 1).leading_zeros()
}

fn varint(mut x: u64, out: &mut Vec<u8>) {
    while x >= 0x80 {
        out.push(x as u8 | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Appends `values` (each below `2^bits`), LSB first, in `⌈len·bits/8⌉` bytes.
fn pack(values: &[u64], bits: u32, out: &mut Vec<u8>) {
    let (mut acc, mut have) = (0u128, 0u32);
    for &v in values {
        acc |= u128::from(v) << have;
        have += bits;
        if have >= 64 {
            out.extend_from_slice(&(acc as u64).to_le_bytes());
            acc >>= 64;
            have -= 64;
        }
    }
    out.extend_from_slice(&(acc as u64).to_le_bytes()[..have.div_ceil(8) as usize]);
}

/// Reads `n` values of `bits` each from `bytes` (exactly `⌈n·bits/8⌉` of them) into `out`,
/// each checked below `p`; the padding bits of the last byte must be 0.
fn unpack(bytes: &[u8], bits: u32, n: usize, p: u64, out: &mut Vec<u64>) -> Result<(), String> {
    let mask = u64::MAX >> (64 - bits);
    let (mut acc, mut have) = (0u128, 0u32);
    let mut words = bytes.chunks(8);
    for _ in 0..n {
        if have < bits {
            let chunk = words.next().ok_or("coefficients cut short")?;
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            acc |= u128::from(u64::from_le_bytes(w)) << have;
            have += 8 * chunk.len() as u32;
        }
        let v = acc as u64 & mask;
        if v >= p {
            return Err(format!("a coefficient is not reduced modulo its prime ({v} ≥ {p})"));
        }
        out.push(v);
        acc >>= bits;
        have -= bits;
    }
    if acc != 0 || words.next().is_some() {
        return Err("nonzero padding after the coefficients".into());
    }
    Ok(())
}

/// Bytes of one polynomial's coefficients of degree `n` at `ctx`'s primes.
fn coefficient_bytes(ctx: &Context, n: usize) -> usize {
    ctx.moduli().iter().map(|&p| (n * width(p) as usize).div_ceil(8)).sum()
}

/// The framing of one polynomial of degree `n` at `ctx` (field 1 of a ciphertext) up to its
/// coefficients, and what follows them: the variable-time flag, set on ciphertexts (`flag`),
/// absent from the public key's.
fn poly_frame(ctx: &Context, n: usize, flag: bool) -> (Vec<u8>, &'static [u8]) {
    let coeffs = coefficient_bytes(ctx, n);
    let mut rq = vec![0x08, 0x02, 0x10];
    varint(n as u64, &mut rq);
    rq.push(0x1a);
    varint(coeffs as u64, &mut rq);
    let tail: &'static [u8] = if flag { &[0x20, 0x01] } else { &[] };
    let mut head = vec![0x0a];
    varint((rq.len() + coeffs + tail.len()) as u64, &mut head);
    head.extend(rq);
    (head, tail)
}

/// Appends polynomial `p` (coefficient domain) as field 1 of a ciphertext.
fn write_poly(p: &Poly, out: &mut Vec<u8>) {
    assert_eq!(*p.representation(), Representation::PowerBasis, "written from the coefficient domain");
    let ctx = p.ctx();
    let (head, tail) = poly_frame(ctx, p.coefficients().ncols(), true);
    out.extend(head);
    for (row, &q) in p.coefficients().outer_iter().zip(ctx.moduli()) {
        pack(row.as_slice().expect("rows are contiguous"), width(q), out);
    }
    out.extend(tail);
}

/// A fresh seeded ciphertext (the client's request): `c0` in the coefficient domain at the top
/// level, and the seed of its uniform half.
pub fn write_request(c0: &Poly, seed: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(coefficient_bytes(c0.ctx(), c0.coefficients().ncols()) + 64);
    write_poly(c0, &mut out);
    out.extend([0x12, 0x20]);
    out.extend(seed);
    out
}

/// A response ciphertext: its polynomials in the coefficient domain, at `level`.
pub fn write_response(polys: &[Poly], level: usize) -> Vec<u8> {
    let n = polys[0].coefficients().ncols();
    let mut out = Vec::with_capacity(polys.len() * (coefficient_bytes(polys[0].ctx(), n) + 32));
    for p in polys {
        write_poly(p, &mut out);
    }
    if level > 0 {
        out.push(0x18);
        varint(level as u64, &mut out);
    }
    out
}

/// A cursor over a message that must follow one exact framing.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn expect(&mut self, want: &[u8], what: &str) -> Result<(), String> {
        match self.bytes.get(self.at..self.at + want.len()) {
            Some(got) if got == want => {
                self.at += want.len();
                Ok(())
            }
            _ => Err(format!("not the canonical encoding ({what} at byte {})", self.at)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self.bytes.get(self.at..self.at + n).ok_or_else(|| format!("cut short at byte {}", self.at))?;
        self.at += n;
        Ok(s)
    }

    /// One polynomial (field 1) of degree `n` at `ctx`, in the coefficient domain; `flag`: with
    /// the variable-time flag.
    fn poly(&mut self, ctx: &Arc<Context>, n: usize, flag: bool) -> Result<Poly, String> {
        let (head, tail) = poly_frame(ctx, n, flag);
        self.expect(&head, "polynomial header")?;
        let mut rns = Vec::with_capacity(ctx.moduli().len() * n);
        for &q in ctx.moduli() {
            let bytes = self.take((n * width(q) as usize).div_ceil(8))?;
            unpack(bytes, width(q), n, q, &mut rns)?;
        }
        self.expect(tail, "variable-time flag")?;
        let mut p = Poly::try_convert_from(rns, ctx, true, Representation::PowerBasis).map_err(|e| e.to_string())?;
        // SAFETY (in `fhe`'s sense, not memory): the polynomial is the peer's public message.
        unsafe { p.allow_variable_time_computations() };
        Ok(p)
    }

    /// A protobuf varint.
    fn varint(&mut self) -> Result<u64, String> {
        let mut x = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.take(1)?.first().expect("one byte");
            x |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(x);
            }
        }
        Err(format!("a varint longer than 64 bits at byte {}", self.at))
    }

    fn end(&self) -> Result<(), String> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(format!("{} bytes past the end", self.bytes.len() - self.at))
        }
    }
}

/// Parses a request: exactly the encoding [`write_request`] (and `fhe`) writes of a fresh
/// seeded ciphertext of degree `n` at the top level `ctx`. Returns `c0` (coefficient domain)
/// and the seed.
pub fn read_request(bytes: &[u8], ctx: &Arc<Context>, n: usize) -> Result<(Poly, [u8; 32]), String> {
    let mut r = Reader { bytes, at: 0 };
    let c0 = r.poly(ctx, n, true)?;
    r.expect(&[0x12, 0x20], "seed header")?;
    let seed = r.take(32)?.try_into().expect("32 bytes");
    r.end()?;
    Ok((c0, seed))
}

/// Parses a public key: exactly `fhe`'s encoding (a seeded encryption of zero of degree `n` at
/// the top level `ctx`, without the variable-time flag, as field 1 of the key). Returns `c0`
/// (coefficient domain) and the seed of its uniform half.
pub fn read_public_key(bytes: &[u8], ctx: &Arc<Context>, n: usize) -> Result<(Poly, [u8; 32]), String> {
    let inner = coefficient_bytes(ctx, n);
    let (head, tail) = poly_frame(ctx, n, false);
    let ct_len = head.len() + inner + tail.len() + 34;
    let mut outer = vec![0x0a];
    varint(ct_len as u64, &mut outer);
    let mut r = Reader { bytes, at: 0 };
    r.expect(&outer, "key header")?;
    let c0 = r.poly(ctx, n, false)?;
    r.expect(&[0x12, 0x20], "seed header")?;
    let seed = r.take(32)?.try_into().expect("32 bytes");
    r.end()?;
    Ok((c0, seed))
}

/// The coefficients (centred, `n` of them) of a secret key as `fhe` serializes it (field 1,
/// packed zigzag varints): the one way `fhe` exposes them. Secret: the caller holds the bytes
/// and the result in zeroizing buffers.
pub fn read_secret_key(bytes: &[u8], n: usize) -> Result<Vec<i64>, String> {
    let mut r = Reader { bytes, at: 0 };
    r.expect(&[0x0a], "secret key header")?;
    let len = r.varint()? as usize;
    if len != bytes.len() - r.at {
        return Err("secret key length".into());
    }
    let mut out = Vec::with_capacity(n);
    while r.at < bytes.len() {
        let x = r.varint()?;
        out.push((x >> 1) as i64 ^ -((x & 1) as i64));
    }
    if out.len() != n {
        return Err(format!("{} secret key coefficients, expected {n}", out.len()));
    }
    Ok(out)
}

/// Parses a response of `count` polynomials of degree `n` at `ctx`, at `level`, exactly as
/// [`write_response`] writes it; the polynomials are in the coefficient domain.
pub fn read_response(
    bytes: &[u8],
    ctx: &Arc<Context>,
    n: usize,
    count: usize,
    level: usize,
) -> Result<Vec<Poly>, String> {
    let mut r = Reader { bytes, at: 0 };
    let polys = (0..count).map(|_| r.poly(ctx, n, true)).collect::<Result<Vec<_>, _>>()?;
    if level > 0 {
        let mut field = vec![0x18];
        varint(level as u64, &mut field);
        r.expect(&field, "level")?;
    }
    r.end()?;
    Ok(polys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The word-wise packing is `fhe`'s bit order, read back exactly, at every width; a
    /// coefficient at or above the prime and nonzero padding are refused.
    #[test]
    fn packing_round_trips_and_refuses_unreduced_values() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        for bits in 1..=64u32 {
            for n in [1usize, 7, 8, 64, 65, 1000] {
                let top = u64::MAX >> (64 - bits);
                let v: Vec<u64> = (0..n).map(|_| rng.random::<u64>() & top).collect();
                let mut packed = Vec::new();
                pack(&v, bits, &mut packed);
                assert_eq!(packed.len(), (n * bits as usize).div_ceil(8));
                // fhe's order: bit j of value i is bit i·bits + j of the stream.
                for (i, &x) in v.iter().enumerate().take(3) {
                    for j in 0..bits as usize {
                        let k = i * bits as usize + j;
                        assert_eq!((packed[k / 8] >> (k % 8)) & 1, ((x >> j) & 1) as u8, "bits {bits}");
                    }
                }
                let mut back = Vec::new();
                unpack(&packed, bits, n, u64::MAX, &mut back).unwrap();
                assert_eq!(back, v, "bits {bits}, n {n}");
                if let Some(&max) = v.iter().max()
                    && max > 0
                {
                    assert!(unpack(&packed, bits, n, max, &mut Vec::new()).is_err(), "an unreduced value passes");
                }
                if !(n * bits as usize).is_multiple_of(8) {
                    let mut bad = packed.clone();
                    *bad.last_mut().unwrap() |= 0x80;
                    assert!(unpack(&bad, bits, n, u64::MAX, &mut Vec::new()).is_err(), "padding passes");
                }
            }
        }
    }
}
