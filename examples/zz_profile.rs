use std::time::Instant;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};
use widedeep::models::{Component, ModelInput, TabTransformerConfig, MlpConfig};
use widedeep::preprocessing::{CatColumnMeta, TabMeta};

fn run(label: &str, cfg: TabTransformerConfig, meta: &TabMeta) {
    let _ = meta;
    let vs = nn::VarStore::new(Device::Cpu);
    let m = cfg.build(&vs.root()).unwrap();
    let head = nn::linear(vs.root() / "head", m.output_dim(), 1, Default::default());
    let mut opt = nn::Adam::default().build(&vs, 1e-3).unwrap();
    let b = 256;
    let x = ModelInput {
        cat: Some(Tensor::randint(19, [b, 10], (Kind::Int64, Device::Cpu)) + 1),
        cont: Some(Tensor::randn([b, 3], (Kind::Float, Device::Cpu))),
        ..Default::default()
    };
    let y = Tensor::rand([b, 1], (Kind::Float, Device::Cpu)).round();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t0 = Instant::now();
        for _ in 0..10 {
            let out = m.forward_t(&x, true).apply(&head);
            let loss = out.binary_cross_entropy_with_logits::<Tensor>(&y, None, None, tch::Reduction::Mean);
            opt.backward_step(&loss);
        }
        best = best.min(t0.elapsed().as_secs_f64() / 10.0);
    }
    println!("{label}: {:.1} ms/iter", best * 1e3);
}

fn main() {
    tch::set_num_threads(1);
    let meta = TabMeta {
        cat: (0..10).map(|i| CatColumnMeta { name: format!("c{i}"), cardinality: 20, embed_dim: 4 }).collect(),
        cont: vec!["x".into(), "y".into(), "z".into()],
    };
    let base = TabTransformerConfig::from_meta(&meta).mlp(MlpConfig::default().hidden_dims([64, 32]));
    for _ in 0..2 {
        run("base", base.clone(), &meta);
        run("no dropout", base.clone().attn_dropout(0.0).ff_dropout(0.0), &meta);
        run("relu", base.clone().transformer_activation(widedeep::models::TransformerActivation::Relu), &meta);
        run("1 block", base.clone().n_blocks(1), &meta);
        run("heads 1", base.clone().n_heads(1), &meta);
    }
}
