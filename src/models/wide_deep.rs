//! [`WideDeep`]: the wide part plus any deep components, joined additively or through a head.
use crate::error::{Result, WideDeepError};
use crate::macros::{bail, ensure};
use crate::models::alloc;
use crate::models::fusion::AttentionFusion;
use crate::models::{
    AttentionFusionConfig, Component, ImageModelConfig, Mlp, MlpConfig, ModelInput, TabModelConfig,
    TextModelConfig, Wide, WideConfig,
};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Tensor};

/// The MLP head over the concatenated deep outputs (`WideDeep(..., head=...)`). A final linear
/// layer to `pred_dim` is always added after it.
pub type HeadConfig = MlpConfig;

/// Serializable description of a [`WideDeep`] model: enough to rebuild it from a saved pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WideDeepConfig {
    /// The wide (linear) part, if any.
    pub wide: Option<WideConfig>,
    /// The deep tabular model, if any.
    pub deeptabular: Option<TabModelConfig>,
    /// `None`: each deep output is projected linearly to `pred_dim` and added to the wide output
    /// (the reference's default). `Some`: an MLP over the concatenated deep outputs.
    pub head: Option<HeadConfig>,
    /// Width of the output: 1 for binary and regression, the class count for multiclass,
    /// `objective.pred_dim()` in general. `None` (the default): taken from the objective when
    /// the model meets its [`Trainer`](crate::training::Trainer) (1 until then), so a
    /// multiclass or multi-target model needs no hand-set width.
    #[serde(default)]
    pub pred_dim: Option<i64>,
    /// Seed of the weight initialisation.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// One model per text column (reading `input.text[i]`), after the tabular model.
    #[serde(default)]
    pub deeptext: Vec<TextModelConfig>,
    /// One model per image column (reading `input.image[i]`), after the text models.
    #[serde(default)]
    pub deepimage: Vec<ImageModelConfig>,
    /// Fuse the deep outputs with learned attention weights instead of adding their
    /// projections (or concatenating them into the head).
    #[serde(default)]
    pub attention_fusion: Option<AttentionFusionConfig>,
    /// Without head or fusion, a deep component whose output is one wide while `pred_dim` is 1
    /// (DeepFM's summed FM term, a recommender's logit) is already the prediction: it is added
    /// to the output as it is, with no projection (the reference's rule). `true` for configs
    /// made by [`WideDeepConfig::new`]; `false` (always project) for pipelines saved before the
    /// rule existed, whose files hold a projection for every component.
    #[serde(default)]
    pub direct_logits: bool,
}

fn default_seed() -> u64 {
    1
}

impl Default for WideDeepConfig {
    fn default() -> Self {
        Self {
            wide: None,
            deeptabular: None,
            head: None,
            pred_dim: None,
            seed: default_seed(),
            deeptext: Vec::new(),
            deepimage: Vec::new(),
            attention_fusion: None,
            direct_logits: true,
        }
    }
}

impl WideDeepConfig {
    /// No component yet, `pred_dim` from the objective, seed 1.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the wide part.
    pub fn wide(mut self, wide: WideConfig) -> Self {
        self.wide = Some(wide);
        self
    }
    /// Sets the deep tabular model (any tabular config, e.g. `TabMlpConfig`).
    pub fn deeptabular(mut self, tab: impl Into<TabModelConfig>) -> Self {
        self.deeptabular = Some(tab.into());
        self
    }
    /// Joins the deep outputs through an MLP head instead of adding their projections.
    pub fn head(mut self, head: HeadConfig) -> Self {
        self.head = Some(head);
        self
    }
    /// Sets the output width explicitly (see [`WideDeepConfig::pred_dim`]).
    pub fn pred_dim(mut self, pred_dim: i64) -> Self {
        self.pred_dim = Some(pred_dim);
        self
    }

    /// The output width the model is built with: the set one, else 1.
    pub fn output_width(&self) -> i64 {
        self.pred_dim.unwrap_or(1)
    }
    /// Sets the seed of the weight initialisation.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Adds a text model (call once per text column).
    pub fn deeptext(mut self, text: impl Into<TextModelConfig>) -> Self {
        self.deeptext.push(text.into());
        self
    }
    /// Adds an image model (call once per image column).
    pub fn deepimage(mut self, image: impl Into<ImageModelConfig>) -> Self {
        self.deepimage.push(image.into());
        self
    }
    /// Whether width-1 components skip the projection (see [`WideDeepConfig::direct_logits`]).
    pub fn direct_logits(mut self, direct: bool) -> Self {
        self.direct_logits = direct;
        self
    }
    /// Fuses the deep outputs with learned per-row attention weights.
    pub fn attention_fusion(mut self, fusion: AttentionFusionConfig) -> Self {
        self.attention_fusion = Some(fusion);
        self
    }

    /// Names of the parameter groups, indexed by group id (see [`WideDeep::param_groups`]).
    fn group_names(&self) -> Vec<String> {
        let mut g: Vec<String> = ["other", "wide", "deeptabular", "head"]
            .map(String::from)
            .to_vec();
        g.extend((0..self.deeptext.len()).map(|i| format!("deeptext_{i}")));
        g.extend((0..self.deepimage.len()).map(|i| format!("deepimage_{i}")));
        g
    }
}

const GROUP_WIDE: usize = 1;
const GROUP_TAB: usize = 2;
const GROUP_HEAD: usize = 3;

/// A wide-and-deep model: `ModelInput` → `[batch, pred_dim]` logits (or values for regression).
///
/// Owns its [`nn::VarStore`]; the weights save to and load from `.safetensors`.
pub struct WideDeep {
    vs: nn::VarStore,
    wide: Option<Wide>,
    deep: Vec<Box<dyn Component>>,
    /// Without head: one projection per deep component (`None`: a width-1 component added as
    /// it is, see [`WideDeepConfig::direct_logits`]). With head or fusion: the output layer only.
    proj: Vec<Option<nn::Linear>>,
    head: Option<Mlp>,
    fusion: Option<AttentionFusion>,
    fusion_weights: std::sync::Mutex<Option<Tensor>>,
    groups: Vec<String>,
    /// Parameter-group name of each deep component (`deeptabular`, `deeptext_0`, …;
    /// `other` for custom components).
    deep_names: Vec<String>,
    pred_dim: i64,
    config: Option<WideDeepConfig>,
    /// Cleared by anything that may change the weights or their trainability after the
    /// build (`var_store_mut`, `warm_start`, `set_trainable`): only an untouched model whose
    /// config leaves `pred_dim` unset is rebuilt for its objective's width.
    untouched: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for WideDeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WideDeep")
            .field("wide", &self.wide)
            .field("deep", &self.deep)
            .field("head", &self.head)
            .field("pred_dim", &self.pred_dim)
            .finish()
    }
}

impl WideDeep {
    /// Builds the model described by `config` on `device`, with weights drawn from `config.seed`.
    ///
    /// Tables sized by the data (wide table, categorical embeddings, vocabularies) are checked
    /// before allocation, and no build step panics: a component too large to allocate is a
    /// [`WideDeepError::ModelTooLarge`] naming it and the size asked for.
    pub fn new(config: &WideDeepConfig, device: Device) -> Result<Self> {
        let _rng_guard = crate::torch_rng_lock();
        tch::manual_seed(config.seed as i64);
        alloc::start_build();
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let wide = config
            .wide
            .as_ref()
            .map(|w| {
                alloc::guarded("wide", || {
                    w.build(
                        &(root.set_group(GROUP_WIDE) / "wide"),
                        config.output_width(),
                    )
                })
            })
            .transpose()?;
        let mut deep = Vec::new();
        if let Some(tab) = &config.deeptabular {
            deep.push(alloc::guarded("deeptabular", || {
                tab.build(&(root.set_group(GROUP_TAB) / "deeptabular"))
            })?);
        }
        let groups = config.group_names();
        for (i, t) in config.deeptext.iter().enumerate() {
            let g = GROUP_HEAD + 1 + i;
            deep.push(alloc::guarded(&groups[g], || {
                t.build(&(root.set_group(g) / groups[g].as_str()))
            })?);
        }
        for (i, m) in config.deepimage.iter().enumerate() {
            let g = GROUP_HEAD + 1 + config.deeptext.len() + i;
            deep.push(alloc::guarded(&groups[g], || {
                m.build(&(root.set_group(g) / groups[g].as_str()))
            })?);
        }
        let mut model = alloc::guarded("head", || {
            Self::assemble_with(
                vs,
                wide,
                deep,
                config.head.as_ref(),
                config.attention_fusion.as_ref(),
                config.output_width(),
                config.direct_logits,
            )
        })?;
        model.deep_names = config
            .deeptabular
            .iter()
            .map(|_| "deeptabular".to_string())
            .chain(groups[GROUP_HEAD + 1..].iter().cloned())
            .collect();
        model.groups = groups;
        model.config = Some(config.clone());
        Ok(model)
    }

    /// Builds a model from your own components. Build them on paths of `vs` (e.g.
    /// `vs.root() / "custom"`) so their weights train and save with the rest. Such a model trains
    /// and predicts like any other, but a pipeline holding it cannot be saved (there is no config
    /// to rebuild it from). Without a head, a component of width 1 is added to the output as it
    /// is when `pred_dim` is 1 (see [`WideDeepConfig::direct_logits`]).
    pub fn from_components(
        vs: nn::VarStore,
        wide: Option<&WideConfig>,
        deep: Vec<Box<dyn Component>>,
        head: Option<&HeadConfig>,
        pred_dim: i64,
    ) -> Result<Self> {
        let wide = wide
            .map(|w| w.build(&(vs.root() / "wide"), pred_dim))
            .transpose()?;
        Self::assemble_with(vs, wide, deep, head, None, pred_dim, true)
    }

    fn assemble_with(
        vs: nn::VarStore,
        wide: Option<Wide>,
        deep: Vec<Box<dyn Component>>,
        head: Option<&HeadConfig>,
        attention_fusion: Option<&AttentionFusionConfig>,
        pred_dim: i64,
        direct_logits: bool,
    ) -> Result<Self> {
        ensure!(
            pred_dim > 0,
            config("pred_dim"),
            "must be positive, got {pred_dim}"
        );
        ensure!(
            !(wide.is_none() && deep.is_empty()),
            config("WideDeepConfig"),
            "needs a wide part or at least one deep component"
        );
        ensure!(
            !(head.is_some() && deep.is_empty()),
            config("head"),
            "a head needs at least one deep component"
        );
        let root = vs.root().set_group(GROUP_HEAD);
        let widths: Vec<i64> = deep.iter().map(|c| c.output_dim()).collect();
        let fusion = attention_fusion
            .map(|f| f.build(&(&root / "fusion"), &widths))
            .transpose()?;
        let (head, proj) = match (head, attention_fusion) {
            (Some(h), _) => {
                let width: i64 = match attention_fusion {
                    Some(f) => f.dim,
                    None => widths.iter().sum(),
                };
                let mlp = h.build(&(&root / "head"), width, "head")?;
                let out = nn::linear(
                    &root / "head_out",
                    mlp.output_dim(),
                    pred_dim,
                    Default::default(),
                );
                (Some(mlp), vec![Some(out)])
            }
            (None, Some(f)) => {
                let out = nn::linear(&root / "head_out", f.dim, pred_dim, Default::default());
                (None, vec![Some(out)])
            }
            (None, None) => {
                let proj = deep
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let direct = direct_logits && c.output_dim() == 1 && pred_dim == 1;
                        (!direct).then(|| {
                            nn::linear(
                                &root / format!("proj_{i}"),
                                c.output_dim(),
                                pred_dim,
                                Default::default(),
                            )
                        })
                    })
                    .collect();
                (None, proj)
            }
        };
        let deep_names = vec!["other".to_string(); deep.len()];
        Ok(Self {
            vs,
            wide,
            deep_names,
            deep,
            proj,
            head,
            fusion,
            fusion_weights: std::sync::Mutex::new(None),
            groups: ["other", "wide", "deeptabular", "head"]
                .map(String::from)
                .to_vec(),
            pred_dim,
            config: None,
            untouched: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// Forward pass. Call [`WideDeep::check_input`] first on user data.
    ///
    /// # Shapes
    /// - `input`: see [`ModelInput`] (every input the components read, `batch` rows)
    /// - returns `[batch, pred_dim]` (logits for classification)
    pub fn forward_t(&self, input: &ModelInput, train: bool) -> Tensor {
        self.forward_aux(input, train).0
    }

    /// Forward pass plus the sum of the components' auxiliary losses (see
    /// [`Component::forward_aux`]), which the trainer adds to the objective.
    ///
    /// # Shapes
    /// - returns `([batch, pred_dim], Option<[]>)` (a scalar auxiliary loss)
    pub fn forward_aux(&self, input: &ModelInput, train: bool) -> (Tensor, Option<Tensor>) {
        let mut aux: Option<Tensor> = None;
        let mut run = |c: &dyn Component| {
            let (y, a) = c.forward_aux(input, train);
            if let Some(a) = a {
                aux = Some(match aux.take() {
                    Some(s) => s + a,
                    None => a,
                });
            }
            y
        };
        let wide = self.wide.as_ref().map(|w| {
            w.forward(
                input
                    .wide
                    .as_ref()
                    .expect("wide input checked by check_input"),
            )
        });
        let feats: Vec<Tensor> = self.deep.iter().map(|c| run(c.as_ref())).collect();
        (self.combine(wide, &feats, train), aux)
    }

    /// The output `[batch, pred_dim]` from the wide part's output `wide` (`[batch, pred_dim]`,
    /// bias included; `None` without a wide part) and the features `deep` of each component
    /// (`[batch, output_dim]`, in [`WideDeep::components`] order): the projections summed with
    /// the wide output, or the head. `forward_t(x)` is `combine(wide(x), [c.forward_t(x)])`;
    /// attributions call it on features from [`Component::forward_embedded`].
    ///
    /// # Shapes
    /// - `wide`: `[batch, pred_dim]`; `deep[i]`: `[batch, output_dim_i]`
    /// - returns `[batch, pred_dim]`
    pub fn combine(&self, wide: Option<Tensor>, deep: &[Tensor], train: bool) -> Tensor {
        let mut out = wide;
        let mut add = |t: Tensor| {
            out = Some(match out.take() {
                Some(o) => o + t,
                None => t,
            })
        };
        let fused = self.fusion.as_ref().map(|f| {
            let (fused, w) = f.forward(deep, train);
            *self
                .fusion_weights
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(w.detach());
            fused
        });
        match (&self.head, fused) {
            (Some(head), fused) => {
                let x = fused.unwrap_or_else(|| Tensor::cat(deep, 1));
                let h = head.forward_t(&x, train);
                add(h.apply(self.out_layer()));
            }
            (None, Some(fused)) => add(fused.apply(self.out_layer())),
            (None, None) => {
                for (f, p) in deep.iter().zip(&self.proj) {
                    add(match p {
                        Some(p) => f.apply(p),
                        None => f.shallow_clone(),
                    });
                }
            }
        }
        out.expect("a wide part or a deep component is present")
    }

    /// The output layer after a head or the fusion.
    fn out_layer(&self) -> &nn::Linear {
        self.proj[0]
            .as_ref()
            .expect("a head or fusion always has its output layer")
    }

    /// Validates that `input` matches the model: present inputs, widths, index ranges.
    pub fn check_input(&self, input: &ModelInput) -> Result<()> {
        if let Some(w) = &self.wide {
            w.check_input(input)?;
        }
        for c in &self.deep {
            c.check_input(input)?;
        }
        Ok(())
    }

    /// Width of the output, `[batch, pred_dim]`.
    pub fn pred_dim(&self) -> i64 {
        self.pred_dim
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The config it was built from; `None` for models made with [`WideDeep::from_components`].
    pub fn config(&self) -> Option<&WideDeepConfig> {
        self.config.as_ref()
    }

    /// The weights (and batch-norm statistics).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// The weights, mutably (a model changed this way keeps its `pred_dim`: see
    /// [`crate::training::Trainer::new`]).
    pub fn var_store_mut(&mut self) -> &mut nn::VarStore {
        self.touch();
        &mut self.vs
    }

    fn touch(&self) {
        self.untouched
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// This model rebuilt with output width `pred_dim`, when its config leaves the width to
    /// the objective ([`WideDeepConfig::pred_dim`] `None`) and nothing has changed the model
    /// since it was built; `None` otherwise.
    pub(crate) fn rebuilt_for(&self, pred_dim: i64) -> Option<Result<WideDeep>> {
        let config = self.config.as_ref()?;
        if config.pred_dim.is_some() || !self.untouched.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        Some(WideDeep::new(
            &config.clone().pred_dim(pred_dim),
            self.device(),
        ))
    }

    /// The wide part, if any.
    pub fn wide(&self) -> Option<&Wide> {
        self.wide.as_ref()
    }

    /// The deep components, in build order (the tabular model, the text models, the image
    /// models).
    pub fn components(&self) -> &[Box<dyn Component>] {
        &self.deep
    }

    /// The attention-fusion weights of the last forward pass, `[batch, n_components]` (with
    /// [`WideDeepConfig::attention_fusion`] only).
    pub fn fusion_weights(&self) -> Option<Tensor> {
        self.fusion_weights
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|t| t.shallow_clone())
    }

    /// Parameter groups: `(name, group id)` for `other` (custom components), `wide`,
    /// `deeptabular`, `head` (projections, head and fusion), `deeptext_i`, `deepimage_i`. The
    /// trainer sets a learning rate per group from `TrainerConfig::component_lr`.
    pub fn param_groups(&self) -> Vec<(String, usize)> {
        self.groups
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect()
    }

    /// Warm start: copies the weights of the parts that `from` shares with this model — the wide
    /// part and each deep component, matched by parameter group (`wide`, `deeptabular`,
    /// `deeptext_i`, `deepimage_i`) — batch-norm statistics included. When both models are
    /// additive (no head, no attention fusion), the projections of the copied components are
    /// copied too and the projections of this model's other deep components (and its wide
    /// part, when `from` has none) are set to zero, so that the warm-started model starts out
    /// computing exactly `from`'s output and training only adds to it (e.g. a tabular
    /// correction on top of a trained text model; a width-1 component added without projection
    /// (see [`WideDeepConfig::direct_logits`]) has nothing to zero and adds its own output).
    /// Returns the names of the copied parts.
    ///
    /// A shared part whose variables differ in name or shape is an error naming it.
    pub fn warm_start(&mut self, from: &WideDeep) -> Result<Vec<String>> {
        self.touch();
        let bad = |reason: String| WideDeepError::config("warm_start", reason);
        let mut shared: Vec<String> = Vec::new();
        if self.wide.is_some() && from.wide.is_some() {
            shared.push("wide".into());
        }
        for name in &self.deep_names {
            if name != "other" && from.deep_names.contains(name) {
                shared.push(name.clone());
            }
        }
        if shared.is_empty() {
            bail!(bad("the models share no wide part or deep component".into()));
        }
        let additive = |m: &WideDeep| m.head.is_none() && m.fusion.is_none();
        let both_additive = additive(self) && additive(from);
        // (source prefix, destination prefix) of every block of variables to copy
        let mut pairs: Vec<(String, String)> =
            shared.iter().map(|n| (n.clone(), n.clone())).collect();
        if both_additive {
            for n in shared.iter().filter(|n| *n != "wide") {
                let i = self.deep_names.iter().position(|d| d == n).expect("shared");
                let j = from.deep_names.iter().position(|d| d == n).expect("shared");
                if self.proj[i].is_some() && from.proj[j].is_some() {
                    pairs.push((format!("proj_{j}"), format!("proj_{i}")));
                }
            }
        }
        let dst = self.vs.variables();
        let src = from.vs.variables();
        tch::no_grad(|| -> Result<()> {
            for (from_prefix, to_prefix) in &pairs {
                let head = format!("{from_prefix}.");
                let mut n = 0;
                for (name, t) in &src {
                    let Some(rest) = name.strip_prefix(&head) else {
                        continue;
                    };
                    let target = format!("{to_prefix}.{rest}");
                    let d = dst.get(&target).ok_or_else(|| {
                        bad(format!(
                            "`{from_prefix}`: this model has no variable `{target}`"
                        ))
                    })?;
                    if d.size() != t.size() {
                        bail!(bad(format!(
                            "`{from_prefix}`: `{target}` has shape {:?} here and {:?} in the source",
                            d.size(),
                            t.size()
                        )));
                    }
                    d.shallow_clone()
                        .copy_(&t.to_device(d.device()).to_kind(d.kind()));
                    n += 1;
                }
                let own = dst
                    .keys()
                    .filter(|k| k.starts_with(&format!("{to_prefix}.")))
                    .count();
                if n != own {
                    bail!(bad(format!(
                        "`{to_prefix}` has {own} variables here and {n} in the source"
                    )));
                }
            }
            if both_additive {
                let mut zero: Vec<String> = (0..self.deep.len())
                    .filter(|&i| !shared.contains(&self.deep_names[i]))
                    .map(|i| format!("proj_{i}."))
                    .collect();
                if self.wide.is_some() && from.wide.is_none() {
                    zero.push("wide.".into());
                }
                for (name, t) in &dst {
                    if zero.iter().any(|z| name.starts_with(z.as_str())) {
                        let _ = t.shallow_clone().zero_();
                    }
                }
            }
            Ok(())
        })?;
        Ok(shared)
    }

    /// Freezes (`trainable = false`) or unfreezes the variables of one parameter group (see
    /// [`WideDeep::param_groups`]); frozen variables get no gradient and the optimizer leaves
    /// them unchanged. An unknown group is an error listing the known ones.
    pub fn set_trainable(&self, group: &str, trainable: bool) -> Result<()> {
        self.touch();
        let id = self.groups.iter().position(|g| g == group).ok_or_else(|| {
            WideDeepError::config(
                "set_trainable.group",
                format!("unknown group `{group}`; known: {}", self.groups.join(", ")),
            )
        })?;
        let vars = self.vs.variables_.lock().unwrap_or_else(|e| e.into_inner());
        for v in vars.trainable_variables.iter().filter(|v| v.group == id) {
            let _ = v.tensor.set_requires_grad(trainable);
        }
        Ok(())
    }

    /// Number of trainable scalars.
    pub fn n_parameters(&self) -> i64 {
        self.vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::TabMlpConfig;
    use tch::Kind;
    use widedeep_preprocessing::{CatColumnMeta, TabMeta};

    fn tab() -> TabMlpConfig {
        TabMlpConfig::from_meta(&TabMeta {
            cat: vec![CatColumnMeta {
                name: "a".into(),
                cardinality: 5,
                embed_dim: 4,
            }],
            cont: vec!["x".into()],
        })
        .mlp(MlpConfig::default().hidden_dims([8, 6]))
    }

    fn input() -> ModelInput {
        ModelInput {
            wide: Some(Tensor::from_slice(&[1i64, 2, 3, 0, 4, 5]).view([3, 2])),
            cat: Some(Tensor::from_slice(&[1i64, 4, 0]).view([3, 1])),
            cont: Some(Tensor::from_slice(&[0.5f32, -1.0, 2.0]).view([3, 1])),
            ..Default::default()
        }
    }

    #[test]
    fn additive_and_head_modes_have_pred_dim_outputs() {
        for head in [None, Some(MlpConfig::default().hidden_dims([5]))] {
            for pred_dim in [1, 3] {
                let mut cfg = WideDeepConfig::new()
                    .wide(WideConfig::new(5))
                    .deeptabular(tab())
                    .pred_dim(pred_dim);
                cfg.head = head.clone();
                let m = WideDeep::new(&cfg, Device::Cpu).unwrap();
                m.check_input(&input()).unwrap();
                assert_eq!(m.forward_t(&input(), false).size(), [3, pred_dim]);
            }
        }
    }

    #[test]
    fn without_head_the_output_is_wide_plus_projected_deep() {
        let cfg = WideDeepConfig::new()
            .wide(WideConfig::new(5))
            .deeptabular(tab());
        let m = WideDeep::new(&cfg, Device::Cpu).unwrap();
        let x = input();
        let wide = m.wide().unwrap().forward(x.wide.as_ref().unwrap());
        let deep = m.components()[0]
            .forward_t(&x, false)
            .apply(m.proj[0].as_ref().unwrap());
        let diff = (m.forward_t(&x, false) - wide - deep)
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-6, "{diff}");
    }

    #[test]
    fn a_width_one_component_is_the_prediction_unless_asked_or_saved_otherwise() {
        let narrow = tab().mlp(MlpConfig::default().hidden_dims([8, 1]));
        let x = input();
        let cfg = WideDeepConfig::new()
            .wide(WideConfig::new(5))
            .deeptabular(narrow.clone());
        let m = WideDeep::new(&cfg, Device::Cpu).unwrap();
        assert!(m.proj[0].is_none());
        assert!(!m.vs.variables().keys().any(|k| k.starts_with("proj_")));
        let wide = m.wide().unwrap().forward(x.wide.as_ref().unwrap());
        let deep = m.components()[0].forward_t(&x, false);
        let diff = (m.forward_t(&x, false) - wide - deep)
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-6, "{diff}");
        // wider predictions, or the rule switched off, keep the projection
        let m3 = WideDeep::new(&cfg.clone().pred_dim(3), Device::Cpu).unwrap();
        assert!(m3.proj[0].is_some());
        let off = WideDeep::new(&cfg.clone().direct_logits(false), Device::Cpu).unwrap();
        assert!(off.proj[0].is_some());
        // a config saved before the field existed reads as `false`: its projection loads
        let mut json = serde_json::to_value(&cfg).unwrap();
        json.as_object_mut().unwrap().remove("direct_logits");
        let old: WideDeepConfig = serde_json::from_value(json).unwrap();
        assert!(!old.direct_logits);
        assert!(WideDeep::new(&old, Device::Cpu).unwrap().proj[0].is_some());
        assert!(WideDeepConfig::new().direct_logits);
    }

    #[test]
    fn same_seed_same_weights() {
        let cfg = WideDeepConfig::new().deeptabular(tab()).seed(7);
        let a = WideDeep::new(&cfg, Device::Cpu).unwrap();
        let b = WideDeep::new(&cfg, Device::Cpu).unwrap();
        let x = input();
        assert!(a.forward_t(&x, false).equal(&b.forward_t(&x, false)));
    }

    #[test]
    fn warm_start_copies_shared_parts_and_starts_at_the_source_output() {
        let from = WideDeep::new(
            &WideDeepConfig::new().deeptabular(tab()).seed(3),
            Device::Cpu,
        )
        .unwrap();
        let cfg = WideDeepConfig::new()
            .wide(WideConfig::new(5))
            .deeptabular(tab())
            .seed(4);
        let mut m = WideDeep::new(&cfg, Device::Cpu).unwrap();
        let x = input();
        assert!(!m
            .forward_t(&x, false)
            .allclose(&from.forward_t(&x, false), 1e-6, 1e-6, false));
        assert_eq!(
            m.warm_start(&from).unwrap(),
            vec!["deeptabular".to_string()]
        );
        let diff = (m.forward_t(&x, false) - from.forward_t(&x, false))
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-6, "{diff}");
        // a shared component of another shape is an error naming it
        let other = TabMlpConfig::from_meta(&TabMeta {
            cat: vec![CatColumnMeta {
                name: "a".into(),
                cardinality: 5,
                embed_dim: 3,
            }],
            cont: vec!["x".into()],
        });
        let wrong = WideDeep::new(&WideDeepConfig::new().deeptabular(other), Device::Cpu).unwrap();
        let err = m.warm_start(&wrong).unwrap_err().to_string();
        assert!(err.contains("deeptabular"), "{err}");
        let wide_only =
            WideDeep::new(&WideDeepConfig::new().wide(WideConfig::new(9)), Device::Cpu).unwrap();
        assert!(
            from.head.is_none()
                && WideDeep::new(&cfg, Device::Cpu)
                    .unwrap()
                    .warm_start(&wide_only)
                    .is_err()
        );
    }

    #[test]
    fn frozen_groups_get_no_gradient() {
        let cfg = WideDeepConfig::new()
            .wide(WideConfig::new(5))
            .deeptabular(tab());
        let m = WideDeep::new(&cfg, Device::Cpu).unwrap();
        m.set_trainable("deeptabular", false).unwrap();
        // a training-mode forward draws dropout masks from libtorch's generator
        let _rng = crate::torch_rng_lock();
        m.forward_t(&input(), true).sum(Kind::Float).backward();
        for (name, t) in m.var_store().variables() {
            let has_grad = t.grad().defined();
            if name.starts_with("deeptabular.") && t.requires_grad() {
                panic!("{name} still trainable");
            }
            assert_eq!(has_grad, !name.starts_with("deeptabular."), "{name}");
        }
        let err = m.set_trainable("nope", false).unwrap_err().to_string();
        assert!(err.contains("deeptext") || err.contains("known"), "{err}");
    }

    #[test]
    fn empty_model_and_bad_pred_dim_are_errors() {
        assert!(WideDeep::new(&WideDeepConfig::new(), Device::Cpu).is_err());
        let cfg = WideDeepConfig::new().wide(WideConfig::new(3)).pred_dim(0);
        let err = WideDeep::new(&cfg, Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("pred_dim"), "{err}");
        let head_only = WideDeepConfig::new()
            .wide(WideConfig::new(3))
            .head(MlpConfig::default());
        assert!(WideDeep::new(&head_only, Device::Cpu).is_err());
    }
}
