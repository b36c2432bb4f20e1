//! Weighted sampling of training rows with replacement (torch's `WeightedRandomSampler`), for
//! imbalanced classes: each epoch draws `num_samples` rows, row `i` with probability
//! `w_i / Σ w`.
use crate::error::{Result, WideDeepError};
use crate::macros::{bail, ensure};
use crate::training::checks::non_negative;
use crate::training::{Dataset, Objective};
use rand::distr::{weighted::WeightedIndex, Distribution};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

/// Where the sampling weights come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "weights", rename_all = "snake_case")]
pub enum SampleWeights {
    /// Each row weighs `1 / (rows of its class)`: every class is drawn equally often.
    InverseClassFrequency,
    /// One weight per class index (binary: `[w0, w1]`); a row weighs its class's weight.
    Classes(Vec<f64>),
    /// One weight per training row.
    Rows(Vec<f64>),
}

/// Draws the training rows of each epoch with replacement by weight, instead of shuffling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WeightedSampler {
    /// Where the weights come from.
    pub weights: SampleWeights,
    /// Rows drawn per epoch; `None`: as many as the training set has.
    pub num_samples: Option<usize>,
}

impl Default for WeightedSampler {
    fn default() -> Self {
        Self {
            weights: SampleWeights::InverseClassFrequency,
            num_samples: None,
        }
    }
}

impl WeightedSampler {
    /// Weights `1 / class count`: balanced classes.
    pub fn inverse_class_frequency() -> Self {
        Self::default()
    }
    /// One weight per class index.
    pub fn class_weights(weights: impl Into<Vec<f64>>) -> Self {
        Self {
            weights: SampleWeights::Classes(weights.into()),
            num_samples: None,
        }
    }
    /// One weight per training row.
    pub fn row_weights(weights: impl Into<Vec<f64>>) -> Self {
        Self {
            weights: SampleWeights::Rows(weights.into()),
            num_samples: None,
        }
    }
    /// Draws `n` rows per epoch.
    pub fn num_samples(mut self, n: usize) -> Self {
        self.num_samples = Some(n);
        self
    }

    /// Checks the values that do not depend on the data.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.num_samples != Some(0),
            config("sampler.num_samples"),
            "must be ≥ 1"
        );
        let w = match &self.weights {
            SampleWeights::InverseClassFrequency => return Ok(()),
            SampleWeights::Classes(w) | SampleWeights::Rows(w) => w,
        };
        ensure!(
            !w.is_empty() && w.iter().all(|x| non_negative(*x)),
            config("sampler.weights"),
            "must be finite, ≥ 0 and not empty"
        );
        ensure!(
            w.iter().any(|x| *x > 0.0),
            config("sampler.weights"),
            "at least one weight must be positive"
        );
        Ok(())
    }

    /// The per-row weights for `data` (which needs a target for class-based weights).
    pub fn row_weights_for(&self, data: &Dataset, objective: &Objective) -> Result<Vec<f64>> {
        self.validate()?;
        let n = data.len() as usize;
        let classes = || -> Result<Vec<i64>> {
            ensure!(
                objective.is_classification(),
                config("sampler.weights"),
                "class-based weights need a classification objective; use row weights"
            );
            let Some(t) = &data.target else {
                bail!(missing(), "the sampler needs a target");
            };
            Ok(Vec::<i64>::try_from(
                t.to_device(Device::Cpu).to_kind(Kind::Int64).view([-1]),
            )?)
        };
        let w = match &self.weights {
            SampleWeights::Rows(w) => {
                ensure!(
                    w.len() == n,
                    config("sampler.weights"),
                    "{} row weights for {n} training rows",
                    w.len()
                );
                w.clone()
            }
            SampleWeights::Classes(cw) => classes()?
                .into_iter()
                .map(|c| {
                    cw.get(c as usize).copied().ok_or_else(|| {
                        WideDeepError::config(
                            "sampler.weights",
                            format!("no weight for class {c} ({} class weights)", cw.len()),
                        )
                    })
                })
                .collect::<Result<Vec<f64>>>()?,
            SampleWeights::InverseClassFrequency => {
                let c = classes()?;
                let mut counts = std::collections::HashMap::<i64, usize>::new();
                for &k in &c {
                    *counts.entry(k).or_default() += 1;
                }
                c.iter().map(|k| 1.0 / counts[k] as f64).collect()
            }
        };
        ensure!(
            w.iter().any(|x| *x > 0.0),
            config("sampler.weights"),
            "every training row has weight 0"
        );
        Ok(w)
    }

    /// Builds the sampler for `data`.
    pub fn build(&self, data: &Dataset, objective: &Objective) -> Result<RowSampler> {
        let w = self.row_weights_for(data, objective)?;
        RowSampler::new(&w, self.num_samples.unwrap_or(w.len()))
    }
}

/// Draws row indices with replacement by weight.
#[derive(Debug, Clone)]
pub struct RowSampler {
    dist: WeightedIndex<f64>,
    n: usize,
}

impl RowSampler {
    /// `weights` per row (≥ 0, not all 0); `n` rows per draw.
    pub fn new(weights: &[f64], n: usize) -> Result<Self> {
        let dist = WeightedIndex::new(weights)
            .map_err(|e| WideDeepError::config("sampler.weights", e.to_string()))?;
        Ok(Self { dist, n })
    }

    /// Rows per draw.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether a draw gives no row.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// `n` row indices (`[n]` i64), drawn from `rng`.
    pub fn draw(&self, rng: &mut impl Rng) -> Vec<i64> {
        (0..self.n).map(|_| self.dist.sample(rng) as i64).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelInput;
    use rand::SeedableRng;
    use tch::Tensor;

    fn imbalanced(n: usize, pos_every: usize) -> Dataset {
        let input = ModelInput {
            cont: Some(Tensor::zeros([n as i64, 1], (Kind::Float, Device::Cpu))),
            ..Default::default()
        };
        let t: Vec<f32> = (0..n).map(|i| (i % pos_every == 0) as i64 as f32).collect();
        Dataset::new(input, Some(Tensor::from_slice(&t))).unwrap()
    }

    /// Pearson's chi-square statistic of observed counts against expected shares.
    fn chi2(observed: &[usize], expected_share: &[f64]) -> f64 {
        let n: usize = observed.iter().sum();
        observed
            .iter()
            .zip(expected_share)
            .map(|(&o, &p)| {
                let e = p * n as f64;
                (o as f64 - e).powi(2) / e
            })
            .sum()
    }

    fn class_counts(data: &Dataset, idx: &[i64]) -> [usize; 2] {
        let t = Vec::<f32>::try_from(data.target.as_ref().unwrap()).unwrap();
        let mut c = [0usize; 2];
        for &i in idx {
            c[t[i as usize] as usize] += 1;
        }
        c
    }

    #[test]
    fn inverse_frequency_balances_classes() {
        let data = imbalanced(1000, 10); // 10 % positives
        let s = WeightedSampler::inverse_class_frequency()
            .build(&data, &Objective::Binary)
            .unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let idx = s.draw(&mut rng);
        assert_eq!(idx.len(), 1000);
        let c = class_counts(&data, &idx);
        // chi-square with 1 degree of freedom: 10.83 is the 0.1 % critical value
        let x = chi2(&c, &[0.5, 0.5]);
        assert!(x < 10.83, "counts {c:?}, chi2 {x}");
        // same seed, same draw
        let mut rng2 = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        assert_eq!(s.draw(&mut rng2), idx);
    }

    #[test]
    fn class_weights_set_the_class_shares() {
        let data = imbalanced(1000, 2); // 50 % positives
        let s = WeightedSampler::class_weights([1.0, 3.0])
            .num_samples(4000)
            .build(&data, &Objective::Binary)
            .unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let c = class_counts(&data, &s.draw(&mut rng));
        let x = chi2(&c, &[0.25, 0.75]);
        assert!(x < 10.83, "counts {c:?}, chi2 {x}");
        // the unweighted share (0.5) is rejected by the same test
        assert!(chi2(&c, &[0.5, 0.5]) > 10.83);
    }

    #[test]
    fn row_weights_and_errors() {
        let data = imbalanced(4, 2);
        let s = WeightedSampler::row_weights([0.0, 0.0, 1.0, 0.0])
            .build(&data, &Objective::Regression)
            .unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        assert!(s.draw(&mut rng).iter().all(|&i| i == 2));
        let err = |s: WeightedSampler, o: Objective| s.build(&data, &o).unwrap_err().to_string();
        assert!(
            err(WeightedSampler::row_weights([1.0]), Objective::Binary).contains("sampler.weights")
        );
        assert!(err(WeightedSampler::default(), Objective::Regression).contains("classification"));
        assert!(err(WeightedSampler::class_weights([1.0]), Objective::Binary).contains("class 1"));
        assert!(err(
            WeightedSampler::class_weights([0.0, 0.0]),
            Objective::Binary
        )
        .contains("sampler.weights"));
        assert!(err(
            WeightedSampler::class_weights([1.0, -1.0]),
            Objective::Binary
        )
        .contains("sampler.weights"));
        assert!(
            err(WeightedSampler::default().num_samples(0), Objective::Binary)
                .contains("sampler.num_samples")
        );
    }
}
