//! The losses of contrastive–denoising pretraining, as the reference's `InfoNCELoss` and
//! `DenoisingLoss` (mean reduction).
use tch::{Kind, Reduction, Tensor};

/// Symmetric InfoNCE: every token of both views is L2-normalised over its width, each row's
/// tokens are flattened into one vector, the logits are the cosine products of the rows of
/// `z` with those of `z_` divided by `temperature`, and the loss is the mean of the
/// cross-entropies with the diagonal as targets, taken both ways (`z → z_` and `z_ → z`).
///
/// # Shapes
/// - `z`, `z_`: `[batch, n_tokens, d]` (or `[batch, d]`), the projections of the two views
/// - returns a scalar
pub fn info_nce_loss(z: &Tensor, z_: &Tensor, temperature: f64) -> Tensor {
    let norm = |t: &Tensor| {
        let n = t
            .norm_scalaropt_dim(2.0, [-1i64].as_slice(), true)
            .clamp_min(1e-12);
        (t / n).flatten(1, -1)
    };
    let (a, b) = (norm(z), norm(z_));
    let logits = a.matmul(&b.tr()) / temperature;
    let target = Tensor::arange(a.size()[0], (Kind::Int64, a.device()));
    let ce =
        |l: &Tensor| l.cross_entropy_loss::<&Tensor>(&target, None, Reduction::Mean, -100, 0.0);
    (ce(&logits) + ce(&logits.tr())) / 2.0
}

/// Denoising loss: `lambda_cat · Σ cross-entropy(logits, classes)` over the categorical pairs
/// plus `lambda_cont · Σ mean squared error(prediction, value)` over the continuous pairs (one
/// pair per column, or one pair for all columns with a single MLP); an empty side adds 0.
///
/// # Shapes
/// - `cat`: `(classes [n] i64, logits [n, n_classes])` pairs
/// - `cont`: `(values [n, 1] f32, predictions [n, 1])` pairs
/// - returns a scalar
pub fn denoising_loss(
    cat: &[(Tensor, Tensor)],
    cont: &[(Tensor, Tensor)],
    lambda_cat: f64,
    lambda_cont: f64,
) -> Tensor {
    let mut total: Option<Tensor> = None;
    let mut add = |t: Tensor| {
        total = Some(match total.take() {
            Some(s) => s + t,
            None => t,
        });
    };
    for (x, logits) in cat {
        add(logits.cross_entropy_loss::<&Tensor>(x, None, Reduction::Mean, -100, 0.0) * lambda_cat);
    }
    for (x, pred) in cont {
        add(pred.mse_loss(x, Reduction::Mean) * lambda_cont);
    }
    total.unwrap_or_else(|| {
        let device = cat
            .first()
            .map(|p| p.1.device())
            .or(cont.first().map(|p| p.1.device()))
            .unwrap_or(tch::Device::Cpu);
        Tensor::zeros([], (Kind::Float, device))
    })
}
