//! Boolean circuits as data: what garbled-circuit layers compute.
//!
//! A [`Circuit`] has `inputs` (groups of wires, each an ℓ-bit little-endian integer or a single
//! bit), then gates in SSA order: gate `i` drives wire `n_input_wires + i`. XOR and NOT are free
//! under free-XOR garbling; each AND costs two ciphertexts with half-gates, so
//! [`Circuit::and_count`] gives the exact garbled-table size. The same circuit value is
//! evaluated in plaintext here ([`Circuit::eval`]), counted by the compiler's cost model, and
//! garbled by the runtime.

mod arith;
mod chords;
mod float_grid;
mod nn;
mod round;
mod rsqrt;
mod softmax;

pub use float_grid::{float_grid_fits, float_grid_trunc_mask_narrow};
pub use nn::{
    clip_bounds_fit, clip_trunc_mask, clip_trunc_mask_narrow, leaky_relu_trunc_mask, leaky_relu_trunc_mask_narrow,
    max_trunc_mask, max_trunc_mask_narrow, pl_gelu_trunc_mask, pl_sigmoid_trunc_mask, relu_trunc_mask,
    relu_trunc_mask_narrow, sign_test, trunc_mask, trunc_mask_narrow,
};
pub use round::{round_trunc_mask, round_trunc_mask_narrow, round_width};
pub use rsqrt::rsqrt_trunc_mask;
pub use softmax::{exp2_trunc_mask, reciprocal_trunc_mask};

use serde::{Deserialize, Serialize};

/// A wire index.
pub type Wire = u32;

/// One gate; its output is the next wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Gate {
    /// `a ⊕ b`; free under free-XOR.
    Xor(Wire, Wire),
    /// `a ∧ b`; two ciphertexts with half-gates.
    And(Wire, Wire),
    /// `¬a`; free (the garbler swaps the two labels by XOR with its global offset).
    Not(Wire),
}

/// A Boolean circuit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Circuit {
    /// Sizes of the input groups, in order; their wires come first, group by group.
    pub inputs: Vec<u32>,
    /// Gates in SSA order: gate `i` drives wire `input_wires() + i`; operands are earlier wires.
    pub gates: Vec<Gate>,
    /// Output wires, least significant first.
    pub outputs: Vec<Wire>,
}

/// Gate counts of a circuit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateCount {
    /// AND gates: each is two ciphertexts of garbled table.
    pub and: usize,
    /// XOR gates (free).
    pub xor: usize,
    /// NOT gates (free).
    pub not: usize,
}

impl Circuit {
    /// Number of input wires: the sum of the input group widths.
    pub fn input_wires(&self) -> u32 {
        self.inputs.iter().sum()
    }

    /// Number of wires: inputs plus one per gate.
    pub fn wires(&self) -> u32 {
        self.input_wires() + self.gates.len() as u32
    }

    /// Counts the gates by kind.
    pub fn count(&self) -> GateCount {
        let mut c = GateCount::default();
        for g in &self.gates {
            match g {
                Gate::And(..) => c.and += 1,
                Gate::Xor(..) => c.xor += 1,
                Gate::Not(..) => c.not += 1,
            }
        }
        c
    }

    /// Number of AND gates; the garbled table is two ciphertexts per AND.
    pub fn and_count(&self) -> usize {
        self.count().and
    }

    /// Evaluates on input bits (one `Vec<bool>` per input group) and returns the output bits.
    pub fn eval(&self, inputs: &[Vec<bool>]) -> Vec<bool> {
        assert_eq!(inputs.len(), self.inputs.len(), "one bit vector per input group");
        let mut w: Vec<bool> = Vec::with_capacity(self.wires() as usize);
        for (bits, &n) in inputs.iter().zip(&self.inputs) {
            assert_eq!(bits.len(), n as usize, "input group width");
            w.extend_from_slice(bits);
        }
        for g in &self.gates {
            let v = match *g {
                Gate::Xor(a, b) => w[a as usize] ^ w[b as usize],
                Gate::And(a, b) => w[a as usize] & w[b as usize],
                Gate::Not(a) => !w[a as usize],
            };
            w.push(v);
        }
        self.outputs.iter().map(|&o| w[o as usize]).collect()
    }

    /// Evaluates with integer input groups (each `n` bits, little-endian) and packs the outputs
    /// into an integer.
    pub fn eval_u64(&self, inputs: &[u64]) -> u64 {
        let bits: Vec<Vec<bool>> = inputs.iter().zip(&self.inputs).map(|(&x, &n)| to_bits(x, n)).collect();
        from_bits(&self.eval(&bits))
    }
}

/// The low `n` bits of `x`, least significant first.
pub fn to_bits(x: u64, n: u32) -> Vec<bool> {
    (0..n).map(|i| (x >> i) & 1 == 1).collect()
}

/// Bits (least significant first) as an integer.
pub fn from_bits(bits: &[bool]) -> u64 {
    bits.iter().enumerate().fold(0, |acc, (i, &b)| acc | (u64::from(b) << i))
}

/// Builds a circuit gate by gate.
pub struct Builder {
    inputs: Vec<u32>,
    gates: Vec<Gate>,
    zero: Option<Wire>,
}

impl Builder {
    /// A builder whose input groups have the given widths; returns their wires.
    pub fn new(widths: &[u32]) -> (Self, Vec<Vec<Wire>>) {
        let mut next = 0;
        let groups = widths
            .iter()
            .map(|&n| {
                let g = (next..next + n).collect();
                next += n;
                g
            })
            .collect();
        (Self { inputs: widths.to_vec(), gates: Vec::new(), zero: None }, groups)
    }

    fn push(&mut self, g: Gate) -> Wire {
        self.gates.push(g);
        self.inputs.iter().sum::<u32>() + self.gates.len() as u32 - 1
    }

    /// Appends `a ⊕ b` and returns its output wire.
    pub fn xor(&mut self, a: Wire, b: Wire) -> Wire {
        self.push(Gate::Xor(a, b))
    }

    /// Appends `a ∧ b` and returns its output wire.
    pub fn and(&mut self, a: Wire, b: Wire) -> Wire {
        self.push(Gate::And(a, b))
    }

    /// Appends `¬a` and returns its output wire.
    pub fn not(&mut self, a: Wire) -> Wire {
        self.push(Gate::Not(a))
    }

    /// `a ∨ b = ¬(¬a ∧ ¬b)`: one AND.
    pub fn or(&mut self, a: Wire, b: Wire) -> Wire {
        let (na, nb) = (self.not(a), self.not(b));
        let t = self.and(na, nb);
        self.not(t)
    }

    /// A public constant as `n` wires (from the free zero wire and its negation).
    pub fn constant(&mut self, value: u64, n: usize) -> Vec<Wire> {
        let zero = self.zero();
        let one = self.not(zero);
        (0..n).map(|i| if (value >> i) & 1 == 1 { one } else { zero }).collect()
    }

    /// A wire that is always 0 (`w ⊕ w`, free).
    pub fn zero(&mut self) -> Wire {
        if let Some(z) = self.zero {
            return z;
        }
        let z = self.xor(0, 0);
        self.zero = Some(z);
        z
    }

    /// The circuit with the gates so far and `outputs` (least significant first).
    pub fn finish(self, outputs: Vec<Wire>) -> Circuit {
        Circuit { inputs: self.inputs, gates: self.gates, outputs }
    }
}
