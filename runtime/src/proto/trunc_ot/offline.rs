//! What each party keeps of a truncation's random-choice OTs between the phases: the OTs hashed
//! down, right after the step's silent-OT batches, to the input-independent material the online
//! phase reads (as for the ReLU over OT, `super::super::relu_ot`'s `offline`). Per element,
//! with `A` the ANDs ([`Spec::ands`]), every part bit-packed on its own:
//! - the server: per comparison the key bits masking its tables
//!   ([`millionaire::server_keys`]), `3A` triple bits, and of the two OTs the client sent its
//!   choice bits and its pads' low bits (`ℓ` for `c_low`, `f` for `w`);
//! - the client: per comparison its choices and entry keys ([`millionaire::client_material`]),
//!   `3A` triple bits, both pads' low bits of each OT it sent, and its output mask `r` (8 bytes).

use super::Spec;
use crate::garble::Block;
use crate::proto::bit_triple::Triples;
use crate::proto::millionaire;
use crate::wire::{BitWriter, pack_bits};

/// The low `bits` bits of a pad.
fn pad_bits(p: Block, bits: u32) -> u64 {
    (p.0 as u64) & ((1u64 << bits) - 1)
}

/// The server's offline material for `n` elements. Secret.
pub struct ServerOffline {
    pub(super) n: usize,
    /// Key bits of the wrap comparisons' tables.
    pub(super) wrap: Vec<u8>,
    /// Key bits of the low comparisons' tables.
    pub(super) low: Vec<u8>,
    pub(super) triples: Triples,
    /// Per element, its choice bits of the two OTs the client sent.
    pub(super) rev_choices: Vec<u8>,
    /// Per element, those OTs' pads of its choices: `ℓ` then `f` bits.
    pub(super) rev_pads: Vec<u8>,
}

/// The client's offline material for `n` elements. Secret.
pub struct ClientOffline {
    pub(super) n: usize,
    /// Choices and entry keys of the wrap comparisons.
    pub(super) wrap: Vec<u8>,
    /// Choices and entry keys of the low comparisons.
    pub(super) low: Vec<u8>,
    pub(super) triples: Triples,
    /// Per element, both pads of the two OTs it sent: `ℓ` bits each, then `f` bits each.
    pub(super) reversed: Vec<u8>,
    /// Its output shares (the next layer's masks), fixed offline.
    pub r: Vec<u64>,
}

impl std::fmt::Debug for ServerOffline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "trunc_ot::ServerOffline {{ n: {}, bytes: {}, <redacted> }}", self.n, self.bytes())
    }
}

impl std::fmt::Debug for ClientOffline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "trunc_ot::ClientOffline {{ n: {}, bytes: {}, <redacted> }}", self.n, self.ot_bytes())
    }
}

impl ServerOffline {
    /// The server's material for `n` elements from the pads of the `n·`[`Spec::rots`]
    /// random-choice OTs it sent and its halves (choices, pads) of the `2n` the client sent.
    ///
    /// Panics unless the counts are those of whole elements (the drivers ask for exactly these).
    pub fn new(spec: Spec, pads: &[[Block; 2]], rev_choices: &[bool], rev_pads: &[Block]) -> ServerOffline {
        let n = rev_pads.len() / 2;
        let [a, b, t] = spec.split(n);
        assert_eq!(pads.len(), n * spec.rots(), "trunc_ot: OTs for {n} elements");
        assert_eq!((rev_choices.len(), rev_pads.len()), (2 * n, 2 * n), "trunc_ot: reversed OTs for {n} elements");
        let mut rev = BitWriter::default();
        for p in rev_pads.chunks_exact(2) {
            rev.push(pad_bits(p[0], spec.ell()), spec.ell());
            rev.push(pad_bits(p[1], spec.shift), spec.shift);
        }
        ServerOffline {
            n,
            wrap: millionaire::server_keys(spec.wrap(), &pads[..a]),
            low: millionaire::server_keys(spec.low(), &pads[a..a + b]),
            triples: Triples::server(&pads[a + b..a + b + t]),
            rev_choices: pack_bits(rev_choices),
            rev_pads: rev.finish(),
        }
    }

    /// Elements.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Bytes of the material ([`Spec::server_bytes`]).
    pub fn bytes(&self) -> usize {
        // Every field by name: a field added here must be counted.
        let ServerOffline { n: _, wrap, low, triples, rev_choices, rev_pads } = self;
        wrap.len() + low.len() + triples.bytes() + rev_choices.len() + rev_pads.len()
    }
}

impl ClientOffline {
    /// The client's material for `n = r.len()` elements from its halves (choices, pads) of the
    /// `n·`[`Spec::rots`] random-choice OTs the server sent, the pads of the `2n` it sent, and
    /// its output masks `r`.
    ///
    /// Panics unless the counts are those of `r.len()` elements.
    pub fn new(spec: Spec, choices: &[bool], pads: &[Block], reversed: &[[Block; 2]], r: Vec<u64>) -> ClientOffline {
        let n = r.len();
        let [a, b, t] = spec.split(n);
        assert_eq!((choices.len(), pads.len()), (n * spec.rots(), n * spec.rots()), "trunc_ot: OTs for {n} elements");
        assert_eq!(reversed.len(), 2 * n, "trunc_ot: reversed OTs for {n} elements");
        let mut rev = BitWriter::default();
        for q in reversed.chunks_exact(2) {
            rev.push(pad_bits(q[0][0], spec.ell()), spec.ell());
            rev.push(pad_bits(q[0][1], spec.ell()), spec.ell());
            rev.push(pad_bits(q[1][0], spec.shift), spec.shift);
            rev.push(pad_bits(q[1][1], spec.shift), spec.shift);
        }
        ClientOffline {
            n,
            wrap: millionaire::client_material(spec.wrap(), &choices[..a], &pads[..a]),
            low: millionaire::client_material(spec.low(), &choices[a..a + b], &pads[a..a + b]),
            triples: Triples::client_of(&choices[a + b..a + b + t], &pads[a + b..a + b + t]),
            reversed: rev.finish(),
            r,
        }
    }

    /// Elements.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Bytes of the OT material, without the masks `r` ([`Spec::client_bytes`]; the plan's
    /// `veil_ir::schedule::trunc_ot::client_bytes`).
    pub fn ot_bytes(&self) -> usize {
        // Every field by name: a field added here must be counted.
        let ClientOffline { n: _, wrap, low, triples, reversed, r: _ } = self;
        wrap.len() + low.len() + triples.bytes() + reversed.len()
    }
}

/// Test dealer: both parties' material for `r.len()` elements from fresh dealt OTs.
#[cfg(test)]
pub(crate) fn dealt(spec: Spec, r: Vec<u64>, rng: &mut impl rand::Rng) -> (ServerOffline, ClientOffline) {
    use crate::proto::bit_triple::deal;
    let n = r.len();
    let (pads, ots) = deal(rng, n * spec.rots());
    let (rev_pads, reversed) = deal(rng, n * spec.rots_reversed());
    let server = ServerOffline::new(spec, &pads, &reversed.choices, &reversed.pads);
    (server, ClientOffline::new(spec, &ots.choices, &ots.pads, &rev_pads, r))
}
