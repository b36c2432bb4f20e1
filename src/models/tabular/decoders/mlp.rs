//! [`TabMlpDecoder`]: an MLP from the encoder's output back to the combined embeddings.
use crate::error::Result;
use crate::macros::ensure;
use crate::models::{Mlp, MlpConfig, TabMlpConfig};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// Configuration of [`TabMlpDecoder`] (the reference's `TabMlpDecoder`): an [`Mlp`] from
/// `input_dim` through `mlp.hidden_dims` to `embed_dim`. As in the reference, the last layer is
/// a layer like the others (activation and dropout included).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TabMlpDecoderConfig {
    /// Width of the encoder's output.
    pub input_dim: i64,
    /// Width of the reconstruction: the encoder's combined embeddings.
    pub embed_dim: i64,
    /// The hidden layers (may be empty) and the options of every layer.
    pub mlp: MlpConfig,
}

impl TabMlpDecoderConfig {
    /// The mirror image of a TabMlp encoder whose combined embeddings are `embed_dim` wide:
    /// its hidden widths reversed (the first, the encoder's output, is the input), then
    /// `embed_dim`; activation, dropout and batch-norm options as the encoder's.
    pub fn mirror(encoder: &TabMlpConfig, embed_dim: i64) -> Self {
        let mut dims = encoder.mlp.hidden_dims.clone();
        dims.reverse();
        let input_dim = dims.first().copied().unwrap_or(0);
        Self {
            input_dim,
            embed_dim,
            mlp: encoder
                .mlp
                .clone()
                .hidden_dims(dims.get(1..).unwrap_or(&[])),
        }
    }

    /// The MLP's layers: `mlp.hidden_dims` then `embed_dim`.
    fn layers(&self) -> MlpConfig {
        let mut dims = self.mlp.hidden_dims.clone();
        dims.push(self.embed_dim);
        self.mlp.clone().hidden_dims(dims)
    }

    /// Checks the widths and the MLP options; errors name the field
    /// (`tab_mlp_decoder.embed_dim`, `tab_mlp_decoder.mlp.dropout`).
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.input_dim >= 1,
            config("tab_mlp_decoder.input_dim"),
            "must be ≥ 1, got {}",
            self.input_dim
        );
        ensure!(
            self.embed_dim >= 1,
            config("tab_mlp_decoder.embed_dim"),
            "must be ≥ 1, got {}",
            self.embed_dim
        );
        self.layers().validate("tab_mlp_decoder.mlp")
    }

    /// Validates, then builds the MLP under `path/mlp`.
    pub fn build(&self, path: &nn::Path) -> Result<TabMlpDecoder> {
        self.validate()?;
        let mlp = self
            .layers()
            .build(&(path / "mlp"), self.input_dim, "tab_mlp_decoder.mlp")?;
        Ok(TabMlpDecoder { mlp })
    }
}

/// TabMlp's decoder: `[batch, input_dim]` → `[batch, embed_dim]`.
#[derive(Debug)]
pub struct TabMlpDecoder {
    mlp: Mlp,
}

impl TabMlpDecoder {
    /// # Shapes
    /// - `x`: `[batch, input_dim]`
    /// - returns `[batch, embed_dim]`
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.mlp.forward_t(x, train)
    }
}
