//! What each party keeps of a ReLU layer's random-choice OTs between the phases: the OTs hashed
//! down, right after the layer's silent-OT batches, to the input-independent material the online
//! phase reads (docs/protocols.md, "ReLU over OT", what each party stores). The 16-byte pads are
//! dropped by the caller as soon as this is made; messages and results are those of the pads
//! themselves, since the online cores only ever used these functions of them.
//!
//! Per element, with `A` the ANDs ([`Spec::ands`]) and the products' widths `ℓ` (`keep·(y_s >> f)`,
//! `keep ∧ c_low`) and `f` (`keep ∧ w`; only `ℓ` at shift 0), every part bit-packed on its own:
//! - the server: per comparison the key bits masking its tables
//!   ([`millionaire::server_keys`], as many bits as the tables), `3A` triple bits, both pads'
//!   low bits of each product OT, and of the reversed OT its choice bit and its pad's `ℓ` bits;
//! - the client: per comparison its choices and the key bits of the entries they select
//!   ([`millionaire::client_material`]), `3A` triple bits, per product OT its choice bit and its
//!   pad's low bits, the reversed OT's two pads' `ℓ` bits, and its output mask `r` (8 bytes).

use super::Spec;
use crate::garble::Block;
use crate::proto::bit_triple::Triples;
use crate::proto::millionaire;
use crate::wire::{BitWriter, pack_bits};

/// The low `bits` bits of a pad: a product's value-sized pad.
fn pad_bits(p: Block, bits: u32) -> u64 {
    super::pad_value(p, bits)
}

/// The server's offline material for `n` elements. Secret.
pub struct ServerOffline {
    pub(super) n: usize,
    /// Key bits of the carry comparisons' tables.
    pub(super) carry: Vec<u8>,
    /// Key bits of the low comparisons' tables (empty at shift 0).
    pub(super) low: Vec<u8>,
    pub(super) triples: Triples,
    /// Per element and product OT, its two pads' low bits (the product's width).
    pub(super) products: Vec<u8>,
    /// Per element, its choice bit of the reversed OT (the client sent).
    pub(super) rev_choices: Vec<u8>,
    /// Per element, the reversed OT's pad of its choice, `ℓ` bits.
    pub(super) rev_pads: Vec<u8>,
}

/// The client's offline material for `n` elements. Secret.
pub struct ClientOffline {
    pub(super) n: usize,
    /// Choices and entry keys of the carry comparisons.
    pub(super) carry: Vec<u8>,
    /// Choices and entry keys of the low comparisons (empty at shift 0).
    pub(super) low: Vec<u8>,
    pub(super) triples: Triples,
    /// Per element and product OT, its choice bit.
    pub(super) product_choices: Vec<u8>,
    /// Per element and product OT, its pad's low bits (the product's width).
    pub(super) product_pads: Vec<u8>,
    /// Per element, the reversed OT's two pads (it sent), `ℓ` bits each.
    pub(super) reversed: Vec<u8>,
    /// Its output shares (the next layer's masks), fixed offline.
    pub r: Vec<u64>,
}

impl std::fmt::Debug for ServerOffline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "relu_ot::ServerOffline {{ n: {}, bytes: {}, <redacted> }}", self.n, self.bytes())
    }
}

impl std::fmt::Debug for ClientOffline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "relu_ot::ClientOffline {{ n: {}, bytes: {}, <redacted> }}", self.n, self.ot_bytes())
    }
}

impl ServerOffline {
    /// The server's material for `n` elements from the pads of the `n·`[`Spec::rots`]
    /// random-choice OTs it sent and its halves (choices, pads) of the `n·`[`Spec::rots_reversed`]
    /// the client sent (the `n` product OTs first, then the pairs').
    ///
    /// Panics unless the counts are those of whole elements (the drivers ask for exactly these).
    pub fn new(spec: Spec, pads: &[[Block; 2]], rev_choices: &[bool], rev_pads: &[Block]) -> ServerOffline {
        let n = rev_pads.len() / spec.rots_reversed();
        let [a, b, t, q, _] = spec.split(n);
        assert_eq!(pads.len(), n * spec.rots(), "relu_ot: OTs for {n} elements");
        assert_eq!((rev_choices.len(), rev_pads.len()), (n * spec.rots_reversed(), n * spec.rots_reversed()));
        let widths = spec.product_widths();
        let mut products = BitWriter::default();
        for (p, &w) in pads[a + b + t + q..].iter().zip(widths.iter().cycle()) {
            products.push(pad_bits(p[0], w), w);
            products.push(pad_bits(p[1], w), w);
        }
        // The reversed OTs: the product's first, then the pairs'.
        let mut rev = BitWriter::default();
        for &p in &rev_pads[..n] {
            rev.push(pad_bits(p, spec.ell()), spec.ell());
        }
        let c = a + b;
        ServerOffline {
            n,
            carry: millionaire::server_keys(spec.carry(), &pads[..a]),
            low: spec.low().map_or(Vec::new(), |p| millionaire::server_keys(p, &pads[a..c])),
            triples: Triples::server_paired(
                &pads[c..c + t],
                &pads[c + t..c + t + q],
                &rev_choices[n..],
                &rev_pads[n..],
            ),
            products: products.finish(),
            rev_choices: pack_bits(&rev_choices[..n]),
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
        let ServerOffline { n: _, carry, low, triples, products, rev_choices, rev_pads } = self;
        carry.len() + low.len() + triples.bytes() + products.len() + rev_choices.len() + rev_pads.len()
    }
}

impl ClientOffline {
    /// The client's material for `n = r.len()` elements from its halves (choices, pads) of the
    /// `n·`[`Spec::rots`] random-choice OTs the server sent, the pads of the
    /// `n·`[`Spec::rots_reversed`] it sent (as [`ServerOffline::new`] orders them), and its output
    /// masks `r`.
    ///
    /// Panics unless the counts are those of `r.len()` elements.
    pub fn new(spec: Spec, choices: &[bool], pads: &[Block], reversed: &[[Block; 2]], r: Vec<u64>) -> ClientOffline {
        let n = r.len();
        let [a, b, t, q, _] = spec.split(n);
        assert_eq!((choices.len(), pads.len()), (n * spec.rots(), n * spec.rots()), "relu_ot: OTs for {n} elements");
        assert_eq!(reversed.len(), n * spec.rots_reversed());
        let widths = spec.product_widths();
        let mut product_pads = BitWriter::default();
        for (&p, &w) in pads[a + b + t + q..].iter().zip(widths.iter().cycle()) {
            product_pads.push(pad_bits(p, w), w);
        }
        let mut rev = BitWriter::default();
        for q in &reversed[..n] {
            rev.push(pad_bits(q[0], spec.ell()), spec.ell());
            rev.push(pad_bits(q[1], spec.ell()), spec.ell());
        }
        let (c, p) = (a + b, a + b + t);
        ClientOffline {
            n,
            carry: millionaire::client_material(spec.carry(), &choices[..a], &pads[..a]),
            low: spec
                .low()
                .map_or(Vec::new(), |p| millionaire::client_material(p, &choices[a..a + b], &pads[a..a + b])),
            triples: Triples::client_paired(
                &choices[c..p],
                &pads[c..p],
                &choices[p..p + q],
                &pads[p..p + q],
                &reversed[n..],
            ),
            product_choices: pack_bits(&choices[p + q..]),
            product_pads: product_pads.finish(),
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
    /// `veil_ir::schedule::relu_ot::client_bytes`).
    pub fn ot_bytes(&self) -> usize {
        // Every field by name: a field added here must be counted.
        let ClientOffline { n: _, carry, low, triples, product_choices, product_pads, reversed, r: _ } = self;
        carry.len() + low.len() + triples.bytes() + product_choices.len() + product_pads.len() + reversed.len()
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use veil_ir::ring::Ring;
    use veil_ir::schedule::relu_ot as plan;

    /// What the parties hold between the phases is exactly what the plan says the client stores
    /// (`schedule::relu_ot::client_bytes`, summed by `script::client_storage`) and the server
    /// (`server_bytes`), at every shift of a few ring widths and element counts that do and do
    /// not fill bytes; and it is far below the OTs it was hashed down from (16-byte pads and a
    /// choice byte per OT for the client, two pads per OT for the server): keeping a pad in the
    /// material, counted or not, would fail one of the two.
    #[test]
    fn the_material_is_the_plans_storage_and_far_below_the_pads() {
        let mut rng = ChaCha8Rng::seed_from_u64(41);
        for ell in [2u8, 5, 8, 40, 61] {
            let shifts: Vec<u32> =
                (0..u32::from(ell)).filter(|&f| f < 3 || f == 12 || f + 1 == u32::from(ell)).collect();
            // Unnarrowed, and narrowed to three bits above the shift and to ℓ − 1 where valid.
            let cases = shifts.into_iter().flat_map(|f| {
                [u32::from(ell), f + 3, u32::from(ell) - 1]
                    .into_iter()
                    .filter(move |&w| w == u32::from(ell) || (f > 0 && f + 2 < w && w < u32::from(ell)))
                    .map(move |w| (f, w))
            });
            // Each also into a narrower output ring where the shift leaves room.
            let cases = cases.flat_map(|(f, w)| {
                let narrower = f == 0 || f + 2 < w;
                [ell, ell / 2].into_iter().filter(move |&o| o == ell || (o >= 2 && narrower)).map(move |o| (f, w, o))
            });
            for (shift, w, out) in cases {
                let ring = Ring::new(ell);
                let spec = if w < u32::from(ell) || out < ell {
                    Spec::reading(Ring::new(out), shift, w)
                } else {
                    Spec::new(ring, shift)
                };
                for n in [1usize, 7, 64] {
                    let (s, c) = dealt(spec, vec![0; n], &mut rng);
                    let (client, server) = (c.ot_bytes(), s.bytes());
                    let at = format!("ℓ = {ell}, w = {w}, f = {shift}, out = {out}, n = {n}");
                    assert_eq!(client as u64, plan::client_bytes(out.into(), w, shift, n as u64), "client, {at}");
                    assert_eq!(server as u64, plan::server_bytes(out.into(), w, shift, n as u64), "server, {at}");
                    assert_eq!((client, server), (spec.client_bytes(n), spec.server_bytes(n)), "{at}");
                    let ots = n * (spec.rots() + spec.rots_reversed());
                    if w == u32::from(ell) {
                        assert!(
                            8 * client < 17 * ots && 8 * server < 32 * ots,
                            "{at}: {client}, {server} B for {ots} OTs"
                        );
                    } else {
                        // Narrowed: fewer OTs, still ℓ-bit products; never more than unnarrowed.
                        let full = Spec::new(ring, shift);
                        assert!(client <= full.client_bytes(n) && server <= full.server_bytes(n), "{at}");
                    }
                }
            }
        }
        // At ℓ = 61, f = 12 a ReLU's OTs were 133 pads and choices (2,261 B) and one reversed OT
        // (32 B) for the client: now 55.1 B (7 triples and 11 pairs: 76 bits, not 3·29).
        assert_eq!(Spec::new(Ring::new(61), 12).client_bytes(8), 441);
    }
}
