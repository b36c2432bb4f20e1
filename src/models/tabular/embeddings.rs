//! Column embeddings shared by the tabular models: one embedding table per categorical column
//! (row 0 = unseen/null) and an optional normalisation of the continuous block.
use crate::error::Result;
use crate::macros::{bail, ensure};
use crate::models::checks::{check_dropout, check_index_range};
use crate::models::dropout::DropoutExt;
use crate::models::{ComponentConfig, ModelInput, TabMlpConfig, TabNetConfig, TabResnetConfig};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::ModuleT, Tensor};
use widedeep_preprocessing::{CatColumnMeta, TabMeta};

/// Normalisation applied to the continuous columns before they join the embeddings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContNorm {
    /// The continuous values as they are (the default).
    #[default]
    None,
    /// Batch normalisation over the continuous block (`cont_norm` in the weights).
    BatchNorm,
    /// Layer normalisation over the continuous block (`cont_norm` in the weights).
    LayerNorm,
}

/// A config whose model starts with [`TabEmbeddings`] (TabMlp, TabResnet, TabNet): its
/// column options are checked and built the same way by each.
pub(crate) trait TabColumns: ComponentConfig {
    /// The config's `cat_embed`, `cont_cols`, `cont_norm` and `embed_dropout`.
    fn columns(&self) -> (&[CatColumnMeta], &[String], ContNorm, f64);

    /// [`TabEmbeddings::validate`] of the columns; errors name the config
    /// (`tab_mlp.embed_dropout`).
    fn validate_columns(&self) -> Result<()> {
        let (cat, cont, _, dropout) = self.columns();
        TabEmbeddings::validate(cat, cont, dropout, Self::NAME)
    }

    /// [`TabEmbeddings::new`] under `path/embed`.
    fn build_embeddings(&self, path: &nn::Path) -> Result<TabEmbeddings> {
        let (cat, cont, norm, dropout) = self.columns();
        TabEmbeddings::new(&(path / "embed"), cat, cont, norm, dropout, Self::NAME)
    }
}

/// The embedding part of the configs that start with [`TabEmbeddings`] (TabMlp, TabResnet,
/// TabNet): flattened into each config (`#[serde(flatten)]`), so its fields sit at the top of
/// the config's JSON, and reached through `Deref` (`config.cat_embed`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TabEmbedConfig {
    /// One entry per categorical column: name, cardinality (incl. the 0 slot), embedding width.
    #[serde(default)]
    pub cat_embed: Vec<CatColumnMeta>,
    /// Names of the continuous input columns (missing-indicator columns included).
    #[serde(default)]
    pub cont_cols: Vec<String>,
    /// Dropout on the concatenated categorical embeddings.
    #[serde(default)]
    pub embed_dropout: f64,
    /// Normalisation of the continuous columns.
    #[serde(default)]
    pub cont_norm: ContNorm,
}

impl TabEmbedConfig {
    /// The columns, cardinalities and embedding widths of a fitted `TabPreprocessor`; no
    /// dropout, no normalisation.
    pub fn from_meta(meta: &TabMeta) -> Self {
        Self {
            cat_embed: meta.cat.clone(),
            cont_cols: meta.cont.clone(),
            ..Self::default()
        }
    }
}

/// `Deref`/`DerefMut` to the config's [`TabEmbedConfig`] (field `embed`), [`TabColumns`], and
/// the builder setters of the embedding options.
macro_rules! tab_embed_config {
    ($($config:ty),*) => {$(
        impl std::ops::Deref for $config {
            type Target = TabEmbedConfig;
            fn deref(&self) -> &TabEmbedConfig {
                &self.embed
            }
        }
        impl std::ops::DerefMut for $config {
            fn deref_mut(&mut self) -> &mut TabEmbedConfig {
                &mut self.embed
            }
        }
        impl TabColumns for $config {
            fn columns(&self) -> (&[CatColumnMeta], &[String], ContNorm, f64) {
                let e = &self.embed;
                (&e.cat_embed, &e.cont_cols, e.cont_norm, e.embed_dropout)
            }
        }
        impl $config {
            /// Sets `embed_dropout`: dropout on the concatenated categorical embeddings.
            pub fn embed_dropout(mut self, v: f64) -> Self {
                self.embed.embed_dropout = v;
                self
            }
            /// Sets `cont_norm`: the normalisation of the continuous columns.
            pub fn cont_norm(mut self, v: ContNorm) -> Self {
                self.embed.cont_norm = v;
                self
            }
        }
    )*};
}

tab_embed_config!(TabMlpConfig, TabResnetConfig, TabNetConfig);
pub(crate) use tab_embed_config;

/// The [`Component`](crate::models::Component) methods of the models that start with
/// [`TabEmbeddings`] (field `embed`) and go on from the combined embeddings
/// `[batch, Σ embed_dim + n_cont]` with a method `forward_combined(&Tensor, bool) -> Tensor`:
/// the forward pass, the input check, the column names and the embedding-layer split.
macro_rules! tab_embedding_methods {
    () => {
        fn forward_t(&self, input: &ModelInput, train: bool) -> Tensor {
            self.forward_combined(&self.embed.forward_t(input, train), train)
        }

        fn check_input(&self, input: &ModelInput) -> Result<()> {
            self.embed.check_input(input)
        }

        fn feature_names(&self) -> Vec<String> {
            self.embed.names()
        }

        fn embed(&self, input: &ModelInput) -> Option<Vec<Tensor>> {
            Some(self.embed.embed(input))
        }

        fn forward_embedded(&self, parts: &[Tensor], train: bool) -> Option<Tensor> {
            Some(self.forward_combined(&self.embed.combine(parts, train), train))
        }
    };
}
pub(crate) use tab_embedding_methods;

#[derive(Debug)]
enum NormLayer {
    Batch(nn::BatchNorm),
    Layer(nn::LayerNorm),
}

/// Categorical embeddings (with dropout) concatenated with the (normalised) continuous columns:
/// `cat [batch, n_cat]`, `cont [batch, n_cont]` → `[batch, Σ embed_dim + n_cont]`.
#[derive(Debug)]
pub struct TabEmbeddings {
    tables: Vec<nn::Embedding>,
    cat: Vec<CatColumnMeta>,
    cont: Vec<String>,
    norm: Option<NormLayer>,
    dropout: f64,
}

impl TabEmbeddings {
    /// Checks the options of [`TabEmbeddings::new`] without building anything: the dropout,
    /// at least one column, every categorical column's cardinality (≥ 2) and width (≥ 1).
    /// `prefix` names the owner in errors (`tab_mlp.embed_dropout`, `tab_mlp.cat_embed[city]`).
    pub fn validate(
        cat: &[CatColumnMeta],
        cont: &[String],
        dropout: f64,
        prefix: &str,
    ) -> Result<()> {
        check_dropout(dropout, &format!("{prefix}.embed_dropout"))?;
        ensure!(
            !cat.is_empty() || !cont.is_empty(),
            config(prefix),
            "needs at least one categorical or continuous column"
        );
        for c in cat {
            ensure!(
                c.cardinality >= 2 && c.embed_dim >= 1,
                config(format!("{prefix}.cat_embed[{}]", c.name)),
                "cardinality must be ≥ 2 and embed_dim ≥ 1, got {} and {}",
                c.cardinality,
                c.embed_dim
            );
        }
        Ok(())
    }

    /// Validates (see [`TabEmbeddings::validate`]), then builds one table per categorical
    /// column under `path` (`emb_{i}`, row 0 zeroed) and the continuous normalisation
    /// (`cont_norm`); `prefix` names the owner in errors.
    pub fn new(
        path: &nn::Path,
        cat: &[CatColumnMeta],
        cont: &[String],
        cont_norm: ContNorm,
        dropout: f64,
        prefix: &str,
    ) -> Result<Self> {
        Self::validate(cat, cont, dropout, prefix)?;
        let mut tables = Vec::with_capacity(cat.len());
        for (i, c) in cat.iter().enumerate() {
            let cfg = nn::EmbeddingConfig {
                padding_idx: 0,
                ..Default::default()
            };
            crate::models::alloc::check_table(
                prefix,
                &format!("embedding of column `{}`", c.name),
                &[c.cardinality as i64, c.embed_dim as i64],
                path.device(),
            )?;
            let emb = nn::embedding(
                path / format!("emb_{i}"),
                c.cardinality as i64,
                c.embed_dim as i64,
                cfg,
            );
            tch::no_grad(|| {
                let _ = emb.ws.get(0).zero_();
            });
            tables.push(emb);
        }
        let n_cont = cont.len() as i64;
        let norm = match (cont_norm, n_cont) {
            (_, 0) | (ContNorm::None, _) => None,
            (ContNorm::BatchNorm, n) => Some(NormLayer::Batch(nn::batch_norm1d(
                path / "cont_norm",
                n,
                Default::default(),
            ))),
            (ContNorm::LayerNorm, n) => Some(NormLayer::Layer(nn::layer_norm(
                path / "cont_norm",
                vec![n],
                Default::default(),
            ))),
        };
        Ok(Self {
            tables,
            cat: cat.to_vec(),
            cont: cont.to_vec(),
            norm,
            dropout,
        })
    }

    /// Width of the output: the sum of the embedding dims plus the continuous columns.
    pub fn output_dim(&self) -> i64 {
        self.cat.iter().map(|c| c.embed_dim as i64).sum::<i64>() + self.cont.len() as i64
    }

    /// The values of [`TabEmbeddings::embed`] then [`TabEmbeddings::combine`], without the
    /// per-column split when nothing needs it.
    ///
    /// # Shapes
    /// - `input.cat`: `[batch, n_cat]` i64, `input.cont`: `[batch, n_cont]` f32
    /// - returns `[batch, output_dim()]`
    pub fn forward_t(&self, input: &ModelInput, train: bool) -> Tensor {
        let cont = input.cont.as_ref().filter(|_| !self.cont.is_empty());
        let dropping = self.dropout > 0.0 && crate::models::dropout_on(train);
        match (cont, &self.norm) {
            // the same values as `combine(embed(..))` with one concatenation and no per-column
            // copies of the continuous block
            (Some(cont), None | Some(NormLayer::Batch(_))) if !dropping => {
                let mut parts = self.embed_cat(input);
                parts.push(match &self.norm {
                    Some(NormLayer::Batch(bn)) => bn.forward_t(cont, train),
                    _ => cont.shallow_clone(),
                });
                Tensor::cat(&parts, 1)
            }
            _ => self.combine(&self.embed(input), train),
        }
    }

    /// The categorical columns' embeddings, `[batch, embed_dim]` each.
    fn embed_cat(&self, input: &ModelInput) -> Vec<Tensor> {
        match input.cat.as_ref().filter(|_| !self.tables.is_empty()) {
            Some(cat) => self
                .tables
                .iter()
                .enumerate()
                .map(|(i, t)| cat.select(1, i as i64).apply(t))
                .collect(),
            None => Vec::new(),
        }
    }

    /// One tensor per input column, in the order of [`TabEmbeddings::names`]. This is where
    /// gradient attributions are taken.
    ///
    /// # Shapes
    /// - `input.cat`: `[batch, n_cat]` i64, `input.cont`: `[batch, n_cont]` f32
    /// - returns each categorical column's embedding `[batch, embed_dim]`, then each continuous
    ///   column's raw value `[batch, 1]`
    pub fn embed(&self, input: &ModelInput) -> Vec<Tensor> {
        let mut parts = self.embed_cat(input);
        if let Some(cont) = input.cont.as_ref().filter(|_| !self.cont.is_empty()) {
            parts.extend((0..self.cont.len() as i64).map(|j| cont.narrow(1, j, 1)));
        }
        parts
    }

    /// The rest of the embedding layer from (possibly perturbed) [`TabEmbeddings::embed`]
    /// output: dropout on the categorical embeddings, normalisation of the continuous block,
    /// concatenation.
    ///
    /// # Shapes
    /// - `parts`: as [`TabEmbeddings::embed`] returns them
    /// - returns `[batch, output_dim()]`
    pub fn combine(&self, parts: &[Tensor], train: bool) -> Tensor {
        let n_cat = self.cat.len();
        let mut out = Vec::with_capacity(2);
        if n_cat > 0 {
            out.push(Tensor::cat(&parts[..n_cat], 1).dropout_t(self.dropout, train));
        }
        if !self.cont.is_empty() {
            let cont = Tensor::cat(&parts[n_cat..], 1);
            out.push(match &self.norm {
                None => cont,
                Some(NormLayer::Batch(bn)) => bn.forward_t(&cont, train),
                Some(NormLayer::Layer(ln)) => cont.apply_t(ln, train),
            });
        }
        if out.len() == 1 {
            out.pop().expect("one part")
        } else {
            Tensor::cat(&out, 1)
        }
    }

    /// The input column names: categorical then continuous.
    pub fn names(&self) -> Vec<String> {
        let cat = self.cat.iter().map(|c| c.name.clone());
        cat.chain(self.cont.iter().cloned()).collect()
    }

    /// Checks presence, widths and index ranges of `cat` and `cont`.
    ///
    /// # Shapes
    /// - `input.cat`: `[batch, n_cat]` i64 (each column's indices in `0..cardinality`),
    ///   `input.cont`: `[batch, n_cont]` f32
    pub fn check_input(&self, input: &ModelInput) -> Result<()> {
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
        let n_cont = self.cont.len() as i64;
        if n_cont > 0 {
            let Some(cont) = input.cont.as_ref() else {
                bail!(input("cont"), "no continuous input");
            };
            let size = cont.size();
            ensure!(
                size.len() == 2 && size[1] == n_cont,
                input("cont"),
                "expected [batch, {n_cont}], got {size:?}"
            );
        }
        Ok(())
    }
}
