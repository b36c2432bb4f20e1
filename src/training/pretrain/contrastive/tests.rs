use super::*;
use crate::models::tabular::testing::{assert_config_error, input, meta};
use crate::models::tabular::{
    AttnEmbedConfig, ContextAttentionMlpConfig, FtTransformerConfig, SaintConfig,
    SelfAttentionMlpConfig, TabFastFormerConfig, TabMlpConfig, TabModelConfig, TabPerceiverConfig,
    TabTransformerConfig,
};
use crate::models::WideDeepConfig;
use crate::training::pretrain::PretrainConfig;
use crate::training::{Dataset, FinetuneConfig, Objective, Trainer, TrainerConfig};
use tch::{Device, Kind, Tensor};

fn ar(n: i64, a: f64, b: f64) -> Tensor {
    Tensor::arange(n, (Kind::Float, Device::Cpu)) * a + b
}

fn close(t: &Tensor, v: f64) {
    let got = t.double_value(&[]);
    assert!((got - v).abs() < 1e-5, "got {got}, expected {v}");
}

// Values: tests/reference/contrastive_denoising_reference.py (pytorch-widedeep 1.7.0).
#[test]
fn info_nce_matches_the_reference() {
    let z = ar(24, 0.37, 0.0).sin().view([3, 2, 4]);
    let z_ = ar(24, 0.21, 0.5).cos().view([3, 2, 4]);
    close(&info_nce_loss(&z, &z_, 0.1), 0.002930589);
    close(&info_nce_loss(&z, &z_, 0.5), 0.216792122);
    let w = ar(20, 0.53, 0.1).sin().view([4, 5]);
    let w_ = ar(20, 0.11, -0.3).cos().view([4, 5]);
    close(&info_nce_loss(&w, &w_, 0.1), 5.054865837);
}

/// (target, prediction) pairs, one per column.
type Pairs = Vec<(Tensor, Tensor)>;

/// The per-column pairs of the reference script.
fn pairs() -> (Pairs, Pairs) {
    let cat = vec![
        (
            Tensor::from_slice(&[0i64, 2, 1, 2]),
            ar(12, 0.29, 0.0).sin().view([4, 3]),
        ),
        (
            Tensor::from_slice(&[1i64, 0, 0, 1]),
            ar(8, 0.47, 0.2).cos().view([4, 2]),
        ),
    ];
    let cont = vec![
        (
            ar(4, 0.5, -1.0).view([4, 1]),
            ar(4, 0.3, 0.1).sin().view([4, 1]),
        ),
        (
            ar(4, -0.25, 0.4).view([4, 1]),
            ar(4, 0.7, 0.0).cos().view([4, 1]),
        ),
    ];
    (cat, cont)
}

#[test]
fn denoising_loss_matches_the_reference() {
    let (cat, cont) = pairs();
    close(&denoising_loss(&cat, &cont, 1.0, 1.0), 2.686167479);
    close(&denoising_loss(&cat, &cont, 0.5, 2.0), 2.605786800);
    close(&denoising_loss(&cat, &[], 1.0, 1.0), 1.844365597);
    close(&denoising_loss(&[], &cont, 1.0, 1.0), 0.841801941);
    let classes = Tensor::from_slice(&[0i64, 2, 1, 2, 4, 3, 3, 4]);
    let logits = ar(40, 0.13, 0.3).sin().view([8, 5]);
    let values = Tensor::cat(&[&cont[0].0, &cont[1].0], 0);
    let preds = Tensor::cat(&[&cont[0].1, &cont[1].1], 0);
    close(
        &denoising_loss(&[(classes, logits)], &[(values, preds)], 1.0, 1.0),
        2.093069553,
    );
    close(&denoising_loss(&[], &[], 1.0, 1.0), 0.0);
}

#[test]
fn both_losses_sum_as_the_reference() {
    let z = ar(24, 0.37, 0.0).sin().view([3, 2, 4]);
    let z_ = ar(24, 0.21, 0.5).cos().view([3, 2, 4]);
    let (cat, cont) = pairs();
    close(
        &(info_nce_loss(&z, &z_, 0.1) + denoising_loss(&cat, &cont, 1.0, 1.0)),
        2.689098120,
    );
}

#[test]
fn cut_mix_swaps_entries_within_columns_and_mix_up_mixes_rows() {
    let _rng = crate::torch_rng_lock();
    tch::manual_seed(3);
    let n = 2000;
    let cat = (Tensor::arange(n, (Kind::Int64, Device::Cpu)) * 3).view([n / 2, 2]);
    let cont = Tensor::randn([n / 2, 3], (Kind::Float, Device::Cpu));
    let (c, f) = cut_mix(Some(&cat), Some(&cont), 0.8);
    let (c, f) = (c.unwrap(), f.unwrap());
    // swapped entries come from the same column of another row
    for j in 0..2 {
        let col: Vec<i64> = Vec::try_from(cat.select(1, j)).unwrap();
        let got: Vec<i64> = Vec::try_from(c.select(1, j)).unwrap();
        assert!(got.iter().all(|v| col.contains(v)));
    }
    let changed = c.ne_tensor(&cat).to_kind(Kind::Float).mean(Kind::Float);
    let changed_f = f.ne_tensor(&cont).to_kind(Kind::Float).mean(Kind::Float);
    for ch in [changed, changed_f] {
        let v = ch.double_value(&[]);
        assert!((v - 0.2).abs() < 0.04, "swapped fraction {v}");
    }
    let (same, _) = cut_mix(Some(&cat), None, 1.0);
    assert!(same.unwrap().equal(&cat));
    // mix_up: (out - λ x) / (1 - λ) is a permutation of the rows
    let x = Tensor::randn([50, 4], (Kind::Float, Device::Cpu));
    let m = mix_up(&x, 0.8);
    let other = (m - &x * 0.8) / 0.2;
    let sort = |t: &Tensor| t.select(1, 0).sort(0, false).0;
    assert!(sort(&other).allclose(&sort(&x), 1e-4, 1e-4, false));
    assert!(mix_up(&x, 1.0).equal(&x));
}

/// Small configurations of every supported model over `meta()`.
fn supported() -> Vec<(TabModelConfig, CdLossType)> {
    let m = meta();
    vec![
        (
            TabTransformerConfig::from_meta(&m)
                .input_dim(8)
                .n_heads(2)
                .n_blocks(1)
                .embed_continuous(true)
                .into(),
            CdLossType::Both,
        ),
        (
            SaintConfig::from_meta(&m)
                .input_dim(8)
                .n_heads(2)
                .n_blocks(1)
                .into(),
            CdLossType::Both,
        ),
        (
            FtTransformerConfig::from_meta(&m)
                .input_dim(8)
                .n_heads(2)
                .n_blocks(2)
                .embed(AttnEmbedConfig::new().with_cls_token(true))
                .into(),
            CdLossType::Both,
        ),
        (
            TabFastFormerConfig::from_meta(&m)
                .input_dim(8)
                .n_heads(2)
                .n_blocks(1)
                .into(),
            CdLossType::Denoising,
        ),
        (
            ContextAttentionMlpConfig::from_meta(&m)
                .input_dim(8)
                .n_blocks(1)
                .into(),
            CdLossType::Contrastive,
        ),
        (
            SelfAttentionMlpConfig::from_meta(&m)
                .input_dim(8)
                .n_heads(2)
                .n_blocks(1)
                .into(),
            CdLossType::Both,
        ),
        (
            TabPerceiverConfig::from_meta(&m)
                .input_dim(8)
                .n_cross_attn_heads(2)
                .n_latents(3)
                .latent_dim(12)
                .n_latent_heads(3)
                .n_latent_blocks(1)
                .n_perceiver_blocks(1)
                .into(),
            CdLossType::Contrastive,
        ),
    ]
}

/// `input(n)` drawn under the generator's lock (draws outside it would change other tests'
/// seeded runs).
fn locked_input(n: i64) -> crate::models::ModelInput {
    let _rng = crate::torch_rng_lock();
    tch::manual_seed(11);
    input(n)
}

fn data(n: i64) -> Dataset {
    Dataset::new(locked_input(n), None).unwrap()
}

/// The loop settings of these tests: silent, batches of 16.
fn quiet() -> PretrainConfig {
    PretrainConfig::new().verbose(0).batch_size(16)
}

/// The route for `tab` with `cfg` and the loop settings `loop_cfg`.
fn trainer(
    cfg: &ContrastiveDenoisingConfig,
    loop_cfg: PretrainConfig,
) -> crate::Result<ContrastiveDenoisingTrainer> {
    ContrastiveDenoisingTrainer::new(ContrastiveDenoising::new(cfg, Device::Cpu)?, loop_cfg)
}

#[test]
fn every_supported_encoder_runs_a_step_and_learns() {
    let d = data(48);
    for (tab, loss) in supported() {
        let name = tab.name();
        let cfg = ContrastiveDenoisingConfig::new(tab).loss_type(loss).seed(2);
        let mut t = trainer(&cfg, quiet().seed(2)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let before: Vec<Tensor> = t.encoder_weights().iter().map(|w| w.1.copy()).collect();
        let h = t.fit(&d, Some(&d)).unwrap();
        let last = h.last().unwrap();
        assert!(last.loss.is_finite(), "{name}");
        assert!(last.val_loss.unwrap().is_finite(), "{name}");
        let moved = t
            .encoder_weights()
            .iter()
            .zip(&before)
            .filter(|(a, b)| !a.1.equal(b))
            .count();
        assert!(moved > 0, "{name}: no encoder weight changed");
    }
}

#[test]
fn projection_heads_and_single_denoising_mlps_train() {
    let d = data(48);
    let tab = supported()[1].0.clone();
    let cfg = ContrastiveDenoisingConfig::new(tab)
        .projection_head1_dims([8, 16, 4])
        .projection_head2_dims([8, 4])
        .cat_mlp_type(DenoiseMlpType::Single)
        .cont_mlp_type(DenoiseMlpType::Single);
    let mut t = trainer(&cfg, quiet().epochs(2)).unwrap();
    let h = t.fit(&d, None).unwrap();
    assert_eq!(h.len(), 2);
    assert!(h.iter().all(|r| r.loss.is_finite() && r.val_loss.is_none()));
}

#[test]
fn the_evaluation_batch_size_is_used_and_checked() {
    let d = data(48);
    let cfg = ContrastiveDenoisingConfig::new(supported()[1].0.clone());
    // the InfoNCE loss contrasts the rows of a batch: its value depends on the batch size
    let whole = trainer(&cfg, quiet().eval_batch_size(48)).unwrap();
    let halves = trainer(&cfg, quiet().eval_batch_size(24)).unwrap();
    let default = trainer(&cfg, quiet()).unwrap();
    let (w, h, b) = (
        whole.evaluate(&d).unwrap(),
        halves.evaluate(&d).unwrap(),
        default.evaluate(&d).unwrap(),
    );
    assert!((w - h).abs() > 1e-4, "{w} vs {h}");
    // two halves of 24 rows weigh the same: the mean of their losses, evaluated one by one
    let first = whole.evaluate(&d.slice(0, 24)).unwrap();
    let second = whole.evaluate(&d.slice(24, 24)).unwrap();
    assert!((h - (first + second) / 2.0).abs() < 1e-6, "{h}");
    // by default, batches of `batch_size` (16) rows
    let thirds: f64 = (0..3)
        .map(|i| whole.evaluate(&d.slice(16 * i, 16)).unwrap())
        .sum::<f64>()
        / 3.0;
    assert!((b - thirds).abs() < 1e-6, "{b} vs {thirds}");
    assert_config_error(
        trainer(&cfg, quiet().eval_batch_size(1)),
        "pretrain.eval_batch_size",
    );
}

#[test]
fn bad_configurations_name_the_field() {
    let tab = || supported()[2].0.clone();
    let new = |c: ContrastiveDenoisingConfig| trainer(&c, quiet());
    let cd = |tab: TabModelConfig| ContrastiveDenoisingConfig::new(tab);
    let f = |n: &str| format!("contrastive_denoising.{n}");
    assert_config_error(new(cd(tab()).temperature(0.0)), &f("temperature"));
    assert_config_error(new(cd(tab()).cutmix_lambda(1.5)), &f("cutmix_lambda"));
    assert_config_error(new(cd(tab()).mixup_lambda(-0.1)), &f("mixup_lambda"));
    assert_config_error(new(cd(tab()).lambda_cat(f64::NAN)), &f("lambda_cat"));
    // the loop's settings are the shared ones
    let loop_error = |l: PretrainConfig, field: &str| {
        assert_config_error(trainer(&cd(tab()), l), field);
    };
    loop_error(quiet().batch_size(1), "pretrain.batch_size");
    loop_error(quiet().lr(0.0), "pretrain.lr");
    loop_error(quiet().weight_decay(-1.0), "pretrain.weight_decay");
    assert_config_error(
        new(cd(tab()).projection_head1_dims([16, 4])),
        &f("projection_head1"),
    );
    assert_config_error(
        new(cd(tab()).projection_head1_dims([8])),
        &f("projection_head1_dims"),
    );
    assert_config_error(
        new(cd(tab()).projection_head2_dims([8, 4])),
        &f("projection_head2_dims"),
    );
    let mlp: TabModelConfig = TabMlpConfig::from_meta(&meta()).into();
    assert_config_error(new(cd(mlp)), &f("encoder"));
    let tt: TabModelConfig = TabTransformerConfig::from_meta(&meta()).input_dim(8).into();
    assert_config_error(new(cd(tt)), &f("encoder.embed_continuous"));
    // TabPerceiver: contrastive only
    let perceiver = supported()[6].0.clone();
    match new(cd(perceiver)) {
        Err(crate::WideDeepError::InvalidConfig { field, reason }) => {
            assert_eq!(field, f("loss_type"));
            assert!(reason.contains("tab_perceiver"), "{reason}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    // the model's own checks name its fields
    let bad: TabModelConfig = FtTransformerConfig::from_meta(&meta()).n_heads(5).into();
    assert_config_error(new(cd(bad)), "ft_transformer.n_heads");
}

#[test]
fn bad_data_is_an_input_error() {
    let cfg = ContrastiveDenoisingConfig::new(supported()[1].0.clone());
    let mut t = trainer(&cfg, quiet()).unwrap();
    let mut x = locked_input(8);
    x.cat = Some(Tensor::from_slice(&[9i64; 16]).view([8, 2]));
    let bad = Dataset::new(x, None).unwrap();
    // the error names the data set and the column
    let good = data(8);
    match t.fit(&good, Some(&bad)) {
        Err(crate::WideDeepError::InputMismatch { input, .. }) => {
            assert!(input.starts_with("val."), "{input}")
        }
        other => panic!("expected an input error, got {other:?}"),
    }
    match t.fit(&bad, None) {
        Err(crate::WideDeepError::InputMismatch { input, reason }) => {
            assert!(input.starts_with("data."), "{input}: {reason}")
        }
        other => panic!("expected an input error, got {other:?}"),
    }
    assert!(t.history().is_empty());
}

#[test]
fn fine_tuning_starts_from_the_pretrained_encoder() {
    let d = data(64);
    let tab = supported()[2].0.clone();
    let mut pre = trainer(&ContrastiveDenoisingConfig::new(tab.clone()), quiet()).unwrap();
    pre.fit(&d, None).unwrap();
    let wd_config = WideDeepConfig::new().deeptabular(tab.clone()).seed(9);
    let model = pre.wide_deep(&wd_config, Device::Cpu).unwrap();
    let pretrained = pre.encoder_weights();
    assert!(!pretrained.is_empty());
    let vars = model.var_store().variables();
    for (k, w) in &pretrained {
        assert!(vars[k].equal(w), "{k} not transferred");
    }
    // a model built from another configuration is refused
    let mut other = crate::models::WideDeep::new(
        &WideDeepConfig::new().deeptabular(supported()[1].0.clone()),
        Device::Cpu,
    )
    .unwrap();
    assert_config_error(pre.transfer_to(&mut other), "deeptabular");
    // fine-tuning with a warm-up: the weights move a little from the pretrained ones, far less
    // than a fresh initialisation differs from them
    let fresh = crate::models::WideDeep::new(&wd_config, Device::Cpu).unwrap();
    let y = Tensor::from_slice(&(0..64).map(|i| (i % 2) as f32).collect::<Vec<_>>());
    let labelled = Dataset::new(locked_input(64), Some(y)).unwrap();
    let cfg = TrainerConfig::new(Objective::Binary)
        .verbose(0)
        .epochs(1)
        .batch_size(16)
        .finetune(FinetuneConfig::new().epochs(1));
    let mut trainer = Trainer::new(model, cfg).unwrap();
    trainer.fit(&labelled, None).unwrap();
    let tuned = trainer.model().var_store().variables();
    let fresh_vars = fresh.var_store().variables();
    let dist = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
    let mut moved = 0.0f64;
    let mut init_gap = 0.0f64;
    for (k, w) in &pretrained {
        moved = moved.max(dist(&tuned[k], w));
        init_gap = init_gap.max(dist(&fresh_vars[k], w));
    }
    assert!(moved > 0.0, "fine-tuning did not train the encoder");
    assert!(
        moved < init_gap / 4.0,
        "moved {moved}, fresh init differs by {init_gap}"
    );
}
