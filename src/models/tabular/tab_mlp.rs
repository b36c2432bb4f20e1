//! TabMlp: column embeddings followed by an MLP.
use crate::error::Result;
use crate::macros::setters;
use crate::models::tabular::embeddings::{
    tab_embedding_methods, TabColumns, TabEmbedConfig, TabEmbeddings,
};
use crate::models::{Component, ComponentConfig, Mlp, MlpConfig, ModelInput};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};
use widedeep_preprocessing::TabMeta;

/// Configuration of [`TabMlp`]. Start from [`TabMlpConfig::from_meta`] with the fitted
/// `TabPreprocessor`'s metadata, then adjust with the setters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TabMlpConfig {
    /// The columns and their embedding options (flattened: `cat_embed`, `cont_cols`,
    /// `embed_dropout`, `cont_norm` at the top of the JSON).
    #[serde(flatten)]
    pub embed: TabEmbedConfig,
    /// The MLP on the concatenated embeddings and continuous columns.
    #[serde(default)]
    pub mlp: MlpConfig,
}

impl TabMlpConfig {
    /// Columns, cardinalities and embedding widths from a fitted `TabPreprocessor`.
    pub fn from_meta(meta: &TabMeta) -> Self {
        Self {
            embed: TabEmbedConfig::from_meta(meta),
            mlp: MlpConfig::default(),
        }
    }
    setters!(mlp: MlpConfig);
}

impl ComponentConfig for TabMlpConfig {
    type Component = TabMlp;
    const NAME: &'static str = "tab_mlp";

    /// Checks the MLP (`tab_mlp.mlp.*`), then the embedding columns and options.
    fn validate(&self) -> Result<()> {
        self.mlp.validate("tab_mlp.mlp")?;
        self.validate_columns()
    }

    /// Validates, then builds the embeddings (`embed`) and the MLP (`mlp`) under `path`.
    fn build(&self, path: &nn::Path) -> Result<TabMlp> {
        self.validate()?;
        let embed = self.build_embeddings(path)?;
        let mlp = self
            .mlp
            .build(&(path / "mlp"), embed.output_dim(), "tab_mlp.mlp")?;
        Ok(TabMlp { embed, mlp })
    }
}

/// TabMlp: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, mlp.hidden_dims.last()]`.
#[derive(Debug)]
pub struct TabMlp {
    pub(crate) embed: TabEmbeddings,
    mlp: Mlp,
}

impl TabMlp {
    /// The MLP on the combined embeddings `[batch, Σ embed_dim + n_cont]`.
    pub(crate) fn forward_combined(&self, x: &Tensor, train: bool) -> Tensor {
        self.mlp.forward_t(x, train)
    }
}

impl Component for TabMlp {
    tab_embedding_methods!();

    fn output_dim(&self) -> i64 {
        self.mlp.output_dim()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::tabular::testing::{check_embed_then_forward, fixed_input as input, meta};
    use crate::models::{Activation, ContNorm};
    use tch::{Device, Kind};

    #[test]
    fn forward_shapes_for_several_configs() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        for (norm, act, bn, dims) in [
            (ContNorm::None, Activation::Relu, false, vec![16, 8]),
            (ContNorm::BatchNorm, Activation::Gelu, true, vec![5]),
            (ContNorm::LayerNorm, Activation::Tanh, false, vec![7, 7, 3]),
            (ContNorm::None, Activation::LeakyRelu, true, vec![4, 2]),
        ] {
            let vs = nn::VarStore::new(Device::Cpu);
            let cfg = TabMlpConfig::from_meta(&meta())
                .cont_norm(norm)
                .embed_dropout(0.1)
                .mlp(
                    MlpConfig::default()
                        .hidden_dims(dims.clone())
                        .activation(act)
                        .batchnorm(bn),
                );
            let m = cfg.build(&vs.root()).unwrap();
            let x = input(3);
            m.check_input(&x).unwrap();
            let y = m.forward_t(&x, true);
            assert_eq!(y.size(), [3, *dims.last().unwrap()]);
            assert_eq!(m.output_dim(), *dims.last().unwrap());
        }
    }

    #[test]
    fn embed_then_forward_embedded_equals_forward() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = TabMlpConfig::from_meta(&meta()).cont_norm(ContNorm::BatchNorm);
        let m = cfg.build(&vs.root()).unwrap();
        check_embed_then_forward(&m, &input(3));
    }

    #[test]
    fn input_checks_name_the_column() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let m = TabMlpConfig::from_meta(&meta()).build(&vs.root()).unwrap();
        let mut x = input(3);
        x.cat = Some(Tensor::from_slice(&[1i64, 5]).view([1, 2]));
        x.cont = Some(Tensor::zeros([1, 2], (Kind::Float, Device::Cpu)));
        let err = m.check_input(&x).unwrap_err().to_string();
        assert!(err.contains('b') && err.contains("0..=2"), "{err}");
        x.cont = Some(Tensor::zeros([1, 3], (Kind::Float, Device::Cpu)));
        x.cat = Some(Tensor::from_slice(&[1i64, 1]).view([1, 2]));
        assert!(m.check_input(&x).unwrap_err().to_string().contains("cont"));
    }

    #[test]
    fn invalid_configs_are_typed_errors() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let bad = TabMlpConfig::from_meta(&meta()).embed_dropout(-0.1);
        assert!(bad
            .build(&vs.root())
            .unwrap_err()
            .to_string()
            .contains("tab_mlp.embed_dropout"));
        let empty = TabMlpConfig::from_meta(&TabMeta {
            cat: vec![],
            cont: vec![],
        });
        assert!(empty.build(&vs.root()).is_err());
    }
}
