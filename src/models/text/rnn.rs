//! Recurrent text models: [`BasicRnn`], [`AttentiveRnn`] and [`StackedAttentiveRnn`].
use super::{
    check_part, embedding_and_head_setters, mask_from_ids, masked_mean, token_component_methods,
    AttentionStore, EmbeddingMatrix, TextInput, TokenEmbedding, MASK_FILL,
};
use crate::error::{Result, WideDeepError};
use crate::macros::setters;
use crate::models::checks::check_dropout;
use crate::models::dropout::DropoutExt;
use crate::models::{Component, Mlp, MlpConfig, ModelInput};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// `checked_embedding`: the input and embedding-dropout checks and the token embedding under
/// `path/embed`, for the RNN configs (fields `input`, `embed_dim`, `pretrained_embeddings`,
/// `freeze_embeddings`, `embed_dropout`).
macro_rules! checked_embedding {
    () => {
        fn checked_embedding(&self, path: &nn::Path, p: &str) -> Result<TokenEmbedding> {
            self.input.validate(p)?;
            check_dropout(self.embed_dropout, &format!("{p}.embed_dropout"))?;
            TokenEmbedding::new(
                &(path / "embed"),
                &self.input,
                self.embed_dim,
                self.pretrained_embeddings.as_ref(),
                self.freeze_embeddings,
                p,
            )
        }
    };
}

/// The recurrent cell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RnnType {
    #[default]
    Lstm,
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

fn validate_rnn(prefix: &str, hidden: i64, n_layers: i64, dropout: f64) -> Result<()> {
    if hidden <= 0 {
        return Err(WideDeepError::config(
            format!("{prefix}.hidden_dim"),
            format!("must be positive, got {hidden}"),
        ));
    }
    if n_layers <= 0 {
        return Err(WideDeepError::config(
            format!("{prefix}.n_layers"),
            format!("must be positive, got {n_layers}"),
        ));
    }
    check_dropout(dropout, &format!("{prefix}.rnn_dropout"))
}

fn build_head(
    head: &Option<MlpConfig>,
    path: &nn::Path,
    width: i64,
    prefix: &str,
) -> Result<Option<Mlp>> {
    head.as_ref()
        .map(|h| h.build(&(path / "head"), width, &format!("{prefix}.head")))
        .transpose()
}

fn apply_head(head: &Option<Mlp>, x: Tensor, train: bool) -> Tensor {
    match head {
        Some(h) => h.forward_t(&x, train),
        None => x,
    }
}

// ---------------------------------------------------------------------------------------------

/// Configuration of [`BasicRnn`] (the reference's defaults: LSTM, hidden 64, 3 layers, dropout
/// 0.1 between layers, last hidden state).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BasicRnnConfig {
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
    pub rnn_type: RnnType,
    pub hidden_dim: i64,
    pub n_layers: i64,
    /// Dropout between stacked layers.
    pub rnn_dropout: f64,
    pub bidirectional: bool,
    pub pooling: RnnPooling,
    /// Optional MLP on the pooled output.
    pub head: Option<MlpConfig>,
}

impl Default for BasicRnnConfig {
    fn default() -> Self {
        Self {
            input: TextInput::default(),
            embed_dim: 32,
            pretrained_embeddings: None,
            freeze_embeddings: false,
            embed_dropout: 0.0,
            rnn_type: RnnType::Lstm,
            hidden_dim: 64,
            n_layers: 3,
            rnn_dropout: 0.1,
            bidirectional: false,
            pooling: RnnPooling::LastHidden,
            head: None,
        }
    }
}

impl BasicRnnConfig {
    /// A model for the text input described by `input` (see [`TextInput::from_meta`]).
    pub fn new(input: TextInput) -> Self {
        Self {
            input,
            ..Default::default()
        }
    }
    setters!(
        embed_dim: i64,
        freeze_embeddings: bool,
        embed_dropout: f64,
        rnn_type: RnnType,
        hidden_dim: i64,
        n_layers: i64,
        rnn_dropout: f64,
        bidirectional: bool,
        pooling: RnnPooling,
    );
    embedding_and_head_setters!();
    checked_embedding!();

    /// Validates and builds the model under `path`.
    pub fn build(&self, path: &nn::Path) -> Result<BasicRnn> {
        let p = "basic_rnn";
        validate_rnn(p, self.hidden_dim, self.n_layers, self.rnn_dropout)?;
        let embed = self.checked_embedding(path, p)?;
        let rnn = RnnLayer::new(
            &(path / "rnn"),
            self.rnn_type,
            embed.dim(),
            self.hidden_dim,
            self.n_layers,
            self.bidirectional,
            self.rnn_dropout,
        );
        let head = build_head(&self.head, path, rnn.output_dim(), p)?;
        Ok(BasicRnn {
            input: self.input.clone(),
            embed,
            rnn,
            embed_dropout: self.embed_dropout,
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
    pub input: TextInput,
    pub embed_dim: i64,
    #[serde(skip)]
    pub pretrained_embeddings: Option<EmbeddingMatrix>,
    pub freeze_embeddings: bool,
    pub embed_dropout: f64,
    pub rnn_type: RnnType,
    pub hidden_dim: i64,
    pub n_layers: i64,
    pub rnn_dropout: f64,
    pub bidirectional: bool,
    /// Dropout on the attention weights.
    pub attn_dropout: f64,
    pub head: Option<MlpConfig>,
}

impl Default for AttentiveRnnConfig {
    fn default() -> Self {
        let b = BasicRnnConfig::default();
        Self {
            input: b.input,
            embed_dim: b.embed_dim,
            pretrained_embeddings: None,
            freeze_embeddings: false,
            embed_dropout: 0.0,
            rnn_type: b.rnn_type,
            hidden_dim: b.hidden_dim,
            n_layers: b.n_layers,
            rnn_dropout: b.rnn_dropout,
            bidirectional: false,
            attn_dropout: 0.1,
            head: None,
        }
    }
}

impl AttentiveRnnConfig {
    pub fn new(input: TextInput) -> Self {
        Self {
            input,
            ..Default::default()
        }
    }
    setters!(
        embed_dim: i64,
        freeze_embeddings: bool,
        embed_dropout: f64,
        rnn_type: RnnType,
        hidden_dim: i64,
        n_layers: i64,
        rnn_dropout: f64,
        bidirectional: bool,
        attn_dropout: f64,
    );
    embedding_and_head_setters!();
    checked_embedding!();

    pub fn build(&self, path: &nn::Path) -> Result<AttentiveRnn> {
        let p = "attentive_rnn";
        validate_rnn(p, self.hidden_dim, self.n_layers, self.rnn_dropout)?;
        check_dropout(self.attn_dropout, &format!("{p}.attn_dropout"))?;
        let embed = self.checked_embedding(path, p)?;
        let rnn = RnnLayer::new(
            &(path / "rnn"),
            self.rnn_type,
            embed.dim(),
            self.hidden_dim,
            self.n_layers,
            self.bidirectional,
            self.rnn_dropout,
        );
        let attn = ContextAttention::new(&(path / "attn"), rnn.output_dim(), self.attn_dropout);
        let head = build_head(&self.head, path, rnn.output_dim(), p)?;
        Ok(AttentiveRnn {
            input: self.input.clone(),
            embed,
            rnn,
            attn,
            embed_dropout: self.embed_dropout,
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
    pub input: TextInput,
    pub embed_dim: i64,
    #[serde(skip)]
    pub pretrained_embeddings: Option<EmbeddingMatrix>,
    pub freeze_embeddings: bool,
    pub embed_dropout: f64,
    pub rnn_type: RnnType,
    pub hidden_dim: i64,
    pub bidirectional: bool,
    pub n_blocks: i64,
    pub attn_dropout: f64,
    /// `LayerNorm(rnn_out + attention-weighted rnn_out)` between blocks instead of the
    /// weighted output alone.
    pub with_addnorm: bool,
    pub head: Option<MlpConfig>,
}

impl Default for StackedAttentiveRnnConfig {
    fn default() -> Self {
        Self {
            input: TextInput::default(),
            embed_dim: 32,
            pretrained_embeddings: None,
            freeze_embeddings: false,
            embed_dropout: 0.0,
            rnn_type: RnnType::Gru,
            hidden_dim: 64,
            bidirectional: false,
            n_blocks: 3,
            attn_dropout: 0.1,
            with_addnorm: false,
            head: None,
        }
    }
}

impl StackedAttentiveRnnConfig {
    pub fn new(input: TextInput) -> Self {
        Self {
            input,
            ..Default::default()
        }
    }
    setters!(
        embed_dim: i64,
        freeze_embeddings: bool,
        embed_dropout: f64,
        rnn_type: RnnType,
        hidden_dim: i64,
        bidirectional: bool,
        n_blocks: i64,
        attn_dropout: f64,
        with_addnorm: bool,
    );
    embedding_and_head_setters!();
    checked_embedding!();

    pub fn build(&self, path: &nn::Path) -> Result<StackedAttentiveRnn> {
        let p = "stacked_attentive_rnn";
        validate_rnn(p, self.hidden_dim, 1, 0.0)?;
        if self.n_blocks <= 0 {
            return Err(WideDeepError::config(
                format!("{p}.n_blocks"),
                format!("must be positive, got {}", self.n_blocks),
            ));
        }
        check_dropout(self.attn_dropout, &format!("{p}.attn_dropout"))?;
        let embed = self.checked_embedding(path, p)?;
        let mut blocks = Vec::new();
        let mut inp = embed.dim();
        for b in 0..self.n_blocks {
            let bp = path / format!("block_{b}");
            let rnn = RnnLayer::new(
                &(&bp / "rnn"),
                self.rnn_type,
                inp,
                self.hidden_dim,
                1,
                self.bidirectional,
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
        let head = build_head(&self.head, path, inp, p)?;
        Ok(StackedAttentiveRnn {
            input: self.input.clone(),
            embed,
            blocks,
            embed_dropout: self.embed_dropout,
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

// Transitional: the inherent `validate`/`build` move into this impl with the component
// contract refactor.
impl crate::models::ComponentConfig for BasicRnnConfig {
    type Component = BasicRnn;
    const NAME: &'static str = "basic_rnn";
    fn validate(&self) -> Result<()> {
        self.input.validate("basic_rnn")
    }
    fn build(&self, path: &nn::Path) -> Result<BasicRnn> {
        BasicRnnConfig::build(self, path)
    }
}

// Transitional: the inherent `validate`/`build` move into this impl with the component
// contract refactor.
impl crate::models::ComponentConfig for AttentiveRnnConfig {
    type Component = AttentiveRnn;
    const NAME: &'static str = "attentive_rnn";
    fn validate(&self) -> Result<()> {
        self.input.validate("attentive_rnn")
    }
    fn build(&self, path: &nn::Path) -> Result<AttentiveRnn> {
        AttentiveRnnConfig::build(self, path)
    }
}

// Transitional: the inherent `validate`/`build` move into this impl with the component
// contract refactor.
impl crate::models::ComponentConfig for StackedAttentiveRnnConfig {
    type Component = StackedAttentiveRnn;
    const NAME: &'static str = "stacked_attentive_rnn";
    fn validate(&self) -> Result<()> {
        self.input.validate("stacked_attentive_rnn")
    }
    fn build(&self, path: &nn::Path) -> Result<StackedAttentiveRnn> {
        StackedAttentiveRnnConfig::build(self, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn input() -> TextInput {
        TextInput {
            text_index: 0,
            name: "review".into(),
            vocab_size: 20,
            pad_id: 0,
        }
    }

    fn ids(left: bool) -> ModelInput {
        let rows: Vec<i64> = if left {
            vec![0, 0, 3, 4, 5, 0, 0, 0, 0, 0, 1, 2, 3, 4, 19]
        } else {
            vec![3, 4, 5, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 19]
        };
        ModelInput {
            text: vec![Tensor::from_slice(&rows).view([3, 5])],
            ..Default::default()
        }
    }

    fn check_embed_split(c: &dyn Component, x: &ModelInput) {
        let direct = c.forward_t(x, false);
        let parts = c.embed(x).unwrap();
        assert_eq!(parts[0].size()[..2], [3, 5]);
        let split = c.forward_embedded(&parts, false).unwrap();
        assert!(
            direct.allclose(&split, 1e-5, 1e-6, false),
            "{direct} {split}"
        );
        assert!(bool::try_from(direct.isfinite().all()).unwrap());
    }

    #[test]
    fn rnn_models_shapes_pooling_and_embed_split() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(0);
        for (rnn_type, bi, pooling) in [
            (RnnType::Lstm, false, RnnPooling::LastHidden),
            (RnnType::Gru, true, RnnPooling::LastHidden),
            (RnnType::Lstm, true, RnnPooling::Mean),
        ] {
            let vs = nn::VarStore::new(Device::Cpu);
            let m = BasicRnnConfig::new(input())
                .embed_dim(6)
                .hidden_dim(5)
                .n_layers(2)
                .rnn_type(rnn_type)
                .bidirectional(bi)
                .pooling(pooling)
                .build(&vs.root())
                .unwrap();
            let x = ids(true);
            m.check_input(&x).unwrap();
            let y = m.forward_t(&x, true);
            let want = if bi { 10 } else { 5 };
            assert_eq!(y.size(), [3, want]);
            assert_eq!(m.output_dim(), want);
            check_embed_split(&m, &x);
            check_embed_split(&m, &ids(false));
        }
        let vs = nn::VarStore::new(Device::Cpu);
        let m = BasicRnnConfig::new(input())
            .head(MlpConfig::default().hidden_dims([7]))
            .build(&vs.root())
            .unwrap();
        assert_eq!(m.forward_t(&ids(true), false).size(), [3, 7]);
    }

    #[test]
    fn last_hidden_ignores_padding_side() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(1);
        // a unidirectional RNN reads the same tokens; left or right padding (masked gather)
        // gives the same last output when pads come after the text
        let vs = nn::VarStore::new(Device::Cpu);
        let m = BasicRnnConfig::new(input())
            .embed_dim(4)
            .hidden_dim(3)
            .n_layers(1)
            .build(&vs.root())
            .unwrap();
        let right = m.forward_t(&ids(false), false);
        let single = ModelInput {
            text: vec![Tensor::from_slice(&[3i64, 4, 5]).view([1, 3])],
            ..Default::default()
        };
        let alone = m.forward_t(&single, false);
        assert!(right.get(0).allclose(&alone.get(0), 1e-5, 1e-6, false));
    }

    #[test]
    fn attentive_models_expose_normalised_weights() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = AttentiveRnnConfig::new(input())
            .embed_dim(6)
            .hidden_dim(4)
            .bidirectional(true)
            .build(&vs.root())
            .unwrap();
        let x = ids(true);
        assert_eq!(m.forward_t(&x, false).size(), [3, 8]);
        let w = &m.attention_weights().unwrap()[0];
        assert_eq!(w.size(), [3, 5]);
        let sums = w.sum_dim_intlist(1, false, Kind::Float);
        assert!(sums.allclose(
            &Tensor::ones([3], (Kind::Float, Device::Cpu)),
            1e-5,
            1e-5,
            false
        ));
        assert!(
            w.get(0).get(0).double_value(&[]) < 1e-6,
            "padding gets no weight"
        );
        check_embed_split(&m, &x);

        let vs = nn::VarStore::new(Device::Cpu);
        let s = StackedAttentiveRnnConfig::new(input())
            .embed_dim(6)
            .hidden_dim(4)
            .n_blocks(2)
            .with_addnorm(true)
            .build(&vs.root())
            .unwrap();
        assert_eq!(s.forward_t(&x, true).size(), [3, 4]);
        assert_eq!(s.attention_weights().unwrap().len(), 2);
        check_embed_split(&s, &x);
    }

    #[test]
    fn pretrained_frozen_embeddings_and_bad_configs() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let matrix = ndarray::Array2::from_shape_fn((20, 3), |(i, j)| (i * 3 + j) as f32);
        let m = BasicRnnConfig::new(input())
            .pretrained_embeddings(std::sync::Arc::new(matrix))
            .freeze_embeddings(true)
            .build(&vs.root())
            .unwrap();
        let w = &vs.variables()["embed.weight"];
        assert_eq!(w.size(), [20, 3]);
        assert!(!w.requires_grad());
        assert_eq!(w.double_value(&[2, 1]), 7.0);
        assert_eq!(w.double_value(&[0, 1]), 0.0, "padding row is zero");
        assert_eq!(m.output_dim(), 64);
        let bad = BasicRnnConfig::new(input()).hidden_dim(0);
        let err = bad.build(&vs.root()).unwrap_err().to_string();
        assert!(err.contains("basic_rnn.hidden_dim"), "{err}");
        let bad = BasicRnnConfig::new(TextInput {
            pad_id: 30,
            ..input()
        });
        assert!(bad
            .build(&vs.root())
            .unwrap_err()
            .to_string()
            .contains("pad_id"));
        let err = m
            .check_input(&ModelInput {
                text: vec![Tensor::from_slice(&[25i64]).view([1, 1])],
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("review") && err.contains("0..20"), "{err}");
        assert!(m.check_input(&ModelInput::default()).is_err());
    }
}
