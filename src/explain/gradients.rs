//! Integrated gradients and GradientSHAP (expected gradients) at the embedding layer.
//!
//! The model is re-expressed as a function of its *parts*: one tensor per wide column (its
//! weight row `[batch, pred_dim]`, so the wide output is their sum plus the bias) followed by
//! each component's [`Component::embed`] output. Attributions are `(x − ref) ⊙ ∇f` on each
//! part, summed over the part's non-batch dimensions into its feature; text parts
//! `[batch, seq_len, d]` also keep a value per token, image parts `[batch, C, H, W]` one per
//! region of a grid.
use super::{host_values, Attribution, Detail, DetailKind, Explainer, IgBaseline, Method};
use crate::error::Result;
use crate::macros::{bail, ensure};
use crate::models::{Component, ModelInput};
use indicatif::ProgressBar;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::ops::Range;
use tch::{Kind, Tensor};

/// How a part's attribution is refined below the feature level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PartKind {
    /// Summed into the feature only.
    Vector,
    /// `[batch, seq_len, d]`: per-token values.
    Tokens(usize),
    /// `[batch, C, H, W]`: per-region values on a `rows × cols` grid.
    Image { h: usize, w: usize },
}

struct PartMeta {
    feature: usize,
    kind: PartKind,
    /// For token parts: which text input (among the model's token parts, in order) it is.
    text_index: usize,
}

/// Feature names of a component's parts: its `feature_names()`, or `deep{c}_{i}` when it
/// reports none (or too few).
pub(super) fn part_names(comp: &dyn Component, c: usize, n_parts: usize) -> Vec<String> {
    let names = comp.feature_names();
    if names.len() == n_parts {
        names
    } else {
        (0..n_parts).map(|i| format!("deep{c}_{i}")).collect()
    }
}

fn short_name(comp: &dyn Component) -> String {
    let s = format!("{comp:?}");
    let end = s.find(['{', '(', ' ']).unwrap_or(s.len()).min(40);
    s[..end].to_string()
}

/// Every component must implement `embed`/`forward_embedded`, and the split forward pass must
/// reproduce `forward_t` (checked on a few background rows).
pub(super) fn check_support(ex: &Explainer) -> Result<()> {
    let bg = ex.background.input();
    let rows = bg.batch_size().min(8);
    let sample = bg.map(|t| t.narrow(0, 0, rows));
    for (c, comp) in ex.model.components().iter().enumerate() {
        let ok = tch::no_grad(|| {
            comp.embed(&sample)
                .and_then(|parts| comp.forward_embedded(&parts, false))
                .is_some()
        });
        ensure!(
            ok,
            config("explain.method"),
            "{} needs Component::embed and Component::forward_embedded, which deep component \
             {c} ({}) does not implement; use Method::KernelShap, Method::Permutation or \
             Method::Exact (model-agnostic) for this model",
            ex.config.method.name(),
            short_name(comp.as_ref())
        );
    }
    let (split, direct) = tch::no_grad(|| -> Result<(Tensor, Tensor)> {
        let (parts, ranges) = embed_all(ex, &sample)?;
        Ok((
            forward_parts(ex, &parts, &ranges),
            ex.model.forward_t(&sample, false),
        ))
    })?;
    let scale = 1.0 + direct.abs().max().double_value(&[]);
    let diff = (split - &direct).abs().max().double_value(&[]);
    if diff.is_nan() || diff > 1e-4 * scale {
        bail!(
            config("explain.method"),
            "forward_embedded(embed(x)) differs from forward_t(x) by {diff:.3e} for this \
             model, so gradient attributions would not explain it; use a model-agnostic method \
             (KernelShap, Permutation, Exact)"
        );
    }
    Ok(())
}

/// The parts of `input` (wide weight rows, then each component's embedding outputs) and the
/// range of the parts of each component.
pub(super) fn embed_all(
    ex: &Explainer,
    input: &ModelInput,
) -> Result<(Vec<Tensor>, Vec<Range<usize>>)> {
    let mut parts = Vec::new();
    if let (Some(wide), Some(idx)) = (ex.model.wide(), input.wide.as_ref()) {
        for j in 0..idx.size()[1] {
            parts.push(wide.weight().index_select(0, &idx.select(1, j)));
        }
    }
    let mut ranges = Vec::new();
    for (c, comp) in ex.model.components().iter().enumerate() {
        let Some(p) = comp.embed(input) else {
            bail!(
                config("explain.method"),
                "deep component {c} does not implement Component::embed"
            );
        };
        ranges.push(parts.len()..parts.len() + p.len());
        parts.extend(p);
    }
    Ok((parts, ranges))
}

/// Raw model output `[batch, pred_dim]` from parts.
fn forward_parts(ex: &Explainer, parts: &[Tensor], ranges: &[Range<usize>]) -> Tensor {
    let n_wide = ex.layout().wide;
    let wide = ex.model.wide().map(|w| {
        // not in place: the start is a view of the bias parameter
        let mut out = parts[..n_wide]
            .iter()
            .fold(w.bias().unsqueeze(0), |acc, p| acc + p);
        if n_wide == 0 {
            let batch = parts.first().map_or(1, |p| p.size()[0]);
            out = out.expand([batch, -1], false).contiguous();
        }
        out
    });
    let deep: Vec<Tensor> = ex
        .model
        .components()
        .iter()
        .zip(ranges)
        .map(|(c, r)| {
            c.forward_embedded(&parts[r.clone()], false)
                .expect("checked by check_support")
        })
        .collect();
    ex.model.combine(wide, &deep, false)
}

/// Gauss–Legendre nodes and weights on [0, 1].
pub(super) fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = Vec::with_capacity(n);
    let mut weights = Vec::with_capacity(n);
    for i in 1..=n {
        let mut x = (std::f64::consts::PI * (i as f64 - 0.25) / (n as f64 + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, x);
            for j in 2..=n {
                let p2 = ((2 * j - 1) as f64 * x * p1 - (j - 1) as f64 * p0) / j as f64;
                p0 = p1;
                p1 = p2;
            }
            let pn = if n == 1 { x } else { p1 };
            let pn1 = if n == 1 { 1.0 } else { p0 };
            dp = n as f64 * (x * pn - pn1) / (x * x - 1.0);
            let dx = pn / dp;
            x -= dx;
            if dx.abs() < 1e-15 {
                break;
            }
        }
        nodes.push((x + 1.0) / 2.0);
        weights.push(1.0 / ((1.0 - x * x) * dp * dp));
    }
    (nodes, weights)
}

/// One gradient evaluation: explained row (within the block), reference row, α, weight.
#[derive(Clone, Copy)]
struct Job {
    row: i64,
    reference: i64,
    alpha: f32,
    weight: f64,
}

/// `[batch, 1, 1, ...]` with `ndim` dimensions, to broadcast a per-row factor.
fn shape_of(batch: i64, ndim: usize) -> Vec<i64> {
    let mut s = vec![batch];
    s.extend(std::iter::repeat_n(1, ndim - 1));
    s
}

/// Sums `a` (`[B, C, H, W]`) over channels and over the pixels of each region → `[B, rows·cols]`.
fn regions(a: &Tensor, grid: [usize; 2]) -> Tensor {
    let size = a.size();
    let (h, w) = (size[2], size[3]);
    let (gh, gw) = ((grid[0] as i64).min(h), (grid[1] as i64).min(w));
    let member = |len: i64, g: i64| {
        let mut m = vec![0f64; (g * len) as usize];
        for i in 0..len {
            let r = i * g / len;
            m[(r * len + i) as usize] = 1.0;
        }
        Tensor::from_slice(&m)
            .view([g, len])
            .to_device(a.device())
            .to_kind(a.kind())
    };
    let (rh, rw) = (member(h, gh), member(w, gw));
    let s = a.sum_dim_intlist(1, false, a.kind()); // [B, H, W]
    rh.matmul(&s)
        .matmul(&rw.transpose(0, 1))
        .view([size[0], gh * gw])
}

pub(super) fn attribute(ex: &Explainer, x: &ModelInput, bar: &ProgressBar) -> Result<Attribution> {
    let n = x.batch_size() as usize;
    let (p, k) = (ex.features().len(), ex.n_outputs());
    let device = ex.model.device();
    let weights = ex.background.weights().to_vec();
    let m = weights.len();
    let (bg_parts, ranges) = tch::no_grad(|| embed_all(ex, ex.background.input()))?;

    // which feature each part feeds
    let mut metas = Vec::with_capacity(bg_parts.len());
    let feature_of = |name: &str| -> usize {
        let g = ex.group_of(name);
        ex.features()
            .iter()
            .position(|f| f.name == g)
            .expect("every part name is a feature (resolve_features)")
    };
    let n_wide = ex.layout().wide;
    for j in 0..n_wide {
        metas.push(PartMeta {
            feature: feature_of(&ex.names.wide[j]),
            kind: PartKind::Vector,
            text_index: 0,
        });
    }
    let mut n_token_parts = 0;
    for (c, (comp, r)) in ex.model.components().iter().zip(&ranges).enumerate() {
        let names = part_names(comp.as_ref(), c, r.len());
        for (i, name) in r.clone().zip(names) {
            let size = bg_parts[i].size();
            let kind = match size.len() {
                3 => PartKind::Tokens(size[1] as usize),
                4 => PartKind::Image {
                    h: size[2] as usize,
                    w: size[3] as usize,
                },
                _ => PartKind::Vector,
            };
            metas.push(PartMeta {
                feature: feature_of(&name),
                kind,
                text_index: n_token_parts,
            });
            if let PartKind::Tokens(_) = kind {
                n_token_parts += 1;
            }
        }
    }
    let grid = ex.image_grid();
    let positions = |kind: PartKind| match kind {
        PartKind::Vector => 0,
        PartKind::Tokens(l) => l,
        PartKind::Image { h, w } => grid[0].min(h) * grid[1].min(w),
    };
    let detail_parts: Vec<usize> = (0..metas.len())
        .filter(|&i| metas[i].kind != PartKind::Vector)
        .collect();

    // references and base values
    let (refs, base_row): (Vec<Tensor>, Vec<f64>) = match ex.config.method {
        Method::IntegratedGradients {
            baseline: IgBaseline::BackgroundMean,
            ..
        } => {
            let w = Tensor::from_slice(&weights).to_device(device);
            let refs: Vec<Tensor> = tch::no_grad(|| {
                bg_parts
                    .iter()
                    .map(|t| {
                        let mut shape = vec![m as i64];
                        shape.extend(std::iter::repeat_n(1, t.dim() - 1));
                        (t.to_kind(Kind::Double) * w.view(shape.as_slice()))
                            .sum_dim_intlist(0, true, Kind::Double)
                            .to_kind(t.kind())
                    })
                    .collect()
            });
            let base = tch::no_grad(|| ex.link(&forward_parts(ex, &refs, &ranges)));
            (refs, super::to_vec_f64(&base))
        }
        _ => (bg_parts, ex.expected_value()),
    };

    // the jobs of a row
    let jobs_for = |row: usize, local: i64| -> Vec<Job> {
        match ex.config.method {
            Method::IntegratedGradients { steps, baseline } => {
                let (nodes, ws) = gauss_legendre(steps);
                let refs: Vec<(i64, f64)> = match baseline {
                    IgBaseline::BackgroundMean => vec![(0, 1.0)],
                    IgBaseline::BackgroundRows => weights
                        .iter()
                        .enumerate()
                        .map(|(i, &w)| (i as i64, w))
                        .collect(),
                };
                refs.iter()
                    .flat_map(|&(r, wr)| {
                        nodes.iter().zip(&ws).map(move |(&a, &w)| Job {
                            row: local,
                            reference: r,
                            alpha: a as f32,
                            weight: w * wr,
                        })
                    })
                    .collect()
            }
            Method::GradientShap { samples } => {
                let mut rng = ChaCha8Rng::seed_from_u64(
                    ex.seed() ^ (row as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                // (reference, weight) pairs: stratified by background row when there are at
                // least as many samples as rows, else drawn by weight
                let picks: Vec<(usize, f64)> = if samples >= m {
                    weights
                        .iter()
                        .enumerate()
                        .flat_map(|(i, &w)| {
                            let count = ((samples as f64 * w).round() as usize).max(1);
                            std::iter::repeat_n((i, w / count as f64), count)
                        })
                        .collect()
                } else {
                    let cum: Vec<f64> = weights
                        .iter()
                        .scan(0.0, |s, w| {
                            *s += w;
                            Some(*s)
                        })
                        .collect();
                    (0..samples)
                        .map(|_| {
                            let u: f64 = rng.random::<f64>() * cum[m - 1];
                            let r = cum.partition_point(|&c| c < u).min(m - 1);
                            (r, 1.0 / samples as f64)
                        })
                        .collect()
                };
                // α stratified over [0, 1]: the t-th of T draws falls in a random one of the T
                // equal slices, each slice used once
                let t = picks.len();
                let mut slices: Vec<usize> = (0..t).collect();
                slices.shuffle(&mut rng);
                picks
                    .into_iter()
                    .zip(slices)
                    .map(|((r, w), slice)| Job {
                        row: local,
                        reference: r as i64,
                        alpha: ((slice as f64 + rng.random::<f64>()) / t as f64) as f32,
                        weight: w,
                    })
                    .collect()
            }
            _ => unreachable!("gradient methods only"),
        }
    };

    // part → feature matrix for summing part values into features
    let mut fmap = vec![0f64; metas.len() * p];
    for (i, meta) in metas.iter().enumerate() {
        fmap[i * p + meta.feature] = 1.0;
    }
    let fmap = Tensor::from_slice(&fmap)
        .view([metas.len() as i64, p as i64])
        .to_device(device);

    let per_row: usize = refs
        .iter()
        .map(|t| t.size().iter().skip(1).product::<i64>() as usize)
        .sum::<usize>()
        * 3; // point, delta and gradient of each part
    let call_rows = ex.rows_per_call(per_row);
    let jobs_per_row = jobs_for(0, 0).len().max(1);
    let block_rows = (4 * call_rows / jobs_per_row).clamp(1, n.max(1));

    let mut values = vec![0f64; n * p * k];
    let mut details: Vec<Vec<f64>> = detail_parts
        .iter()
        .map(|&i| vec![0f64; n * positions(metas[i].kind) * k])
        .collect();
    let mut start = 0usize;
    while start < n {
        let len = block_rows.min(n - start);
        let xb = x.map(|t| t.narrow(0, start as i64, len as i64));
        let (x_parts, _) = tch::no_grad(|| embed_all(ex, &xb))?;
        let jobs: Vec<Job> = (0..len)
            .flat_map(|i| jobs_for(start + i, i as i64))
            .collect();
        let mut acc: Vec<Tensor> = (0..k)
            .map(|_| Tensor::zeros([len as i64, p as i64], (Kind::Double, device)))
            .collect();
        let mut det_acc: Vec<Vec<Tensor>> = detail_parts
            .iter()
            .map(|&i| {
                (0..k)
                    .map(|_| {
                        Tensor::zeros(
                            [len as i64, positions(metas[i].kind) as i64],
                            (Kind::Double, device),
                        )
                    })
                    .collect()
            })
            .collect();
        for chunk in jobs.chunks(call_rows) {
            let b = chunk.len() as i64;
            let rows = Tensor::from_slice(&chunk.iter().map(|j| j.row).collect::<Vec<_>>())
                .to_device(device);
            let refs_idx =
                Tensor::from_slice(&chunk.iter().map(|j| j.reference).collect::<Vec<_>>())
                    .to_device(device);
            let alpha = Tensor::from_slice(&chunk.iter().map(|j| j.alpha).collect::<Vec<_>>())
                .to_device(device);
            let omega = Tensor::from_slice(&chunk.iter().map(|j| j.weight).collect::<Vec<_>>())
                .to_device(device);
            let (deltas, points): (Vec<Tensor>, Vec<Tensor>) = tch::no_grad(|| {
                x_parts
                    .iter()
                    .zip(&refs)
                    .map(|(xp, rp)| {
                        let xs = xp.index_select(0, &rows);
                        let rs = rp.index_select(0, &refs_idx);
                        let delta = &xs - &rs;
                        let shape = shape_of(b, xs.dim());
                        let a = alpha.view(shape.as_slice()).to_kind(xs.kind());
                        let point = (&rs + &delta * a).detach().set_requires_grad(true);
                        (delta, point)
                    })
                    .unzip()
            });
            let out = ex.link(&forward_parts(ex, &points, &ranges));
            for (o, acc_o) in acc.iter_mut().enumerate() {
                let grads = Tensor::run_backward(
                    &[out.select(1, o as i64).sum(Kind::Float)],
                    &points,
                    o + 1 < k,
                    false,
                );
                tch::no_grad(|| {
                    let mut per_part = Vec::with_capacity(points.len());
                    let mut d = 0;
                    for (i, (delta, g)) in deltas.iter().zip(&grads).enumerate() {
                        let shape = shape_of(b, delta.dim());
                        let a = (delta * g).to_kind(Kind::Double) * omega.view(shape.as_slice());
                        let total = a.flatten(1, -1).sum_dim_intlist(1, false, Kind::Double);
                        per_part.push(total);
                        if metas[i].kind != PartKind::Vector {
                            let fine = match metas[i].kind {
                                PartKind::Tokens(_) => a.sum_dim_intlist(-1, false, Kind::Double),
                                _ => regions(&a, grid),
                            };
                            let _ = det_acc[d][o].index_add_(0, &rows, &fine);
                            d += 1;
                        }
                    }
                    let contrib = Tensor::stack(&per_part, 1).matmul(&fmap); // [B, P]
                    let _ = acc_o.index_add_(0, &rows, &contrib);
                });
            }
        }
        for (o, acc_o) in acc.iter().enumerate() {
            let v = super::to_vec_f64(acc_o);
            for r in 0..len {
                for j in 0..p {
                    values[((start + r) * p + j) * k + o] = v[r * p + j];
                }
            }
        }
        for (d, &i) in detail_parts.iter().enumerate() {
            let pos = positions(metas[i].kind);
            for (o, t) in det_acc[d].iter().enumerate() {
                let v = super::to_vec_f64(t);
                for r in 0..len {
                    for q in 0..pos {
                        details[d][((start + r) * pos + q) * k + o] = v[r * pos + q];
                    }
                }
            }
        }
        bar.inc(len as u64);
        start += len;
    }

    let base: Vec<f64> = (0..n).flat_map(|_| base_row.iter().copied()).collect();
    let mut out_details = Vec::with_capacity(detail_parts.len());
    for (d, &i) in detail_parts.iter().enumerate() {
        let feature = ex.features()[metas[i].feature].name.clone();
        let kind = match metas[i].kind {
            PartKind::Tokens(l) => {
                let ids = token_ids(x, metas[i].text_index, l).unwrap_or_else(|| vec![0; n * l]);
                DetailKind::Tokens {
                    seq_len: l,
                    token_ids: ids,
                    tokens: Vec::new(),
                }
            }
            PartKind::Image { h, w } => DetailKind::Regions {
                rows: grid[0].min(h),
                cols: grid[1].min(w),
            },
            PartKind::Vector => unreachable!(),
        };
        out_details.push(Detail {
            feature,
            kind,
            values: std::mem::take(&mut details[d]),
        });
    }
    Ok(Attribution {
        values,
        base,
        details: out_details,
    })
}

/// The ids `[N, seq_len]` of text input `index`, when its length is `seq_len`.
fn token_ids(x: &ModelInput, index: usize, seq_len: usize) -> Option<Vec<i64>> {
    let ids = x.text.get(index)?;
    if ids.size().get(1) != Some(&(seq_len as i64)) {
        return None;
    }
    host_values(ids, Kind::Int64)
}

#[cfg(test)]
mod tests {
    use super::gauss_legendre;

    #[test]
    fn gauss_legendre_integrates_polynomials() {
        let (x, w) = gauss_legendre(5);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // exact up to degree 9 on [0, 1]
        let i: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(9)).sum();
        assert!((i - 0.1).abs() < 1e-12);
        let (x1, w1) = gauss_legendre(1);
        assert!((x1[0] - 0.5).abs() < 1e-12 && (w1[0] - 1.0).abs() < 1e-12);
    }
}
