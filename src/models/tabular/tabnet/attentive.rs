//! TabNet's attentive transformer: the feature mask of a decision step from the previous
//! step's attention features and the prior.
use super::glu::{normal_linear, GhostBatchNorm};
use super::sparsemax::MaskType;
use tch::{nn, Tensor};

/// `M = mask(P · BN(FC(a)))`: a linear map from the attention features to the embedded
/// input's width (`attn_fc`), ghost batch norm (`attn_bn`), the prior `P`, then
/// [`MaskType`]'s sparse normalisation.
#[derive(Debug)]
pub(super) struct AttentiveTransformer {
    fc: nn::Linear,
    bn: GhostBatchNorm,
    mask_type: MaskType,
}

impl AttentiveTransformer {
    /// `attn_fc` (`attn_dim → input_dim`, no bias, normal with the reference's xavier gain)
    /// then `attn_bn` under `path`, in this order.
    pub(super) fn new(
        path: &nn::Path,
        (attn_dim, input_dim): (i64, i64),
        mask_type: MaskType,
        bn: &dyn Fn(nn::Path, i64) -> GhostBatchNorm,
    ) -> Self {
        // xavier normal with the reference's gain sqrt((in + out) / sqrt(4 in))
        let std = (1.0 / (attn_dim as f64).sqrt()).sqrt();
        let fc = normal_linear(&(path / "attn_fc"), attn_dim, input_dim, std);
        Self {
            fc,
            bn: bn(path / "attn_bn", input_dim),
            mask_type,
        }
    }

    /// The step's mask; `prior: None` stands for the first step's prior of ones.
    ///
    /// # Shapes
    /// - `attn`: `[batch, attn_dim]`, `prior`: `[batch, input_dim]`
    /// - returns `[batch, input_dim]`, rows summing to 1
    pub(super) fn mask(&self, attn: &Tensor, prior: Option<&Tensor>, train: bool) -> Tensor {
        let mut logits = self.bn.forward_t(&attn.apply(&self.fc), train);
        if let Some(p) = prior {
            logits *= p;
        }
        self.mask_type.apply(&logits)
    }
}
