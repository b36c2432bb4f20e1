//! Weight initializers per model component (the reference's `initializers` dict), applied once
//! before the first training epoch.
use crate::error::{Result, WideDeepError};
use crate::macros::{bail, ensure, setters};
use crate::models::WideDeep;
use crate::training::checks::{non_negative, positive};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::Tensor;

/// Fan used by the Kaiming initializers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FanMode {
    /// The number of inputs (keeps the variance of the forward pass).
    #[default]
    FanIn,
    /// The number of outputs (keeps the variance of the backward pass).
    FanOut,
}

/// Non-linearity the Kaiming gain is computed for (`torch.nn.init.calculate_gain`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Nonlinearity {
    /// No activation (gain 1).
    Linear,
    /// ReLU (gain √2).
    #[default]
    Relu,
    /// Leaky ReLU with this negative slope.
    LeakyRelu(f64),
    /// tanh (gain 5/3).
    Tanh,
    /// Sigmoid (gain 1).
    Sigmoid,
    /// SELU (gain 3/4).
    Selu,
}

impl Nonlinearity {
    /// The recommended gain.
    pub fn gain(self) -> f64 {
        match self {
            Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
            Nonlinearity::Relu => 2f64.sqrt(),
            Nonlinearity::LeakyRelu(a) => (2.0 / (1.0 + a * a)).sqrt(),
            Nonlinearity::Tanh => 5.0 / 3.0,
            Nonlinearity::Selu => 0.75,
        }
    }
}

/// An initialization scheme (`torch.nn.init`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Initializer {
    /// `N(mean, std)`.
    Normal {
        /// The mean.
        mean: f64,
        /// The standard deviation (≥ 0).
        std: f64,
    },
    /// `U(low, high)`.
    Uniform {
        /// The lower bound.
        low: f64,
        /// The upper bound (≥ `low`).
        high: f64,
    },
    /// Every element `value`.
    Constant {
        /// The value.
        value: f64,
    },
    /// `N(0, gain·√(2 / (fan_in + fan_out)))`.
    XavierNormal {
        /// The scaling factor (see [`Nonlinearity::gain`]).
        gain: f64,
    },
    /// `U(±gain·√(6 / (fan_in + fan_out)))`.
    XavierUniform {
        /// The scaling factor (see [`Nonlinearity::gain`]).
        gain: f64,
    },
    /// `N(0, gain / √fan)`.
    KaimingNormal {
        /// Which fan divides.
        mode: FanMode,
        /// The non-linearity whose gain is used.
        nonlinearity: Nonlinearity,
    },
    /// `U(±gain·√(3 / fan))`.
    KaimingUniform {
        /// Which fan divides.
        mode: FanMode,
        /// The non-linearity whose gain is used.
        nonlinearity: Nonlinearity,
    },
    /// A (semi-)orthogonal matrix times `gain` (the weight flattened to `[rows, rest]`).
    Orthogonal {
        /// The scaling factor.
        gain: f64,
    },
}

impl Initializer {
    /// Whether the scheme needs fans (so it only applies to weights of ≥ 2 dimensions).
    fn fan_based(&self) -> bool {
        !matches!(
            self,
            Initializer::Normal { .. } | Initializer::Uniform { .. } | Initializer::Constant { .. }
        )
    }

    /// Checks the parameters; the error names `{field}.<parameter>`.
    fn validate(&self, field: &str) -> Result<()> {
        let bad = match *self {
            Initializer::Normal { mean, .. } if !mean.is_finite() => Some("mean"),
            Initializer::Normal { std, .. } => (!non_negative(std)).then_some("std"),
            Initializer::Uniform { low, high } => {
                (!(low.is_finite() && high.is_finite() && low <= high)).then_some("high")
            }
            Initializer::Constant { value } => (!value.is_finite()).then_some("value"),
            Initializer::XavierNormal { gain }
            | Initializer::XavierUniform { gain }
            | Initializer::Orthogonal { gain } => (!positive(gain)).then_some("gain"),
            Initializer::KaimingNormal { nonlinearity, .. }
            | Initializer::KaimingUniform { nonlinearity, .. } => {
                matches!(nonlinearity, Nonlinearity::LeakyRelu(a) if !a.is_finite())
                    .then_some("nonlinearity")
            }
        };
        if let Some(what) = bad {
            bail!(config(format!("{field}.{what}")), "invalid value");
        }
        Ok(())
    }

    /// Fills `w` in place (under `no_grad`) with draws from the global libtorch generator.
    fn fill(&self, w: &Tensor) -> Result<()> {
        let mut w = w.shallow_clone();
        let size = w.size();
        let fans = || -> (f64, f64) {
            let receptive: i64 = size[2..].iter().product();
            ((size[1] * receptive) as f64, (size[0] * receptive) as f64)
        };
        tch::no_grad(|| -> Result<()> {
            match *self {
                Initializer::Normal { mean, std } => {
                    let _ = w.f_normal_(mean, std)?;
                }
                Initializer::Uniform { low, high } => {
                    let _ = w.f_uniform_(low, high)?;
                }
                Initializer::Constant { value } => {
                    let _ = w.f_fill_(value)?;
                }
                Initializer::XavierNormal { gain } => {
                    let (i, o) = fans();
                    let _ = w.f_normal_(0.0, gain * (2.0 / (i + o)).sqrt())?;
                }
                Initializer::XavierUniform { gain } => {
                    let (i, o) = fans();
                    let b = gain * (6.0 / (i + o)).sqrt();
                    let _ = w.f_uniform_(-b, b)?;
                }
                Initializer::KaimingNormal { mode, nonlinearity }
                | Initializer::KaimingUniform { mode, nonlinearity } => {
                    let (i, o) = fans();
                    let fan = if mode == FanMode::FanIn { i } else { o };
                    let std = nonlinearity.gain() / fan.sqrt();
                    if matches!(self, Initializer::KaimingNormal { .. }) {
                        let _ = w.f_normal_(0.0, std)?;
                    } else {
                        let b = 3f64.sqrt() * std;
                        let _ = w.f_uniform_(-b, b)?;
                    }
                }
                Initializer::Orthogonal { gain } => {
                    let s = size.clone();
                    let rows = s[0];
                    let cols = w.numel() as i64 / rows;
                    let mut a = Tensor::f_randn([rows, cols], (tch::Kind::Float, w.device()))?;
                    if rows < cols {
                        a = a.f_t_()?;
                    }
                    let (mut q, r) = Tensor::f_linalg_qr(&a, "reduced")?;
                    q = q.f_mul(&r.f_diagonal(0, 0, 1)?.f_sign()?)?;
                    if rows < cols {
                        q = q.f_t_()?;
                    }
                    let q = (q * gain).f_to_kind(w.kind())?.f_reshape(s.as_slice())?;
                    w.f_copy_(&q)?;
                }
            }
            Ok(())
        })
    }
}

/// An [`Initializer`] for the parameters of one component, optionally restricted to names that
/// match `pattern` (a regular expression searched in the full variable name, e.g.
/// `deeptabular.mlp.dense_0.linear.weight`) and do not match any of `exclude`.
///
/// As in the reference, biases (names ending in `bias`) are left alone by the distribution
/// initializers unless `bias` is set, and set to 0 by the fan-based ones (Xavier, Kaiming,
/// orthogonal), which skip 1-dimensional parameters (e.g. batch-norm weights).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InitSpec {
    /// The scheme.
    pub init: Initializer,
    /// Only variables whose names match this regular expression (`None`: all of the
    /// component's).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Not the variables whose names match one of these regular expressions.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Also draw the biases from `init` (Normal, Uniform, Constant only).
    #[serde(default)]
    pub bias: bool,
}

impl From<Initializer> for InitSpec {
    fn from(init: Initializer) -> Self {
        Self {
            init,
            pattern: None,
            exclude: Vec::new(),
            bias: false,
        }
    }
}

impl InitSpec {
    /// `init` for every variable of the component.
    pub fn new(init: Initializer) -> Self {
        init.into()
    }
    /// Restricts the spec to the variables whose names match `regex`.
    pub fn pattern(mut self, regex: &str) -> Self {
        self.pattern = Some(regex.to_string());
        self
    }
    /// Leaves out the variables whose names match `regex` (in addition to earlier ones).
    pub fn exclude(mut self, regex: &str) -> Self {
        self.exclude.push(regex.to_string());
        self
    }
    setters!(bias: bool);

    /// Checks the scheme and the regular expressions; `field` names the entry in errors.
    pub fn validate(&self, field: &str) -> Result<()> {
        self.init.validate(field)?;
        self.regexes(field).map(|_| ())
    }

    fn regexes(&self, field: &str) -> Result<(Option<Regex>, Vec<Regex>)> {
        let re = |s: &str, f: String| {
            Regex::new(s).map_err(|e| WideDeepError::config(f, format!("bad regex: {e}")))
        };
        let pattern = self
            .pattern
            .as_deref()
            .map(|p| re(p, format!("{field}.pattern")))
            .transpose()?;
        let exclude = self
            .exclude
            .iter()
            .map(|p| re(p, format!("{field}.exclude")))
            .collect::<Result<Vec<_>>>()?;
        Ok((pattern, exclude))
    }
}

/// Whether `key` names a component: `wide`, `deeptabular`, `deeptext` (every text model),
/// `deeptext_<i>`, `deepimage`, `deepimage_<i>`, `head` (the projections, the head and the
/// fusion) or `other` (custom components).
pub(crate) fn is_component_key(key: &str) -> bool {
    let indexed = |p: &str| {
        key.strip_prefix(p)
            .is_some_and(|i| i.parse::<usize>().is_ok())
    };
    matches!(
        key,
        "wide" | "deeptabular" | "deeptext" | "deepimage" | "head" | "other"
    ) || indexed("deeptext_")
        || indexed("deepimage_")
}

/// The component a variable belongs to, from the first segment of its name.
pub(crate) fn component_of(name: &str) -> &str {
    let first = name.split('.').next().unwrap_or("");
    match first {
        "wide" | "deeptabular" => first,
        f if f.starts_with("deeptext_") || f.starts_with("deepimage_") => first,
        "head" | "head_out" | "fusion" => "head",
        f if f.starts_with("proj_") => "head",
        _ => "other",
    }
}

/// Whether the variable `name` belongs to the component `key` (see [`is_component_key`]).
pub(crate) fn in_component(name: &str, key: &str) -> bool {
    let c = component_of(name);
    c == key
        || (key == "deeptext" && c.starts_with("deeptext_"))
        || (key == "deepimage" && c.starts_with("deepimage_"))
}

/// Applies `specs` (component key → initializer) to `model`'s trainable variables with the
/// global libtorch generator seeded by `seed` (the caller holds no RNG lock; this takes it).
/// Returns the names of the variables that were (re)initialised, sorted.
pub fn apply_initializers(
    model: &WideDeep,
    specs: &BTreeMap<String, InitSpec>,
    seed: u64,
) -> Result<Vec<String>> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let vars = model.var_store().variables();
    let trainable: Vec<Tensor> = model.var_store().trainable_variables();
    let is_trainable = |t: &Tensor| trainable.iter().any(|v| v.data_ptr() == t.data_ptr());
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort(); // a fixed order of draws
    let _rng = crate::torch_rng_lock();
    tch::manual_seed(seed as i64);
    let mut done = Vec::new();
    for (key, spec) in specs {
        let field = format!("initializers.{key}");
        ensure!(
            is_component_key(key),
            config(field),
            "not a model component"
        );
        let (pattern, exclude) = spec.regexes(&field)?;
        let mut matched = false;
        for name in &names {
            if !in_component(name, key) {
                continue;
            }
            matched = true;
            let t = &vars[*name];
            if !is_trainable(t)
                || !pattern.as_ref().is_none_or(|p| p.is_match(name))
                || exclude.iter().any(|e| e.is_match(name))
            {
                continue;
            }
            let is_bias = name.ends_with("bias");
            if spec.init.fan_based() {
                if is_bias {
                    tch::no_grad(|| t.shallow_clone().f_zero_().map(|_| ()))?;
                } else if t.dim() >= 2 {
                    spec.init.fill(t)?;
                } else {
                    continue;
                }
            } else if is_bias && !spec.bias {
                continue;
            } else {
                spec.init.fill(t)?;
            }
            done.push(name.to_string());
        }
        ensure!(matched, config(field), "the model has no such component");
    }
    done.sort();
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{MlpConfig, TabMlpConfig, WideConfig, WideDeepConfig};
    use tch::{Device, Kind};
    use widedeep_preprocessing::{CatColumnMeta, TabMeta};

    fn model() -> WideDeep {
        let tab = TabMlpConfig::from_meta(&TabMeta {
            cat: vec![CatColumnMeta {
                name: "a".into(),
                cardinality: 5,
                embed_dim: 4,
            }],
            cont: vec!["x".into()],
        })
        .mlp(MlpConfig::default().hidden_dims([64, 32]));
        let cfg = WideDeepConfig::new()
            .wide(WideConfig::new(10))
            .deeptabular(tab);
        WideDeep::new(&cfg, Device::Cpu).unwrap()
    }

    fn snapshot(m: &WideDeep) -> BTreeMap<String, Tensor> {
        m.var_store()
            .variables()
            .into_iter()
            .map(|(k, v)| (k, v.detach().copy()))
            .collect()
    }

    #[test]
    fn only_the_targeted_component_changes_and_values_follow_the_scheme() {
        let m = model();
        let before = snapshot(&m);
        let specs = BTreeMap::from([
            (
                "deeptabular".to_string(),
                InitSpec::new(Initializer::XavierUniform { gain: 1.0 }).pattern(r"mlp\."),
            ),
            (
                "wide".to_string(),
                InitSpec::new(Initializer::Constant { value: 0.25 }),
            ),
        ]);
        let changed = apply_initializers(&m, &specs, 3).unwrap();
        assert!(!changed.is_empty());
        let after = snapshot(&m);
        for (name, b) in &before {
            let a = &after[name];
            let same = a.equal(b);
            if name.starts_with("deeptabular.mlp.") {
                assert!(!same, "{name} should be re-initialised");
            } else if name.starts_with("wide.") && !name.ends_with("bias") {
                assert!(!same, "{name}");
            } else {
                assert!(same, "{name} must not change");
            }
        }
        // constant: exact
        let w = after
            .iter()
            .find(|(k, _)| k.starts_with("wide.") && !k.ends_with("bias"))
            .unwrap()
            .1;
        assert_eq!(w.min().double_value(&[]), 0.25);
        assert_eq!(w.max().double_value(&[]), 0.25);
        // xavier uniform: within the bound, and filling most of it
        let w = &after["deeptabular.mlp.dense_1.linear.weight"]; // [32, 64]
        let bound = (6.0f64 / (64.0 + 32.0)).sqrt();
        let max = w.abs().max().double_value(&[]);
        assert!(max <= bound + 1e-6 && max > 0.9 * bound, "{max} vs {bound}");
        // uniform variance bound²/3
        let var = w.to_kind(Kind::Double).var(true).double_value(&[]);
        assert!((var / (bound * bound / 3.0) - 1.0).abs() < 0.15, "{var}");
        // biases zeroed by the fan-based scheme
        assert_eq!(
            after["deeptabular.mlp.dense_1.linear.bias"]
                .abs()
                .max()
                .double_value(&[]),
            0.0
        );
    }

    #[test]
    fn normal_kaiming_orthogonal_and_seeding() {
        let m = model();
        let key = "deeptabular.mlp.dense_0.linear.weight"; // [64, in]
        let run = |init: Initializer, seed| {
            let specs = BTreeMap::from([(
                "deeptabular".to_string(),
                InitSpec::new(init).exclude("embed"),
            )]);
            apply_initializers(&m, &specs, seed).unwrap();
            m.var_store().variables()[key].detach().copy()
        };
        let a = run(
            Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            },
            5,
        );
        let std = a.to_kind(Kind::Double).std(true).double_value(&[]);
        assert!((std / 0.02 - 1.0).abs() < 0.15, "{std}");
        assert!(
            run(
                Initializer::Normal {
                    mean: 0.0,
                    std: 0.02
                },
                5
            )
            .equal(&a),
            "seeded"
        );
        let k = run(
            Initializer::KaimingNormal {
                mode: FanMode::FanIn,
                nonlinearity: Nonlinearity::Relu,
            },
            1,
        );
        let fan_in = k.size()[1] as f64;
        let std = k.to_kind(Kind::Double).std(true).double_value(&[]);
        assert!((std / (2.0 / fan_in).sqrt() - 1.0).abs() < 0.2, "{std}");
        let q = run(Initializer::Orthogonal { gain: 1.0 }, 1); // [64, in] with in < 64
        let qtq = q.tr().matmul(&q);
        let eye = Tensor::eye(q.size()[1], (Kind::Float, Device::Cpu));
        assert!((qtq - eye).abs().max().double_value(&[]) < 1e-4);
    }

    #[test]
    fn bad_keys_and_values_name_the_field() {
        let m = model();
        let err = |k: &str, s: InitSpec| {
            apply_initializers(&m, &BTreeMap::from([(k.to_string(), s)]), 1)
                .unwrap_err()
                .to_string()
        };
        let c = InitSpec::new(Initializer::Constant { value: 1.0 });
        assert!(err("deeptext", c.clone()).contains("initializers.deeptext"));
        assert!(err("tabular", c.clone()).contains("initializers.tabular"));
        assert!(err("wide", c.pattern("(")).contains("initializers.wide.pattern"));
        let e = InitSpec::new(Initializer::Normal {
            mean: 0.0,
            std: -1.0,
        })
        .validate("initializers.wide")
        .unwrap_err()
        .to_string();
        assert!(e.contains("initializers.wide.std"), "{e}");
    }
}
