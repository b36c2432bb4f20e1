//! Deep models over image columns: ResNet-18/34/50 (tch's vision models) and MobileNetV2
//! backbones that load torchvision `state_dict` weights from `.safetensors`, and a small CNN for
//! small images such as 28 × 28 digits.
//!
//! Every image model reads one `[batch, 3, H, W]` tensor, `input.image[i]` (`i` = the
//! config's `image_index`), and returns `[batch, output_dim()]` features (global average
//! pooled backbone features, or the optional MLP head's last width). A `u8` tensor (the
//! `ImagePreprocessor`'s output, `0..=255`) is normalised per batch on the model's device,
//! `(x / 255 − mean) / std` with the [`ImageInput`]'s statistics; an `f32` tensor is taken as
//! already normalised.
mod mobilenet;
#[cfg(test)]
mod tests;

use crate::error::{Result, WideDeepError};
use crate::macros::{bail, ensure, setters};
use crate::models::checks::check_dropout;
use crate::models::dropout::DropoutExt;
use crate::models::mlp::{apply_head, build_head, validate_head};
use crate::models::{Component, ComponentConfig, Mlp, MlpConfig, ModelInput};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::nn::ModuleT;
use tch::{nn, Device, Kind, Tensor};

/// Which image input a model reads, and how its `u8` pixels are normalised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageInput {
    /// Index into `ModelInput::image`.
    pub image_index: usize,
    /// Column name (for attributions).
    pub name: String,
    /// Per-channel (RGB) mean on the `[0, 1]` scale (default ImageNet's); `u8` inputs become
    /// `(x / 255 − mean) / std`.
    #[serde(default = "imagenet_mean")]
    pub mean: [f32; 3],
    /// Per-channel (RGB) standard deviation on the `[0, 1]` scale (default ImageNet's).
    #[serde(default = "imagenet_std")]
    pub std: [f32; 3],
}

fn imagenet_mean() -> [f32; 3] {
    widedeep_preprocessing::image::IMAGENET_MEAN
}

fn imagenet_std() -> [f32; 3] {
    widedeep_preprocessing::image::IMAGENET_STD
}

impl Default for ImageInput {
    fn default() -> Self {
        Self {
            image_index: 0,
            name: "image".into(),
            mean: imagenet_mean(),
            std: imagenet_std(),
        }
    }
}

impl ImageInput {
    /// Input `image_index` named `name`, normalised with the ImageNet statistics.
    pub fn new(image_index: usize, name: &str) -> Self {
        Self {
            image_index,
            name: name.to_owned(),
            ..Default::default()
        }
    }

    /// Input `image_index` with the column name and the normalisation statistics of a fitted
    /// `ImagePreprocessor` (`Preprocessors::image_meta(i)`).
    pub fn from_meta(meta: &widedeep_preprocessing::ImageMeta, image_index: usize) -> Self {
        Self {
            image_index,
            name: meta.name.clone(),
            mean: meta.mean,
            std: meta.std,
        }
    }

    /// Sets the normalisation statistics of `u8` inputs.
    pub fn stats(mut self, mean: [f32; 3], std: [f32; 3]) -> Self {
        self.mean = mean;
        self.std = std;
        self
    }

    /// Checks the statistics (finite means, positive finite standard deviations); the error
    /// names `{field}.input.std`.
    fn validate(&self, field: &str) -> Result<()> {
        ensure!(
            self.std.iter().all(|s| *s > 0.0 && s.is_finite())
                && self.mean.iter().all(|m| m.is_finite()),
            config(format!("{field}.input.std")),
            "needs finite means and positive standard deviations, got {:?} / {:?}",
            self.mean,
            self.std
        );
        Ok(())
    }

    /// The model's input: `input.image[image_index]`, normalised per channel when it is `u8`,
    /// as is when it is `f32`.
    ///
    /// # Shapes
    /// - `input.image[image_index]`: `[batch, 3, H, W]` u8 or f32
    /// - returns `[batch, 3, H, W]` f32
    pub fn prepare(&self, input: &ModelInput) -> Tensor {
        let x = &input.image[self.image_index];
        if x.kind() != Kind::Uint8 {
            return x.shallow_clone();
        }
        // (x / 255 − mean) / std = x · scale + shift
        let scale: Vec<f32> = self.std.iter().map(|s| 1.0 / (255.0 * s)).collect();
        let shift: Vec<f32> = self
            .mean
            .iter()
            .zip(&self.std)
            .map(|(m, s)| -m / s)
            .collect();
        let dev = x.device();
        let scale = Tensor::from_slice(&scale).to_device(dev).view([1, 3, 1, 1]);
        let shift = Tensor::from_slice(&shift).to_device(dev).view([1, 3, 1, 1]);
        x.to_kind(Kind::Float) * scale + shift
    }

    /// Checks that `input.image[image_index]` exists and is u8 or f32 `[batch, 3, H, W]`.
    fn check(&self, input: &ModelInput) -> Result<()> {
        let name = format!("image[{}] ({})", self.image_index, self.name);
        let Some(t) = input.image.get(self.image_index) else {
            bail!(
                input(name),
                "missing: the input has {} image tensor(s)",
                input.image.len()
            );
        };
        ensure!(
            matches!(t.kind(), Kind::Float | Kind::Uint8) && t.dim() == 4 && t.size()[1] == 3,
            input(name),
            "expected u8 or f32 [batch, 3, H, W], got {:?} {:?}",
            t.kind(),
            t.size()
        );
        Ok(())
    }
}

/// A pretrained backbone architecture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backbone {
    /// ResNet-18 (512 features; the default).
    #[default]
    Resnet18,
    /// ResNet-34 (512 features).
    Resnet34,
    /// ResNet-50 (2048 features).
    Resnet50,
    /// MobileNetV2 (1280 features).
    MobilenetV2,
}

impl Backbone {
    /// Width of the pooled features.
    pub fn output_dim(self) -> i64 {
        match self {
            Backbone::Resnet18 | Backbone::Resnet34 => 512,
            Backbone::Resnet50 => 2048,
            Backbone::MobilenetV2 => 1280,
        }
    }

    /// The blocks that `n_trainable` counts from the end, as variable-name prefixes.
    fn blocks(self) -> Vec<Vec<String>> {
        match self {
            Backbone::MobilenetV2 => (0..19).map(|i| vec![format!("features.{i}.")]).collect(),
            _ => {
                let mut b = vec![vec!["conv1.".to_string(), "bn1.".to_string()]];
                b.extend((1..=4).map(|i| vec![format!("layer{i}.")]));
                b
            }
        }
    }

    /// Builds the feature extractor `[batch, 3, H, W]` → `[batch, output_dim]` under `path`
    /// (torchvision's variable names).
    fn build(self, path: &nn::Path) -> Box<dyn ModuleT + Send> {
        use tch::vision::resnet;
        match self {
            Backbone::Resnet18 => Box::new(resnet::resnet18_no_final_layer(path)),
            Backbone::Resnet34 => Box::new(resnet::resnet34_no_final_layer(path)),
            Backbone::Resnet50 => Box::new(resnet::resnet50_no_final_layer(path)),
            Backbone::MobilenetV2 => Box::new(mobilenet::features(path)),
        }
    }

    /// Names and shapes of the backbone's variables (torchvision names).
    fn variable_shapes(self) -> Vec<(String, Vec<i64>)> {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = tch::no_grad(|| self.build(&vs.root()));
        let mut v: Vec<(String, Vec<i64>)> = vs
            .variables()
            .into_iter()
            .map(|(k, t)| (k, t.size()))
            .collect();
        v.sort();
        v
    }
}

/// Configuration of [`ImageBackbone`]: a ResNet or MobileNetV2 feature extractor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackboneConfig {
    /// Which image input the model reads, and its normalisation.
    pub input: ImageInput,
    /// The architecture.
    pub backbone: Backbone,
    /// torchvision `state_dict` weights (`.safetensors`; `fc.*` / `classifier.*` and
    /// `num_batches_tracked` are ignored). Not serialized: a saved pipeline holds the weights.
    #[serde(skip)]
    pub weights: Option<PathBuf>,
    /// `Some(n)`: only the last `n` blocks train (ResNet: stem, layer1–4; MobileNetV2: the 19
    /// feature blocks); `None`: all train.
    pub n_trainable: Option<usize>,
    /// Optional MLP on the pooled features.
    pub head: Option<MlpConfig>,
}

impl Default for BackboneConfig {
    fn default() -> Self {
        Self {
            input: ImageInput::default(),
            backbone: Backbone::Resnet18,
            weights: None,
            n_trainable: None,
            head: None,
        }
    }
}

impl BackboneConfig {
    /// A `backbone` model for the image input described by `input`, with random weights
    /// (see [`BackboneConfig::weights`]).
    pub fn new(input: ImageInput, backbone: Backbone) -> Self {
        Self {
            input,
            backbone,
            ..Default::default()
        }
    }
    /// Initialises from torchvision weights at `path` (sets `weights`).
    pub fn weights(mut self, path: impl Into<PathBuf>) -> Self {
        self.weights = Some(path.into());
        self
    }
    /// Trains only the last `n` blocks (sets `n_trainable`).
    pub fn n_trainable(mut self, n: usize) -> Self {
        self.n_trainable = Some(n);
        self
    }
    /// Puts an MLP on the pooled features.
    pub fn head(mut self, head: MlpConfig) -> Self {
        self.head = Some(head);
        self
    }
}

impl ComponentConfig for BackboneConfig {
    type Component = ImageBackbone;
    const NAME: &'static str = "backbone";

    /// Checks the input statistics, `n_trainable` (at most the backbone's blocks) and the
    /// head, without reading the weights file.
    fn validate(&self) -> Result<()> {
        self.input.validate(Self::NAME)?;
        if let Some(n) = self.n_trainable {
            let n_blocks = self.backbone.blocks().len();
            ensure!(
                n <= n_blocks,
                config("backbone.n_trainable"),
                "{:?} has {n_blocks} blocks, got {n}",
                self.backbone
            );
        }
        validate_head(&self.head, Self::NAME)
    }

    /// Validates, builds the backbone under `path/backbone`, loads the weights, freezes the
    /// early blocks, and builds the head under `path/head`.
    fn build(&self, path: &nn::Path) -> Result<ImageBackbone> {
        self.validate()?;
        let blocks = self.backbone.blocks();
        let bp = path / "backbone";
        let net = self.backbone.build(&bp);
        if self.weights.is_some() || self.n_trainable.is_some() {
            let names = self.backbone.variable_shapes();
            let var = |name: &str| -> Tensor {
                let mut parts: Vec<&str> = name.split('.').collect();
                let leaf = parts.pop().expect("non-empty name");
                let p = parts.iter().fold(bp.clone(), |p, s| p / *s);
                p.get(leaf).expect("variable built above")
            };
            if let Some(w) = &self.weights {
                load_torchvision(w, &names, &var)?;
            }
            if let Some(n) = self.n_trainable {
                let frozen: Vec<&String> = blocks[..blocks.len() - n].iter().flatten().collect();
                for (name, _) in &names {
                    if frozen.iter().any(|f| name.starts_with(f.as_str())) {
                        let _ = var(name).set_requires_grad(false);
                    }
                }
            }
        }
        let dim = self.backbone.output_dim();
        let head = build_head(&self.head, path, dim, Self::NAME)?;
        Ok(ImageBackbone {
            input: self.input.clone(),
            net,
            dim,
            head,
        })
    }
}

/// Copies torchvision tensors from `path` into the backbone variables `names`.
fn load_torchvision(
    path: &Path,
    names: &[(String, Vec<i64>)],
    var: &dyn Fn(&str) -> Tensor,
) -> Result<()> {
    let bad = |reason: String| {
        WideDeepError::config("backbone.weights", format!("{}: {reason}", path.display()))
    };
    ensure!(
        path.is_file(),
        config("backbone.weights"),
        "{}: file not found",
        path.display()
    );
    let file: HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| bad(e.to_string()))?
        .into_iter()
        .collect();
    tch::no_grad(|| {
        for (name, shape) in names {
            let src = file
                .get(name)
                .ok_or_else(|| bad(format!("no tensor `{name}`")))?;
            ensure!(
                &src.size() == shape,
                config("backbone.weights"),
                "{}: `{name}` has shape {:?}, the model {shape:?}",
                path.display(),
                src.size()
            );
            let v = var(name);
            v.shallow_clone()
                .copy_(&src.to_kind(v.kind()).to_device(v.device()));
        }
        Ok(())
    })
}

/// A pretrained-architecture image model: `image[i]` `[batch, 3, H, W]` →
/// `[batch, output_dim]`.
pub struct ImageBackbone {
    input: ImageInput,
    net: Box<dyn ModuleT + Send>,
    dim: i64,
    head: Option<Mlp>,
}

impl std::fmt::Debug for ImageBackbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageBackbone")
            .field("input", &self.input)
            .field("dim", &self.dim)
            .field("head", &self.head)
            .finish()
    }
}

impl ImageBackbone {
    /// Backbone features, before the head.
    ///
    /// # Shapes
    /// - `x`: `[batch, 3, H, W]` f32, normalised
    /// - returns `[batch, backbone.output_dim()]`
    pub fn features(&self, x: &Tensor, train: bool) -> Tensor {
        self.net.forward_t(x, train)
    }
}

/// The [`Component`] impls of the image models: `input.prepare` (normalised pixels, the
/// attribution point) → `self.features` → the head. Each model has the fields
/// `input: ImageInput`, `dim: i64` (the features' width) and `head: Option<Mlp>`, and a method
/// `features(&self, x: &Tensor, train: bool) -> Tensor`.
macro_rules! image_component {
    ($($model:ty),*) => {$(
        impl Component for $model {
            fn forward_t(&self, input: &ModelInput, train: bool) -> Tensor {
                let f = self.features(&self.input.prepare(input), train);
                apply_head(&self.head, f, train)
            }
            fn output_dim(&self) -> i64 {
                self.head.as_ref().map_or(self.dim, |h| h.output_dim())
            }
            fn check_input(&self, input: &ModelInput) -> Result<()> {
                self.input.check(input)
            }
            fn feature_names(&self) -> Vec<String> {
                vec![self.input.name.clone()]
            }
            fn embed(&self, input: &ModelInput) -> Option<Vec<Tensor>> {
                Some(vec![self.input.prepare(input)])
            }
            fn forward_embedded(&self, parts: &[Tensor], train: bool) -> Option<Tensor> {
                let [x] = parts else { return None };
                let f = self.features(x, train);
                Some(apply_head(&self.head, f, train))
            }
        }
    )*};
}

image_component!(ImageBackbone, SmallCnn);

// ---------------------------------------------------------------------------------------------

/// Configuration of [`SmallCnn`]: per stage a 3 × 3 convolution, batch norm, ReLU and 2 × 2
/// max pooling; then global average pooling. For small images (e.g. 28 × 28 digits).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SmallCnnConfig {
    /// Which image input the model reads, and its normalisation.
    pub input: ImageInput,
    /// Output channels of each stage.
    pub channels: Vec<i64>,
    /// Batch normalisation after each convolution (which then has no bias).
    pub batchnorm: bool,
    /// Dropout on the pooled features.
    pub dropout: f64,
    /// Optional MLP on the pooled features.
    pub head: Option<MlpConfig>,
}

impl Default for SmallCnnConfig {
    fn default() -> Self {
        Self {
            input: ImageInput::default(),
            channels: vec![16, 32, 64],
            batchnorm: true,
            dropout: 0.0,
            head: None,
        }
    }
}

impl SmallCnnConfig {
    /// A model for the image input described by `input`.
    pub fn new(input: ImageInput) -> Self {
        Self {
            input,
            ..Default::default()
        }
    }
    /// Sets `channels`.
    pub fn channels(mut self, c: impl Into<Vec<i64>>) -> Self {
        self.channels = c.into();
        self
    }
    setters!(batchnorm: bool, dropout: f64);
    /// Puts an MLP on the pooled features.
    pub fn head(mut self, head: MlpConfig) -> Self {
        self.head = Some(head);
        self
    }
}

impl ComponentConfig for SmallCnnConfig {
    type Component = SmallCnn;
    const NAME: &'static str = "small_cnn";

    /// Checks the input statistics, the channels (at least one stage, positive widths), the
    /// dropout and the head.
    fn validate(&self) -> Result<()> {
        self.input.validate(Self::NAME)?;
        ensure!(
            !self.channels.is_empty() && self.channels.iter().all(|&c| c > 0),
            config("small_cnn.channels"),
            "needs positive widths, got {:?}",
            self.channels
        );
        check_dropout(self.dropout, "small_cnn.dropout")?;
        validate_head(&self.head, Self::NAME)
    }

    /// Validates, then builds the stages (`stage_{i}`: `conv`, `bn`) and the head (`head`)
    /// under `path`.
    fn build(&self, path: &nn::Path) -> Result<SmallCnn> {
        self.validate()?;
        let mut stages = Vec::new();
        let mut c_in = 3;
        for (i, &c) in self.channels.iter().enumerate() {
            let p = path / format!("stage_{i}");
            let conv = nn::conv2d(
                &p / "conv",
                c_in,
                c,
                3,
                nn::ConvConfig {
                    padding: 1,
                    bias: !self.batchnorm,
                    ..Default::default()
                },
            );
            let bn = self
                .batchnorm
                .then(|| nn::batch_norm2d(&p / "bn", c, Default::default()));
            stages.push((conv, bn));
            c_in = c;
        }
        let head = build_head(&self.head, path, c_in, Self::NAME)?;
        Ok(SmallCnn {
            input: self.input.clone(),
            stages,
            dropout: self.dropout,
            dim: c_in,
            head,
        })
    }
}

/// A small CNN: `image[i]` `[batch, 3, H, W]` → `[batch, channels.last()]` (or the head's
/// last width). Images smaller than `2^stages` pixels are not pooled below 1 × 1.
#[derive(Debug)]
pub struct SmallCnn {
    input: ImageInput,
    stages: Vec<(nn::Conv2D, Option<nn::BatchNorm>)>,
    dropout: f64,
    dim: i64,
    head: Option<Mlp>,
}

impl SmallCnn {
    /// The stages then global average pooling and dropout: `[batch, 3, H, W]` →
    /// `[batch, channels.last()]`.
    fn features(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = x.shallow_clone();
        for (conv, bn) in &self.stages {
            h = h.apply(conv);
            if let Some(bn) = bn {
                h = h.apply_t(bn, train);
            }
            h = h.relu();
            if h.size()[2] >= 2 && h.size()[3] >= 2 {
                h = h.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            }
        }
        h.adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
            .dropout_t(self.dropout, train)
    }
}

// ---------------------------------------------------------------------------------------------

component_enum! {
    /// The serializable choice of image model inside a [`crate::models::WideDeepConfig`].
    pub enum ImageModelConfig {
        /// [`ImageBackbone`] (ResNet, MobileNetV2).
        Backbone(BackboneConfig) = "backbone",
        /// [`SmallCnn`].
        SmallCnn(SmallCnnConfig) = "small_cnn",
    }
}

impl ImageModelConfig {
    /// Which `input.image[i]` the model reads.
    pub fn image_index(&self) -> usize {
        match self {
            ImageModelConfig::Backbone(c) => c.input.image_index,
            ImageModelConfig::SmallCnn(c) => c.input.image_index,
        }
    }
}
