//! Encoder–decoder pretraining (masked reconstruction; the reference's `EncoderDecoderTrainer`,
//! after TabNet's self-supervised pretraining): a random `masked_prob` share of the entries of
//! the encoder's combined embeddings is zeroed, the encoder reads the masked embeddings, a
//! decoder (by default the encoder's mirror image, see [`crate::models::tabular::decoders`])
//! reconstructs the full embeddings, and the loss is the squared error on the masked entries,
//! each feature scaled by its variance over the batch ([`reconstruction_loss`]).
//!
//! Encoders: [`TabMlp`], [`TabResnet`] and [`TabNet`]. **Difference to the reference**: the
//! reference feeds TabMlp and TabResnet the *unmasked* input and masks only the loss (so the
//! reconstruction target is visible to the encoder); here every encoder reads the masked
//! embeddings, as TabNet does in both. TabNet also starts its decision steps from the prior
//! `1 - mask`, as in the reference. In evaluation mode nothing is masked and the loss covers
//! every entry (as the reference's).
use super::{PretrainModel, Pretrainer, ENCODER_PREFIX};
use crate::error::Result;
use crate::macros::{bail, ensure, setters};
use crate::models::tabular::decoders::{
    TabDecoder, TabDecoderConfig, TabMlpDecoderConfig, TabNetDecoderConfig, TabResnetDecoderConfig,
};
use crate::models::tabular::embeddings::TabEmbeddings;
use crate::models::{ComponentConfig, ModelInput, TabMlp, TabModelConfig, TabNet, TabResnet};
use crate::training::amp::to_f32;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

/// [`Pretrainer`] of the encoder–decoder route.
pub type EncoderDecoderTrainer = Pretrainer<EncoderDecoder>;

/// The reference's default share of masked embedding entries.
fn default_masked_prob() -> f64 {
    0.2
}

fn default_seed() -> u64 {
    1
}

/// Configuration of the encoder–decoder route: the encoder (a [`TabModelConfig::TabMlp`],
/// [`TabModelConfig::TabResnet`] or [`TabModelConfig::TabNet`]: the same configuration the
/// fine-tuned [`WideDeepConfig::deeptabular`](crate::models::WideDeepConfig::deeptabular) must
/// hold), the decoder (`None`: the encoder's mirror image), the masking rate and the seed of
/// the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderDecoderConfig {
    /// The encoder to pretrain.
    pub encoder: TabModelConfig,
    /// The decoder; `None` builds the encoder's mirror image.
    #[serde(default)]
    pub decoder: Option<TabDecoderConfig>,
    /// Probability that an entry of the combined embeddings is masked (zeroed at the input,
    /// counted in the loss), in `(0, 1)`; the reference's default 0.2.
    #[serde(default = "default_masked_prob")]
    pub masked_prob: f64,
    /// Seed of the initial weights (encoder first, then decoder).
    #[serde(default = "default_seed")]
    pub seed: u64,
}

impl EncoderDecoderConfig {
    /// The route for `encoder` with the mirror-image decoder, `masked_prob` 0.2 and seed 1.
    pub fn new(encoder: impl Into<TabModelConfig>) -> Self {
        Self {
            encoder: encoder.into(),
            decoder: None,
            masked_prob: default_masked_prob(),
            seed: default_seed(),
        }
    }
    setters!(masked_prob: f64, seed: u64);

    /// Uses `decoder` instead of the encoder's mirror image.
    pub fn decoder(mut self, decoder: TabDecoderConfig) -> Self {
        self.decoder = Some(decoder);
        self
    }

    /// The encoder's combined-embedding width and output width (for TabNet: `step_dim`).
    fn encoder_widths(&self) -> Result<(i64, i64)> {
        let embed = |cat: &[widedeep_preprocessing::CatColumnMeta], n_cont: usize| {
            cat.iter().map(|c| c.embed_dim as i64).sum::<i64>() + n_cont as i64
        };
        Ok(match &self.encoder {
            TabModelConfig::TabMlp(c) => (
                embed(&c.cat_embed, c.cont_cols.len()),
                *c.mlp.hidden_dims.last().unwrap_or(&0),
            ),
            TabModelConfig::TabResnet(c) => (
                embed(&c.cat_embed, c.cont_cols.len()),
                match &c.mlp {
                    Some(m) => *m.hidden_dims.last().unwrap_or(&0),
                    None => *c.blocks_dims.last().unwrap_or(&0),
                },
            ),
            TabModelConfig::TabNet(c) => (embed(&c.cat_embed, c.cont_cols.len()), c.step_dim),
            other => bail!(
                config("encoder_decoder.encoder"),
                "the encoder–decoder route pretrains tab_mlp, tab_resnet and tab_net encoders, \
                 got `{}` (the attention models take the contrastive–denoising route)",
                other.name()
            ),
        })
    }

    /// The decoder: the configured one, or the encoder's mirror image.
    pub fn resolved_decoder(&self) -> Result<TabDecoderConfig> {
        if let Some(d) = &self.decoder {
            return Ok(d.clone());
        }
        let (embed, _) = self.encoder_widths()?;
        Ok(match &self.encoder {
            TabModelConfig::TabMlp(c) => {
                TabDecoderConfig::TabMlp(TabMlpDecoderConfig::mirror(c, embed))
            }
            TabModelConfig::TabResnet(c) => {
                TabDecoderConfig::TabResnet(TabResnetDecoderConfig::mirror(c, embed))
            }
            TabModelConfig::TabNet(c) => {
                TabDecoderConfig::TabNet(TabNetDecoderConfig::mirror(c, embed))
            }
            _ => unreachable!("encoder_widths rejects the other encoders"),
        })
    }

    /// Checks `masked_prob`, that the encoder is one this route pretrains, the encoder's and
    /// the decoder's own fields, and that the decoder fits the encoder (input and
    /// reconstruction widths; a TabNet encoder needs a TabNet decoder with its steps and only
    /// it). Errors name the field (`encoder_decoder.masked_prob`, `encoder_decoder.encoder`,
    /// `encoder_decoder.decoder`, `tab_mlp.mlp.dropout`).
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.masked_prob > 0.0 && self.masked_prob < 1.0,
            config("encoder_decoder.masked_prob"),
            "must be in (0, 1), got {}",
            self.masked_prob
        );
        let (embed, out) = self.encoder_widths()?;
        self.encoder.validate()?;
        let decoder = self.resolved_decoder()?;
        decoder.validate()?;
        let field = "encoder_decoder.decoder";
        ensure!(
            decoder.embed_dim() == embed,
            config(field),
            "`{}` reconstructs {} values, the encoder's combined embeddings have {embed}",
            decoder.name(),
            decoder.embed_dim()
        );
        match (&self.encoder, &decoder) {
            (TabModelConfig::TabNet(e), TabDecoderConfig::TabNet(d)) => ensure!(
                d.n_steps == e.n_steps && d.step_dim == e.step_dim,
                config(field),
                "the TabNet decoder reads {} steps of width {}, the encoder gives {} of {}",
                d.n_steps,
                d.step_dim,
                e.n_steps,
                e.step_dim
            ),
            (TabModelConfig::TabNet(_), d) | (_, d @ TabDecoderConfig::TabNet(_)) => bail!(
                config(field),
                "a `{}` encoder needs a tab_net_decoder and a tab_net_decoder a `tab_net` \
                 encoder, got `{}` and `{}`",
                self.encoder.name(),
                self.encoder.name(),
                d.name()
            ),
            (_, TabDecoderConfig::TabMlp(d)) => ensure!(
                d.input_dim == out,
                config(field),
                "`tab_mlp_decoder.input_dim` is {}, the encoder's output width {out}",
                d.input_dim
            ),
            (_, TabDecoderConfig::TabResnet(d)) => ensure!(
                d.input_dim == out,
                config(field),
                "`tab_resnet_decoder.input_dim` is {}, the encoder's output width {out}",
                d.input_dim
            ),
        }
        Ok(())
    }
}

/// The encoders of this route.
#[derive(Debug)]
enum Encoder {
    Mlp(TabMlp),
    Resnet(TabResnet),
    Net(TabNet),
}

impl Encoder {
    fn embeddings(&self) -> &TabEmbeddings {
        match self {
            Encoder::Mlp(m) => &m.embed,
            Encoder::Resnet(m) => &m.embed,
            Encoder::Net(m) => &m.embed,
        }
    }
}

/// The encoder–decoder model: the encoder under `deeptabular` (as in a `WideDeep`) and the
/// decoder under `decoder`, in one variable store.
#[derive(Debug)]
pub struct EncoderDecoder {
    vs: nn::VarStore,
    encoder: Encoder,
    decoder: TabDecoder,
    config: EncoderDecoderConfig,
}

impl EncoderDecoder {
    /// Validates `config`, then builds the encoder and the decoder on `device` with weights
    /// drawn from `config.seed` (encoder first).
    pub fn new(config: &EncoderDecoderConfig, device: Device) -> Result<Self> {
        config.validate()?;
        let decoder_cfg = config.resolved_decoder()?;
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(config.seed as i64);
        let vs = nn::VarStore::new(device);
        let path = vs.root() / ENCODER_PREFIX;
        let encoder = match &config.encoder {
            TabModelConfig::TabMlp(c) => Encoder::Mlp(c.build(&path)?),
            TabModelConfig::TabResnet(c) => Encoder::Resnet(c.build(&path)?),
            TabModelConfig::TabNet(c) => Encoder::Net(c.build(&path)?),
            _ => unreachable!("validated"),
        };
        let decoder = decoder_cfg.build(&(vs.root() / "decoder"))?;
        Ok(Self {
            vs,
            encoder,
            decoder,
            config: EncoderDecoderConfig {
                decoder: Some(decoder_cfg),
                ..config.clone()
            },
        })
    }

    /// The configuration, with the decoder resolved.
    pub fn config(&self) -> &EncoderDecoderConfig {
        &self.config
    }

    /// A mask with 1 where an entry is masked, drawn from libtorch's generator: each entry
    /// independently with probability `masked_prob`.
    ///
    /// # Shapes
    /// - `like`: `[batch, embed_dim]`
    /// - returns `[batch, embed_dim]` f32 of 0 and 1
    pub fn draw_mask(&self, like: &Tensor) -> Tensor {
        // uniform draws below p: the same distribution as `bernoulli`, whose CPU kernel is a
        // serial loop
        Tensor::rand(like.size(), (Kind::Float, like.device()))
            .lt(self.config.masked_prob)
            .to_kind(Kind::Float)
    }

    /// The combined embeddings, their reconstruction and the mask of the loss. In training
    /// the masked entries are zeroed before the encoder; in evaluation nothing is masked and
    /// the mask is all ones.
    ///
    /// # Shapes
    /// - `input.cat`: `[batch, n_cat]` i64, `input.cont`: `[batch, n_cont]` f32
    /// - returns `(x_embed, x_rec, mask)`, each `[batch, embed_dim]`
    pub fn forward_t(&self, input: &ModelInput, train: bool) -> (Tensor, Tensor, Tensor) {
        let x = self.encoder.embeddings().forward_t(input, train);
        let (seen, mask) = if train {
            let mask = self.draw_mask(&x);
            (&x * (1.0 - &mask), mask)
        } else {
            (x.shallow_clone(), x.ones_like().detach())
        };
        let rec = match &self.encoder {
            Encoder::Mlp(m) => self
                .decoder
                .forward_t(&[m.forward_combined(&seen, train)], train),
            Encoder::Resnet(m) => self
                .decoder
                .forward_t(&[m.forward_combined(&seen, train)], train),
            Encoder::Net(m) => {
                let prior = train.then(|| 1.0 - &mask);
                let enc = m.encode(&seen, prior.as_ref(), train, false, false);
                self.decoder.forward_t(&enc.steps, train)
            }
        };
        (x, rec, mask)
    }
}

impl PretrainModel for EncoderDecoder {
    const NAME: &'static str = "encoder_decoder";
    /// `(x_embed, x_rec, mask)` of [`EncoderDecoder::forward_t`].
    type Output = (Tensor, Tensor, Tensor);

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn encoder_config(&self) -> &TabModelConfig {
        &self.config.encoder
    }

    fn config_json(&self) -> Result<serde_json::Value> {
        Ok(serde_json::to_value(&self.config)?)
    }

    fn check_input(&self, input: &ModelInput) -> Result<()> {
        self.encoder.embeddings().check_input(input)
    }

    fn forward(&self, input: &ModelInput, train: bool) -> Self::Output {
        self.forward_t(input, train)
    }

    fn loss(&self, (x, rec, mask): Self::Output) -> Tensor {
        reconstruction_loss(&to_f32(x), &to_f32(rec), &to_f32(mask))
    }
}

/// The encoder–decoder loss (the reference's `EncoderDecoderLoss`, after TabNet's): per row,
/// the squared errors on the masked entries, each divided by its feature's variance over the
/// batch, summed and divided by the row's number of masked entries (+1e-9); the mean over
/// rows. A feature's variance is the unbiased one of `x_true`; where it is 0 it is replaced by
/// the feature's |mean|, and a zero mean counts as 1.
///
/// # Shapes
/// - `x_true`, `x_pred`, `mask`: `[batch, d]` (batch ≥ 2), `mask` 1 where the loss counts
/// - returns a scalar
pub fn reconstruction_loss(x_true: &Tensor, x_pred: &Tensor, mask: &Tensor) -> Tensor {
    let errors = (x_pred - x_true) * mask;
    let rows = x_true.size()[0];
    let means = x_true.mean_dim(0, true, Kind::Float);
    // the unbiased variance from the values shifted by the first row: a feature constant over
    // the batch gets exactly 0, as from libtorch's `var` (a slower double-precision Welford
    // reduction), so that the fall-back below applies to the same features
    let shifted = x_true - x_true.narrow(0, 0, 1);
    let s1 = shifted.sum_dim_intlist(0, false, Kind::Float);
    let s2 = shifted.square().sum_dim_intlist(0, false, Kind::Float);
    let var = (s2 - s1.square() / rows as f64) / (rows - 1).max(1) as f64;
    let means = means.squeeze_dim(0);
    let means = means.where_self(&means.ne(0.0), &means.ones_like());
    let var = var.where_self(&var.ne(0.0), &means.abs());
    let per_row = errors.square().matmul(&var.reciprocal());
    let n_masked = mask.sum_dim_intlist(1, false, Kind::Float);
    (per_row / (n_masked + 1e-9)).mean(Kind::Float)
}

#[cfg(test)]
mod tests;
