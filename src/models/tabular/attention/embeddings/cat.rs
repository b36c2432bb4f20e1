//! The categorical tokens: one embedding table for all columns (each column's values at an
//! offset, index 0 of every column on the table's zero row), optional per-column bias, shared
//! column embeddings ([`SharedEmbed`]) and activation.
use super::AttnEmbedConfig;
use crate::error::Result;
use crate::macros::ensure;
use crate::models::init::torch_uniform;
use crate::models::Activation;
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};
use widedeep_preprocessing::CatColumnMeta;

/// How the shared column embedding (one learned vector per categorical column, telling the
/// model which column a token comes from) joins the value embedding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SharedEmbed {
    /// No shared column embedding (the default).
    #[default]
    None,
    /// A full-width column vector added to every value embedding of the column
    /// (`add_shared_embed = True` in the reference).
    Add,
    /// The first `floor(input_dim · frac_shared_embed)` dimensions of every value embedding of
    /// the column are replaced by the column vector (`frac_shared_embed`, in `(0, 1)`).
    Overwrite {
        /// The overwritten fraction of the dimensions, in `(0, 1)`.
        frac_shared_embed: f64,
    },
}

impl SharedEmbed {
    /// Checks the option for tokens of width `input_dim`; `field` names it in errors (e.g.
    /// `saint.embed.shared_embed`).
    pub(crate) fn validate(&self, input_dim: i64, field: &str) -> Result<()> {
        if let SharedEmbed::Overwrite { frac_shared_embed } = *self {
            let field = format!("{field}.frac_shared_embed");
            ensure!(
                frac_shared_embed > 0.0 && frac_shared_embed < 1.0,
                config(&field),
                "must be in (0, 1), got {frac_shared_embed}"
            );
            ensure!(
                ((input_dim as f64) * frac_shared_embed).floor() as i64 >= 1,
                config(field),
                "{frac_shared_embed} of input_dim {input_dim} is less than one dimension"
            );
        }
        Ok(())
    }
}

/// The categorical token layer of [`super::AttnEmbeddings`].
#[derive(Debug)]
pub(super) struct CatTokens {
    table: nn::Embedding,
    /// `[n_cat]` i64: offset of each column's values in the table.
    offsets: Tensor,
    bias: Option<Tensor>,
    /// `[n_cat, width]` and whether it is added (else it overwrites the first `width` dims).
    shared: Option<(Tensor, bool)>,
    activation: Option<Activation>,
}

impl CatTokens {
    /// Tokens of width `d` for the columns `cat` under `path` (`table`, `bias`,
    /// `shared_embed`); `prefix` names the owner in errors (the table must fit in memory).
    pub fn new(
        path: &nn::Path,
        cat: &[CatColumnMeta],
        d: i64,
        cfg: &AttnEmbedConfig,
        prefix: &str,
    ) -> Result<Self> {
        let device = path.device();
        let mut offsets = Vec::with_capacity(cat.len());
        let mut next = 0i64;
        for c in cat {
            offsets.push(next);
            next = next.saturating_add((c.cardinality as i64).saturating_sub(1));
        }
        crate::models::alloc::check_table(
            prefix,
            "categorical token table",
            &[next + 1, d],
            device,
        )?;
        let table = nn::embedding(
            path / "table",
            next + 1,
            d,
            nn::EmbeddingConfig {
                padding_idx: 0,
                ..Default::default()
            },
        );
        tch::no_grad(|| {
            let _ = table.ws.get(0).zero_();
        });
        let n_cat = cat.len() as i64;
        let bias = cfg
            .use_cat_bias
            .then(|| torch_uniform(path, "bias", &[n_cat, d], d));
        let shared = match cfg.shared_embed {
            SharedEmbed::None => None,
            SharedEmbed::Add => Some((
                path.var(
                    "shared_embed",
                    &[n_cat, d],
                    nn::Init::Uniform { lo: -1.0, up: 1.0 },
                ),
                true,
            )),
            SharedEmbed::Overwrite { frac_shared_embed } => {
                let w = ((d as f64) * frac_shared_embed).floor() as i64;
                Some((
                    path.var(
                        "shared_embed",
                        &[n_cat, w],
                        nn::Init::Uniform { lo: -1.0, up: 1.0 },
                    ),
                    false,
                ))
            }
        };
        Ok(CatTokens {
            table,
            offsets: Tensor::from_slice(&offsets).to_device(device),
            bias,
            shared,
            activation: cfg.cat_embed_activation,
        })
    }

    /// # Shapes
    /// - `cat`: `[batch, n_cat]` i64
    /// - returns `[batch, n_cat, d]`
    pub fn forward(&self, cat: &Tensor) -> Tensor {
        let idx = (cat + &self.offsets).masked_fill(&cat.eq(0), 0);
        let x = idx.apply(&self.table);
        let mut x = match &self.bias {
            Some(b) => x + b,
            None => x,
        };
        if let Some((s, add)) = &self.shared {
            x = if *add {
                x + s
            } else {
                let (b, n, d) = x.size3().expect("3-d tokens");
                let w = s.size()[1];
                Tensor::cat(&[s.expand([b, n, w], false), x.narrow(2, w, d - w)], 2)
            };
        }
        match self.activation {
            Some(a) => a.apply(&x),
            None => x,
        }
    }
}
