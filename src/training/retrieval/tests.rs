//! The sampled-softmax loss with the log-Q correction by hand, and a small fit: seeded,
//! excluding seen items, saved and loaded.
use super::*;
use crate::models::rec::TwoTowerConfig;

fn t2(v: &[f32], cols: i64) -> Tensor {
    Tensor::from_slice(v).view([-1, cols])
}

/// `log(Σ_j e^{l_j}) − l_target`.
fn xent(logits: &[f64], target: usize) -> f64 {
    logits.iter().map(|l| l.exp()).sum::<f64>().ln() - logits[target]
}

#[test]
fn log_q_corrected_in_batch_loss_by_hand() {
    let users = t2(&[1.0, 0.0, 0.0, 1.0], 2);
    let items = t2(&[1.0, 0.0, 0.0, 2.0], 2);
    let ids = Tensor::from_slice(&[5i64, 7]);
    // plain: logits row 0 = (1, 0), row 1 = (0, 2)
    let plain = sampled_softmax_loss(&users, &items, &ids, None, 1.0).double_value(&[]);
    let want = (xent(&[1.0, 0.0], 0) + xent(&[0.0, 2.0], 1)) / 2.0;
    assert!((plain - want).abs() < 1e-6, "{plain} vs {want}");
    // q = (0.5, 0.25): subtract ln q from each column
    let (a, b) = (0.5f64.ln(), 0.25f64.ln());
    let lq = Tensor::from_slice(&[a as f32, b as f32]);
    let corrected = sampled_softmax_loss(&users, &items, &ids, Some(&lq), 1.0).double_value(&[]);
    let want = (xent(&[1.0 - a, -b], 0) + xent(&[-a, 2.0 - b], 1)) / 2.0;
    assert!((corrected - want).abs() < 1e-6, "{corrected} vs {want}");
    // = 0.5 (ln(2e + 4) − 1 − ln 2) + 0.5 (ln(2 + 4e²) − 2 − ln 4)
    let closed = 0.5 * ((2.0 * 1f64.exp() + 4.0).ln() - 1.0 - 2f64.ln())
        + 0.5 * ((2.0 + 4.0 * 2f64.exp()).ln() - 2.0 - 4f64.ln());
    assert!((corrected - closed).abs() < 1e-6);
    // temperature 0.5 doubles the similarities, not the correction
    let hot = sampled_softmax_loss(&users, &items, &ids, Some(&lq), 0.5).double_value(&[]);
    let want = (xent(&[2.0 - a, -b], 0) + xent(&[-a, 4.0 - b], 1)) / 2.0;
    assert!((hot - want).abs() < 1e-6);
    // an extra negative (id 9, vector (1, 1), ln q = 0): a third column for both rows
    let items3 = t2(&[1.0, 0.0, 0.0, 2.0, 1.0, 1.0], 2);
    let ids3 = Tensor::from_slice(&[5i64, 7, 9]);
    let lq3 = Tensor::from_slice(&[a as f32, b as f32, 0.0]);
    let extra = sampled_softmax_loss(&users, &items3, &ids3, Some(&lq3), 1.0).double_value(&[]);
    let want = (xent(&[1.0 - a, -b, 1.0], 0) + xent(&[-a, 2.0 - b, 1.0], 1)) / 2.0;
    assert!((extra - want).abs() < 1e-6);
    // accidental hits: both rows' positive is item 5, so each row's other column is masked
    // and only the extra negative competes
    let dup = Tensor::from_slice(&[5i64, 5, 9]);
    let masked = sampled_softmax_loss(&users, &items3, &dup, None, 1.0).double_value(&[]);
    let want = (xent(&[1.0, 1.0], 0) + xent(&[2.0, 1.0], 0)) / 2.0;
    assert!((masked - want).abs() < 1e-6, "{masked} vs {want}");
}

#[test]
fn log_q_values() {
    let p = [0.5, 0.25, 0.25, 0.0];
    let v = |t: Tensor| Vec::<f32>::try_from(t).unwrap();
    let got = v(log_q(&p, &[0, 2], |_| 0.0));
    assert!((got[0] - 0.5f32.ln()).abs() < 1e-6 && (got[1] - 0.25f32.ln()).abs() < 1e-6);
    // M = 2 uniform extras in batches of B = 4 over 4 items: q = p + (2/4)(1/4)
    let got = v(log_q(&p, &[0, 3], |_| 0.5 / 4.0));
    assert!((got[0] - 0.625f32.ln()).abs() < 1e-6);
    assert!((got[1] - 0.125f32.ln()).abs() < 1e-6);
}

/// 8 users, 8 items in two blocks: users 0–3 like three of items 0–3 (user `u` all but item
/// `u`), users 4–7 three of items 4–7 (all but item `u`).
fn blocks() -> Interactions {
    let mut users = Vec::new();
    let mut items = Vec::new();
    for u in 0..8usize {
        let base = u / 4 * 4;
        for i in (base..base + 4).filter(|&i| i != u) {
            users.push(u);
            items.push(i);
        }
    }
    Interactions::from_pairs(8, 8, users, items).unwrap()
}

#[test]
fn fit_is_seeded_learns_blocks_and_round_trips() {
    let train = blocks();
    let model_cfg = TwoTowerConfig::new(8, 8).embed_dim(4).seed(3);
    let cfg = RetrievalConfig::default()
        .epochs(60)
        .batch_size(4)
        .lr(0.05)
        .extra_negatives(2)
        .seed(5);
    let fit = || {
        let model = TwoTower::new(&model_cfg, Device::Cpu).unwrap();
        Retriever::fit(model, &train, &cfg).unwrap()
    };
    let (a, b) = (fit(), fit());
    assert_eq!(a.history(), b.history());
    assert_eq!(a.history().len(), 60);
    assert!(a.history()[59] < a.history()[0], "{:?}", a.history());
    // the best unseen item of each user is the one item of its block it has not seen; the
    // seen items never come back
    for u in 0..8 {
        let recs = a.recommend(u, 5).unwrap();
        assert_eq!(recs, b.recommend(u, 5).unwrap());
        assert_eq!(recs.len(), 5);
        assert_eq!(recs[0].0, u, "user {u}: {recs:?}");
        for (i, _) in &recs {
            assert!(!a.seen()[u].contains(i), "user {u} got seen item {i}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    a.save(dir.path()).unwrap();
    let back = Retriever::load(dir.path(), Device::Cpu).unwrap();
    assert_eq!(back.history(), a.history());
    assert_eq!(back.seen(), a.seen());
    assert_eq!(
        back.recommend_batch(&[0, 5], 3).unwrap(),
        a.recommend_batch(&[0, 5], 3).unwrap()
    );
    let err = a.recommend(8, 1).unwrap_err();
    assert!(matches!(err, WideDeepError::InputMismatch { .. }));
}

#[test]
fn fit_checks_its_inputs() {
    let model = || TwoTower::new(&TwoTowerConfig::new(8, 8).embed_dim(2), Device::Cpu).unwrap();
    let err = Retriever::fit(
        model(),
        &blocks(),
        &RetrievalConfig::default().batch_size(1),
    )
    .unwrap_err();
    assert!(
        matches!(err, WideDeepError::InvalidConfig { ref field, .. } if field == "retrieval.batch_size")
    );
    let other = Interactions::from_pairs(8, 9, vec![0], vec![8]).unwrap();
    let err = Retriever::fit(model(), &other, &RetrievalConfig::default()).unwrap_err();
    assert!(matches!(err, WideDeepError::InputMismatch { ref input, .. } if input == "train"));
    let none = Interactions::from_pairs(8, 8, vec![], vec![]).unwrap();
    assert!(Retriever::fit(model(), &none, &RetrievalConfig::default()).is_err());
}
