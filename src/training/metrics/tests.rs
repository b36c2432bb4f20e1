use super::*;

// Expected values below were computed once with scikit-learn 1.9.1 (classification and
// regression) and pytorch-widedeep 1.7.0's ranking metrics on the same inputs by
// `tests/reference/metrics_reference.py`.

fn close(got: f64, expected: f64, what: &str) {
    assert!((got - expected).abs() < 1e-6, "{what}: {got} vs {expected}");
}

#[test]
fn auc_by_hand() {
    // pairs (pos, neg): (0.8,0.1) (0.8,0.4) (0.8,0.8 tie=½) (0.35,0.1) (0.35,0.4 lost) (0.35,0.8 lost)
    let s = [0.1f32, 0.4, 0.35, 0.8, 0.8];
    let y = [0i64, 0, 1, 1, 0];
    assert!((binary_auc(&s, &y) - 3.5 / 6.0).abs() < 1e-12);
    assert!(binary_auc(&s, &[1, 1, 1, 1, 1]).is_nan());
}

#[test]
fn binary_precision_recall_f1() {
    let obj = Objective::Binary;
    let scores = Tensor::from_slice(&[0.9f32, 0.8, 0.2, 0.6, 0.1]);
    let y = Tensor::from_slice(&[1f32, 0., 1., 1., 0.]);
    // predicted 1 1 0 1 0 → tp 2, fp 1, fn 1
    let get = |m: Metric| m.compute(&obj, &scores, &y).unwrap();
    assert!((get(Metric::Accuracy) - 0.6).abs() < 1e-12);
    assert!((get(Metric::Precision) - 2.0 / 3.0).abs() < 1e-12);
    assert!((get(Metric::Recall) - 2.0 / 3.0).abs() < 1e-12);
    assert!((get(Metric::F1) - 2.0 / 3.0).abs() < 1e-12);
    // positives 0.9, 0.2, 0.6 vs negatives 0.8, 0.1: 4 of 6 pairs ordered
    assert!((get(Metric::Auc) - 4.0 / 6.0).abs() < 1e-12);
}

#[test]
fn binary_metrics_match_sklearn() {
    let scores = Tensor::from_slice(&[0.9f32, 0.8, 0.2, 0.6, 0.1, 0.7, 0.3, 0.55]);
    let y = Tensor::from_slice(&[1f32, 0., 1., 1., 0., 0., 0., 1.]);
    // the weighted and focal binary objectives score like Binary
    for obj in [
        Objective::Binary,
        Objective::WeightedBinary { pos_weight: 2.0 },
        Objective::BinaryFocal {
            alpha: 0.25,
            gamma: 2.0,
        },
    ] {
        let get = |m: Metric| m.compute(&obj, &scores, &y).unwrap();
        close(get(Metric::Accuracy), 0.625, "accuracy");
        close(get(Metric::Precision), 0.6, "precision");
        close(get(Metric::Recall), 0.75, "recall");
        close(get(Metric::F1), 0.666666666667, "f1");
        let fb = |beta| Metric::FBeta {
            beta,
            average: Average::Macro,
        };
        close(get(fb(2.0)), 0.714285714286, "f2");
        close(get(fb(0.5)), 0.625, "f0.5");
        close(get(Metric::Auc), 0.5625, "auc");
        close(get(Metric::MicroF1), 0.625, "micro f1");
    }
}

/// 10 rows × 4 classes, each row normalised (float32 as in the sklearn run).
fn multiclass_probs() -> Tensor {
    Tensor::from_slice(&[
        0.7f32, 0.1, 0.1, 0.1, 0.2, 0.5, 0.2, 0.1, 0.1, 0.3, 0.4, 0.2, 0.3, 0.3, 0.1, 0.3, 0.05,
        0.15, 0.2, 0.6, 0.4, 0.35, 0.15, 0.1, 0.1, 0.2, 0.6, 0.1, 0.25, 0.2, 0.3, 0.25, 0.1, 0.6,
        0.2, 0.1, 0.3, 0.1, 0.2, 0.4,
    ])
    .view([10, 4])
}

#[test]
fn multiclass_metrics_match_sklearn() {
    let obj = Objective::Multiclass { n_classes: 4 };
    let p = multiclass_probs();
    let y = Tensor::from_slice(&[0i64, 1, 1, 3, 3, 1, 2, 0, 1, 2]);
    let get = |m: Metric| m.compute(&obj, &p, &y).unwrap();
    close(get(Metric::Accuracy), 0.5, "accuracy");
    close(get(Metric::TopKAccuracy { k: 2 }), 0.8, "top-2");
    close(get(Metric::Precision), 0.541666666667, "macro precision");
    close(get(Metric::Recall), 0.5, "macro recall");
    close(get(Metric::F1), 0.491666666667, "macro f1");
    close(
        get(Metric::FBeta {
            beta: 2.0,
            average: Average::Macro,
        }),
        0.491161616162,
        "macro f2",
    );
    for m in [
        Metric::MicroPrecision,
        Metric::MicroRecall,
        Metric::MicroF1,
        Metric::FBeta {
            beta: 2.0,
            average: Average::Micro,
        },
    ] {
        close(get(m), 0.5, &m.name());
    }
    close(get(Metric::Auc), 0.877604166667, "ovr macro auc");
    // top-k with k = n_classes is always 1
    close(get(Metric::TopKAccuracy { k: 4 }), 1.0, "top-4");
    let err = Metric::TopKAccuracy { k: 5 }.check(&obj).unwrap_err();
    assert!(err.to_string().contains("metrics.top5_accuracy.k"), "{err}");
}

#[test]
fn multiclass_macro_average_by_hand() {
    let obj = Objective::Multiclass { n_classes: 3 };
    let scores = Tensor::from_slice(&[
        0.8f32, 0.1, 0.1, 0.1, 0.8, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1, 0.8,
    ])
    .view([4, 3]);
    let y = Tensor::from_slice(&[0i64, 1, 2, 2]);
    // pred 0 1 1 2: class0 p=1 r=1, class1 p=1/2 r=1, class2 p=1 r=1/2
    let p = Metric::Precision.compute(&obj, &scores, &y).unwrap();
    assert!((p - 2.5 / 3.0).abs() < 1e-12);
    let r = Metric::Recall.compute(&obj, &scores, &y).unwrap();
    assert!((r - 2.5 / 3.0).abs() < 1e-12);
    assert!((Metric::Accuracy.compute(&obj, &scores, &y).unwrap() - 0.75).abs() < 1e-12);
}

#[test]
fn regression_metrics_match_sklearn() {
    let p = [2.5f32, 0.0, 2.0, 8.0, 1.0];
    let y = [3.0f32, -0.5, 2.0, 7.0, 1.5];
    close(r2(&p, &y), 0.942996742671, "r2");
    close(rmse(&p, &y), 0.591607978310, "rmse");
    close(mae(&p, &y), 0.5, "mae");
    // through compute, for objectives whose scores are values
    let (pt, yt) = (Tensor::from_slice(&p), Tensor::from_slice(&y));
    for obj in [
        Objective::Regression,
        Objective::Mae,
        Objective::Huber { delta: 0.2 },
    ] {
        close(Metric::Mae.compute(&obj, &pt, &yt).unwrap(), 0.5, "mae");
    }
    // quantile regression: value metrics read the quantile closest to 0.5
    let q = Objective::Quantile {
        quantiles: vec![0.1, 0.5, 0.9],
    };
    let cols = Tensor::stack(&[&pt - 1.0, pt.shallow_clone(), &pt + 1.0], 1);
    close(
        Metric::R2.compute(&q, &cols, &yt).unwrap(),
        0.942996742671,
        "r2 q",
    );
    assert!(Metric::Accuracy.check(&Objective::Regression).is_err());
    assert!(Metric::R2.check(&Objective::Binary).is_err());
    assert!(!Metric::Mae.higher_is_better());
}

fn ranking_data() -> (Tensor, Tensor, Tensor) {
    // 3 groups (users) of 5 items
    let s = Tensor::from_slice(&[
        0.9f32, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.6, 0.4, 0.1, 0.3, 0.2, 0.1, 0.5, 0.4,
    ]);
    let binary =
        Tensor::from_slice(&[1f32, 0., 0., 1., 0., 0., 0., 0., 0., 0., 0., 1., 1., 0., 1.]);
    let graded =
        Tensor::from_slice(&[3f32, 0., 1., 2., 0., 0., 2., 1., 0., 3., 1., 0., 2., 0., 0.]);
    (s, binary, graded)
}

#[test]
fn ranking_metrics_match_the_reference() {
    let (s, rel, graded) = ranking_data();
    let bin = Objective::Binary;
    let regr = Objective::Regression;
    let get = |m: Metric, o: &Objective, y: &Tensor| m.compute(o, &s, y).unwrap();
    let n_items = 5;
    // pytorch-widedeep 1.7.0 (NDCG also equals sklearn's ndcg_score on binary relevance)
    let expected = [
        (
            3,
            0.303076386452,
            0.440918763479,
            0.222222228845,
            0.666666666667,
            0.222222228845,
            0.277777791023,
        ),
        (
            5,
            0.518982132276,
            0.689415295919,
            0.427777767181,
            0.666666666667,
            0.333333333333,
            0.666666666667,
        ),
    ];
    for (k, ndcg, ndcg_graded, map, hr, prec, rec) in expected {
        close(
            get(Metric::NdcgAtK { k, n_items }, &bin, &rel),
            ndcg,
            "ndcg",
        );
        close(
            get(Metric::NdcgAtK { k, n_items }, &regr, &graded),
            ndcg_graded,
            "graded ndcg",
        );
        close(get(Metric::MapAtK { k, n_items }, &bin, &rel), map, "map");
        close(
            get(Metric::HitRatioAtK { k, n_items }, &bin, &rel),
            hr,
            "hr",
        );
        close(
            get(Metric::PrecisionAtK { k, n_items }, &bin, &rel),
            prec,
            "precision@k",
        );
        close(
            get(Metric::RecallAtK { k, n_items }, &bin, &rel),
            rec,
            "recall@k",
        );
    }
}

#[test]
fn ranking_metrics_by_hand() {
    // one group: scores rank items 0, 4, 2, 3, 1; relevant items are 0 and 3
    let s = [0.9f32, 0.1, 0.5, 0.3, 0.7];
    let r = [1f32, 0., 0., 1., 0.];
    // top-3 = [0, 4, 2]: one hit at rank 1
    assert!((ranking::precision_at_k(&s, &r, 5, 3) - 1.0 / 3.0).abs() < 1e-12);
    assert!((ranking::recall_at_k(&s, &r, 5, 3) - 0.5).abs() < 1e-12);
    assert_eq!(ranking::hit_ratio_at_k(&s, &r, 5, 3), 1.0);
    // AP@5: hits at ranks 1 and 4 → (1/1 + 2/4) / 2
    assert!((ranking::map_at_k(&s, &r, 5, 5) - 0.75).abs() < 1e-12);
    // NDCG@5: DCG = 1/log2(2) + 1/log2(5); IDCG = 1 + 1/log2(3)
    let expected = (1.0 + 1.0 / 5f64.log2()) / (1.0 + 1.0 / 3f64.log2());
    assert!((ranking::ndcg_at_k(&s, &r, 5, 5) - expected).abs() < 1e-12);
    // a group with nothing relevant scores 0 (not NaN)
    assert_eq!(ranking::ndcg_at_k(&s, &[0.0; 5], 5, 3), 0.0);
}

#[test]
fn metric_checks_and_names() {
    let bin = Objective::Binary;
    let err = Metric::NdcgAtK { k: 6, n_items: 5 }
        .check(&bin)
        .unwrap_err();
    assert!(err.to_string().contains("metrics.ndcg@6.k"), "{err}");
    let err = Metric::FBeta {
        beta: 0.0,
        average: Average::Macro,
    }
    .check(&bin)
    .unwrap_err();
    assert!(err.to_string().contains("beta"), "{err}");
    assert!(Metric::NdcgAtK { k: 2, n_items: 5 }
        .check(&Objective::Multiclass { n_classes: 3 })
        .is_err());
    assert!(Metric::TopKAccuracy { k: 1 }.check(&bin).is_err());
    assert!(Metric::Auc
        .check(&Objective::Multiclass { n_classes: 3 })
        .is_ok());
    assert!(Metric::Rmse
        .check(&Objective::ZeroInflatedLognormal)
        .is_ok());
    let (s, rel, _) = ranking_data();
    let err = Metric::HitRatioAtK { k: 2, n_items: 4 }
        .compute(&bin, &s, &rel)
        .unwrap_err();
    assert!(err.to_string().contains("n_items = 4"), "{err}");
    let names: Vec<String> = [
        Metric::TopKAccuracy { k: 3 },
        Metric::FBeta {
            beta: 0.5,
            average: Average::Micro,
        },
        Metric::FBeta {
            beta: 2.0,
            average: Average::Macro,
        },
        Metric::MapAtK { k: 10, n_items: 20 },
    ]
    .iter()
    .map(|m| m.name())
    .collect();
    assert_eq!(names, ["top3_accuracy", "micro_f0.5", "f2", "map@10"]);
    // the existing serialized form is kept; new metrics round-trip
    assert_eq!(serde_json::to_string(&Metric::Auc).unwrap(), r#""auc""#);
    let m = Metric::NdcgAtK { k: 3, n_items: 5 };
    let s = serde_json::to_string(&m).unwrap();
    assert_eq!(serde_json::from_str::<Metric>(&s).unwrap(), m);
}
