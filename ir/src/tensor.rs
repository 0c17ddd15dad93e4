//! A dense row-major tensor, the interpreters' unit of data.

/// Row-major `f32` tensor. Class indices from `ArgMax` are stored as exact small floats; the
/// value's [`crate::ElemType`] says how to write them out.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Elements in row-major order; `data.len()` is the product of `shape`.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor of `shape` holding `data`; `None` if the lengths disagree.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Option<Self> {
        (shape.iter().product::<usize>() == data.len()).then_some(Self { shape, data })
    }

    /// A tensor of `shape` filled with `0.0`.
    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Self { shape, data: vec![0.0; n] }
    }

    /// The number of classes when this reads as class scores (`[K]` or `[N, K]` with `K ≥ 2`,
    /// a classifier's output), `None` for anything else (a dense map such as a segmentation's
    /// `[N, C, H, W]`, a scalar, a shape).
    pub fn class_scores(&self) -> Option<usize> {
        match self.shape[..] {
            [k] | [_, k] if k >= 2 => Some(k),
            _ => None,
        }
    }

    /// One line for an output that is not class scores: its shape, and its values when there
    /// are at most 8, else their range.
    pub fn summary(&self) -> String {
        if self.data.len() <= 8 {
            let v: Vec<String> = self.data.iter().map(|x| format!("{x}")).collect();
            return format!("{:?}: [{}]", self.shape, v.join(", "));
        }
        let min = self.data.iter().copied().fold(f32::INFINITY, f32::min);
        let max = self.data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        format!("{:?}: {} values from {min:.4} to {max:.4}", self.shape, self.data.len())
    }
}

/// Row-major strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}
