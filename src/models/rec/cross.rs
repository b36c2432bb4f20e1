//! What the cross models (DCN, DCN-V2, GDCN) and AutoInt+ share:
//!
//! * the cross layers, each a map `(x_0, x_l) → x_{l+1}` on the flat embedding vector
//!   ([`CrossLayer`]): DCN's rank-one cross ([`DcnCross`]), DCN-V2's full-rank or low-rank
//!   mixture of experts ([`DcnV2Cross`]) and GDCN's gated cross ([`GatedCross`]);
//! * the deep MLP and how it joins the interaction part ([`DeepPart`]: stacked on it, beside it
//!   with concatenation, or beside it with AutoInt+'s gate), with [`Structure`];
//! * the body of the three cross models ([`CrossDeep`]): `TabMlp`'s column embeddings
//!   concatenated into `x_0`, the cross layers in turn, the deep part; and the checks and
//!   build steps of their configs ([`check_cross_deep`], [`build_cross_deep`]).
//!
//! Shape letters: `b` batch, `d` width of the flat embedding vector, `e` experts, `r` rank.
use crate::error::Result;
use crate::models::checks::{check_dropout, check_min};
use crate::models::dropout::dropout;
use crate::models::init::torch_linear;
use crate::models::tabular::embeddings::{tab_embedding_methods, TabColumns, TabEmbeddings};
use crate::models::{Component, Mlp, MlpConfig, ModelInput};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// How the interaction part (cross network, AutoInt's attention) and the deep MLP are joined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Structure {
    /// The MLP reads the interaction part's output; the output is the MLP's.
    Stacked,
    /// The MLP reads the embeddings beside the interaction part; the output is both joined
    /// (the default).
    #[default]
    Parallel,
}

/// A weight matrix (or a stack of them) drawn from Glorot's (Xavier's) uniform distribution
/// `U(±√(6 / (rows + cols)))` of each `[rows, cols]` matrix, as the reference initialises its
/// cross weights.
fn xavier(path: &nn::Path, name: &str, dims: &[i64]) -> Tensor {
    let (rows, cols) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    let up = (6.0 / (rows + cols).max(1) as f64).sqrt();
    path.var(name, dims, nn::Init::Uniform { lo: -up, up })
}

/// One layer of a cross network.
pub(crate) trait CrossLayer: std::fmt::Debug + Send {
    /// `x_{l+1}` from the network's input `x_0` and the previous layer's output `x_l`.
    ///
    /// # Shapes
    /// - `x0`, `xl`: `[b, d]`
    /// - returns `[b, d]`
    fn forward_t(&self, x0: &Tensor, xl: &Tensor, train: bool) -> Tensor;
}

/// The cross layer of DCN (Wang et al. 2017): `x_{l+1} = x_0 (x_lᵀ w_l) + b_l + x_l`, a weight
/// vector `w_l` and a bias `b_l` of width `d` (`2d` parameters).
#[derive(Debug)]
pub(crate) struct DcnCross {
    /// `w_l`: `[d, 1]`.
    w: Tensor,
    /// `b_l`: `[d]`.
    b: Tensor,
}

impl DcnCross {
    /// Under `path` (`w`: Glorot uniform, `b`: zeros) for inputs of width `d`.
    pub fn new(path: &nn::Path, d: i64) -> Self {
        Self {
            w: xavier(path, "w", &[d, 1]),
            b: path.zeros("b", &[d]),
        }
    }
}

impl CrossLayer for DcnCross {
    fn forward_t(&self, x0: &Tensor, xl: &Tensor, _train: bool) -> Tensor {
        // [b, d] · [d, 1] → one scalar per row
        x0 * xl.matmul(&self.w) + &self.b + xl
    }
}

/// The experts of a DCN-V2 layer: what each maps `x_l` to before `+ b_l` and `x_0 ⊙`.
#[derive(Debug)]
enum Experts {
    /// `W_i x_l`, `W`: `[e, d, d]`.
    Full(Tensor),
    /// `U_i g(C_i g(V_i x_l))` with `g` = ReLU, `U`: `[e, d, r]`, `C`: `[e, r, r]`,
    /// `V`: `[e, r, d]`.
    LowRank { u: Tensor, c: Tensor, v: Tensor },
}

/// The cross layer of DCN-V2 (Wang et al. 2021), with `e` experts mixed by a gate:
/// `x_{l+1} = Σ_i G_i(x_l) E_i(x_l) + x_l` where `E_i(x_l) = x_0 ⊙ (M_i(x_l) + b_l)`,
/// `M_i(x) = W_i x` (full rank, the paper's Eq. 1 for one expert) or
/// `M_i(x) = U_i g(C_i g(V_iᵀ x))` (low rank, Eq. 4, `g` = ReLU), and
/// `G(x_l) = softmax(W_g x_l + b_g)` over the experts (one expert: `G = 1`). Dropout on the
/// experts' outputs `M_i(x_l)` when training.
#[derive(Debug)]
pub(crate) struct DcnV2Cross {
    experts: Experts,
    /// `b_l`: `[d]`.
    b: Tensor,
    /// `Linear(d, e)`, with more than one expert.
    gate: Option<nn::Linear>,
    dropout: f64,
}

impl DcnV2Cross {
    /// Under `path` for inputs of width `d`: `n_experts` experts of rank `low_rank` (full rank
    /// when `None`), Glorot-uniform `W` (or `U`, `C`, `V`), zero `b`, the gate (`gate`,
    /// PyTorch's default init) with more than one expert, and dropout `p` on the experts.
    pub fn new(path: &nn::Path, d: i64, low_rank: Option<i64>, n_experts: i64, p: f64) -> Self {
        let e = n_experts;
        let experts = match low_rank {
            None => Experts::Full(xavier(path, "w", &[e, d, d])),
            Some(r) => Experts::LowRank {
                u: xavier(path, "u", &[e, d, r]),
                c: xavier(path, "c", &[e, r, r]),
                v: xavier(path, "v", &[e, r, d]),
            },
        };
        Self {
            experts,
            b: path.zeros("b", &[d]),
            gate: (e > 1).then(|| torch_linear(&(path / "gate"), d, e, true)),
            dropout: p,
        }
    }
}

impl CrossLayer for DcnV2Cross {
    fn forward_t(&self, x0: &Tensor, xl: &Tensor, train: bool) -> Tensor {
        // [1, b, d] against [e, ·, ·] matrices: batched over the experts
        let x = xl.unsqueeze(0);
        let m = match &self.experts {
            Experts::Full(w) => x.matmul(&w.transpose(1, 2)),
            Experts::LowRank { u, c, v } => x
                .matmul(&v.transpose(1, 2))
                .relu()
                .matmul(&c.transpose(1, 2))
                .relu()
                .matmul(&u.transpose(1, 2)),
        }; // [e, b, d]
        let m = dropout(&m, self.dropout, train);
        let mixed = match &self.gate {
            // [b, e] → [e, b, 1]
            Some(gate) => {
                let kind = m.kind();
                let g = xl.apply(gate).softmax(1, Kind::Float).to_kind(kind);
                (m * g.transpose(0, 1).unsqueeze(-1)).sum_dim_intlist(0, false, kind)
            }
            None => m.squeeze_dim(0),
        };
        // Σ_i G_i x_0 ⊙ (M_i + b) = x_0 ⊙ (Σ_i G_i M_i + b), as the gate sums to 1
        x0 * (mixed + &self.b) + xl
    }
}

/// The gated cross layer of GDCN (Wang et al. 2023):
/// `c_{l+1} = c_0 ⊙ (W_c c_l + b) ⊙ σ(W_g c_l) + c_l`, `W_c`, `W_g`: `[d, d]` (Glorot uniform),
/// `b`: `[d]` (zeros).
#[derive(Debug)]
pub(crate) struct GatedCross {
    wc: Tensor,
    wg: Tensor,
    b: Tensor,
}

impl GatedCross {
    /// Under `path` (`wc`, `wg`, `b`) for inputs of width `d`.
    pub fn new(path: &nn::Path, d: i64) -> Self {
        Self {
            wc: xavier(path, "wc", &[d, d]),
            wg: xavier(path, "wg", &[d, d]),
            b: path.zeros("b", &[d]),
        }
    }
}

impl CrossLayer for GatedCross {
    fn forward_t(&self, x0: &Tensor, xl: &Tensor, _train: bool) -> Tensor {
        let cross = xl.linear(&self.wc, Some(&self.b));
        let gate = xl.linear::<&Tensor>(&self.wg, None).sigmoid();
        x0 * cross * gate + xl
    }
}

/// The cross layers applied in turn from `x_0`.
///
/// # Shapes
/// - `x0`: `[b, d]`; returns `[b, d]`
pub(crate) fn cross_stack<L: CrossLayer>(layers: &[L], x0: &Tensor, train: bool) -> Tensor {
    layers.iter().fold(x0.shallow_clone(), |xl, layer| {
        layer.forward_t(x0, &xl, train)
    })
}

/// How a [`DeepPart`] joins the interaction part.
#[derive(Debug)]
enum Join {
    /// The MLP on the interaction part's output.
    Stacked,
    /// `[interaction, MLP(raw)]`.
    Concat,
    /// `g ⊙ interaction + (1 − g) ⊙ MLP(raw)`, `g = σ(W [interaction, MLP(raw)] + b)`
    /// (AutoInt+'s gate, `Linear(2w, w)`).
    Gated(nn::Linear),
}

/// The deep MLP of the rec models and how it joins the interaction part.
#[derive(Debug)]
pub(crate) struct DeepPart {
    mlp: Mlp,
    join: Join,
    output_dim: i64,
}

impl DeepPart {
    /// The MLP `mlp` under `path/mlp` (errors name `{name}.mlp.*`) and, for `gated`, the gate
    /// under `path/gate`, for an interaction part of width `interaction` and raw (embedding)
    /// features of width `raw`: stacked, the MLP reads `interaction` inputs; in parallel,
    /// `raw` inputs. `gated` applies in parallel only and needs the MLP's last width to be
    /// `interaction` (the caller checks).
    pub fn new(
        path: &nn::Path,
        name: &str,
        mlp: &MlpConfig,
        structure: Structure,
        gated: bool,
        (interaction, raw): (i64, i64),
    ) -> Result<Self> {
        let inputs = match structure {
            Structure::Stacked => interaction,
            Structure::Parallel => raw,
        };
        let mlp = mlp.build(&(path / "mlp"), inputs, &format!("{name}.mlp"))?;
        let (join, output_dim) = match structure {
            Structure::Stacked => (Join::Stacked, mlp.output_dim()),
            Structure::Parallel if gated => {
                let w = interaction;
                (
                    Join::Gated(torch_linear(&(path / "gate"), 2 * w, w, true)),
                    w,
                )
            }
            Structure::Parallel => (Join::Concat, interaction + mlp.output_dim()),
        };
        Ok(Self {
            mlp,
            join,
            output_dim,
        })
    }

    /// Width of the output.
    pub fn output_dim(&self) -> i64 {
        self.output_dim
    }

    /// The interaction part's output joined with the MLP.
    ///
    /// # Shapes
    /// - `interaction`: `[b, interaction]`, `raw`: `[b, raw]` (read in parallel only)
    /// - returns `[b, output_dim()]`
    pub fn forward_t(&self, interaction: Tensor, raw: &Tensor, train: bool) -> Tensor {
        match &self.join {
            Join::Stacked => self.mlp.forward_t(&interaction, train),
            Join::Concat => Tensor::cat(&[interaction, self.mlp.forward_t(raw, train)], 1),
            Join::Gated(gate) => {
                let deep = self.mlp.forward_t(raw, train);
                let g = Tensor::cat(&[&interaction, &deep], 1).apply(gate).sigmoid();
                &g * interaction + (1.0 - g) * deep
            }
        }
    }
}

/// The body of DCN, DCN-V2 and GDCN: `TabMlp`'s column embeddings concatenated into `x_0`
/// (`[batch, Σ embed_dim + n_cont]`), the cross layers, and the deep part.
#[derive(Debug)]
pub(crate) struct CrossDeep<L> {
    embed: TabEmbeddings,
    layers: Vec<L>,
    deep: DeepPart,
}

impl<L: CrossLayer> CrossDeep<L> {
    /// The rest of the forward pass from the concatenated embeddings.
    ///
    /// # Shapes
    /// - `x0`: `[b, d]`; returns `[b, output_dim]`
    fn forward_combined(&self, x0: &Tensor, train: bool) -> Tensor {
        let cross = cross_stack(&self.layers, x0, train);
        self.deep.forward_t(cross, x0, train)
    }

    /// The cross layers (for tests).
    #[cfg(test)]
    pub fn layers(&self) -> &[L] {
        &self.layers
    }
}

impl<L: CrossLayer> Component for CrossDeep<L> {
    tab_embedding_methods!();

    fn output_dim(&self) -> i64 {
        self.deep.output_dim()
    }
}

/// What a cross model's config `$config` (fields `embed`: `TabEmbedConfig`, and `mlp`) and its
/// model `$model` (a newtype over a [`CrossDeep`]) share: the embedding options (`Deref` to
/// `TabEmbedConfig`, [`TabColumns`], the setters `embed_dropout` and `cont_norm`),
/// `from_meta`, the setter `mlp`, and [`Component`] forwarded to the body. Needs
/// `TabEmbedConfig`, `TabColumns`, `CatColumnMeta` and `ContNorm` in scope.
macro_rules! cross_model {
    ($config:ident, $model:ident) => {
        $crate::models::tabular::embeddings::tab_embed_config!($config);

        impl $config {
            /// Columns, cardinalities and embedding widths from a fitted `TabPreprocessor`,
            /// reference defaults otherwise.
            pub fn from_meta(meta: &::widedeep_preprocessing::TabMeta) -> Self {
                Self {
                    embed: TabEmbedConfig::from_meta(meta),
                    ..Self::default()
                }
            }

            /// Sets `mlp`: the deep MLP.
            pub fn mlp(mut self, v: $crate::models::MlpConfig) -> Self {
                self.mlp = v;
                self
            }
        }

        $crate::models::tabular::attention::token_model_component!($model);
    };
}
pub(crate) use cross_model;

/// The checks of a cross model `cfg`: `{name}.{layers_field} ≥ 1`, the MLP (`{name}.mlp.*`),
/// the model's `own` checks, then the columns and their embeddings.
pub(crate) fn check_cross_deep<C: TabColumns>(
    cfg: &C,
    (layers_field, n_layers): (&str, i64),
    mlp: &MlpConfig,
    own: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let name = C::NAME;
    check_min(n_layers, 1, format!("{name}.{layers_field}"))?;
    mlp.validate(&format!("{name}.mlp"))?;
    own()?;
    cfg.validate_columns()
}

/// The checks of DCN-V2's experts: `low_rank ≥ 1` when set, `num_experts ≥ 1`,
/// `expert_dropout` in `[0, 1)`.
pub(crate) fn check_experts(
    name: &str,
    low_rank: Option<i64>,
    num_experts: i64,
    expert_dropout: f64,
) -> Result<()> {
    if let Some(r) = low_rank {
        check_min(r, 1, format!("{name}.low_rank"))?;
    }
    check_min(num_experts, 1, format!("{name}.num_experts"))?;
    check_dropout(expert_dropout, &format!("{name}.expert_dropout"))
}

/// Builds a cross model's body (validate first): the embeddings of `cfg` under `path/embed`,
/// `n_layers` layers `layer(path/cross/layer_{i}, d)` and the deep part under `path`.
pub(crate) fn build_cross_deep<C: TabColumns, L: CrossLayer>(
    cfg: &C,
    path: &nn::Path,
    (n_layers, mlp, structure): (i64, &MlpConfig, Structure),
    layer: impl Fn(&nn::Path, i64) -> L,
) -> Result<CrossDeep<L>> {
    let embed = cfg.build_embeddings(path)?;
    let d = embed.output_dim();
    let layers = (0..n_layers)
        .map(|i| layer(&(path / "cross" / format!("layer_{i}")), d))
        .collect();
    let deep = DeepPart::new(path, C::NAME, mlp, structure, false, (d, d))?;
    Ok(CrossDeep {
        embed,
        layers,
        deep,
    })
}

#[cfg(test)]
pub(crate) mod tests;
