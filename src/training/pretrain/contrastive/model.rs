//! The pretraining model: the encoder's embeddings and blocks, the two projection heads and the
//! denoising MLPs (the reference's `ContrastiveDenoisingModel`).
use super::augment::{cut_mix, mix_up};
use super::config::{ContrastiveDenoisingConfig, DenoiseMlpType, FIELD};
use super::losses::{denoising_loss, info_nce_loss};
use crate::error::Result;
use crate::macros::{bail, ensure};
use crate::models::tabular::attention::{build_token_encoder, TokenEncoder};
use crate::models::{Activation, Mlp, MlpConfig, ModelInput};
use crate::training::amp::to_f32;
use crate::training::pretrain::ENCODER_PREFIX;
use tch::{nn, Kind, Tensor};

/// A reference-style MLP (`Linear → activation` per layer, the last one included; no dropout
/// or batch norm) with widths `dims` (input first).
fn plain_mlp(path: &nn::Path, dims: &[i64], act: Activation, field: &str) -> Result<Mlp> {
    MlpConfig::default()
        .hidden_dims(dims[1..].to_vec())
        .activation(act)
        .dropout(0.0)
        .build(path, dims[0], field)
}

/// The denoising MLPs of one kind of column: one per column, or one for all.
#[derive(Debug)]
enum Denoise {
    PerColumn(Vec<Mlp>),
    Shared(Mlp),
}

/// What one forward pass gives for the losses (the route's [`PretrainModel::Output`]).
///
/// [`PretrainModel::Output`]: crate::training::pretrain::PretrainModel::Output
#[derive(Debug)]
pub struct CdOutput {
    /// The projections of the clean and the corrupted encodings.
    pub projections: Option<(Tensor, Tensor)>,
    /// `(classes, logits)` pairs of the categorical columns.
    pub cat: Vec<(Tensor, Tensor)>,
    /// `(values, predictions)` pairs of the continuous columns.
    pub cont: Vec<(Tensor, Tensor)>,
}

/// Encoder + projection heads + denoising MLPs.
#[derive(Debug)]
pub(super) struct CdModel {
    pub encoder: Box<dyn TokenEncoder>,
    head1: Option<Mlp>,
    head2: Option<Mlp>,
    cat_mlp: Option<Denoise>,
    cont_mlp: Option<Denoise>,
    /// Offset of each categorical column's classes in the shared MLP's output.
    cat_offsets: Vec<i64>,
    cfg: ContrastiveDenoisingConfig,
}

impl CdModel {
    /// Builds the encoder of `cfg.encoder` under `root / "deeptabular"` (the path a `WideDeep`
    /// gives its tabular component) and the heads under `root / "cd"`.
    pub fn new(root: &nn::Path, cfg: &ContrastiveDenoisingConfig) -> Result<Self> {
        cfg.validate()?;
        let tab = &cfg.encoder;
        let encoder =
            build_token_encoder(tab, &(root / ENCODER_PREFIX), &format!("{FIELD}.encoder"))?;
        let name = tab.name();
        let emb = encoder.embeddings();
        let width = encoder.out_dim();
        if cfg.loss_type.denoising() && !encoder.outputs_are_tokens() {
            bail!(
                config(format!("{FIELD}.loss_type")),
                "{name}: its outputs are latents, not one token per column, so nothing maps \
                 back to a column to denoise; use loss_type = contrastive"
            );
        }
        let p = root / "cd";
        let f = |n: &str| format!("{FIELD}.{n}");
        let head = |dims: &Option<Vec<i64>>, n: &str| -> Result<Option<Mlp>> {
            let Some(d) = dims else { return Ok(None) };
            ensure!(
                d.first() == Some(&width),
                config(f(n)),
                "{name}: the first width must be the encoder's token width {width}, got {d:?}"
            );
            plain_mlp(&(&p / n), d, cfg.projection_heads_activation, &f(n)).map(Some)
        };
        let (head1, head2) = if cfg.loss_type.contrastive() {
            (
                head(&cfg.projection_head1_dims, "projection_head1")?,
                head(&cfg.projection_head2_dims, "projection_head2")?,
            )
        } else {
            (None, None)
        };
        let act = cfg.denoise_mlps_activation;
        let cards: Vec<i64> = emb
            .cat_meta()
            .iter()
            .map(|c| c.cardinality as i64)
            .collect();
        let n_cont = emb.n_cont();
        let mut cat_mlp = None;
        let mut cont_mlp = None;
        if cfg.loss_type.denoising() {
            let field = f("cat_mlp_type");
            if !cards.is_empty() {
                let p = &p / "denoise_cat";
                cat_mlp = Some(match cfg.cat_mlp_type {
                    DenoiseMlpType::Multiple => Denoise::PerColumn(
                        cards
                            .iter()
                            .enumerate()
                            .map(|(j, &c)| {
                                plain_mlp(
                                    &(&p / format!("mlp_{j}")),
                                    &[width, 4 * c, c],
                                    act,
                                    &field,
                                )
                            })
                            .collect::<Result<_>>()?,
                    ),
                    DenoiseMlpType::Single => {
                        let total: i64 = cards.iter().sum();
                        Denoise::Shared(plain_mlp(
                            &(&p / "mlp"),
                            &[width, 4 * total, total],
                            act,
                            &field,
                        )?)
                    }
                });
            }
            if n_cont > 0 {
                let p = &p / "denoise_cont";
                let field = f("cont_mlp_type");
                let dims = [width, 2 * width, 1];
                cont_mlp = Some(match cfg.cont_mlp_type {
                    DenoiseMlpType::Multiple => Denoise::PerColumn(
                        (0..n_cont)
                            .map(|j| plain_mlp(&(&p / format!("mlp_{j}")), &dims, act, &field))
                            .collect::<Result<_>>()?,
                    ),
                    DenoiseMlpType::Single => {
                        Denoise::Shared(plain_mlp(&(&p / "mlp"), &dims, act, &field)?)
                    }
                });
            }
        }
        let cat_offsets = cards
            .iter()
            .scan(0, |acc, &c| {
                let o = *acc;
                *acc += c;
                Some(o)
            })
            .collect();
        Ok(Self {
            encoder,
            head1,
            head2,
            cat_mlp,
            cont_mlp,
            cat_offsets,
            cfg: cfg.clone(),
        })
    }

    /// The tokens of `input` through the embeddings, with the `[CLS]` token (if any) set to zero
    /// as in the reference.
    ///
    /// # Shapes
    /// - returns `[batch, n_tokens, input_dim]`
    fn tokens(&self, input: &ModelInput, train: bool) -> Tensor {
        let t = self.encoder.embeddings().forward_t(input, train).tokens;
        if self.encoder.embeddings().has_cls() {
            let (b, n, d) = t.size3().expect("3-d tokens");
            Tensor::cat(
                &[
                    Tensor::zeros([b, 1, d], (t.kind(), t.device())),
                    t.narrow(1, 1, n - 1),
                ],
                1,
            )
        } else {
            t
        }
    }

    /// The clean and (in training) corrupted branches, then the projections and the denoising
    /// predictions. In evaluation the corrupted branch is the clean one (as in the reference).
    ///
    /// # Shapes
    /// - `input.cat`: `[batch, n_cat]` i64, `input.cont`: `[batch, n_cont]` f32
    pub fn forward(&self, input: &ModelInput, train: bool) -> CdOutput {
        let enc = &self.encoder;
        let encoded = enc.encode_tokens(self.tokens(input, train), train);
        let corrupted = if train {
            let (cat, cont) = cut_mix(
                input.cat.as_ref(),
                input.cont.as_ref(),
                self.cfg.cutmix_lambda,
            );
            let mixed_input = ModelInput {
                cat,
                cont,
                ..Default::default()
            };
            let t = mix_up(&self.tokens(&mixed_input, train), self.cfg.mixup_lambda);
            enc.encode_tokens(t, train)
        } else {
            encoded.shallow_clone()
        };
        let cls = enc.embeddings().has_cls() as i64;
        let columns = |t: &Tensor| {
            if cls == 1 && enc.outputs_are_tokens() {
                t.narrow(1, 1, t.size()[1] - 1)
            } else {
                t.shallow_clone()
            }
        };
        let projections = self.cfg.loss_type.contrastive().then(|| {
            let (a, b) = (columns(&encoded), columns(&corrupted));
            match (&self.head1, &self.head2) {
                (Some(h1), Some(h2)) => (h1.forward_t(&a, train), h2.forward_t(&b, train)),
                (Some(h1), None) => (h1.forward_t(&a, train), h1.forward_t(&b, train)),
                _ => (a, b),
            }
        });
        let n_cat = enc.embeddings().n_cat();
        let token = |j: i64| corrupted.select(1, cls + j);
        let mut cat = Vec::new();
        if let (Some(m), Some(x)) = (&self.cat_mlp, input.cat.as_ref()) {
            match m {
                Denoise::PerColumn(mlps) => {
                    for (j, mlp) in mlps.iter().enumerate() {
                        let j = j as i64;
                        cat.push((x.select(1, j), mlp.forward_t(&token(j), train)));
                    }
                }
                Denoise::Shared(mlp) => {
                    let r = corrupted
                        .narrow(1, cls, n_cat)
                        .transpose(0, 1)
                        .flatten(0, 1);
                    let offsets = Tensor::from_slice(&self.cat_offsets).to_device(x.device());
                    let classes = (x + offsets.unsqueeze(0)).transpose(0, 1).flatten(0, 1);
                    cat.push((classes, mlp.forward_t(&r, train)));
                }
            }
        }
        let mut cont = Vec::new();
        if let (Some(m), Some(x)) = (&self.cont_mlp, input.cont.as_ref()) {
            let n_cont = x.size()[1];
            match m {
                Denoise::PerColumn(mlps) => {
                    for (j, mlp) in mlps.iter().enumerate() {
                        let j = j as i64;
                        cont.push((x.narrow(1, j, 1), mlp.forward_t(&token(n_cat + j), train)));
                    }
                }
                Denoise::Shared(mlp) => {
                    let r = corrupted
                        .narrow(1, cls + n_cat, n_cont)
                        .transpose(0, 1)
                        .flatten(0, 1);
                    let values = x.transpose(0, 1).reshape([-1, 1]);
                    cont.push((values, mlp.forward_t(&r, train)));
                }
            }
        }
        CdOutput {
            projections,
            cat,
            cont,
        }
    }

    /// The loss of a forward pass's output: contrastive + denoising, as configured, in f32
    /// (outputs computed under autocast are cast first).
    ///
    /// # Shapes
    /// - `out` of [`CdModel::forward`]; returns a scalar
    pub fn loss(&self, out: CdOutput) -> Tensor {
        let c = &self.cfg;
        let pairs = |v: Vec<(Tensor, Tensor)>| -> Vec<(Tensor, Tensor)> {
            v.into_iter().map(|(t, p)| (t, to_f32(p))).collect()
        };
        let mut loss = out
            .projections
            .map(|(a, b)| info_nce_loss(&to_f32(a), &to_f32(b), c.temperature));
        if c.loss_type.denoising() {
            let (cat, cont) = (pairs(out.cat), pairs(out.cont));
            let d = denoising_loss(&cat, &cont, c.lambda_cat, c.lambda_cont);
            loss = Some(match loss {
                Some(l) => l + d,
                None => d,
            });
        }
        loss.unwrap_or_else(|| Tensor::zeros([], (Kind::Float, self.encoder.embeddings().device())))
    }
}
