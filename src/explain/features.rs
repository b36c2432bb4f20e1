//! What is reported: the model's input columns ([`InputNames`], [`Slot`], [`Layout`]) and the
//! features they form (merged by name, grouped, plus the names the deep components report).
use super::{gradients, Explainer};
use crate::error::Result;
use crate::macros::ensure;
use crate::models::{ModelInput, WideDeep};
use crate::pipeline::Preprocessors;
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Names of the model's input columns, in [`ModelInput`] order: they become feature names,
/// and inputs sharing a name form one feature.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputNames {
    /// One name per wide column.
    pub wide: Vec<String>,
    /// One name per categorical column.
    pub cat: Vec<String>,
    /// One name per continuous column.
    pub cont: Vec<String>,
    /// One name per text input.
    pub text: Vec<String>,
    /// One name per image input.
    pub image: Vec<String>,
}

impl InputNames {
    /// The names the fitted preprocessors give their output columns: wide (and crossed) column
    /// names, categorical and continuous column names (missing indicators included), the text
    /// and image columns' names.
    pub fn from_preprocessors(prep: &Preprocessors) -> Result<Self> {
        let mut names = InputNames::default();
        if let Some(w) = &prep.wide {
            names.wide = w.feature_names();
        }
        if let Some(t) = &prep.tab {
            let meta = t.meta()?;
            names.cat = meta.cat.into_iter().map(|c| c.name).collect();
            names.cont = meta.cont;
        }
        names.text = prep.text.iter().map(|t| t.column().to_string()).collect();
        names.image = prep.image.iter().map(|t| t.column().to_string()).collect();
        Ok(names)
    }
}

/// One model input column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    /// Wide column j.
    Wide(usize),
    /// Categorical column j.
    Cat(usize),
    /// Continuous column j.
    Cont(usize),
    /// Text input j.
    Text(usize),
    /// Image input j.
    Image(usize),
}

/// A reported feature: a name and the input columns it covers.
#[derive(Clone, Debug)]
pub(crate) struct FeatureSpec {
    /// The reported name.
    pub name: String,
    /// The input columns it covers (none for parts only a deep component names).
    pub slots: Vec<Slot>,
}

/// Column counts of each input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Wide columns.
    pub wide: usize,
    /// Categorical columns.
    pub cat: usize,
    /// Continuous columns.
    pub cont: usize,
    /// Text inputs.
    pub text: usize,
    /// Image inputs.
    pub image: usize,
}

impl Layout {
    /// The layout of `input`.
    pub(super) fn of(input: &ModelInput) -> Layout {
        let width = |t: &Option<Tensor>| t.as_ref().map_or(0, |t| t.size()[1] as usize);
        Layout {
            wide: width(&input.wide),
            cat: width(&input.cat),
            cont: width(&input.cont),
            text: input.text.len(),
            image: input.image.len(),
        }
    }
}

impl Explainer<'_> {
    fn slot_name(&self, slot: Slot) -> &str {
        match slot {
            Slot::Wide(j) => &self.names.wide[j],
            Slot::Cat(j) => &self.names.cat[j],
            Slot::Cont(j) => &self.names.cont[j],
            Slot::Text(j) => &self.names.text[j],
            Slot::Image(j) => &self.names.image[j],
        }
    }

    pub(super) fn slot_label(&self, slot: Slot) -> String {
        let kind = match slot {
            Slot::Wide(_) => "wide",
            Slot::Cat(_) => "cat",
            Slot::Cont(_) => "cont",
            Slot::Text(_) => "text",
            Slot::Image(_) => "image",
        };
        format!("{kind}:{}", self.slot_name(slot))
    }

    /// Maps a raw name through the configured groups.
    pub(crate) fn group_of(&self, name: &str) -> String {
        self.config
            .groups
            .iter()
            .find(|g| g.members.iter().any(|m| m == name))
            .map_or_else(|| name.to_string(), |g| g.name.clone())
    }

    /// Features from the input names (merged by name, grouped), then names only the deep
    /// components report (gradient methods).
    pub(super) fn resolve_features(&self) -> Result<Vec<FeatureSpec>> {
        let l = self.layout;
        let n = &self.names;
        for (field, have, want) in [
            ("wide", n.wide.len(), l.wide),
            ("cat", n.cat.len(), l.cat),
            ("cont", n.cont.len(), l.cont),
            ("text", n.text.len(), l.text),
            ("image", n.image.len(), l.image),
        ] {
            ensure!(
                have == want,
                config(format!("explain.input_names.{field}")),
                "{have} names for {want} input columns"
            );
        }
        let slots = (0..l.cat)
            .map(Slot::Cat)
            .chain((0..l.cont).map(Slot::Cont))
            .chain((0..l.text).map(Slot::Text))
            .chain((0..l.image).map(Slot::Image))
            .chain((0..l.wide).map(Slot::Wide));
        let mut features: Vec<FeatureSpec> = Vec::new();
        for slot in slots {
            let name = self.group_of(self.slot_name(slot));
            match features.iter_mut().find(|f| f.name == name) {
                Some(f) => f.slots.push(slot),
                None => features.push(FeatureSpec {
                    name,
                    slots: vec![slot],
                }),
            }
        }
        if self.config.method.is_gradient() {
            let one = self.background.input().map(|t| t.narrow(0, 0, 1));
            let (_, ranges) = tch::no_grad(|| gradients::embed_all(self, &one))?;
            for (c, (comp, r)) in self.model.components().iter().zip(ranges).enumerate() {
                for name in gradients::part_names(comp.as_ref(), c, r.len()) {
                    let name = self.group_of(&name);
                    if !features.iter().any(|f| f.name == name) {
                        features.push(FeatureSpec {
                            name,
                            slots: Vec::new(),
                        });
                    }
                }
            }
        }
        Ok(features)
    }
}

/// Input names when none are given: the tabular component's column names where it reports
/// them, the part names of text and image components, else `wide_0`, `cat_0`, ...
pub(super) fn default_names(model: &WideDeep, l: Layout, background: &ModelInput) -> InputNames {
    let generic = |prefix: &str, n: usize| (0..n).map(|j| format!("{prefix}_{j}")).collect();
    let mut names = InputNames {
        wide: generic("wide", l.wide),
        cat: generic("cat", l.cat),
        cont: generic("cont", l.cont),
        text: generic("text", l.text),
        image: generic("image", l.image),
    };
    // the tabular component (built first) names its categorical then continuous columns
    let has_tab = model.config().is_some_and(|c| c.deeptabular.is_some());
    if has_tab {
        if let Some(tab) = model.components().first() {
            let tab_names = tab.feature_names();
            // a sequence model (DIN) names its sequence parts first, its columns last
            let n = l.cat + l.cont;
            if tab_names.len() >= n && n > 0 {
                let columns = &tab_names[tab_names.len() - n..];
                names.cat = columns[..l.cat].to_vec();
                names.cont = columns[l.cat..].to_vec();
            }
        }
    }
    // text and image components name their token ([b, L, d]) and pixel ([b, C, H, W]) parts
    let one = background.map(|t| t.narrow(0, 0, 1.min(t.size()[0])));
    let (mut text, mut image) = (Vec::new(), Vec::new());
    for (c, comp) in model.components().iter().enumerate() {
        if let Some(parts) = tch::no_grad(|| comp.embed(&one)) {
            let part_names = gradients::part_names(comp.as_ref(), c, parts.len());
            for (name, part) in part_names.into_iter().zip(&parts) {
                match part.dim() {
                    3 => text.push(name),
                    4 => image.push(name),
                    _ => {}
                }
            }
        }
    }
    if text.len() == l.text {
        names.text = text;
    }
    if image.len() == l.image {
        names.image = image;
    }
    names
}
