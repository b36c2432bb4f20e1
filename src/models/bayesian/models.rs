//! The Bayesian models — [`BayesianWide`] and [`BayesianTabMlp`], the reference's
//! architectures — and [`BayesianModel`], which owns their weights.
use super::{BayesianEmbedding, BayesianLinear, BayesianPrior, KlSum, WeightMode};
use crate::error::Result;
use crate::macros::{bail, ensure, setters};
use crate::models::checks::check_index_range;
use crate::models::tabular::embeddings::TabEmbeddings;
use crate::models::{Activation, ContNorm, ModelInput};
use serde::{Deserialize, Serialize};
use tch::nn::ModuleT;
use tch::{nn, Device, Kind, Tensor};
use widedeep_preprocessing::{CatColumnMeta, TabMeta};

/// Configuration of [`BayesianWide`]: a linear model over the wide preprocessor's indices
/// whose weights are Gaussians (the reference's `BayesianWide`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BayesianWideConfig {
    /// Number of distinct wide features (`WidePreprocessor::wide_dim`); indices run
    /// `1..=wide_dim`, 0 is the unseen slot.
    pub wide_dim: i64,
    /// Prior and posterior initialisation (flattened into the JSON).
    #[serde(flatten)]
    pub prior: BayesianPrior,
}

impl BayesianWideConfig {
    /// Over `wide_dim` features, the reference's prior.
    pub fn new(wide_dim: usize) -> Self {
        Self {
            wide_dim: wide_dim as i64,
            prior: BayesianPrior::default(),
        }
    }
    setters!(prior: BayesianPrior);

    /// Checks every field; errors name `bayesian_wide.<field>`.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.wide_dim >= 1,
            config("bayesian_wide.wide_dim"),
            "must be ≥ 1, got {}",
            self.wide_dim
        );
        self.prior.validate("bayesian_wide")
    }
}

/// Configuration of [`BayesianTabMlp`]: Bayesian embeddings of the categorical columns,
/// concatenated with the (optionally normalised) continuous columns, then Bayesian dense
/// layers ending in the output layer (the reference's `BayesianTabMlp`; its defaults:
/// hidden layers `[200, 100]`, leaky ReLU, no continuous normalisation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BayesianTabMlpConfig {
    /// One entry per categorical column: name, cardinality (incl. the 0 slot), embedding width.
    #[serde(default)]
    pub cat_embed: Vec<CatColumnMeta>,
    /// Names of the continuous input columns.
    #[serde(default)]
    pub cont_cols: Vec<String>,
    /// Normalisation of the continuous columns (deterministic).
    #[serde(default)]
    pub cont_norm: ContNorm,
    /// Activation on the concatenated categorical embeddings (`None`: none, the default).
    #[serde(default)]
    pub cat_embed_activation: Option<Activation>,
    /// Widths of the hidden Bayesian layers (the output layer to `pred_dim` follows).
    pub hidden_dims: Vec<i64>,
    /// Activation after every hidden layer (not after the output layer).
    pub activation: Activation,
    /// Prior and posterior initialisation of every layer (flattened into the JSON).
    #[serde(flatten)]
    pub prior: BayesianPrior,
}

impl BayesianTabMlpConfig {
    /// Columns, cardinalities and embedding widths from a fitted `TabPreprocessor`; the
    /// reference's defaults otherwise.
    pub fn from_meta(meta: &TabMeta) -> Self {
        Self {
            cat_embed: meta.cat.clone(),
            cont_cols: meta.cont.clone(),
            cont_norm: ContNorm::None,
            cat_embed_activation: None,
            hidden_dims: vec![200, 100],
            activation: Activation::LeakyRelu,
            prior: BayesianPrior::default(),
        }
    }
    setters!(
        cont_norm: ContNorm,
        cat_embed_activation: Option<Activation>,
        activation: Activation,
        prior: BayesianPrior,
    );
    /// Sets `hidden_dims`.
    pub fn hidden_dims(mut self, dims: impl Into<Vec<i64>>) -> Self {
        self.hidden_dims = dims.into();
        self
    }

    /// Checks every field; errors name `bayesian_tab_mlp.<field>`.
    pub fn validate(&self) -> Result<()> {
        const NAME: &str = "bayesian_tab_mlp";
        TabEmbeddings::validate(&self.cat_embed, &self.cont_cols, 0.0, NAME)?;
        for (i, &d) in self.hidden_dims.iter().enumerate() {
            ensure!(
                d >= 1,
                config(format!("{NAME}.hidden_dims[{i}]")),
                "must be ≥ 1, got {d}"
            );
        }
        self.prior.validate(NAME)
    }

    fn input_dim(&self) -> i64 {
        self.cat_embed
            .iter()
            .map(|c| c.embed_dim as i64)
            .sum::<i64>()
            + self.cont_cols.len() as i64
    }
}

/// Which Bayesian network (serialized with a `model` tag).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum BayesianNetConfig {
    /// [`BayesianWide`] (`"bayesian_wide"`).
    BayesianWide(BayesianWideConfig),
    /// [`BayesianTabMlp`] (`"bayesian_tab_mlp"`).
    BayesianTabMlp(BayesianTabMlpConfig),
}

impl From<BayesianWideConfig> for BayesianNetConfig {
    fn from(c: BayesianWideConfig) -> Self {
        Self::BayesianWide(c)
    }
}
impl From<BayesianTabMlpConfig> for BayesianNetConfig {
    fn from(c: BayesianTabMlpConfig) -> Self {
        Self::BayesianTabMlp(c)
    }
}

/// Serializable description of a [`BayesianModel`]: the network, the output width and the
/// seed of the weight initialisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BayesianModelConfig {
    /// The network.
    pub net: BayesianNetConfig,
    /// Width of the output (1 for binary and regression, the class count for multiclass).
    /// `None`: taken from the objective by
    /// [`BayesianTrainer::new`](crate::training::BayesianTrainer::new).
    #[serde(default)]
    pub pred_dim: Option<i64>,
    /// Seed of the weight initialisation.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_seed() -> u64 {
    1
}

impl BayesianModelConfig {
    /// The network `net`, output width from the objective, seed 1.
    pub fn new(net: impl Into<BayesianNetConfig>) -> Self {
        Self {
            net: net.into(),
            pred_dim: None,
            seed: default_seed(),
        }
    }
    /// Sets the output width.
    pub fn pred_dim(mut self, pred_dim: i64) -> Self {
        self.pred_dim = Some(pred_dim);
        self
    }
    setters!(seed: u64);

    /// Checks the network's fields and `pred_dim`.
    pub fn validate(&self) -> Result<()> {
        if let Some(p) = self.pred_dim {
            ensure!(p >= 1, config("pred_dim"), "must be ≥ 1, got {p}");
        }
        match &self.net {
            BayesianNetConfig::BayesianWide(c) => c.validate(),
            BayesianNetConfig::BayesianTabMlp(c) => c.validate(),
        }
    }
}

/// The Bayesian wide part: `wide [batch, n_wide]` i64 → `[batch, pred_dim]`, the sum of the
/// sampled table rows of each row's indices plus a deterministic bias (zeros at the start).
/// Index 0 (unseen) is the padding row, as in the reference.
#[derive(Debug)]
pub struct BayesianWide {
    table: BayesianEmbedding,
    bias: Tensor,
    wide_dim: i64,
}

impl BayesianWide {
    /// Validates, then builds the table (`table`) and `bias` under `path`.
    pub fn new(path: &nn::Path, config: &BayesianWideConfig, pred_dim: i64) -> Result<Self> {
        config.validate()?;
        let table = BayesianEmbedding::new(
            &(path / "table"),
            config.wide_dim.saturating_add(1),
            pred_dim,
            Some(0),
            &config.prior,
            "bayesian_wide",
        )?;
        let bias = path.zeros("bias", &[pred_dim]);
        Ok(Self {
            table,
            bias,
            wide_dim: config.wide_dim,
        })
    }

    /// The output with the table drawn by `mode`.
    ///
    /// # Shapes
    /// - `wide`: `[batch, n_wide]` i64 in `0..=wide_dim`; returns `[batch, pred_dim]`
    pub fn forward(&self, wide: &Tensor, mode: WeightMode, kl: &mut KlSum) -> Tensor {
        self.table
            .forward(wide, mode, kl)
            .sum_dim_intlist(1, false, Kind::Float)
            + &self.bias
    }

    /// The Bayesian table `[wide_dim + 1, pred_dim]`.
    pub fn table(&self) -> &BayesianEmbedding {
        &self.table
    }

    fn check_input(&self, input: &ModelInput) -> Result<()> {
        let Some(wide) = input.wide.as_ref() else {
            bail!(input("wide"), "the Bayesian wide model needs a wide input");
        };
        ensure!(
            wide.dim() == 2,
            input("wide"),
            "expected [batch, n_wide], got {:?}",
            wide.size()
        );
        check_index_range(wide, "wide", self.wide_dim)
    }
}

#[derive(Debug)]
enum NormLayer {
    Batch(nn::BatchNorm),
    Layer(nn::LayerNorm),
}

/// The Bayesian TabMlp: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, pred_dim]`.
#[derive(Debug)]
pub struct BayesianTabMlp {
    tables: Vec<BayesianEmbedding>,
    cat: Vec<CatColumnMeta>,
    n_cont: i64,
    norm: Option<NormLayer>,
    cat_activation: Option<Activation>,
    layers: Vec<BayesianLinear>,
    activation: Activation,
}

impl BayesianTabMlp {
    /// Validates, then builds one Bayesian table per categorical column (`emb_{i}`, row 0 the
    /// padding row), the continuous normalisation (`cont_norm`) and the dense layers
    /// (`dense_{i}`, the last one to `pred_dim`) under `path`.
    pub fn new(path: &nn::Path, config: &BayesianTabMlpConfig, pred_dim: i64) -> Result<Self> {
        config.validate()?;
        const NAME: &str = "bayesian_tab_mlp";
        let tables = config
            .cat_embed
            .iter()
            .enumerate()
            .map(|(i, c)| {
                BayesianEmbedding::new(
                    &(path / format!("emb_{i}")),
                    c.cardinality as i64,
                    c.embed_dim as i64,
                    Some(0),
                    &config.prior,
                    &format!("{NAME}.cat_embed[{}]", c.name),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let n_cont = config.cont_cols.len() as i64;
        let norm = match (config.cont_norm, n_cont > 0) {
            (ContNorm::BatchNorm, true) => Some(NormLayer::Batch(nn::batch_norm1d(
                path / "cont_norm",
                n_cont,
                Default::default(),
            ))),
            (ContNorm::LayerNorm, true) => Some(NormLayer::Layer(nn::layer_norm(
                path / "cont_norm",
                vec![n_cont],
                Default::default(),
            ))),
            _ => None,
        };
        let mut dims = vec![config.input_dim()];
        dims.extend(&config.hidden_dims);
        dims.push(pred_dim);
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                BayesianLinear::new(
                    &(path / format!("dense_{i}")),
                    w[0],
                    w[1],
                    true,
                    &config.prior,
                    NAME,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            tables,
            cat: config.cat_embed.clone(),
            n_cont,
            norm,
            cat_activation: config.cat_embed_activation,
            layers,
            activation: config.activation,
        })
    }

    /// The output with every layer drawn by `mode`; `train` selects batch statistics in the
    /// continuous batch normalisation.
    ///
    /// # Shapes
    /// - `input.cat`: `[batch, n_cat]` i64; `input.cont`: `[batch, n_cont]` f32
    /// - returns `[batch, pred_dim]`
    pub fn forward(
        &self,
        input: &ModelInput,
        mode: WeightMode,
        train: bool,
        kl: &mut KlSum,
    ) -> Tensor {
        let mut parts = Vec::with_capacity(2);
        if !self.tables.is_empty() {
            let cat = input.cat.as_ref().expect("checked by check_input");
            let embeds: Vec<Tensor> = self
                .tables
                .iter()
                .enumerate()
                .map(|(i, t)| t.forward(&cat.select(1, i as i64), mode, kl))
                .collect();
            let x = Tensor::cat(&embeds, 1);
            parts.push(match self.cat_activation {
                Some(a) => a.apply(&x),
                None => x,
            });
        }
        if self.n_cont > 0 {
            let cont = input.cont.as_ref().expect("checked by check_input");
            parts.push(match &self.norm {
                Some(NormLayer::Batch(bn)) => bn.forward_t(cont, train),
                Some(NormLayer::Layer(ln)) => ln.forward_t(cont, train),
                None => cont.shallow_clone(),
            });
        }
        let mut x = if parts.len() == 1 {
            parts.swap_remove(0)
        } else {
            Tensor::cat(&parts, 1)
        };
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x, mode, kl);
            if i != last {
                x = self.activation.apply(&x);
            }
        }
        x
    }

    /// The dense layers, the output layer last.
    pub fn layers(&self) -> &[BayesianLinear] {
        &self.layers
    }
    /// The categorical tables, in column order.
    pub fn tables(&self) -> &[BayesianEmbedding] {
        &self.tables
    }

    fn check_input(&self, input: &ModelInput) -> Result<()> {
        if !self.cat.is_empty() {
            let Some(cat) = input.cat.as_ref() else {
                bail!(input("cat"), "no categorical input");
            };
            let size = cat.size();
            ensure!(
                size.len() == 2 && size[1] == self.cat.len() as i64,
                input("cat"),
                "expected [batch, {}], got {size:?}",
                self.cat.len()
            );
            for (i, c) in self.cat.iter().enumerate() {
                check_index_range(&cat.select(1, i as i64), &c.name, c.cardinality as i64 - 1)?;
            }
        }
        if self.n_cont > 0 {
            let Some(cont) = input.cont.as_ref() else {
                bail!(input("cont"), "no continuous input");
            };
            let size = cont.size();
            ensure!(
                size.len() == 2 && size[1] == self.n_cont,
                input("cont"),
                "expected [batch, {}], got {size:?}",
                self.n_cont
            );
        }
        Ok(())
    }
}

/// A built Bayesian network.
#[derive(Debug)]
pub enum BayesianNet {
    /// See [`BayesianWide`].
    Wide(BayesianWide),
    /// See [`BayesianTabMlp`].
    TabMlp(BayesianTabMlp),
}

/// A Bayesian model: the network of a [`BayesianModelConfig`] and its [`nn::VarStore`]
/// (variational `*_mu` / `*_rho` weights, deterministic biases and normalisation), which
/// saves to and loads from `.safetensors`.
pub struct BayesianModel {
    vs: nn::VarStore,
    net: BayesianNet,
    config: BayesianModelConfig,
    pred_dim: i64,
}

impl std::fmt::Debug for BayesianModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BayesianModel")
            .field("net", &self.net)
            .field("pred_dim", &self.pred_dim)
            .finish()
    }
}

impl BayesianModel {
    /// Builds the model of `config` on `device`, with weights drawn from `config.seed`
    /// (`pred_dim` unset: 1).
    pub fn new(config: &BayesianModelConfig, device: Device) -> Result<Self> {
        config.validate()?;
        let pred_dim = config.pred_dim.unwrap_or(1);
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(config.seed as i64);
        crate::models::alloc::start_build();
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let net = match &config.net {
            BayesianNetConfig::BayesianWide(c) => {
                crate::models::alloc::guarded("bayesian_wide", || {
                    BayesianWide::new(&(&root / "bayesian_wide"), c, pred_dim)
                        .map(BayesianNet::Wide)
                })?
            }
            BayesianNetConfig::BayesianTabMlp(c) => {
                crate::models::alloc::guarded("bayesian_tab_mlp", || {
                    BayesianTabMlp::new(&(&root / "bayesian_tab_mlp"), c, pred_dim)
                        .map(BayesianNet::TabMlp)
                })?
            }
        };
        Ok(Self {
            vs,
            net,
            config: config.clone(),
            pred_dim,
        })
    }

    /// One forward pass with every Bayesian weight drawn by `mode`; returns the output and,
    /// for [`WeightMode::SampleWithKl`], the KL estimate `log q(w) − log p(w)` of the drawn
    /// weights. `train` selects batch statistics in batch normalisation. Call
    /// [`BayesianModel::check_input`] first on user data.
    ///
    /// # Shapes
    /// - `input`: see [`ModelInput`] (`wide`, or `cat` / `cont`); returns
    ///   `([batch, pred_dim], Option<[]>)`
    pub fn forward(
        &self,
        input: &ModelInput,
        mode: WeightMode,
        train: bool,
    ) -> (Tensor, Option<Tensor>) {
        let mut kl = KlSum::new();
        let out = match &self.net {
            BayesianNet::Wide(w) => w.forward(
                input.wide.as_ref().expect("checked by check_input"),
                mode,
                &mut kl,
            ),
            BayesianNet::TabMlp(m) => m.forward(input, mode, train, &mut kl),
        };
        (out, kl.total())
    }

    /// Validates that `input` has what the network reads, with the right widths and index
    /// ranges; errors name the input or column.
    pub fn check_input(&self, input: &ModelInput) -> Result<()> {
        match &self.net {
            BayesianNet::Wide(w) => w.check_input(input),
            BayesianNet::TabMlp(m) => m.check_input(input),
        }
    }

    /// The network.
    pub fn net(&self) -> &BayesianNet {
        &self.net
    }
    /// The configuration it was built from (`pred_dim` set to the built width).
    pub fn config(&self) -> BayesianModelConfig {
        BayesianModelConfig {
            pred_dim: Some(self.pred_dim),
            ..self.config.clone()
        }
    }
    /// Width of the output.
    pub fn pred_dim(&self) -> i64 {
        self.pred_dim
    }
    /// The device of the weights.
    pub fn device(&self) -> Device {
        self.vs.device()
    }
    /// The variables (posterior means and `ρ`, biases, normalisation).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }
    /// Number of trainable scalars (a Gaussian weight counts twice: `μ` and `ρ`).
    pub fn n_parameters(&self) -> i64 {
        self.vs
            .trainable_variables()
            .iter()
            .map(Tensor::numel)
            .sum::<usize>() as i64
    }

    /// This model when its width is `wanted`; else, when its config leaves `pred_dim` unset,
    /// the model rebuilt with that width (same config and seed); else an error naming
    /// `pred_dim`.
    pub(crate) fn for_width(self, wanted: i64) -> Result<Self> {
        if self.pred_dim == wanted {
            return Ok(self);
        }
        ensure!(
            self.config.pred_dim.is_none(),
            config("pred_dim"),
            "the model was built with pred_dim {} but the objective needs {wanted}",
            self.pred_dim
        );
        let config = BayesianModelConfig {
            pred_dim: Some(wanted),
            ..self.config.clone()
        };
        Self::new(&config, self.device())
    }
}
