//! Warm-up / fine-tuning of the components before the joint training (the reference's
//! `finetune=True`): each component in turn is trained together with its prediction layer while
//! every other parameter is frozen; optionally layer by layer with gradual unfreezing (Howard &
//! Ruder, 2018, ULMFiT) or chain-thaw (Felbo et al., 2017, DeepMoji).
//!
//! Built on [`Trainer::fit`]: each phase freezes parameters with `set_requires_grad(false)`,
//! runs a plain `fit` (no validation, metrics or early stopping; the warm-up epochs are not
//! recorded in the history) and restores the flags afterwards.
use crate::error::Result;
use crate::macros::{ensure, setters};
use crate::models::WideDeep;
use crate::training::checks::positive;
use crate::training::init::{component_of, in_component, is_component_key};
use crate::training::{Dataset, Trainer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use tch::Tensor;

/// The layer-wise routine of gradual warm-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Routine {
    /// Gradual unfreezing (ULMFiT): the prediction layer alone, then the top layer added, then
    /// the next lower one, …, until every layer trains; one epoch per phase.
    #[default]
    Howard,
    /// Chain-thaw (DeepMoji): the prediction layer alone, then each layer alone from the
    /// bottom to the top, then every layer together with the prediction layer; one epoch per
    /// phase.
    Felbo,
}

/// Warm-up settings. Components warmed all at once train for `epochs` epochs; components listed
/// in `gradual` follow `routine`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FinetuneConfig {
    /// Epochs per component warmed all at once.
    pub epochs: usize,
    /// Learning rate of every warm-up phase (constant).
    pub lr: f64,
    /// The layer-wise routine of the components in `gradual`.
    pub routine: Routine,
    /// Components warmed layer by layer, each with its layers from the bottom (input side) to
    /// the top, as variable-name prefixes (e.g. `deeptabular.mlp.dense_0`); an empty list takes
    /// the layers from [`component_layers`].
    pub gradual: BTreeMap<String, Vec<String>>,
    /// Components to warm, in order; empty: every component of the model (wide, deeptabular,
    /// `deeptext_<i>`, `deepimage_<i>`).
    pub components: Vec<String>,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            epochs: 5,
            lr: 0.01,
            routine: Routine::Howard,
            gradual: BTreeMap::new(),
            components: Vec::new(),
        }
    }
}

impl FinetuneConfig {
    /// The defaults: 5 epochs per component at learning rate 0.01, every component at once.
    pub fn new() -> Self {
        Self::default()
    }
    setters!(epochs: usize, lr: f64, routine: Routine);
    /// Warms `component` layer by layer; `layers` bottom → top (empty: derived).
    pub fn gradual(mut self, component: &str, layers: &[&str]) -> Self {
        self.gradual.insert(
            component.to_string(),
            layers.iter().map(|s| s.to_string()).collect(),
        );
        self
    }
    /// Warms only these components, in this order.
    pub fn components(mut self, c: &[&str]) -> Self {
        self.components = c.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Checks the values that do not depend on the model.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.epochs != 0, config("finetune.epochs"), "must be ≥ 1");
        ensure!(
            positive(self.lr),
            config("finetune.lr"),
            "must be positive, got {}",
            self.lr
        );
        for c in self.gradual.keys().chain(&self.components) {
            ensure!(
                is_warmable(c),
                config("finetune.components"),
                "`{c}` is not a component (wide, deeptabular, deeptext_<i>, deepimage_<i>)"
            );
        }
        Ok(())
    }

    /// The phases for `model`, in order.
    pub fn plan(&self, model: &WideDeep) -> Result<Vec<Phase>> {
        self.validate()?;
        let present = warmable_components(model);
        let comps: Vec<String> = if self.components.is_empty() {
            present.clone()
        } else {
            self.components.clone()
        };
        let mut phases = Vec::new();
        for c in &comps {
            ensure!(
                present.contains(c),
                config("finetune.components"),
                "the model has no component `{c}`"
            );
            let pred = prediction_layer(model, c);
            // the layers to go through one by one: none for a component warmed all at once
            let layers = match self.gradual.get(c) {
                None => Vec::new(),
                Some(layers) if layers.is_empty() => component_layers(model, c),
                Some(layers) => layers.clone(),
            };
            if layers.is_empty() || pred.is_empty() {
                // all at once (also when there is nothing to go through layer by layer, e.g.
                // the wide part)
                let mut trainable = vec![format!("{c}.")];
                trainable.extend(pred.iter().cloned());
                phases.push(Phase {
                    component: c.clone(),
                    trainable,
                    epochs: self.epochs,
                });
                continue;
            }
            let phase = |trainable: Vec<String>| Phase {
                component: c.clone(),
                trainable,
                epochs: 1,
            };
            phases.push(phase(pred.clone()));
            match self.routine {
                Routine::Howard => {
                    let mut t = pred.clone();
                    for l in layers.iter().rev() {
                        t.push(l.clone());
                        phases.push(phase(t.clone()));
                    }
                }
                Routine::Felbo => {
                    for l in &layers {
                        phases.push(phase(vec![l.clone()]));
                    }
                    let mut t = layers.clone();
                    t.extend(pred.iter().cloned());
                    phases.push(phase(t));
                }
            }
        }
        Ok(phases)
    }
}

/// One warm-up phase: the variables whose names start with one of `trainable` train for
/// `epochs` epochs; every other parameter is frozen.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// The component warmed.
    pub component: String,
    /// Name prefixes of the variables that train.
    pub trainable: Vec<String>,
    /// Epochs of the phase.
    pub epochs: usize,
}

fn is_warmable(c: &str) -> bool {
    is_component_key(c) && !matches!(c, "head" | "other" | "deeptext" | "deepimage")
}

/// The warmable components of `model`: wide, deeptabular, deeptext_<i>, deepimage_<i>.
fn warmable_components(model: &WideDeep) -> Vec<String> {
    let mut cs: Vec<String> = model
        .var_store()
        .variables()
        .keys()
        .map(|n| component_of(n).to_string())
        .filter(|c| is_warmable(c))
        .collect();
    let rank = |c: &str| -> (usize, usize) {
        let idx = |p: &str| c.strip_prefix(p).and_then(|i| i.parse().ok()).unwrap_or(0);
        match c {
            "wide" => (0, 0),
            "deeptabular" => (1, 0),
            _ if c.starts_with("deeptext_") => (2, idx("deeptext_")),
            _ => (3, idx("deepimage_")),
        }
    };
    cs.sort_by_key(|c| rank(c));
    cs.dedup();
    cs
}

/// Name prefixes of the layer that turns `component`'s features into the prediction: its
/// projection `proj_<i>` without a head, the head (and fusion) with one; none for the wide part
/// (it is its own prediction layer).
fn prediction_layer(model: &WideDeep, component: &str) -> Vec<String> {
    if component == "wide" {
        return Vec::new();
    }
    let names: Vec<String> = model.var_store().variables().into_keys().collect();
    let deep: Vec<String> = warmable_components(model)
        .into_iter()
        .filter(|c| c != "wide")
        .collect();
    let i = deep.iter().position(|c| c == component).unwrap_or(0);
    let proj = format!("proj_{i}.");
    if names.iter().any(|n| n.starts_with(&proj)) {
        vec![proj]
    } else {
        ["head.", "head_out.", "fusion."]
            .iter()
            .filter(|p| names.iter().any(|n| n.starts_with(*p)))
            .map(|p| p.to_string())
            .collect()
    }
}

/// The layers of `component` from the bottom (input side) to the top, as variable-name prefixes
/// ending in `.`: the trainable variables in creation order, grouped by the path up to the
/// first indexed segment after the component (`mlp.dense_0`, `encoder.layer.2`, …) or else by
/// the first segment (`embed`, which holds every column's embedding table).
pub fn component_layers(model: &WideDeep, component: &str) -> Vec<String> {
    let by_ptr: HashMap<usize, String> = model
        .var_store()
        .variables()
        .into_iter()
        .map(|(n, t)| (t.data_ptr() as usize, n))
        .collect();
    let mut layers: Vec<String> = Vec::new();
    for v in model.var_store().trainable_variables() {
        let Some(name) = by_ptr.get(&(v.data_ptr() as usize)) else {
            continue;
        };
        if !in_component(name, component) {
            continue;
        }
        let segs: Vec<&str> = name.split('.').collect();
        if segs.len() < 3 {
            continue; // a variable directly under the component: no layer structure
        }
        let inner = &segs[1..segs.len() - 1];
        // embeddings (one table per column: `embed.emb_3`) are one layer
        let upto = if inner[0].starts_with("emb") {
            1
        } else {
            inner
                .iter()
                .position(|s| s.ends_with(|c: char| c.is_ascii_digit()))
                .map_or(1, |i| i + 1)
        };
        let key = format!("{}.{}.", segs[0], inner[..upto].join("."));
        if !layers.contains(&key) {
            layers.push(key);
        }
    }
    layers
}

impl Trainer {
    /// Runs the warm-up phases of `ft` on the training rows of the coming `fit`.
    pub(crate) fn warm_up(
        &mut self,
        ft: &FinetuneConfig,
        train: &Dataset,
        val: Option<&Dataset>,
    ) -> Result<()> {
        let outer = self.config().clone();
        let phases = ft.plan(self.model())?;
        // the rows the coming fit trains on: the same split it will draw
        let split;
        let train = match (val, outer.val_split) {
            (None, Some(f)) => {
                let mut rng = ChaCha8Rng::seed_from_u64(outer.seed);
                split = train.split(f, outer.objective.is_classification(), &mut rng)?;
                &split.0
            }
            _ => train,
        };
        let mut phase_cfg = outer.clone();
        phase_cfg.lr = ft.lr;
        phase_cfg.component_lr.clear();
        phase_cfg.val_split = None;
        phase_cfg.metrics.clear();
        phase_cfg.early_stopping = None;
        phase_cfg.extras.finetune = None;
        phase_cfg.extras.initializers.clear();
        let history = self.history().clone();
        let vars = self.model().var_store().variables();
        let original: Vec<(String, Tensor, bool)> = vars
            .into_iter()
            .map(|(n, t)| {
                let rg = t.requires_grad();
                (n, t, rg)
            })
            .collect();
        let mut result = Ok(());
        for (k, phase) in phases.iter().enumerate() {
            if outer.verbose > 0 {
                eprintln!(
                    "warm-up {}/{}: {} ({})",
                    k + 1,
                    phases.len(),
                    phase.component,
                    phase.trainable.join(", ")
                );
            }
            for (name, t, rg) in &original {
                if *rg {
                    let on = phase.trainable.iter().any(|p| name.starts_with(p.as_str()));
                    let _ = t.shallow_clone().set_requires_grad(on);
                }
            }
            let mut cfg = phase_cfg.clone();
            cfg.epochs = phase.epochs;
            self.config = cfg;
            // each phase starts a fresh optimizer, as a new set of trainable layers does
            self.reset_optimization();
            result = self.fit(train, None).map(|_| ());
            if result.is_err() {
                break;
            }
        }
        for (_, t, rg) in &original {
            let _ = t.shallow_clone().set_requires_grad(*rg);
        }
        self.config = outer;
        self.set_history(history);
        // the joint training starts with fresh optimizers and the seed's shuffling sequence
        self.reset_optimization();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{MlpConfig, TabMlpConfig, WideConfig, WideDeepConfig};
    use widedeep_preprocessing::{CatColumnMeta, TabMeta};

    pub(crate) fn tab() -> TabMlpConfig {
        TabMlpConfig::from_meta(&TabMeta {
            cat: vec![CatColumnMeta {
                name: "a".into(),
                cardinality: 5,
                embed_dim: 3,
            }],
            cont: vec!["x".into()],
        })
        .mlp(MlpConfig::default().hidden_dims([8, 4]).dropout(0.0))
    }

    #[test]
    fn routine_orders() {
        let cfg = WideDeepConfig::new()
            .wide(WideConfig::new(6))
            .deeptabular(tab());
        let m = WideDeep::new(&cfg, tch::Device::Cpu).unwrap();
        let layers = component_layers(&m, "deeptabular");
        assert_eq!(
            layers,
            [
                "deeptabular.embed.",
                "deeptabular.mlp.dense_0.",
                "deeptabular.mlp.dense_1."
            ]
        );
        let ft = FinetuneConfig::new().gradual("deeptabular", &[]);
        let phases = ft.plan(&m).unwrap();
        let t: Vec<Vec<String>> = phases.iter().map(|p| p.trainable.clone()).collect();
        let n = layers.len();
        // wide all at once, then prediction layer, then top-down unfreezing
        assert_eq!(phases[0].component, "wide");
        assert_eq!(phases[0].epochs, 5);
        assert_eq!(t[1], vec!["proj_0.".to_string()]);
        for k in 1..=n {
            let mut expect = vec!["proj_0.".to_string()];
            expect.extend(layers.iter().rev().take(k).cloned());
            assert_eq!(t[1 + k], expect);
        }
        assert_eq!(phases.len(), 1 + 1 + n);
        let phases = ft.routine(Routine::Felbo).plan(&m).unwrap();
        let t: Vec<Vec<String>> = phases.iter().map(|p| p.trainable.clone()).collect();
        assert_eq!(t[1], vec!["proj_0.".to_string()]);
        for (k, l) in layers.iter().enumerate() {
            assert_eq!(t[2 + k], vec![l.clone()], "bottom to top, one at a time");
        }
        let mut all = layers.clone();
        all.push("proj_0.".into());
        assert_eq!(t[2 + n], all);
        assert_eq!(phases.len(), 1 + 1 + n + 1);
        assert!(FinetuneConfig::new()
            .components(&["deeptext_0"])
            .plan(&m)
            .is_err());
    }
}
