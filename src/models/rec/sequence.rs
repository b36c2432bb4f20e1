//! What the sequence recommenders ([`Din`](super::Din), [`SeqTransformer`](super::SeqTransformer))
//! share: the checks of the fitted sequence sizes and of the [`SeqInput`] tensors, and the
//! embedding tables of the sequence columns (row 0 = padding, kept at zero).
use crate::error::Result;
use crate::macros::{bail, ensure};
use crate::models::checks::{check_index_range, check_min};
use crate::models::{ModelInput, SeqInput};
use tch::{nn, Kind, Tensor};
use widedeep_preprocessing::{CatColumnMeta, SequenceMeta};

/// A placeholder for configs made by `Default` (fails validation until `from_meta` fills it).
pub(crate) fn empty_meta() -> SequenceMeta {
    SequenceMeta {
        max_seq_length: 0,
        items: CatColumnMeta {
            name: "item".into(),
            cardinality: 0,
            embed_dim: 0,
        },
        actions: None,
        others: Vec::new(),
    }
}

/// Checks a sequence column's sizes: cardinality ≥ 2, and embedding width ≥ 1 when
/// `check_width`; the error names `{field}`.
fn check_column(c: &CatColumnMeta, field: String, check_width: bool) -> Result<()> {
    ensure!(
        c.cardinality >= 2 && (!check_width || c.embed_dim >= 1),
        config(field),
        "`{}`: cardinality must be ≥ 2 and embed_dim ≥ 1, got {} and {} (start from \
         `from_meta` with the fitted SequencePreprocessor's meta)",
        c.name,
        c.cardinality,
        c.embed_dim
    );
    Ok(())
}

/// Checks the fitted sizes in `meta` (`max_seq_length ≥ 1`, every column's cardinality and
/// width); errors name `{name}.seq.*`. The action column's width is not read (its embedding
/// is one wide).
pub(crate) fn validate_meta(meta: &SequenceMeta, name: &str) -> Result<()> {
    check_min(
        meta.max_seq_length as i64,
        1,
        format!("{name}.seq.max_seq_length"),
    )?;
    check_column(&meta.items, format!("{name}.seq.items"), true)?;
    if let Some(a) = &meta.actions {
        check_column(a, format!("{name}.seq.actions"), false)?;
    }
    for c in &meta.others {
        check_column(c, format!("{name}.seq.others[{}]", c.name), true)?;
    }
    Ok(())
}

/// An embedding table `[cardinality, width]` under `path` with row 0 (padding) zeroed and
/// kept at zero (no gradient reaches it); its size is checked before allocation.
pub(crate) fn table(
    path: &nn::Path,
    name: &str,
    c: &CatColumnMeta,
    width: i64,
) -> Result<nn::Embedding> {
    crate::models::alloc::check_table(
        name,
        &format!("embedding of sequence column `{}`", c.name),
        &[c.cardinality as i64, width],
        path.device(),
    )?;
    let cfg = nn::EmbeddingConfig {
        padding_idx: 0,
        ..Default::default()
    };
    let emb = nn::embedding(path, c.cardinality as i64, width, cfg);
    tch::no_grad(|| {
        let _ = emb.ws.get(0).zero_();
    });
    Ok(emb)
}

/// The sequences of `input`; panics without them (components check their input first).
pub(crate) fn seq_of(input: &ModelInput) -> &SeqInput {
    input
        .seq
        .as_ref()
        .expect("the sequence input is checked by check_input")
}

/// Checks that `input` holds behaviour sequences matching `meta`: `items` `[batch, L]`,
/// `target_item` `[batch]`, the actions when `meta` has an action column and one tensor per
/// other column (only the first `n_others` are read), every code inside its vocabulary.
pub(crate) fn check_seq(input: &ModelInput, meta: &SequenceMeta, n_others: usize) -> Result<()> {
    let Some(seq) = input.seq.as_ref() else {
        bail!(
            input("seq"),
            "no behaviour sequences: transform the data with a SequencePreprocessor \
             (Preprocessors::seq or Dataset::from_sequences)"
        );
    };
    let l = meta.max_seq_length as i64;
    let batch = seq.items.size().first().copied().unwrap_or(-1);
    let history = |t: &Tensor, what: &str, c: &CatColumnMeta| -> Result<()> {
        ensure!(
            t.size() == [batch, l],
            input(what),
            "expected [batch, {l}] (max_seq_length), got {:?}",
            t.size()
        );
        check_index_range(t, what, c.cardinality as i64 - 1)
    };
    history(&seq.items, "seq.items", &meta.items)?;
    ensure!(
        seq.target_item.size() == [batch],
        input("seq.target_item"),
        "expected [batch] = [{batch}], got {:?}",
        seq.target_item.size()
    );
    check_index_range(
        &seq.target_item,
        "seq.target_item",
        meta.items.cardinality as i64 - 1,
    )?;
    if let Some(a) = &meta.actions {
        let Some(actions) = &seq.actions else {
            bail!(input("seq.actions"), "no action sequence for `{}`", a.name);
        };
        history(actions, "seq.actions", a)?;
    }
    ensure!(
        seq.others.len() >= n_others,
        input("seq.others"),
        "expected {n_others} other sequence column(s), got {}",
        seq.others.len()
    );
    for (i, (t, c)) in seq
        .others
        .iter()
        .zip(&meta.others)
        .take(n_others)
        .enumerate()
    {
        history(t, &format!("seq.others[{i}]"), c)?;
    }
    Ok(())
}

/// Attention weights over the real history positions: a softmax of `scores` over the
/// positions where `real` is 1, exactly 0 where it is 0 (a row without real positions gets all
/// zeros), computed in `f32` as `softmax(scores + ln(real + ε)) · real / (real + ε)`
/// (`ε = 1e-30`). For a 0/1 `real` this is the masked softmax (up to a relative `1e-30`);
/// a fractional `real` (a gradient explainer's path between two inputs) moves it
/// continuously between the two.
///
/// # Shapes
/// - `scores`: `[b, L]` (any float kind), `real`: `[b, L]` float in `[0, 1]`
/// - returns `[b, L]` f32
pub(crate) fn position_weights(scores: &Tensor, real: &Tensor) -> Tensor {
    const EPS: f64 = 1e-30;
    let real = real.to_kind(Kind::Float);
    let shifted = &real + EPS;
    let w = (scores.to_kind(Kind::Float) + shifted.log()).softmax(-1, Kind::Float);
    w * (real / shifted)
}
