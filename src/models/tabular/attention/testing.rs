//! Checks shared by the attention models' unit tests.
use super::{AttnEmbedConfig, AttnMlpBase, TransformerActivation};
use crate::models::tabular::testing::check_component;
use crate::models::{Component, ComponentConfig};
use std::ops::DerefMut;
use tch::{nn, Device};

/// Checks an attention MLP in three variants of `config()` (a config for
/// `tabular::testing::meta()` with tokens of width 6): as it comes, with post-norm residuals
/// and one block, and with a gated activation and a `[CLS]` token. Each model passes
/// `check_component` and records one attention tensor per block, the first of shape
/// `weights_shape(n_tokens)`.
pub(crate) fn check_attn_mlp_variants<C>(config: impl Fn() -> C, weights_shape: fn(i64) -> Vec<i64>)
where
    C: ComponentConfig + DerefMut<Target = AttnMlpBase<C>>,
{
    let _rng = crate::torch_rng_lock();
    let mut with_addnorm = config();
    (with_addnorm.with_addnorm, with_addnorm.n_blocks) = (true, 1);
    let mut gated = config();
    gated.attn_activation = TransformerActivation::Geglu;
    gated.embed = AttnEmbedConfig::new().with_cls_token(true);
    for (cfg, out_dim) in [(config(), 4 * 6), (with_addnorm, 4 * 6), (gated, 6)] {
        let vs = nn::VarStore::new(Device::Cpu);
        let m = cfg.build(&vs.root()).unwrap();
        check_component(&m, out_dim, &[6, 6, 6, 6]);
        let w = m.attention_weights().unwrap();
        assert_eq!(w.len(), cfg.n_blocks as usize);
        let n_tokens = 4 + cfg.embed.with_cls_token as i64;
        assert_eq!(w[0].size(), weights_shape(n_tokens));
    }
}
