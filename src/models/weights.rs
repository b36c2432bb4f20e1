//! Loading saved weights into a model's variables, strictly (used by saved pipelines and
//! retrieval models).
use std::collections::BTreeMap;
use std::path::Path;
use tch::{nn, Tensor};

/// Copies the tensors of the `.safetensors` file at `path` into the variables of `vs`: every variable
/// must be there with its shape, and nothing else. Errors name the tensor (and both shapes).
pub(crate) fn load_var_store(vs: &nn::VarStore, path: &Path) -> std::result::Result<(), String> {
    let saved = Tensor::read_safetensors(path)
        .map_err(|e| crate::error::short_torch_message(&e.to_string()))?;
    let mut saved: BTreeMap<String, Tensor> = saved.into_iter().collect();
    let vars = vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in &names {
        let Some(t) = saved.get(name.as_str()) else {
            return Err(format!("tensor `{name}` of the model is missing"));
        };
        let (want, got) = (vars[name.as_str()].size(), t.size());
        if want != got {
            return Err(format!(
                "tensor `{name}` has shape {got:?}, the model expects {want:?}"
            ));
        }
    }
    if let Some(extra) = saved.keys().find(|k| !vars.contains_key(k.as_str())) {
        return Err(format!("tensor `{extra}` is not part of the model"));
    }
    tch::no_grad(|| {
        for name in names {
            let t = saved.remove(name.as_str()).expect("checked above");
            vars[name.as_str()]
                .shallow_clone()
                .f_copy_(&t)
                .map_err(|e| {
                    format!(
                        "tensor `{name}`: {}",
                        crate::error::short_torch_message(&e.to_string())
                    )
                })?;
        }
        Ok(())
    })
}
