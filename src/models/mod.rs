//! Models: the wide (linear) part, deep components and the [`WideDeep`] model that joins them.
//!
//! Every deep component implements [`Component`], so users can plug in their own next to the
//! built-in ones; the trainer only ever sees a [`WideDeep`].
pub(crate) mod alloc;
pub mod bayesian;
pub(crate) mod checks;
pub(crate) mod dropout;
#[macro_use]
mod registry;
pub mod fusion;
pub mod image;
pub(crate) mod init;
pub mod mc_dropout;
pub mod mlp;
pub mod rec;
pub mod tabular;
pub mod text;
pub(crate) mod weights;
pub mod wide;
pub mod wide_deep;

pub use bayesian::{
    BayesianEmbedding, BayesianLinear, BayesianModel, BayesianModelConfig, BayesianPrior,
    BayesianTabMlpConfig, BayesianWideConfig,
};
pub use fusion::AttentionFusionConfig;
pub use image::{
    Backbone, BackboneConfig, ImageBackbone, ImageInput, ImageModelConfig, SmallCnn, SmallCnnConfig,
};
pub use mc_dropout::dropout_on;
pub use mlp::{Activation, Mlp, MlpConfig};
pub use rec::{
    AutoIntConfig, AutoIntPlusConfig, DcnConfig, DcnV2Config, GdcnConfig, Reduction, Structure,
};
pub use rec::{DeepFfmConfig, DeepFmConfig, RecMlpConfig, XDeepFmConfig};
pub use rec::{DinConfig, SeqTransformerConfig, UnitActivation};
pub use tabular::{
    AttnEmbedConfig, ContEmbed, ContNorm, ContextAttentionMlpConfig, FtTransformerConfig, MaskType,
    SaintConfig, SelfAttentionMlpConfig, SharedEmbed, TabFastFormerConfig, TabMlp, TabMlpConfig,
    TabModelConfig, TabNet, TabNetConfig, TabPerceiverConfig, TabResnet, TabResnetConfig,
    TabTransformerConfig, TransformerActivation,
};
pub use text::{
    AttentiveRnn, AttentiveRnnConfig, BasicRnn, BasicRnnConfig, Bert, BertConfig, BertParams,
    BertPooling, RnnPooling, RnnType, StackedAttentiveRnn, StackedAttentiveRnnConfig, TextInput,
    TextModelConfig, TextPooling, TextTransformer, TextTransformerConfig,
};
pub use wide::{Wide, WideConfig};
pub use wide_deep::{HeadConfig, WideDeep, WideDeepConfig};

use tch::{nn, Device, Tensor};

/// One mini-batch (or a whole data set) of model inputs, already on the model's device.
///
/// Each field follows the data contract: `wide` `[batch, n_wide]` i64 global indices (0 =
/// unseen); `cat` `[batch, n_cat]` i64 per-column indices (0 = unseen/null); `cont`
/// `[batch, n_cont]` f32; `text` one `[batch, seq_len]` i64 tensor per text column; `image` one
/// `[batch, 3, H, W]` tensor per image column: `u8` pixels (what `ImagePreprocessor` gives;
/// the image model normalises each batch on its device) or already normalised `f32`; `seq` the
/// behaviour sequences of the sequence recommenders ([`SeqInput`]).
#[derive(Debug, Default)]
pub struct ModelInput {
    /// Wide indices `[batch, n_wide]` i64 (global, 0 = unseen/null).
    pub wide: Option<Tensor>,
    /// Categorical indices `[batch, n_cat]` i64 (per column, 0 = unseen/null).
    pub cat: Option<Tensor>,
    /// Continuous values `[batch, n_cont]` f32.
    pub cont: Option<Tensor>,
    /// Token ids `[batch, seq_len]` i64, one tensor per text column.
    pub text: Vec<Tensor>,
    /// Pixels `[batch, 3, H, W]` (`u8`, or normalised `f32`), one tensor per image column.
    pub image: Vec<Tensor>,
    /// Behaviour sequences (histories and target items) of the sequence recommenders.
    pub seq: Option<SeqInput>,
}

/// The behaviour sequences of a batch (what `SequencePreprocessor` gives): item histories,
/// target items and the aligned action and other sequence columns. Codes: `0` = padding,
/// `1` = unseen, one item vocabulary for history and target.
#[derive(Debug)]
pub struct SeqInput {
    /// History item codes `[batch, L]` i64, oldest first, left-padded with 0.
    pub items: Tensor,
    /// Target item codes `[batch]` i64.
    pub target_item: Tensor,
    /// Action codes of the history `[batch, L]` i64 (0 on padding), if any.
    pub actions: Option<Tensor>,
    /// One `[batch, L]` i64 tensor of codes per other sequence column.
    pub others: Vec<Tensor>,
}

impl SeqInput {
    /// All tensors, in a fixed order (items, target items, actions, others).
    pub fn tensors(&self) -> impl Iterator<Item = &Tensor> {
        std::iter::once(&self.items)
            .chain(std::iter::once(&self.target_item))
            .chain(self.actions.iter())
            .chain(self.others.iter())
    }

    /// Every tensor with its name in errors (`seq.items`, `seq.others[0]`, …).
    pub fn named(&self) -> Vec<(String, &Tensor)> {
        let mut v = vec![
            ("seq.items".to_string(), &self.items),
            ("seq.target_item".to_string(), &self.target_item),
        ];
        v.extend(self.actions.iter().map(|t| ("seq.actions".to_string(), t)));
        v.extend(
            self.others
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("seq.others[{i}]"), t)),
        );
        v
    }

    /// Applies `f` to every tensor, keeping the structure.
    pub fn map(&self, f: impl Fn(&Tensor) -> Tensor) -> SeqInput {
        SeqInput {
            items: f(&self.items),
            target_item: f(&self.target_item),
            actions: self.actions.as_ref().map(&f),
            others: self.others.iter().map(&f).collect(),
        }
    }
}

impl ModelInput {
    /// Number of rows, taken from the first input present.
    pub fn batch_size(&self) -> i64 {
        self.tensors().next().map(|t| t.size()[0]).unwrap_or(0)
    }

    /// All tensors present, in a fixed order (wide, cat, cont, texts, images, sequences).
    pub fn tensors(&self) -> impl Iterator<Item = &Tensor> {
        self.wide
            .iter()
            .chain(self.cat.iter())
            .chain(self.cont.iter())
            .chain(self.text.iter())
            .chain(self.image.iter())
            .chain(self.seq.iter().flat_map(SeqInput::tensors))
    }

    /// Applies `f` to every tensor present, keeping the structure.
    pub fn map(&self, f: impl Fn(&Tensor) -> Tensor) -> ModelInput {
        ModelInput {
            wide: self.wide.as_ref().map(&f),
            cat: self.cat.as_ref().map(&f),
            cont: self.cont.as_ref().map(&f),
            text: self.text.iter().map(&f).collect(),
            image: self.image.iter().map(&f).collect(),
            seq: self.seq.as_ref().map(|s| s.map(&f)),
        }
    }

    /// Moves every tensor to `device`.
    pub fn to_device(&self, device: Device) -> ModelInput {
        self.map(|t| t.to_device(device))
    }
}

/// The serializable configuration of a built-in [`Component`]: named, checked, buildable.
///
/// Every component config (`TabMlpConfig`, `SaintConfig`, `BasicRnnConfig`, `BackboneConfig`,
/// …) implements it, and the config enums of [`WideDeepConfig`] (`TabModelConfig`,
/// `TextModelConfig`, `ImageModelConfig`) dispatch to it. A new component needs its config
/// to implement this trait and one line in its enum's registry (see `ARCHITECTURE.md`).
pub trait ComponentConfig {
    /// The component [`ComponentConfig::build`] returns.
    type Component: Component + 'static;
    /// The component's name: its tag in saved JSON (`"model": "tab_mlp"`) and the prefix of
    /// the fields its errors name (`tab_mlp.mlp.dropout`).
    const NAME: &'static str;
    /// Checks every hyper-parameter without building anything; an error names the field
    /// (`InvalidConfig { field: "saint.n_heads", .. }`).
    fn validate(&self) -> crate::Result<()>;
    /// Validates, then creates the component's weights under `path` (drawn from libtorch's
    /// generator: [`WideDeep::new`] seeds it and holds [`crate::torch_rng_lock`]).
    fn build(&self, path: &nn::Path) -> crate::Result<Self::Component>;
}

/// A deep component of a [`WideDeep`] model (TabMlp, a text or an image model, or your own).
///
/// A component reads the part of [`ModelInput`] it was built for and returns
/// `[batch, output_dim()]` features; [`WideDeep`] projects them to the prediction or feeds them
/// to its head.
pub trait Component: std::fmt::Debug + Send {
    /// Forward pass; `train` switches dropout and batch-norm to training behaviour.
    fn forward_t(&self, input: &ModelInput, train: bool) -> Tensor;
    /// Width of the output features.
    fn output_dim(&self) -> i64;
    /// Checks that `input` carries what this component reads, with the right widths.
    fn check_input(&self, _input: &ModelInput) -> crate::Result<()> {
        Ok(())
    }
    /// Forward pass plus an auxiliary loss to add to the objective during training (TabNet's
    /// sparsity regularisation, already weighted). Most components have none.
    fn forward_aux(&self, input: &ModelInput, train: bool) -> (Tensor, Option<Tensor>) {
        (self.forward_t(input, train), None)
    }
    /// Attention weights of the most recent forward pass, one tensor per block, for components
    /// that have attention (shapes are documented by each model).
    fn attention_weights(&self) -> Option<Vec<Tensor>> {
        None
    }
    /// Global importance of each input column over the rows of `input` (non-negative, summing
    /// to 1), from attention or feature masks, for components that have them; in the order of
    /// [`Component::feature_names`].
    fn feature_importance(&self, _input: &ModelInput) -> Option<crate::Result<Vec<f64>>> {
        None
    }
    /// Names of the input columns the component reads, in the order of
    /// [`Component::feature_importance`] and [`Component::embed`].
    fn feature_names(&self) -> Vec<String> {
        Vec::new()
    }
    /// Runs only the embedding layer(s): one float tensor per input column, in the order of
    /// [`Component::feature_names`]. Tabular models: each categorical column's embedding
    /// `[batch, d]` and each continuous column's value `[batch, 1]` (or its embedding); text: the
    /// token embeddings `[batch, seq_len, d]` of each text column; images: the normalised pixels
    /// `[batch, 3, H, W]` of each image column. Gradient attributions (integrated gradients,
    /// GradientSHAP) and Tab2Vec are taken here. Implement it together with
    /// [`Component::forward_embedded`]; components without it get model-agnostic attributions.
    fn embed(&self, _input: &ModelInput) -> Option<Vec<Tensor>> {
        None
    }
    /// The rest of the forward pass from (possibly perturbed) [`Component::embed`] output:
    /// `[batch, output_dim()]`. `forward_embedded(embed(x))` equals `forward_t(x)`.
    fn forward_embedded(&self, _parts: &[Tensor], _train: bool) -> Option<Tensor> {
        None
    }
}
