//! Checks shared by the component configs (hyper-parameters) and the components (inputs):
//! each error names the field or input it is about.
use crate::error::Result;
use crate::macros::ensure;
use crate::models::{AttnEmbedConfig, MlpConfig};
use tch::{Kind, Tensor};

pub(crate) fn check_dropout(p: f64, field: &str) -> Result<()> {
    ensure!(
        (0.0..1.0).contains(&p),
        config(field),
        "must be in [0, 1), got {p}"
    );
    Ok(())
}

/// Errors unless every index of `t` lies in `0..=max`.
pub(crate) fn check_index_range(t: &Tensor, input: &str, max: i64) -> Result<()> {
    ensure!(
        t.kind() == Kind::Int64,
        input(input),
        "expected i64 indices, got {:?}",
        t.kind()
    );
    if t.numel() == 0 {
        return Ok(());
    }
    let (lo, hi) = (t.min().int64_value(&[]), t.max().int64_value(&[]));
    ensure!(
        !(lo < 0 || hi > max),
        input(input),
        "indices must lie in 0..={max}, found {lo}..={hi}"
    );
    Ok(())
}

pub(crate) fn check_min(value: i64, min: i64, field: String) -> Result<()> {
    ensure!(value >= min, config(field), "must be ≥ {min}, got {value}");
    Ok(())
}

/// `d ≥ 1`, `h ≥ 1` and `d % h == 0`; the error names `{prefix}.n_heads`.
pub(crate) fn check_heads(d: i64, h: i64, prefix: &str, d_name: &str, h_name: &str) -> Result<()> {
    check_min(d, 1, format!("{prefix}.{d_name}"))?;
    check_min(h, 1, format!("{prefix}.{h_name}"))?;
    ensure!(
        d % h == 0,
        config(format!("{prefix}.{h_name}")),
        "{d_name} ({d}) must be divisible by {h_name} ({h})"
    );
    Ok(())
}

pub(crate) fn check_dropouts(prefix: &str, fields: &[(&str, f64)]) -> Result<()> {
    for (name, p) in fields {
        check_dropout(*p, &format!("{prefix}.{name}"))?;
    }
    Ok(())
}

/// Hidden width of a feed-forward layer: `floor(d · ff_factor)`, at least 1.
pub(crate) fn check_ff_factor(d: i64, ff_factor: f64, field: String) -> Result<i64> {
    ensure!(
        !(!(ff_factor > 0.0 && ff_factor.is_finite()) || ((d as f64) * ff_factor).floor() < 1.0),
        config(field),
        "must give a hidden width ≥ 1 (input width {d}), got {ff_factor}"
    );
    Ok(((d as f64) * ff_factor).floor() as i64)
}

/// The checks every transformer-style config shares (TabTransformer, FT-Transformer, SAINT,
/// TabFastFormer), in this order: `n_heads` divides `input_dim`, `n_blocks ≥ 1`, both dropouts,
/// `ff_factor`. Errors name the field under `name`.
pub(crate) fn check_transformer(
    name: &str,
    input_dim: i64,
    n_heads: i64,
    n_blocks: i64,
    (attn_dropout, ff_dropout): (f64, f64),
    ff_factor: f64,
) -> Result<()> {
    check_heads(input_dim, n_heads, name, "input_dim", "n_heads")?;
    check_min(n_blocks, 1, format!("{name}.n_blocks"))?;
    check_dropouts(
        name,
        &[("attn_dropout", attn_dropout), ("ff_dropout", ff_dropout)],
    )?;
    check_ff_factor(input_dim, ff_factor, format!("{name}.ff_factor")).map(|_| ())
}

/// The last checks of every attention config: the MLP on top (if any), then the embedding
/// options for tokens of width `input_dim` and `n_cont` continuous columns.
pub(crate) fn check_mlp_and_embed(
    name: &str,
    mlp: Option<&MlpConfig>,
    embed: &AttnEmbedConfig,
    input_dim: i64,
    n_cont: usize,
) -> Result<()> {
    if let Some(mlp) = mlp {
        mlp.validate(&format!("{name}.mlp"))?;
    }
    embed.validate(input_dim, n_cont, &format!("{name}.embed"))
}
