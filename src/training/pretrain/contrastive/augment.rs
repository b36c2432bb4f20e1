//! The corruptions of the second view: CutMix in input space and MixUp in embedding space (as
//! in SAINT and the reference), drawn from libtorch's generator.
use tch::{Kind, Tensor};

/// CutMix: each entry of each row is kept with probability `lambda` and otherwise replaced by
/// the same column's entry of another row (one random permutation of the batch for all
/// columns; categorical and continuous columns share the mask's draw).
///
/// # Shapes
/// - `cat`: `[batch, n_cat]` i64, `cont`: `[batch, n_cont]` f32 (either may be absent)
/// - returns tensors of the same shapes
pub fn cut_mix(
    cat: Option<&Tensor>,
    cont: Option<&Tensor>,
    lambda: f64,
) -> (Option<Tensor>, Option<Tensor>) {
    let any = cat.or(cont).expect("a categorical or continuous input");
    let b = any.size()[0];
    let device = any.device();
    if lambda >= 1.0 {
        return (
            cat.map(Tensor::shallow_clone),
            cont.map(Tensor::shallow_clone),
        );
    }
    let n_cat = cat.map(|t| t.size()[1]).unwrap_or(0);
    let n_cont = cont.map(|t| t.size()[1]).unwrap_or(0);
    // true: take the entry from the permuted row
    let swap = Tensor::rand([b, n_cat + n_cont], (Kind::Float, device)).ge(lambda);
    let perm = Tensor::randperm(b, (Kind::Int64, device));
    let mix = |t: &Tensor, m: Tensor| t.where_self(&m.logical_not(), &t.index_select(0, &perm));
    let cat = cat.map(|t| mix(t, swap.narrow(1, 0, n_cat)));
    let cont = cont.map(|t| mix(t, swap.narrow(1, n_cat, n_cont)));
    (cat, cont)
}

/// MixUp: `lambda · x + (1 − lambda) · x[perm]` for a random permutation of the batch.
///
/// # Shapes
/// - `x`: `[batch, ..]`; returns the same shape
pub fn mix_up(x: &Tensor, lambda: f64) -> Tensor {
    if lambda >= 1.0 {
        return x.shallow_clone();
    }
    let perm = Tensor::randperm(x.size()[0], (Kind::Int64, x.device()));
    x * lambda + x.index_select(0, &perm) * (1.0 - lambda)
}
