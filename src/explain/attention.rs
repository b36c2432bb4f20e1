//! Global importances that components compute themselves (attention weights, TabNet's feature
//! masks) through [`Component::feature_importance`], exposed as [`GlobalImportance`].
use super::GlobalImportance;
use crate::error::Result;
use crate::macros::{bail, ensure};
use crate::models::{Component, ModelInput, WideDeep};

impl GlobalImportance {
    /// The importance deep component `component` of `model` reports over the rows of `input`
    /// (attention weights or feature masks, see [`Component::feature_importance`]), named by
    /// its [`Component::feature_names`]. Errors when it reports none: use
    /// [`super::Explanation::global_importance`] (mean |SHAP|) for any model.
    ///
    /// # Shapes
    /// - `input`: `[n, ...]` per input, as the model takes it
    pub fn from_component(
        model: &WideDeep,
        component: usize,
        input: &ModelInput,
    ) -> Result<GlobalImportance> {
        let Some(comp) = model.components().get(component) else {
            bail!(
                config("component"),
                "index {component} out of range: the model has {} deep components",
                model.components().len()
            );
        };
        model.check_input(input)?;
        let input = input.to_device(model.device());
        let Some(importance) = from(comp.as_ref(), component, &input)? else {
            bail!(
                config("component"),
                "deep component {component} reports no feature importance (only attention \
                 models and TabNet do); use Explanation::global_importance"
            );
        };
        Ok(importance)
    }

    /// The importances of every deep component that reports one, in component order.
    ///
    /// # Shapes
    /// - `input`: `[n, ...]` per input, as the model takes it
    pub fn from_model(model: &WideDeep, input: &ModelInput) -> Result<Vec<GlobalImportance>> {
        model.check_input(input)?;
        let input = input.to_device(model.device());
        let mut out = Vec::new();
        for (c, comp) in model.components().iter().enumerate() {
            if let Some(g) = from(comp.as_ref(), c, &input)? {
                out.push(g);
            }
        }
        Ok(out)
    }
}

/// The importance component `comp` (index `c`) reports over `input`, if it reports one.
fn from(comp: &dyn Component, c: usize, input: &ModelInput) -> Result<Option<GlobalImportance>> {
    let Some(imp) = tch::no_grad(|| comp.feature_importance(input)) else {
        return Ok(None);
    };
    let importance = imp?;
    let mut names = comp.feature_names();
    if names.is_empty() {
        names = (0..importance.len())
            .map(|i| format!("deep{c}_{i}"))
            .collect();
    }
    ensure!(
        names.len() == importance.len(),
        config("component"),
        "deep component {c} reports {} importances for {} feature names",
        importance.len(),
        names.len()
    );
    Ok(Some(GlobalImportance {
        source: format!("feature_importance of deep component {c}"),
        feature_names: names,
        importance,
    }))
}
