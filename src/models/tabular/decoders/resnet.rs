//! [`TabResnetDecoder`]: an optional MLP, dense residual blocks and a linear reconstruction.
use crate::error::Result;
use crate::macros::{bail, ensure};
use crate::models::checks::check_dropout;
use crate::models::tabular::tab_resnet::{linear_no_bias, DenseResnet};
use crate::models::{Mlp, MlpConfig, TabResnetConfig};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// Configuration of [`TabResnetDecoder`] (the reference's `TabResnetDecoder`): an optional
/// [`Mlp`] (`input_dim` → `mlp.hidden_dims`), residual blocks over `blocks_dims` (as in
/// [`TabResnetConfig`]: a projection when the width entering them differs from
/// `blocks_dims[0]`), then a linear layer without bias to `embed_dim`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TabResnetDecoderConfig {
    /// Width of the encoder's output.
    pub input_dim: i64,
    /// Width of the reconstruction: the encoder's combined embeddings.
    pub embed_dim: i64,
    /// Input and output widths of the blocks (at least two entries).
    pub blocks_dims: Vec<i64>,
    /// Dropout inside each block, in `[0, 1)`.
    pub blocks_dropout: f64,
    /// One linear layer per block instead of two.
    pub simplify_blocks: bool,
    /// An MLP before the blocks.
    pub mlp: Option<MlpConfig>,
}

impl TabResnetDecoderConfig {
    /// The mirror image of a TabResnet encoder whose combined embeddings are `embed_dim` wide:
    /// its blocks reversed, and when it has an MLP, an MLP with the widths reversed leading
    /// back to the last block's width. (The reference's mirror of an encoder with an MLP fails
    /// to build; this is the mirror it describes.)
    pub fn mirror(encoder: &TabResnetConfig, embed_dim: i64) -> Self {
        let mut blocks = encoder.blocks_dims.clone();
        blocks.reverse();
        let last_block = blocks.first().copied().unwrap_or(0);
        let (input_dim, mlp) = match &encoder.mlp {
            Some(m) => {
                let mut dims = m.hidden_dims.clone();
                dims.reverse();
                let input = dims.first().copied().unwrap_or(0);
                let mut hidden = dims.get(1..).unwrap_or(&[]).to_vec();
                hidden.push(last_block);
                (input, Some(m.clone().hidden_dims(hidden)))
            }
            None => (last_block, None),
        };
        Self {
            input_dim,
            embed_dim,
            blocks_dims: blocks,
            blocks_dropout: encoder.blocks_dropout,
            simplify_blocks: encoder.simplify_blocks,
            mlp,
        }
    }

    /// Checks every field; errors name it (`tab_resnet_decoder.blocks_dims`, …).
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("input_dim", self.input_dim), ("embed_dim", self.embed_dim)] {
            ensure!(
                v >= 1,
                config(format!("tab_resnet_decoder.{name}")),
                "must be ≥ 1, got {v}"
            );
        }
        ensure!(
            self.blocks_dims.len() >= 2,
            config("tab_resnet_decoder.blocks_dims"),
            "needs at least two widths (one block), got {:?}",
            self.blocks_dims
        );
        if let Some(d) = self.blocks_dims.iter().find(|&&d| d <= 0) {
            bail!(
                config("tab_resnet_decoder.blocks_dims"),
                "widths must be positive, got {d}"
            );
        }
        check_dropout(self.blocks_dropout, "tab_resnet_decoder.blocks_dropout")?;
        if let Some(m) = &self.mlp {
            m.validate("tab_resnet_decoder.mlp")?;
        }
        Ok(())
    }

    /// Validates, then builds the MLP (`mlp`), the blocks (`input`, `block_{i}`) and the
    /// reconstruction layer (`reconstruction`) under `path`.
    pub fn build(&self, path: &nn::Path) -> Result<TabResnetDecoder> {
        self.validate()?;
        let mlp = self
            .mlp
            .as_ref()
            .map(|m| m.build(&(path / "mlp"), self.input_dim, "tab_resnet_decoder.mlp"))
            .transpose()?;
        let into_blocks = mlp.as_ref().map_or(self.input_dim, Mlp::output_dim);
        let body = DenseResnet::new(
            path,
            into_blocks,
            &self.blocks_dims,
            self.simplify_blocks,
            self.blocks_dropout,
        );
        let last = *self.blocks_dims.last().expect("validated");
        let reconstruction = linear_no_bias(&(path / "reconstruction"), last, self.embed_dim);
        Ok(TabResnetDecoder {
            mlp,
            body,
            reconstruction,
        })
    }
}

/// TabResnet's decoder: `[batch, input_dim]` → `[batch, embed_dim]`.
#[derive(Debug)]
pub struct TabResnetDecoder {
    mlp: Option<Mlp>,
    body: DenseResnet,
    reconstruction: nn::Linear,
}

impl TabResnetDecoder {
    /// # Shapes
    /// - `x`: `[batch, input_dim]`
    /// - returns `[batch, embed_dim]`
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let h = match &self.mlp {
            Some(m) => m.forward_t(x, train),
            None => x.shallow_clone(),
        };
        self.body.forward_t(&h, train).apply(&self.reconstruction)
    }
}
