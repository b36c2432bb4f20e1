//! [`Bert`]: a pretrained BERT-family encoder loaded from a Hugging Face model directory
//! (`config.json` + `model.safetensors`; tokenize with
//! `TextPreprocessor::from_tokenizer_file(col, dir/"tokenizer.json")`).
use super::transformer::SelfAttention;
use super::{check_part, mask_from_ids, masked_mean, padding_mask_from_embedded, TextInput};
use crate::error::{Result, WideDeepError};
use crate::macros::{ensure, setters};
use crate::models::dropout::DropoutExt;
use crate::models::mlp::{apply_head, build_head, validate_head};
use crate::models::{Component, ComponentConfig, Mlp, MlpConfig, ModelInput};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{nn, Kind, Tensor};
use widedeep_preprocessing::TextMeta;

/// The architecture fields of a Hugging Face BERT `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BertParams {
    /// Number of token ids (the tokenizer's vocabulary).
    pub vocab_size: i64,
    /// Width of the token vectors.
    pub hidden_size: i64,
    /// Number of encoder layers.
    pub num_hidden_layers: i64,
    /// Attention heads per layer (must divide `hidden_size`).
    pub num_attention_heads: i64,
    /// Width of the feed-forward layer.
    pub intermediate_size: i64,
    /// `gelu` (exact), `gelu_new` / `gelu_pytorch_tanh` (tanh approximation) or `relu`.
    pub hidden_act: String,
    /// Longest sequence accepted (learned positions).
    pub max_position_embeddings: i64,
    /// Number of token types (segments).
    pub type_vocab_size: i64,
    /// Epsilon of the layer norms.
    pub layer_norm_eps: f64,
    /// Id of the padding token in the checkpoint's vocabulary (informational: the
    /// [`TextInput`]'s `pad_id` is the one used).
    pub pad_token_id: i64,
    /// Dropout after the embeddings and each sub-layer.
    pub hidden_dropout_prob: f64,
    /// Dropout on the attention weights.
    pub attention_probs_dropout_prob: f64,
}

impl Default for BertParams {
    /// BERT-base.
    fn default() -> Self {
        Self {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: "gelu".into(),
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
        }
    }
}

impl BertParams {
    /// Reads a Hugging Face `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| WideDeepError::io(path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| WideDeepError::config("bert.params", format!("{}: {e}", path.display())))
    }
}

/// How [`Bert`] pools the token outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BertPooling {
    /// Mean over the real tokens (sentence-transformers' pooling; the default).
    #[default]
    Mean,
    /// The output at the first token (`[CLS]`).
    Cls,
    /// BERT's pooler, Hugging Face's `pooler_output`: `tanh(W h_[CLS] + b)`, `W` and `b` from
    /// the checkpoint's `pooler.dense` (required in `weights` with this pooling).
    Pooler,
}

/// Configuration of [`Bert`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BertConfig {
    /// Which text input the model reads (tokenized with the model's own `tokenizer.json`).
    pub input: TextInput,
    /// The architecture (from the checkpoint's `config.json`).
    pub params: BertParams,
    /// `model.safetensors` to initialise from. Not serialized: a saved pipeline holds the
    /// (fine-tuned) weights itself.
    #[serde(skip)]
    pub weights: Option<PathBuf>,
    /// How the token outputs are pooled.
    pub pooling: BertPooling,
    /// `Some(k)`: only the last `k` encoder layers train (embeddings and earlier layers are
    /// frozen); `None`: everything trains.
    pub trainable_layers: Option<i64>,
    /// Optional MLP on the pooled output.
    pub head: Option<MlpConfig>,
}

impl Default for BertConfig {
    fn default() -> Self {
        Self {
            input: TextInput::default(),
            params: BertParams::default(),
            weights: None,
            pooling: BertPooling::Mean,
            trainable_layers: None,
            head: None,
        }
    }
}

impl BertConfig {
    /// A model from the Hugging Face directory `dir` (`config.json`, `model.safetensors`) for
    /// the text input `text_index` tokenized with that directory's `tokenizer.json`.
    pub fn from_pretrained_dir(
        dir: impl AsRef<Path>,
        meta: &TextMeta,
        text_index: usize,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        let params = BertParams::from_file(dir.join("config.json"))?;
        Ok(Self {
            input: TextInput::from_meta(meta, text_index),
            params,
            weights: Some(dir.join("model.safetensors")),
            ..Default::default()
        })
    }
    setters!(pooling: BertPooling);
    /// Trains only the last `k` encoder layers (sets `trainable_layers`).
    pub fn trainable_layers(mut self, k: i64) -> Self {
        self.trainable_layers = Some(k);
        self
    }
    /// Puts an MLP on the pooled output.
    pub fn head(mut self, head: MlpConfig) -> Self {
        self.head = Some(head);
        self
    }
    /// Initialises from the `model.safetensors` at `path` (sets `weights`).
    pub fn weights(mut self, path: impl Into<PathBuf>) -> Self {
        self.weights = Some(path.into());
        self
    }
}

impl ComponentConfig for BertConfig {
    type Component = Bert;
    const NAME: &'static str = "bert";

    /// Checks the input, the architecture's sizes and activation (the tokenizer's vocabulary
    /// must be the model's), `trainable_layers` and the head, without reading the weights
    /// file; errors name the field (`bert.params.num_attention_heads`).
    fn validate(&self) -> Result<()> {
        let p = &self.params;
        self.input.validate("bert")?;
        for (v, f) in [
            (p.vocab_size, "vocab_size"),
            (p.hidden_size, "hidden_size"),
            (p.num_hidden_layers, "num_hidden_layers"),
            (p.num_attention_heads, "num_attention_heads"),
            (p.intermediate_size, "intermediate_size"),
            (p.max_position_embeddings, "max_position_embeddings"),
            (p.type_vocab_size, "type_vocab_size"),
        ] {
            ensure!(
                v > 0,
                config(format!("bert.params.{f}")),
                "must be positive, got {v}"
            );
        }
        ensure!(
            p.hidden_size % p.num_attention_heads == 0,
            config("bert.params.num_attention_heads"),
            "must divide hidden_size"
        );
        ensure!(
            self.input.vocab_size == p.vocab_size,
            config("bert.input.vocab_size"),
            "the tokenizer has {} ids, the model {}: use the model's tokenizer.json",
            self.input.vocab_size,
            p.vocab_size
        );
        ensure!(
            ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu"].contains(&p.hidden_act.as_str()),
            config("bert.params.hidden_act"),
            "unsupported activation `{}`",
            p.hidden_act
        );
        if let Some(k) = self.trainable_layers {
            ensure!(
                (0..=p.num_hidden_layers).contains(&k),
                config("bert.trainable_layers"),
                "must be in 0..={}, got {k}",
                p.num_hidden_layers
            );
        }
        validate_head(&self.head, Self::NAME)
    }

    /// Validates, builds under `path` (Hugging Face's variable names: `embeddings.*`,
    /// `encoder.layer.{i}.*`, `pooler.dense` with [`BertPooling::Pooler`], then `head`), loads
    /// the pretrained weights when set and freezes all but the last `trainable_layers`.
    fn build(&self, path: &nn::Path) -> Result<Bert> {
        self.validate()?;
        let p = &self.params;
        let d = p.hidden_size;
        let ln = nn::LayerNormConfig {
            eps: p.layer_norm_eps,
            ..Default::default()
        };
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let mut named: Vec<(String, Tensor)> = Vec::new();
        let e = path / "embeddings";
        let word = (&e / "word_embeddings").var("weight", &[p.vocab_size, d], init);
        let position =
            (&e / "position_embeddings").var("weight", &[p.max_position_embeddings, d], init);
        let token_type =
            (&e / "token_type_embeddings").var("weight", &[p.type_vocab_size, d], init);
        let emb_ln = nn::layer_norm(&e / "LayerNorm", vec![d], ln);
        named.push((
            "embeddings.word_embeddings.weight".into(),
            word.shallow_clone(),
        ));
        named.push((
            "embeddings.position_embeddings.weight".into(),
            position.shallow_clone(),
        ));
        named.push((
            "embeddings.token_type_embeddings.weight".into(),
            token_type.shallow_clone(),
        ));
        push_ln(&mut named, "embeddings.LayerNorm", &emb_ln);
        let mut layers = Vec::new();
        for i in 0..p.num_hidden_layers {
            let lp = path / "encoder" / "layer" / i;
            let attn = SelfAttention::new(
                &(&lp / "attention" / "self"),
                &(&lp / "attention" / "output" / "dense"),
                d,
                p.num_attention_heads,
                p.attention_probs_dropout_prob,
            );
            let attn_ln = nn::layer_norm(&lp / "attention" / "output" / "LayerNorm", vec![d], ln);
            let inter = nn::linear(
                &lp / "intermediate" / "dense",
                d,
                p.intermediate_size,
                Default::default(),
            );
            let out = nn::linear(
                &lp / "output" / "dense",
                p.intermediate_size,
                d,
                Default::default(),
            );
            let out_ln = nn::layer_norm(&lp / "output" / "LayerNorm", vec![d], ln);
            let pre = format!("encoder.layer.{i}");
            push_lin(
                &mut named,
                &format!("{pre}.attention.self.query"),
                &attn.query,
            );
            push_lin(&mut named, &format!("{pre}.attention.self.key"), &attn.key);
            push_lin(
                &mut named,
                &format!("{pre}.attention.self.value"),
                &attn.value,
            );
            push_lin(
                &mut named,
                &format!("{pre}.attention.output.dense"),
                &attn.out,
            );
            push_ln(
                &mut named,
                &format!("{pre}.attention.output.LayerNorm"),
                &attn_ln,
            );
            push_lin(&mut named, &format!("{pre}.intermediate.dense"), &inter);
            push_lin(&mut named, &format!("{pre}.output.dense"), &out);
            push_ln(&mut named, &format!("{pre}.output.LayerNorm"), &out_ln);
            layers.push(Layer {
                attn,
                attn_ln,
                inter,
                out,
                out_ln,
            });
        }
        let pooler = (self.pooling == BertPooling::Pooler)
            .then(|| nn::linear(path / "pooler" / "dense", d, d, Default::default()));
        if let Some(l) = &pooler {
            push_lin(&mut named, "pooler.dense", l);
        }
        if let Some(w) = &self.weights {
            load_weights(w, &named)?;
        }
        if let Some(k) = self.trainable_layers {
            let frozen_layers: Vec<String> = (0..p.num_hidden_layers - k)
                .map(|i| format!("encoder.layer.{i}."))
                .collect();
            for (name, t) in &named {
                if name.starts_with("embeddings.")
                    || frozen_layers.iter().any(|f| name.starts_with(f))
                {
                    let _ = t.set_requires_grad(false);
                }
            }
        }
        let head = build_head(&self.head, path, d, Self::NAME)?;
        Ok(Bert {
            input: self.input.clone(),
            word,
            position,
            token_type,
            emb_ln,
            layers,
            act: p.hidden_act.clone(),
            dropout: p.hidden_dropout_prob,
            pooling: self.pooling,
            pooler,
            max_len: p.max_position_embeddings,
            hidden: d,
            head,
        })
    }
}

fn push_lin(named: &mut Vec<(String, Tensor)>, name: &str, l: &nn::Linear) {
    named.push((format!("{name}.weight"), l.ws.shallow_clone()));
    if let Some(b) = &l.bs {
        named.push((format!("{name}.bias"), b.shallow_clone()));
    }
}

fn push_ln(named: &mut Vec<(String, Tensor)>, name: &str, l: &nn::LayerNorm) {
    if let Some(w) = &l.ws {
        named.push((format!("{name}.weight"), w.shallow_clone()));
    }
    if let Some(b) = &l.bs {
        named.push((format!("{name}.bias"), b.shallow_clone()));
    }
}

/// Copies the tensors of a Hugging Face `model.safetensors` into `named` (Hugging Face names;
/// a `bert.` prefix and the old `gamma`/`beta` LayerNorm names are accepted).
fn load_weights(path: &Path, named: &[(String, Tensor)]) -> Result<()> {
    let bad = |reason: String| {
        WideDeepError::config("bert.weights", format!("{}: {reason}", path.display()))
    };
    ensure!(
        path.is_file(),
        config("bert.weights"),
        "{}: file not found",
        path.display()
    );
    let file = Tensor::read_safetensors(path).map_err(|e| bad(e.to_string()))?;
    let map: HashMap<String, Tensor> = file
        .into_iter()
        .map(|(k, v)| {
            let k = k.strip_prefix("bert.").unwrap_or(&k).to_string();
            let k = if let Some(s) = k.strip_suffix(".gamma") {
                format!("{s}.weight")
            } else if let Some(s) = k.strip_suffix(".beta") {
                format!("{s}.bias")
            } else {
                k
            };
            (k, v)
        })
        .collect();
    tch::no_grad(|| {
        for (name, var) in named {
            let src = map
                .get(name)
                .ok_or_else(|| bad(format!("no tensor `{name}`")))?;
            ensure!(
                src.size() == var.size(),
                config("bert.weights"),
                "{}: `{name}` has shape {:?}, the model {:?}",
                path.display(),
                src.size(),
                var.size()
            );
            var.shallow_clone()
                .copy_(&src.to_kind(var.kind()).to_device(var.device()));
        }
        Ok(())
    })
}

#[derive(Debug)]
struct Layer {
    attn: SelfAttention,
    attn_ln: nn::LayerNorm,
    inter: nn::Linear,
    out: nn::Linear,
    out_ln: nn::LayerNorm,
}

/// A BERT encoder: `text[i]` `[batch, seq]` (ids of the model's own tokenizer) →
/// `[batch, hidden_size]` (mean-pooled or `[CLS]`), or the head's last width. Token type 0
/// throughout; positions count real tokens, so left padding works too.
#[derive(Debug)]
pub struct Bert {
    input: TextInput,
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    emb_ln: nn::LayerNorm,
    layers: Vec<Layer>,
    act: String,
    dropout: f64,
    pooling: BertPooling,
    /// `pooler.dense` (with [`BertPooling::Pooler`] only).
    pooler: Option<nn::Linear>,
    max_len: i64,
    hidden: i64,
    head: Option<Mlp>,
}

impl Bert {
    /// Token outputs of the last layer.
    ///
    /// # Shapes
    /// - `ids`: `[batch, seq]` i64 (the model's own token ids)
    /// - returns `[batch, seq, hidden_size]`
    pub fn encode(&self, ids: &Tensor, train: bool) -> Tensor {
        let emb = Tensor::embedding(&self.word, ids, -1, false, false);
        self.encode_embedded(&emb, &mask_from_ids(ids, self.input.pad_id), train)
    }

    /// The encoder from the word embeddings `emb` `[batch, seq, hidden]` and the real-token
    /// mask `[batch, seq]`.
    fn encode_embedded(&self, emb: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let pos = (mask.to_kind(Kind::Int64).cumsum(1, Kind::Int64) - 1).clamp_min(0);
        let x = emb
            + Tensor::embedding(&self.position, &pos, -1, false, false)
            + self.token_type.get(0);
        let mut x = x.apply(&self.emb_ln).dropout_t(self.dropout, train);
        for l in &self.layers {
            let (a, _) = l.attn.forward(&x, mask, train);
            x = (a.dropout_t(self.dropout, train) + &x).apply(&l.attn_ln);
            let h = x.apply(&l.inter);
            let h = match self.act.as_str() {
                "gelu" => h.gelu("none"),
                "relu" => h.relu(),
                _ => h.gelu("tanh"),
            };
            let h = h.apply(&l.out).dropout_t(self.dropout, train);
            x = (h + &x).apply(&l.out_ln);
        }
        x
    }

    /// The pooled sentence vector (before the head).
    ///
    /// # Shapes
    /// - `tokens`: `[batch, seq, hidden_size]` (from [`Bert::encode`]), `mask`: `[batch, seq]`
    ///   bool (real tokens)
    /// - returns `[batch, hidden_size]`
    pub fn pool(&self, tokens: &Tensor, mask: &Tensor) -> Tensor {
        match self.pooling {
            BertPooling::Mean => masked_mean(tokens, mask),
            BertPooling::Cls => tokens.select(1, 0),
            BertPooling::Pooler => {
                let cls = tokens.select(1, 0);
                match &self.pooler {
                    Some(l) => cls.apply(l).tanh(),
                    None => cls,
                }
            }
        }
    }

    /// Encoder, pooling and head from embedded tokens.
    fn run(&self, emb: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let pooled = self.pool(&self.encode_embedded(emb, mask, train), mask);
        apply_head(&self.head, pooled, train)
    }
}

impl Component for Bert {
    fn forward_t(&self, input: &ModelInput, train: bool) -> Tensor {
        let ids = self.input.ids(input);
        let emb = Tensor::embedding(&self.word, ids, -1, false, false);
        self.run(&emb, &mask_from_ids(ids, self.input.pad_id), train)
    }
    fn output_dim(&self) -> i64 {
        self.head.as_ref().map_or(self.hidden, |h| h.output_dim())
    }
    fn check_input(&self, input: &ModelInput) -> Result<()> {
        self.input.check(input, Some(self.max_len))
    }
    fn feature_names(&self) -> Vec<String> {
        vec![self.input.name.clone()]
    }
    fn embed(&self, input: &ModelInput) -> Option<Vec<Tensor>> {
        let ids = self.input.ids(input);
        Some(vec![Tensor::embedding(&self.word, ids, -1, false, false)])
    }
    fn forward_embedded(&self, parts: &[Tensor], train: bool) -> Option<Tensor> {
        let emb = check_part(parts)?;
        let mask = padding_mask_from_embedded(emb, &self.word.get(self.input.pad_id));
        Some(self.run(emb, &mask, train))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn tiny() -> BertConfig {
        BertConfig {
            input: TextInput {
                text_index: 0,
                name: "t".into(),
                vocab_size: 12,
                pad_id: 0,
            },
            params: BertParams {
                vocab_size: 12,
                hidden_size: 8,
                num_hidden_layers: 2,
                num_attention_heads: 2,
                intermediate_size: 16,
                max_position_embeddings: 10,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn tiny_bert_shapes_save_load_and_freezing() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = tiny().trainable_layers(1).build(&vs.root()).unwrap();
        let x = ModelInput {
            text: vec![Tensor::from_slice(&[2i64, 5, 7, 0, 3, 4, 0, 0]).view([2, 4])],
            ..Default::default()
        };
        m.check_input(&x).unwrap();
        let y = m.forward_t(&x, false);
        assert_eq!(y.size(), [2, 8]);
        let split = m.forward_embedded(&m.embed(&x).unwrap(), false).unwrap();
        assert!(y.allclose(&split, 1e-5, 1e-6, false));
        let vars = vs.variables();
        assert!(!vars["embeddings.word_embeddings.weight"].requires_grad());
        assert!(!vars["encoder.layer.0.output.dense.weight"].requires_grad());
        assert!(vars["encoder.layer.1.output.dense.weight"].requires_grad());
        // weights written under Hugging Face names (with a `bert.` prefix) load back
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model.safetensors");
        let named: Vec<(String, Tensor)> = vars
            .iter()
            .map(|(k, v)| (format!("bert.{k}"), v.shallow_clone()))
            .collect();
        Tensor::write_safetensors(&named, &file).unwrap();
        let vs2 = nn::VarStore::new(Device::Cpu);
        let m2 = tiny().weights(&file).build(&vs2.root()).unwrap();
        assert!(y.allclose(&m2.forward_t(&x, false), 1e-6, 1e-6, false));
        // errors name the field
        let vs3 = nn::VarStore::new(Device::Cpu);
        let mut bad = tiny();
        bad.params.hidden_size = 9;
        let err = bad.build(&vs3.root()).unwrap_err().to_string();
        assert!(err.contains("num_attention_heads"), "{err}");
        let err = tiny()
            .weights(dir.path().join("nope.safetensors"))
            .build(&vs3.root())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bert.weights") && err.contains("nope"),
            "{err}"
        );
    }
}
