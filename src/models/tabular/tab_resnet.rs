//! TabResnet: column embeddings followed by dense residual blocks and an optional MLP.
use crate::error::Result;
use crate::macros::{bail, ensure, setters};
use crate::models::checks::check_dropout;
use crate::models::dropout::DropoutExt;
use crate::models::tabular::embeddings::{
    tab_embedding_methods, TabColumns, TabEmbedConfig, TabEmbeddings,
};
use crate::models::{Component, ComponentConfig, Mlp, MlpConfig, ModelInput};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::ModuleT, Tensor};
use widedeep_preprocessing::TabMeta;

/// Configuration of [`TabResnet`] (the reference's `TabResnet`). Start from
/// [`TabResnetConfig::from_meta`] with the fitted `TabPreprocessor`'s metadata, then adjust with
/// the setters.
///
/// The embeddings (`[batch, Σ embed_dim + n_cont]`) are projected to `blocks_dims[0]` (linear
/// without bias + batch norm) when the widths differ; then one residual block per consecutive
/// pair of `blocks_dims`: `x → Linear → BN → LeakyReLU → Dropout → Linear → BN (+ x) →
/// LeakyReLU` (the second linear and BN are dropped with `simplify_blocks`; the shortcut is a
/// linear + BN when the widths differ). An optional [`Mlp`] follows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TabResnetConfig {
    /// The columns and their embedding options (flattened: `cat_embed`, `cont_cols`,
    /// `embed_dropout`, `cont_norm` at the top of the JSON).
    #[serde(flatten)]
    pub embed: TabEmbedConfig,
    /// Input and output widths of the blocks: `[200, 100, 100]` gives two blocks, 200 → 100 and
    /// 100 → 100. At least two entries.
    #[serde(default = "default_blocks_dims")]
    pub blocks_dims: Vec<i64>,
    /// Dropout inside each block, in `[0, 1)`.
    #[serde(default = "default_blocks_dropout")]
    pub blocks_dropout: f64,
    /// One linear layer per block instead of two.
    #[serde(default)]
    pub simplify_blocks: bool,
    /// An MLP on top of the blocks; `None` (the default) outputs the last block.
    #[serde(default)]
    pub mlp: Option<MlpConfig>,
}

fn default_blocks_dims() -> Vec<i64> {
    vec![200, 100, 100]
}

fn default_blocks_dropout() -> f64 {
    0.1
}

impl Default for TabResnetConfig {
    fn default() -> Self {
        Self {
            embed: TabEmbedConfig::default(),
            blocks_dims: default_blocks_dims(),
            blocks_dropout: default_blocks_dropout(),
            simplify_blocks: false,
            mlp: None,
        }
    }
}

impl TabResnetConfig {
    /// Columns, cardinalities and embedding widths from a fitted `TabPreprocessor`; the other
    /// fields take the reference's defaults (blocks `[200, 100, 100]`, block dropout 0.1, no MLP).
    pub fn from_meta(meta: &TabMeta) -> Self {
        Self {
            embed: TabEmbedConfig::from_meta(meta),
            ..Default::default()
        }
    }
    setters!(
        blocks_dropout: f64,
        simplify_blocks: bool,
    );
    /// Sets `blocks_dims`.
    pub fn blocks_dims(mut self, dims: impl Into<Vec<i64>>) -> Self {
        self.blocks_dims = dims.into();
        self
    }
    /// Puts an MLP on top of the blocks.
    pub fn mlp(mut self, mlp: MlpConfig) -> Self {
        self.mlp = Some(mlp);
        self
    }
}

impl ComponentConfig for TabResnetConfig {
    type Component = TabResnet;
    const NAME: &'static str = "tab_resnet";

    /// Checks the blocks, the MLP, then the embedding columns and options; errors name the
    /// field (`tab_resnet.blocks_dims`, ...).
    fn validate(&self) -> Result<()> {
        ensure!(
            self.blocks_dims.len() >= 2,
            config("tab_resnet.blocks_dims"),
            "needs at least two widths (one block), got {:?}",
            self.blocks_dims
        );
        if let Some(d) = self.blocks_dims.iter().find(|&&d| d <= 0) {
            bail!(
                config("tab_resnet.blocks_dims"),
                "widths must be positive, got {d}"
            );
        }
        check_dropout(self.blocks_dropout, "tab_resnet.blocks_dropout")?;
        if let Some(mlp) = &self.mlp {
            mlp.validate("tab_resnet.mlp")?;
        }
        self.validate_columns()
    }

    /// Validates, then builds the embeddings (`embed`), the input projection (`input`, when
    /// the widths differ), the blocks (`block_{i}`) and the MLP (`mlp`) under `path`.
    fn build(&self, path: &nn::Path) -> Result<TabResnet> {
        self.validate()?;
        let embed = self.build_embeddings(path)?;
        let dims = &self.blocks_dims;
        let body = DenseResnet::new(
            path,
            embed.output_dim(),
            dims,
            self.simplify_blocks,
            self.blocks_dropout,
        );
        let last = *dims.last().expect("validated");
        let mlp = self
            .mlp
            .as_ref()
            .map(|m| m.build(&(path / "mlp"), last, "tab_resnet.mlp"))
            .transpose()?;
        Ok(TabResnet {
            embed,
            body,
            mlp,
            output_dim: last,
        })
    }
}

/// `nn::linear` without bias (PyTorch's default initialisation).
pub(crate) fn linear_no_bias(path: &nn::Path, inp: i64, out: i64) -> nn::Linear {
    let cfg = nn::LinearConfig {
        bias: false,
        ..Default::default()
    };
    nn::linear(path, inp, out, cfg)
}

/// Batch norm initialised as PyTorch's (weight 1, bias 0).
pub(crate) fn batch_norm(path: &nn::Path, dim: i64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        ..Default::default()
    };
    nn::batch_norm1d(path, dim, cfg)
}

/// Batch norm that falls back to the running statistics for a one-row training batch (batch
/// statistics of a single row are undefined; libtorch would fail).
///
/// # Shapes
/// - `x`: `[batch, dim]`
/// - returns `[batch, dim]`
pub(crate) fn bn_t(bn: &nn::BatchNorm, x: &Tensor, train: bool) -> Tensor {
    bn.forward_t(x, train && x.size()[0] > 1)
}

#[derive(Debug)]
struct ResBlock {
    lin1: nn::Linear,
    bn1: nn::BatchNorm,
    second: Option<(nn::Linear, nn::BatchNorm)>,
    resize: Option<(nn::Linear, nn::BatchNorm)>,
}

impl ResBlock {
    fn forward_t(&self, x: &Tensor, p: f64, train: bool) -> Tensor {
        let mut out = bn_t(&self.bn1, &x.apply(&self.lin1), train)
            .leaky_relu()
            .dropout_t(p, train);
        if let Some((lin, bn)) = &self.second {
            out = bn_t(bn, &out.apply(lin), train);
        }
        let identity = match &self.resize {
            Some((lin, bn)) => bn_t(bn, &x.apply(lin), train),
            None => x.shallow_clone(),
        };
        (out + identity).leaky_relu()
    }
}

/// The residual part of [`TabResnet`] (and of its decoder): an input projection (linear
/// without bias + batch norm, `input`) when the input width differs from `blocks_dims[0]`,
/// then one [`ResBlock`] per consecutive pair of `blocks_dims` (`block_{i}`).
#[derive(Debug)]
pub(crate) struct DenseResnet {
    input: Option<(nn::Linear, nn::BatchNorm)>,
    blocks: Vec<ResBlock>,
    dropout: f64,
}

impl DenseResnet {
    /// The layers under `path` (`input`, then `block_{i}`, in this order), for inputs of width
    /// `input_dim`; `dims` has at least two entries (checked by the callers).
    pub(crate) fn new(
        path: &nn::Path,
        input_dim: i64,
        dims: &[i64],
        simplify: bool,
        dropout: f64,
    ) -> Self {
        let input = (input_dim != dims[0]).then(|| {
            let p = path / "input";
            (
                linear_no_bias(&(&p / "linear"), input_dim, dims[0]),
                batch_norm(&(&p / "bn"), dims[0]),
            )
        });
        let blocks = dims
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let p = path / format!("block_{i}");
                let (inp, out) = (w[0], w[1]);
                ResBlock {
                    lin1: linear_no_bias(&(&p / "lin1"), inp, out),
                    bn1: batch_norm(&(&p / "bn1"), out),
                    second: (!simplify).then(|| {
                        (
                            linear_no_bias(&(&p / "lin2"), out, out),
                            batch_norm(&(&p / "bn2"), out),
                        )
                    }),
                    resize: (inp != out).then(|| {
                        (
                            linear_no_bias(&(&p / "resize_linear"), inp, out),
                            batch_norm(&(&p / "resize_bn"), out),
                        )
                    }),
                }
            })
            .collect();
        Self {
            input,
            blocks,
            dropout,
        }
    }

    /// # Shapes
    /// - `x`: `[batch, input_dim]`
    /// - returns `[batch, dims.last()]`
    pub(crate) fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = match &self.input {
            Some((lin, bn)) => bn_t(bn, &x.apply(lin), train),
            None => x.shallow_clone(),
        };
        for block in &self.blocks {
            h = block.forward_t(&h, self.dropout, train);
        }
        h
    }
}

/// TabResnet: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, output_dim()]`, where
/// `output_dim()` is `blocks_dims.last()` or the MLP's last width.
#[derive(Debug)]
pub struct TabResnet {
    pub(crate) embed: TabEmbeddings,
    body: DenseResnet,
    mlp: Option<Mlp>,
    output_dim: i64,
}

impl TabResnet {
    /// The blocks (and MLP) on the combined embeddings `[batch, Σ embed_dim + n_cont]`.
    pub(crate) fn forward_combined(&self, x: &Tensor, train: bool) -> Tensor {
        let h = self.body.forward_t(x, train);
        match &self.mlp {
            Some(mlp) => mlp.forward_t(&h, train),
            None => h,
        }
    }
}

impl Component for TabResnet {
    tab_embedding_methods!();

    fn output_dim(&self) -> i64 {
        self.mlp
            .as_ref()
            .map_or(self.output_dim, |m| m.output_dim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::tabular::testing::{check_embed_then_forward, fixed_input as input, meta};
    use crate::models::ContNorm;
    use crate::WideDeepError;
    use tch::Device;

    #[test]
    fn forward_shapes_for_several_configs() {
        // keeps seeded tests in other threads reproducible
        let _rng = crate::torch_rng_lock();
        // blocks_dims, simplify, mlp, cont_norm, output width
        type Case = (Vec<i64>, bool, Option<MlpConfig>, ContNorm, i64);
        let cases: Vec<Case> = vec![
            (vec![200, 100, 100], false, None, ContNorm::None, 100),
            (vec![7, 7], true, None, ContNorm::BatchNorm, 7), // 3 + 2 + 2 = 7: no input layer
            (vec![16, 8, 8, 4], false, None, ContNorm::LayerNorm, 4),
            (
                vec![32, 16],
                true,
                Some(MlpConfig::default().hidden_dims([8, 3])),
                ContNorm::None,
                3,
            ),
        ];
        for (dims, simplify, mlp, norm, out) in cases {
            let vs = nn::VarStore::new(Device::Cpu);
            let mut cfg = TabResnetConfig::from_meta(&meta())
                .blocks_dims(dims.clone())
                .simplify_blocks(simplify)
                .cont_norm(norm)
                .embed_dropout(0.1);
            cfg.mlp = mlp;
            let m = cfg.build(&vs.root()).unwrap();
            let x = input(4);
            m.check_input(&x).unwrap();
            assert_eq!(m.forward_t(&x, true).size(), [4, out], "{dims:?}");
            assert_eq!(m.forward_t(&x, false).size(), [4, out]);
            assert_eq!(m.output_dim(), out);
            let vars = vs.variables();
            assert_eq!(vars.contains_key("input.linear.weight"), dims[0] != 7);
            assert_eq!(vars.contains_key("block_0.lin2.weight"), !simplify);
            assert_eq!(
                vars.contains_key("block_0.resize_linear.weight"),
                dims[0] != dims[1]
            );
        }
    }

    #[test]
    fn a_one_row_training_batch_does_not_fail() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let m = TabResnetConfig::from_meta(&meta())
            .blocks_dims([8, 4])
            .build(&vs.root())
            .unwrap();
        assert_eq!(m.forward_t(&input(1), true).size(), [1, 4]);
    }

    #[test]
    fn residual_block_by_hand() {
        // One simplified block 7 → 7 in eval mode with fresh batch norms (identity) and no
        // dropout: out = leaky_relu(leaky_relu(W x) + x).
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let m = TabResnetConfig::from_meta(&meta())
            .blocks_dims([7, 7])
            .simplify_blocks(true)
            .build(&vs.root())
            .unwrap();
        let x = input(3);
        let emb = Tensor::cat(&m.embed(&x).unwrap(), 1);
        let w = vs.variables()["block_0.lin1.weight"].shallow_clone();
        let scale = (1.0f64 + 1e-5).sqrt(); // eval BN with running mean 0, var 1
        let expected = ((emb.matmul(&w.tr()) / scale).leaky_relu() + &emb).leaky_relu();
        let got = m.forward_t(&x, false);
        assert!(got.allclose(&expected, 1e-5, 1e-6, false));
    }

    #[test]
    fn embed_then_forward_embedded_equals_forward() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let m = TabResnetConfig::from_meta(&meta())
            .cont_norm(ContNorm::BatchNorm)
            .blocks_dims([16, 8])
            .mlp(MlpConfig::default().hidden_dims([4]))
            .build(&vs.root())
            .unwrap();
        check_embed_then_forward(&m, &input(4));
    }

    #[test]
    fn invalid_configs_are_typed_errors_naming_the_field() {
        let _rng = crate::torch_rng_lock(); // keeps seeded tests in other threads reproducible
        let vs = nn::VarStore::new(Device::Cpu);
        let base = TabResnetConfig::from_meta(&meta());
        let cases = [
            (
                base.clone().blocks_dims(Vec::<i64>::new()),
                "tab_resnet.blocks_dims",
            ),
            (base.clone().blocks_dims([64]), "tab_resnet.blocks_dims"),
            (base.clone().blocks_dims([64, 0]), "tab_resnet.blocks_dims"),
            (
                base.clone().blocks_dropout(1.0),
                "tab_resnet.blocks_dropout",
            ),
            (base.clone().embed_dropout(-0.5), "tab_resnet.embed_dropout"),
            (
                base.clone().mlp(MlpConfig::default().hidden_dims([0])),
                "tab_resnet.mlp.hidden_dims",
            ),
        ];
        for (cfg, field) in cases {
            match cfg.build(&vs.root()).unwrap_err() {
                WideDeepError::InvalidConfig { field: f, .. } => assert_eq!(f, field),
                e => panic!("{e}"),
            }
        }
    }

    #[test]
    fn config_round_trips_through_json_with_defaults() {
        let cfg = TabResnetConfig::from_meta(&meta()).simplify_blocks(true);
        let json = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<TabResnetConfig>(&json).unwrap(), cfg);
        let minimal: TabResnetConfig =
            serde_json::from_str(r#"{"cat_embed": [], "cont_cols": ["x"]}"#).unwrap();
        assert_eq!(minimal.blocks_dims, vec![200, 100, 100]);
        assert_eq!(minimal.blocks_dropout, 0.1);
    }
}
