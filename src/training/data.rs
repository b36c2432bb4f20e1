//! In-memory data sets of whole column tensors, batched by slicing (no per-row objects).
use crate::error::{Result, WideDeepError};
use crate::models::ModelInput;
use rand::seq::SliceRandom;
use rand::Rng;
use tch::{Device, Kind, Tensor};
use widedeep_preprocessing::{ImageData, TabData, TargetData, TextData, WideData};

/// Model inputs for `len()` rows plus an optional target (`[N]` f32 or i64).
#[derive(Debug)]
pub struct Dataset {
    pub input: ModelInput,
    pub target: Option<Tensor>,
    len: i64,
}

impl Dataset {
    /// Wraps tensors whose first dimensions all equal the row count.
    pub fn new(input: ModelInput, target: Option<Tensor>) -> Result<Self> {
        let len = input.batch_size();
        if input.tensors().next().is_none() {
            return Err(WideDeepError::Missing(
                "a Dataset needs at least one input tensor".into(),
            ));
        }
        for (name, t) in named(&input)
            .into_iter()
            .chain(target.iter().map(|t| ("target".to_string(), t)))
        {
            if t.size().first() != Some(&len) {
                return Err(WideDeepError::InputMismatch {
                    input: name,
                    reason: format!("has {:?} rows, expected {len}", t.size().first()),
                });
            }
        }
        Ok(Self { input, target, len })
    }

    /// Builds tensors from preprocessor outputs (on the CPU).
    pub fn from_arrays(
        wide: Option<&WideData>,
        tab: Option<&TabData>,
        target: Option<&TargetData>,
    ) -> Result<Self> {
        Self::from_parts(wide, tab, &[], &[], target)
    }

    /// Builds tensors from preprocessor outputs, text and image columns included (on the
    /// CPU): `texts[i]` becomes `input.text[i]` `[N, maxlen]` i64, `images[i]` becomes
    /// `input.image[i]` `[N, 3, H, W]` u8 (normalised per batch by the image model).
    pub fn from_parts(
        wide: Option<&WideData>,
        tab: Option<&TabData>,
        texts: &[TextData],
        images: &[ImageData],
        target: Option<&TargetData>,
    ) -> Result<Self> {
        let mut input = ModelInput {
            text: texts.iter().map(|t| array_i64(&t.ids)).collect(),
            image: images
                .iter()
                .map(|im| {
                    let shape: Vec<i64> = im.pixels.shape().iter().map(|&d| d as i64).collect();
                    let t = match im.pixels.as_slice() {
                        Some(s) => Tensor::from_slice(s),
                        None => Tensor::from_slice(&im.pixels.iter().copied().collect::<Vec<u8>>()),
                    };
                    t.view(shape.as_slice())
                })
                .collect(),
            ..Default::default()
        };
        if let Some(w) = wide {
            input.wide = Some(array_i64(&w.indices));
        }
        if let Some(t) = tab {
            if t.cat.ncols() > 0 {
                input.cat = Some(array_i64(&t.cat));
            }
            if t.cont.ncols() > 0 {
                let (n, k) = t.cont.dim();
                let cont = match t.cont.as_slice() {
                    Some(s) => Tensor::from_slice(s),
                    None => Tensor::from_slice(&t.cont.iter().copied().collect::<Vec<f32>>()),
                };
                input.cont = Some(cont.view([n as i64, k as i64]));
            }
        }
        let target = target.map(|t| match t {
            TargetData::F32(v) => Tensor::from_slice(v),
            TargetData::I64(v) => Tensor::from_slice(v),
        });
        Self::new(input, target)
    }

    /// Number of rows.
    pub fn len(&self) -> i64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The rows at `index` (`[k]` i64), in that order.
    pub fn select(&self, index: &Tensor) -> Dataset {
        let index = index.to_device(self.device());
        Dataset {
            input: self.input.map(|t| t.index_select(0, &index)),
            target: self.target.as_ref().map(|t| t.index_select(0, &index)),
            len: index.size()[0],
        }
    }

    /// Rows `start..start + len` without copying.
    pub fn slice(&self, start: i64, len: i64) -> Dataset {
        let len = len.min(self.len - start);
        Dataset {
            input: self.input.map(|t| t.narrow(0, start, len)),
            target: self.target.as_ref().map(|t| t.narrow(0, start, len)),
            len,
        }
    }

    /// Copies every tensor to `device`.
    pub fn to_device(&self, device: Device) -> Dataset {
        Dataset {
            input: self.input.to_device(device),
            target: self.target.as_ref().map(|t| t.to_device(device)),
            len: self.len,
        }
    }

    pub fn device(&self) -> Device {
        self.input
            .tensors()
            .next()
            .map(|t| t.device())
            .unwrap_or(Device::Cpu)
    }

    /// Consecutive batches of `batch_size` rows (the last one may be smaller).
    pub fn batches(&self, batch_size: i64) -> impl Iterator<Item = Dataset> + '_ {
        (0..self.len)
            .step_by(batch_size.max(1) as usize)
            .map(move |s| self.slice(s, batch_size))
    }

    /// A copy with the rows in a random order drawn from `rng`.
    pub fn shuffled(&self, rng: &mut impl Rng) -> Dataset {
        let mut idx: Vec<i64> = (0..self.len).collect();
        idx.shuffle(rng);
        self.select(&Tensor::from_slice(&idx))
    }

    /// Splits off a validation part of `fraction` of the rows, drawn at random from `rng`.
    /// With `stratify` the class proportions of the target are kept in both parts.
    pub fn split(
        &self,
        fraction: f64,
        stratify: bool,
        rng: &mut impl Rng,
    ) -> Result<(Dataset, Dataset)> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(WideDeepError::config(
                "val_split",
                format!("must be in (0, 1), got {fraction}"),
            ));
        }
        let groups: Vec<Vec<i64>> = match (&self.target, stratify) {
            (Some(t), true) => {
                let labels =
                    Vec::<i64>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Int64).view([-1]))?;
                let mut by_class: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
                for (i, l) in labels.into_iter().enumerate() {
                    by_class.entry(l).or_default().push(i as i64);
                }
                by_class.into_values().collect()
            }
            _ => vec![(0..self.len).collect()],
        };
        let (mut train, mut val) = (Vec::new(), Vec::new());
        for mut g in groups {
            g.shuffle(rng);
            let n_val = (g.len() as f64 * fraction).round() as usize;
            val.extend_from_slice(&g[..n_val]);
            train.extend_from_slice(&g[n_val..]);
        }
        if train.is_empty() || val.is_empty() {
            return Err(WideDeepError::config(
                "val_split",
                format!("{fraction} of {} rows leaves one part empty", self.len),
            ));
        }
        train.sort_unstable();
        val.sort_unstable();
        Ok((
            self.select(&Tensor::from_slice(&train)),
            self.select(&Tensor::from_slice(&val)),
        ))
    }
}

fn array_i64(a: &ndarray::Array2<i64>) -> Tensor {
    let (n, k) = a.dim();
    let t = match a.as_slice() {
        Some(s) => Tensor::from_slice(s),
        None => Tensor::from_slice(&a.iter().copied().collect::<Vec<i64>>()),
    };
    t.view([n as i64, k as i64])
}

fn named(input: &ModelInput) -> Vec<(String, &Tensor)> {
    let mut v = Vec::new();
    if let Some(t) = &input.wide {
        v.push(("wide".to_string(), t));
    }
    if let Some(t) = &input.cat {
        v.push(("cat".to_string(), t));
    }
    if let Some(t) = &input.cont {
        v.push(("cont".to_string(), t));
    }
    v.extend(
        input
            .text
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("text[{i}]"), t)),
    );
    v.extend(
        input
            .image
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("image[{i}]"), t)),
    );
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ds(n: i64) -> Dataset {
        let input = ModelInput {
            cont: Some(Tensor::arange(n, (Kind::Float, Device::Cpu)).view([n, 1])),
            ..Default::default()
        };
        let target = Tensor::from_slice(
            &(0..n)
                .map(|i| (i % 4 == 0) as i64 as f32)
                .collect::<Vec<_>>(),
        );
        Dataset::new(input, Some(target)).unwrap()
    }

    #[test]
    fn batches_cover_all_rows_once() {
        let d = ds(10);
        let sizes: Vec<i64> = d.batches(4).map(|b| b.len()).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let s = d.shuffled(&mut rng);
        let mut v = Vec::<f32>::try_from(s.input.cont.unwrap().view([-1])).unwrap();
        v.sort_by(f32::total_cmp);
        assert_eq!(v, (0..10).map(|i| i as f32).collect::<Vec<_>>());
    }

    #[test]
    fn stratified_split_keeps_class_shares() {
        let d = ds(100); // 25 positives
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (tr, va) = d.split(0.2, true, &mut rng).unwrap();
        assert_eq!((tr.len(), va.len()), (80, 20));
        let pos = |d: &Dataset| {
            d.target
                .as_ref()
                .unwrap()
                .sum(Kind::Float)
                .double_value(&[])
        };
        assert_eq!((pos(&tr), pos(&va)), (20.0, 5.0));
        assert!(d.split(1.5, true, &mut rng).is_err());
    }

    #[test]
    fn mismatched_rows_are_rejected() {
        let input = ModelInput {
            cont: Some(Tensor::zeros([3, 1], (Kind::Float, Device::Cpu))),
            ..Default::default()
        };
        let err =
            Dataset::new(input, Some(Tensor::zeros([4], (Kind::Float, Device::Cpu)))).unwrap_err();
        assert!(err.to_string().contains("target"), "{err}");
    }
}
