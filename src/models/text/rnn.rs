//! Recurrent text models: [`BasicRnn`], [`AttentiveRnn`] and [`StackedAttentiveRnn`].
//!
//! Their configs share the token embedding, the recurrent width and direction and the head
//! through [`RnnBase`], and the first two the recurrent layers' options through [`RnnLayers`],
//! both flattened into each config's JSON (`{"input": .., "embed_dim": .., "hidden_dim": ..,
//! "n_layers": .., ..}`, the keys of the configs before the fields were shared).
use super::{
    check_part, check_positive, embedding_and_head_setters, mask_from_ids, masked_mean,
    token_component_methods, AttentionStore, EmbeddingMatrix, TextInput, TokenEmbedding, MASK_FILL,
};
use crate::error::Result;
use crate::macros::setters;
use crate::models::checks::check_dropout;
use crate::models::dropout::DropoutExt;
use crate::models::mlp::{apply_head, build_head, validate_head};
use crate::models::{Component, ComponentConfig, Mlp, MlpConfig, ModelInput};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// The recurrent cell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RnnType {
    /// Long short-term memory (4 gates; the default).
    #[default]
    Lstm,
    /// Gated recurrent unit (3 gates).
    Gru,
}

/// How [`BasicRnn`] turns the sequence of RNN outputs into one vector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RnnPooling {
    /// The output at the last real token (and, bidirectional, the backward output at the first
    /// real token): the final hidden state of the text. The default.
    #[default]
    LastHidden,
    /// The mean of the outputs over the real tokens.
    Mean,
}

/// A multi-layer (bi)LSTM/GRU whose dropout follows the `train` flag of each call.
#[derive(Debug)]
struct RnnLayer {
    weights: Vec<Tensor>,
    rnn_type: RnnType,
    hidden: i64,
    n_layers: i64,
    bidirectional: bool,
    dropout: f64,
}

impl RnnLayer {
    /// PyTorch's parameter names and initialisation (uniform ±1/√hidden).
    #[allow(clippy::too_many_arguments)]
    fn new(
        path: &nn::Path,
        rnn_type: RnnType,
        in_dim: i64,
        hidden: i64,
        n_layers: i64,
        bidirectional: bool,
        dropout: f64,
    ) -> Self {
        let gates = match rnn_type {
            RnnType::Lstm => 4,
            RnnType::Gru => 3,
        };
        let dirs = if bidirectional { 2 } else { 1 };
        let k = 1.0 / (hidden as f64).sqrt();
        let init = nn::Init::Uniform { lo: -k, up: k };
        let mut weights = Vec::new();
        for layer in 0..n_layers {
            let inp = if layer == 0 { in_dim } else { hidden * dirs };
            for d in 0..dirs {
                let sfx = if d == 1 { "_reverse" } else { "" };
                weights.push(path.var(
                    &format!("weight_ih_l{layer}{sfx}"),
                    &[gates * hidden, inp],
                    init,
                ));
                weights.push(path.var(
                    &format!("weight_hh_l{layer}{sfx}"),
                    &[gates * hidden, hidden],
                    init,
                ));
                weights.push(path.var(&format!("bias_ih_l{layer}{sfx}"), &[gates * hidden], init));
                weights.push(path.var(&format!("bias_hh_l{layer}{sfx}"), &[gates * hidden], init));
            }
        }
        Self {
            weights,
            rnn_type,
            hidden,
            n_layers,
            bidirectional,
            dropout,
        }
    }

    fn output_dim(&self) -> i64 {
        self.hidden * if self.bidirectional { 2 } else { 1 }
    }

    /// `[batch, seq, in]` → `[batch, seq, hidden × directions]`.
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        // `train` only switches the dropout between layers
        let train = crate::models::dropout_on(train);
        let dirs = if self.bidirectional { 2 } else { 1 };
        let h0 = Tensor::zeros(
            [self.n_layers * dirs, x.size()[0], self.hidden],
            (x.kind(), x.device()),
        );
        let w: Vec<&Tensor> = self.weights.iter().collect();
        let dropout = if self.n_layers > 1 { self.dropout } else { 0.0 };
        match self.rnn_type {
            RnnType::Lstm => {
                let (out, _, _) = x.lstm(
                    &[&h0, &h0],
                    &w,
                    true,
                    self.n_layers,
                    dropout,
                    train,
                    self.bidirectional,
                    true,
                );
                out
            }
            RnnType::Gru => {
                let (out, _) = x.gru(
                    &h0,
                    &w,
                    true,
                    self.n_layers,
                    dropout,
                    train,
                    self.bidirectional,
                    true,
                );
                out
            }
        }
    }
}

/// The output at the last real token (forward direction) and at the first real token
/// (backward direction): `[batch, seq, h·dirs]` → `[batch, h·dirs]`.
fn last_hidden(out: &Tensor, mask: &Tensor, hidden: i64, bidirectional: bool) -> Tensor {
    let (b, s) = (out.size()[0], out.size()[1]);
    let pos = Tensor::arange(s, (Kind::Int64, out.device())).view([1, s]);
    let m = mask.to_kind(Kind::Int64);
    let last = (&m * (&pos + 1)).amax(&[1i64][..], false) - 1;
    let last = last.clamp_min(0);
    let gather = |t: &Tensor, idx: &Tensor| {
        let d = t.size()[2];
        t.gather(1, &idx.view([b, 1, 1]).expand([b, 1, d], false), false)
            .squeeze_dim(1)
    };
    if !bidirectional {
        return gather(out, &last);
    }
    // first real token: the largest (s - pos) among real positions
    let first = (s - (&m * (s - &pos)).amax(&[1i64][..], false)).clamp(0, s - 1);
    let fwd = gather(&out.narrow(2, 0, hidden), &last);
    let bwd = gather(&out.narrow(2, hidden, hidden), &first);
    Tensor::cat(&[fwd, bwd], 1)
}

// ---------------------------------------------------------------------------------------------

/// The fields the three recurrent configs share: the text input, its token embeddings, the
/// recurrent width and direction, and the head on the pooled output. Each config holds it as
/// `base`, flattened in its JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RnnBase {
    /// Which text input the model reads, and its vocabulary.
    pub input: TextInput,
    /// Width of the token embeddings (ignored with pretrained embeddings).
    pub embed_dim: i64,
    /// Initial embedding values `[vocab_size, embed_dim]`; not serialized (the trained values
    /// are in the model's weights).
    #[serde(skip)]
    pub pretrained_embeddings: Option<EmbeddingMatrix>,
    /// Keep the embeddings fixed during training.
    pub freeze_embeddings: bool,
    /// Dropout on the token embeddings.
    pub embed_dropout: f64,
    /// Width of the recurrent state (per direction).
    pub hidden_dim: i64,
    /// Read the text in both directions (the output width doubles).
    pub bidirectional: bool,
    /// Optional MLP on the pooled output.
    pub head: Option<MlpConfig>,
}

impl Default for RnnBase {
    fn default() -> Self {
        Self {
            input: TextInput::default(),
            embed_dim: 32,
            pretrained_embeddings: None,
            freeze_embeddings: false,
            embed_dropout: 0.0,
            hidden_dim: 64,
            bidirectional: false,
            head: None,
        }
    }
}

impl RnnBase {
    /// Checks the input, the embedding options and the head; errors name the field under
    /// `prefix` (the config's name). `hidden_dim` is checked by each config, first.
    fn validate(&self, prefix: &str) -> Result<()> {
        self.input.validate(prefix)?;
        check_dropout(self.embed_dropout, &format!("{prefix}.embed_dropout"))?;
        TokenEmbedding::validate(
            &self.input,
            self.embed_dim,
            self.pretrained_embeddings.as_ref(),
            prefix,
        )?;
        validate_head(&self.head, prefix)
    }

    /// The token embedding under `path/embed`.
    fn embedding(&self, path: &nn::Path, prefix: &str) -> Result<TokenEmbedding> {
        TokenEmbedding::new(
            &(path / "embed"),
            &self.input,
            self.embed_dim,
            self.pretrained_embeddings.as_ref(),
            self.freeze_embeddings,
            prefix,
        )
    }
}

/// The recurrent layers of [`BasicRnnConfig`] and [`AttentiveRnnConfig`]: the cell, the
/// depth and the dropout between layers. Each holds it as `layers`, flattened in its JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RnnLayers {
    /// The recurrent cell.
    pub rnn_type: RnnType,
    /// Number of stacked recurrent layers.
    pub n_layers: i64,
    /// Dropout between stacked layers.
    pub rnn_dropout: f64,
}

impl Default for RnnLayers {
    fn default() -> Self {
        Self {
            rnn_type: RnnType::Lstm,
            n_layers: 3,
            rnn_dropout: 0.1,
        }
    }
}

impl RnnLayers {
    /// Checks `hidden_dim` (the shared width, first), `n_layers` and `rnn_dropout`; errors
    /// name the field under `prefix`.
    fn validate(&self, hidden_dim: i64, prefix: &str) -> Result<()> {
        check_positive(hidden_dim, prefix, "hidden_dim")?;
        check_positive(self.n_layers, prefix, "n_layers")?;
        check_dropout(self.rnn_dropout, &format!("{prefix}.rnn_dropout"))
    }

    /// The layers under `path/rnn`, reading `in_dim` features, with `base`'s width and
    /// direction.
    fn build(&self, path: &nn::Path, in_dim: i64, base: &RnnBase) -> RnnLayer {
        RnnLayer::new(
            &(path / "rnn"),
            self.rnn_type,
            in_dim,
            base.hidden_dim,
            self.n_layers,
            base.bidirectional,
            self.rnn_dropout,
        )
    }
}

/// Builder setters `pub fn name(mut self, v: T) -> Self` for fields of a config's flattened
/// parts: `part_setters!(base.embed_dim: i64)` sets `self.base.embed_dim`.
macro_rules! part_setters {
    ($($part:ident . $name:ident: $ty:ty),* $(,)?) => {
        $(
            #[doc = concat!("Sets `", stringify!($name), "`.")]
            pub fn $name(mut self, v: $ty) -> Self {
                self.$part.$name = v;
                self
            }
        )*
    };
}

/// `new` and the builder setters of the [`RnnBase`] fields, on a config that holds it as
/// `base`.
macro_rules! rnn_base_methods {
    () => {
        /// A model for the text input described by `input` (see [`TextInput::from_meta`]).
        pub fn new(input: TextInput) -> Self {
            Self {
                base: RnnBase {
                    input,
                    ..Default::default()
                },
                ..Default::default()
            }
        }
        part_setters!(
            base.embed_dim: i64,
            base.freeze_embeddings: bool,
            base.embed_dropout: f64,
            base.hidden_dim: i64,
            base.bidirectional: bool,
        );
        embedding_and_head_setters!(base);
    };
}

/// The builder setters of the [`RnnLayers`] fields, on a config that holds it as `layers`.
macro_rules! rnn_layers_setters {
    () => {
        part_setters!(
            layers.rnn_type: RnnType,
            layers.n_layers: i64,
            layers.rnn_dropout: f64,
        );
    };
}

/// Configuration of [`BasicRnn`] (the reference's defaults: LSTM, hidden 64, 3 layers, dropout
/// 0.1 between layers, last hidden state).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BasicRnnConfig {
    /// The input, token embedding, width, direction and head.
    #[serde(flatten)]
    pub base: RnnBase,
    /// The cell, depth and dropout of the recurrent layers.
    #[serde(flatten)]
    pub layers: RnnLayers,
    /// How the outputs are pooled into one vector.
    pub pooling: RnnPooling,
}

impl BasicRnnConfig {
    rnn_base_methods!();
    rnn_layers_setters!();
    setters!(pooling: RnnPooling);
}

impl ComponentConfig for BasicRnnConfig {
    type Component = BasicRnn;
    const NAME: &'static str = "basic_rnn";

    /// Checks `hidden_dim`, `n_layers`, `rnn_dropout`, then the shared fields.
    fn validate(&self) -> Result<()> {
        self.layers.validate(self.base.hidden_dim, Self::NAME)?;
        self.base.validate(Self::NAME)
    }

    /// Validates, then builds the token embedding (`embed`), the RNN (`rnn`) and the head
    /// (`head`) under `path`.
    fn build(&self, path: &nn::Path) -> Result<BasicRnn> {
        self.validate()?;
        let b = &self.base;
        let embed = b.embedding(path, Self::NAME)?;
        let rnn = self.layers.build(path, embed.dim(), b);
        let head = build_head(&b.head, path, rnn.output_dim(), Self::NAME)?;
        Ok(BasicRnn {
            input: b.input.clone(),
            embed,
            rnn,
            embed_dropout: b.embed_dropout,
            pooling: self.pooling,
            head,
        })
    }
}

/// An LSTM/GRU over the token embeddings: `text[i]` `[batch, seq]` → `[batch, output_dim]`
/// (`hidden_dim × directions`, or the head's last width).
#[derive(Debug)]
pub struct BasicRnn {
    input: TextInput,
    embed: TokenEmbedding,
    rnn: RnnLayer,
    embed_dropout: f64,
    pooling: RnnPooling,
    head: Option<Mlp>,
}

impl BasicRnn {
    fn run(&self, emb: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let out = self
            .rnn
            .forward(&emb.dropout_t(self.embed_dropout, train), train);
        let pooled = match self.pooling {
            RnnPooling::LastHidden => {
                last_hidden(&out, mask, self.rnn.hidden, self.rnn.bidirectional)
            }
            RnnPooling::Mean => masked_mean(&out, mask),
        };
        apply_head(&self.head, pooled, train)
    }
}

impl Component for BasicRnn {
    token_component_methods!();
    fn output_dim(&self) -> i64 {
        self.head
            .as_ref()
            .map_or(self.rnn.output_dim(), |h| h.output_dim())
    }
    fn check_input(&self, input: &ModelInput) -> Result<()> {
        self.input.check(input, None)
    }
}

// ---------------------------------------------------------------------------------------------

/// Attention pooling over a sequence (the reference's context attention): scores
/// `v · tanh(W h_t)`, softmax over the real positions.
#[derive(Debug)]
struct ContextAttention {
    proj: nn::Linear,
    context: Tensor,
    dropout: f64,
}

impl ContextAttention {
    fn new(path: &nn::Path, dim: i64, dropout: f64) -> Self {
        let proj = nn::linear(path / "proj", dim, dim, Default::default());
        let context = path.var(
            "context",
            &[dim],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 0.1,
            },
        );
        Self {
            proj,
            context,
            dropout,
        }
    }

    /// `[batch, seq, d]`, mask → weights `[batch, seq]`.
    fn weights(&self, x: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let scores = x.apply(&self.proj).tanh().matmul(&self.context);
        let scores = scores.masked_fill(&mask.logical_not(), MASK_FILL);
        scores
            .softmax(1, scores.kind())
            .dropout_t(self.dropout, train)
    }
}

/// Configuration of [`AttentiveRnn`]: [`BasicRnnConfig`]'s fields, with attention pooling
/// instead of the last hidden state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttentiveRnnConfig {
    /// The input, token embedding, width, direction and head.
    #[serde(flatten)]
    pub base: RnnBase,
    /// The cell, depth and dropout of the recurrent layers.
    #[serde(flatten)]
    pub layers: RnnLayers,
    /// Dropout on the attention weights.
    pub attn_dropout: f64,
}

impl Default for AttentiveRnnConfig {
    fn default() -> Self {
        Self {
            base: RnnBase::default(),
            layers: RnnLayers::default(),
            attn_dropout: 0.1,
        }
    }
}

impl AttentiveRnnConfig {
    rnn_base_methods!();
    rnn_layers_setters!();
    setters!(attn_dropout: f64);
}

impl ComponentConfig for AttentiveRnnConfig {
    type Component = AttentiveRnn;
    const NAME: &'static str = "attentive_rnn";

    /// Checks `hidden_dim`, `n_layers`, `rnn_dropout`, `attn_dropout`, then the shared fields.
    fn validate(&self) -> Result<()> {
        self.layers.validate(self.base.hidden_dim, Self::NAME)?;
        check_dropout(self.attn_dropout, "attentive_rnn.attn_dropout")?;
        self.base.validate(Self::NAME)
    }

    /// Validates, then builds the token embedding (`embed`), the RNN (`rnn`), the attention
    /// pooling (`attn`) and the head (`head`) under `path`.
    fn build(&self, path: &nn::Path) -> Result<AttentiveRnn> {
        self.validate()?;
        let b = &self.base;
        let embed = b.embedding(path, Self::NAME)?;
        let rnn = self.layers.build(path, embed.dim(), b);
        let attn = ContextAttention::new(&(path / "attn"), rnn.output_dim(), self.attn_dropout);
        let head = build_head(&b.head, path, rnn.output_dim(), Self::NAME)?;
        Ok(AttentiveRnn {
            input: b.input.clone(),
            embed,
            rnn,
            attn,
            embed_dropout: b.embed_dropout,
            head,
            weights: AttentionStore::default(),
        })
    }
}

/// An LSTM/GRU with attention pooling: `text[i]` `[batch, seq]` → `[batch, output_dim]`.
/// [`Component::attention_weights`] returns the pooling weights of the last forward pass,
/// `[batch, seq]` (summing to 1 over the real tokens of each row).
#[derive(Debug)]
pub struct AttentiveRnn {
    input: TextInput,
    embed: TokenEmbedding,
    rnn: RnnLayer,
    attn: ContextAttention,
    embed_dropout: f64,
    head: Option<Mlp>,
    weights: AttentionStore,
}

impl AttentiveRnn {
    fn run(&self, emb: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let out = self
            .rnn
            .forward(&emb.dropout_t(self.embed_dropout, train), train);
        let w = self.attn.weights(&out, mask, train);
        let pooled = (&out * w.unsqueeze(-1)).sum_dim_intlist(1, false, out.kind());
        self.weights.set(vec![w]);
        apply_head(&self.head, pooled, train)
    }
}

impl Component for AttentiveRnn {
    token_component_methods!();
    fn output_dim(&self) -> i64 {
        self.head
            .as_ref()
            .map_or(self.rnn.output_dim(), |h| h.output_dim())
    }
    fn check_input(&self, input: &ModelInput) -> Result<()> {
        self.input.check(input, None)
    }
    fn attention_weights(&self) -> Option<Vec<Tensor>> {
        self.weights.get()
    }
}

// ---------------------------------------------------------------------------------------------

/// Configuration of [`StackedAttentiveRnn`]: `n_blocks` single-layer RNN blocks, each followed
/// by context attention that re-weights the positions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StackedAttentiveRnnConfig {
    /// The input, token embedding, width, direction and head.
    #[serde(flatten)]
    pub base: RnnBase,
    /// The recurrent cell (GRU by default).
    pub rnn_type: RnnType,
    /// Number of RNN + attention blocks.
    pub n_blocks: i64,
    /// Dropout on the attention weights.
    pub attn_dropout: f64,
    /// `LayerNorm(rnn_out + attention-weighted rnn_out)` between blocks instead of the
    /// weighted output alone.
    pub with_addnorm: bool,
}

impl Default for StackedAttentiveRnnConfig {
    fn default() -> Self {
        Self {
            base: RnnBase::default(),
            rnn_type: RnnType::Gru,
            n_blocks: 3,
            attn_dropout: 0.1,
            with_addnorm: false,
        }
    }
}

impl StackedAttentiveRnnConfig {
    rnn_base_methods!();
    setters!(
        rnn_type: RnnType,
        n_blocks: i64,
        attn_dropout: f64,
        with_addnorm: bool,
    );
}

impl ComponentConfig for StackedAttentiveRnnConfig {
    type Component = StackedAttentiveRnn;
    const NAME: &'static str = "stacked_attentive_rnn";

    /// Checks `hidden_dim`, `n_blocks`, `attn_dropout`, then the shared fields.
    fn validate(&self) -> Result<()> {
        let p = Self::NAME;
        check_positive(self.base.hidden_dim, p, "hidden_dim")?;
        check_positive(self.n_blocks, p, "n_blocks")?;
        check_dropout(self.attn_dropout, "stacked_attentive_rnn.attn_dropout")?;
        self.base.validate(p)
    }

    /// Validates, then builds the token embedding (`embed`), the blocks (`block_{i}`: `rnn`,
    /// `attn`, `norm`) and the head (`head`) under `path`.
    fn build(&self, path: &nn::Path) -> Result<StackedAttentiveRnn> {
        self.validate()?;
        let b = &self.base;
        let embed = b.embedding(path, Self::NAME)?;
        let mut blocks = Vec::new();
        let mut inp = embed.dim();
        for i in 0..self.n_blocks {
            let bp = path / format!("block_{i}");
            let rnn = RnnLayer::new(
                &(&bp / "rnn"),
                self.rnn_type,
                inp,
                b.hidden_dim,
                1,
                b.bidirectional,
                0.0,
            );
            let d = rnn.output_dim();
            let attn = ContextAttention::new(&(&bp / "attn"), d, self.attn_dropout);
            let norm = self
                .with_addnorm
                .then(|| nn::layer_norm(&bp / "norm", vec![d], Default::default()));
            blocks.push((rnn, attn, norm));
            inp = d;
        }
        let head = build_head(&b.head, path, inp, Self::NAME)?;
        Ok(StackedAttentiveRnn {
            input: b.input.clone(),
            embed,
            blocks,
            embed_dropout: b.embed_dropout,
            head,
            out_dim: inp,
            weights: AttentionStore::default(),
        })
    }
}

type AttnBlock = (RnnLayer, ContextAttention, Option<nn::LayerNorm>);

/// Stacked RNN + attention blocks: `text[i]` `[batch, seq]` → `[batch, output_dim]`; the last
/// block's attention-weighted sum is the output. [`Component::attention_weights`]: one
/// `[batch, seq]` tensor per block.
#[derive(Debug)]
pub struct StackedAttentiveRnn {
    input: TextInput,
    embed: TokenEmbedding,
    blocks: Vec<AttnBlock>,
    embed_dropout: f64,
    head: Option<Mlp>,
    out_dim: i64,
    weights: AttentionStore,
}

impl StackedAttentiveRnn {
    fn run(&self, emb: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let mut x = emb.dropout_t(self.embed_dropout, train);
        let mut all = Vec::with_capacity(self.blocks.len());
        let n = self.blocks.len();
        let mut pooled = None;
        for (i, (rnn, attn, norm)) in self.blocks.iter().enumerate() {
            let out = rnn.forward(&x, train);
            let w = attn.weights(&out, mask, train);
            let weighted = &out * w.unsqueeze(-1);
            if i + 1 == n {
                pooled = Some(weighted.sum_dim_intlist(1, false, out.kind()));
            }
            x = match norm {
                Some(ln) => (&out + &weighted).apply(ln),
                None => weighted,
            };
            all.push(w);
        }
        self.weights.set(all);
        apply_head(&self.head, pooled.expect("n_blocks ≥ 1"), train)
    }
}

impl Component for StackedAttentiveRnn {
    token_component_methods!();
    fn output_dim(&self) -> i64 {
        self.head.as_ref().map_or(self.out_dim, |h| h.output_dim())
    }
    fn check_input(&self, input: &ModelInput) -> Result<()> {
        self.input.check(input, None)
    }
    fn attention_weights(&self) -> Option<Vec<Tensor>> {
        self.weights.get()
    }
}

#[cfg(test)]
mod tests;
