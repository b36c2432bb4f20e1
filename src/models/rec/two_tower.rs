//! The two-tower retrieval model (a dual encoder, as in Yi et al. 2019, "Sampling-Bias-Corrected
//! Neural Modeling for Large Corpus Item Recommendations"): a user tower and an item tower map
//! ids (and optional feature columns) into one `dim`-wide space; a user's score for an item is
//! the dot product (or cosine) of their vectors divided by a temperature. Retrieval is an exact
//! top-k over every item's vector.
//!
//! The model is not a [`Component`](crate::models::Component) of a
//! [`WideDeep`](crate::models::WideDeep) (it scores user–item pairs, not rows); it is trained by
//! [`Retriever::fit`](crate::training::retrieval::Retriever::fit) with in-batch negatives and
//! evaluated with [`training::metrics::topk`](crate::training::metrics::topk).
use crate::error::{Result, WideDeepError};
use crate::macros::{bail, ensure, setters};
use crate::models::alloc;
use crate::models::checks::check_index_range;
use crate::models::init::torch_linear;
use crate::models::mlp::Mlp;
use crate::models::tabular::embeddings::{TabEmbedConfig, TabEmbeddings};
use crate::models::{MlpConfig, ModelInput};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};
use widedeep_preprocessing::interactions::IdIndex;
use widedeep_preprocessing::{TabPreprocessor, Transform};

/// How the two towers' vectors are compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Similarity {
    /// `u · v / temperature` (the default).
    #[default]
    Dot,
    /// `cos(u, v) / temperature`: both vectors are L2-normalised first (a temperature around
    /// 0.05–0.1 is usual then).
    Cosine,
}

/// One tower: an id embedding and/or feature columns, an optional MLP, a projection to the
/// shared width.
///
/// The tower's output is its id embedding itself when it has no features, no MLP and
/// `embed_dim` equals the model's `dim` (matrix factorisation); otherwise the id embedding and
/// the features' embeddings are concatenated, go through the MLP (if any), and a linear layer
/// (no activation, so scores can be negative) projects them to `dim`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TowerConfig {
    /// Width of the id embedding (32); 0 for a tower of features only.
    pub embed_dim: i64,
    /// Feature columns of each user (item), embedded as the tabular models embed theirs; their
    /// values are a [`FeatureTable`] given to [`TwoTower::set_user_features`] /
    /// [`TwoTower::set_item_features`]. `None` (the default): ids only.
    pub features: Option<TabEmbedConfig>,
    /// An MLP on the concatenated embeddings before the projection (none by default).
    pub mlp: Option<MlpConfig>,
}

impl Default for TowerConfig {
    fn default() -> Self {
        Self {
            embed_dim: 32,
            features: None,
            mlp: None,
        }
    }
}

impl TowerConfig {
    setters!(embed_dim: i64);

    /// Sets `features`: the feature columns (e.g. `TabEmbedConfig::from_meta(&prep.meta()?)`).
    pub fn features(mut self, v: TabEmbedConfig) -> Self {
        self.features = Some(v);
        self
    }

    /// Sets `mlp`.
    pub fn mlp(mut self, v: MlpConfig) -> Self {
        self.mlp = Some(v);
        self
    }

    /// Whether the output is the bare id embedding (no projection) in a model of width `dim`.
    fn is_bare(&self, dim: i64) -> bool {
        self.features.is_none() && self.mlp.is_none() && self.embed_dim == dim
    }

    /// Width of the id embedding and the feature embeddings together.
    fn input_dim(&self) -> i64 {
        let features = self.features.as_ref().map_or(0, |f| {
            let cat: usize = f.cat_embed.iter().map(|c| c.embed_dim).sum();
            cat as i64 + f.cont_cols.len() as i64
        });
        self.embed_dim + features
    }

    fn validate(&self, prefix: &str) -> Result<()> {
        ensure!(
            self.embed_dim >= 0,
            config(format!("{prefix}.embed_dim")),
            "must be ≥ 0, got {}",
            self.embed_dim
        );
        if let Some(f) = &self.features {
            TabEmbeddings::validate(
                &f.cat_embed,
                &f.cont_cols,
                f.embed_dropout,
                &format!("{prefix}.features"),
            )?;
        }
        ensure!(
            self.input_dim() > 0,
            config(prefix),
            "a tower needs an id embedding (embed_dim > 0) or feature columns"
        );
        if let Some(m) = &self.mlp {
            m.validate(&format!("{prefix}.mlp"))?;
        }
        Ok(())
    }
}

/// Configuration of a [`TwoTower`] model. Start from [`TwoTowerConfig::new`] with the number
/// of users and items (the lengths of their [`IdIndex`]es).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TwoTowerConfig {
    /// Number of users (rows of the user id embedding), at least 1.
    pub n_users: i64,
    /// Number of items (rows of the item id embedding), at least 1.
    pub n_items: i64,
    /// Width of the shared space both towers map into (32).
    pub dim: i64,
    /// The user tower.
    pub user: TowerConfig,
    /// The item tower.
    pub item: TowerConfig,
    /// Dot product (the default) or cosine.
    pub similarity: Similarity,
    /// Scores are divided by it (1.0); finite and > 0.
    pub temperature: f64,
    /// Standard deviation of the normal initialisation of the id embeddings (0.1; PyTorch's
    /// `nn.Embedding` draws from N(0, 1), which makes initial dot products of width 32 vary by
    /// ±6 and slows training).
    pub init_std: f64,
    /// Seed of the weight initialisation.
    pub seed: u64,
}

impl Default for TwoTowerConfig {
    fn default() -> Self {
        Self {
            n_users: 0,
            n_items: 0,
            dim: 32,
            user: TowerConfig::default(),
            item: TowerConfig::default(),
            similarity: Similarity::Dot,
            temperature: 1.0,
            init_std: 0.1,
            seed: 1,
        }
    }
}

impl TwoTowerConfig {
    /// `n_users` users and `n_items` items, id embeddings of width 32 in both towers (matrix
    /// factorisation), dot product, temperature 1.
    pub fn new(n_users: usize, n_items: usize) -> Self {
        Self {
            n_users: n_users as i64,
            n_items: n_items as i64,
            ..Self::default()
        }
    }

    setters!(
        dim: i64,
        user: TowerConfig,
        item: TowerConfig,
        similarity: Similarity,
        temperature: f64,
        init_std: f64,
        seed: u64,
    );

    /// Sets `dim` and the id embedding width of both towers (a matrix factorisation of
    /// width `d`).
    pub fn embed_dim(mut self, d: i64) -> Self {
        self.dim = d;
        self.user.embed_dim = d;
        self.item.embed_dim = d;
        self
    }

    /// Checks every field without allocating; errors name it (`two_tower.temperature`,
    /// `two_tower.user.mlp.dropout`, …).
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("n_users", self.n_users), ("n_items", self.n_items)] {
            ensure!(
                v >= 1,
                config(format!("two_tower.{name}")),
                "must be ≥ 1, got {v}"
            );
        }
        ensure!(
            self.dim >= 1,
            config("two_tower.dim"),
            "must be ≥ 1, got {}",
            self.dim
        );
        for (name, v) in [
            ("temperature", self.temperature),
            ("init_std", self.init_std),
        ] {
            ensure!(
                v.is_finite() && v > 0.0,
                config(format!("two_tower.{name}")),
                "must be finite and > 0, got {v}"
            );
        }
        self.user.validate("two_tower.user")?;
        self.item.validate("two_tower.item")
    }
}

/// Feature values of every user (or item), row `i` for dense index `i`, as the tabular
/// models read them: categorical codes (0 = unseen/null) and continuous values.
#[derive(Debug)]
pub struct FeatureTable {
    /// Categorical codes `[n, n_cat]` i64 (`None` without categorical columns).
    pub cat: Option<Tensor>,
    /// Continuous values `[n, n_cont]` f32 (`None` without continuous columns).
    pub cont: Option<Tensor>,
}

impl FeatureTable {
    /// The features of `df` (one row per user or item, e.g. MovieLens' `users`), transformed by
    /// a fitted `prep` and placed at the row of each id in `ids` (read from the column
    /// `ids.column()`). Ids that `ids` does not know are skipped; ids without a row keep index
    /// 0 (unseen) and zeros; a repeated id keeps its last row.
    ///
    /// # Shapes
    /// - returns `cat` `[ids.len(), n_cat]` and `cont` `[ids.len(), n_cont]`
    pub fn from_frame(
        df: &polars::prelude::DataFrame,
        ids: &IdIndex,
        prep: &TabPreprocessor,
    ) -> Result<Self> {
        let rows = ids.transform(df)?;
        let data = prep.transform(df)?;
        let n = ids.len();
        let (n_cat, n_cont) = (data.cat.ncols(), data.cont.ncols());
        let mut cat = vec![0i64; n * n_cat];
        let mut cont = vec![0f32; n * n_cont];
        for (r, at) in rows.iter().enumerate() {
            let Some(at) = *at else { continue };
            for j in 0..n_cat {
                cat[at * n_cat + j] = data.cat[[r, j]];
            }
            for j in 0..n_cont {
                cont[at * n_cont + j] = data.cont[[r, j]];
            }
        }
        let n = n as i64;
        Ok(Self {
            cat: (n_cat > 0).then(|| Tensor::from_slice(&cat).view([n, n_cat as i64])),
            cont: (n_cont > 0).then(|| Tensor::from_slice(&cont).view([n, n_cont as i64])),
        })
    }
}

/// A built tower.
#[derive(Debug)]
struct Tower {
    id: Option<nn::Embedding>,
    /// The feature embeddings and the (non-trainable) feature values of every row.
    features: Option<(TabEmbeddings, Option<Tensor>, Option<Tensor>)>,
    mlp: Option<Mlp>,
    proj: Option<nn::Linear>,
    n: i64,
    name: &'static str,
}

impl Tower {
    /// Builds the tower under `path` (`id`, `features/…`, `mlp/…`, `proj`).
    fn new(
        path: &nn::Path,
        cfg: &TowerConfig,
        n: i64,
        dim: i64,
        std: f64,
        name: &'static str,
    ) -> Result<Self> {
        let prefix = format!("two_tower.{name}");
        let id = (cfg.embed_dim > 0)
            .then(|| -> Result<nn::Embedding> {
                alloc::check_table(&prefix, "id embedding", &[n, cfg.embed_dim], path.device())?;
                let init = nn::Init::Randn {
                    mean: 0.0,
                    stdev: std,
                };
                let emb_cfg = nn::EmbeddingConfig {
                    ws_init: init,
                    ..Default::default()
                };
                Ok(nn::embedding(path / "id", n, cfg.embed_dim, emb_cfg))
            })
            .transpose()?;
        let features = cfg
            .features
            .as_ref()
            .map(|f| -> Result<_> {
                let p = path / "features";
                let embed = TabEmbeddings::new(
                    &p,
                    &f.cat_embed,
                    &f.cont_cols,
                    f.cont_norm,
                    f.embed_dropout,
                    &format!("{prefix}.features"),
                )?;
                let device = path.device();
                let (n_cat, n_cont) = (f.cat_embed.len() as i64, f.cont_cols.len() as i64);
                let cat = (n_cat > 0).then(|| {
                    p.add(
                        "cat_values",
                        Tensor::zeros([n, n_cat], (Kind::Int64, device)),
                        false,
                    )
                });
                let cont = (n_cont > 0).then(|| {
                    p.add(
                        "cont_values",
                        Tensor::zeros([n, n_cont], (Kind::Float, device)),
                        false,
                    )
                });
                Ok((embed, cat, cont))
            })
            .transpose()?;
        let input_dim = cfg.input_dim();
        let mlp = cfg
            .mlp
            .as_ref()
            .map(|m| m.build(&(path / "mlp"), input_dim, &format!("{prefix}.mlp")))
            .transpose()?;
        let proj = (!cfg.is_bare(dim)).then(|| {
            let width = mlp.as_ref().map_or(input_dim, Mlp::output_dim);
            torch_linear(&(path / "proj"), width, dim, true)
        });
        Ok(Self {
            id,
            features,
            mlp,
            proj,
            n,
            name,
        })
    }

    /// The tower's vectors of the rows `ids`.
    ///
    /// # Shapes
    /// - `ids`: `[b]` i64 in `0..n`
    /// - returns `[b, dim]`
    fn forward_t(&self, ids: &Tensor, train: bool) -> Tensor {
        let mut parts = Vec::with_capacity(2);
        if let Some(id) = &self.id {
            parts.push(ids.apply(id));
        }
        if let Some((embed, cat, cont)) = &self.features {
            let input = ModelInput {
                cat: cat.as_ref().map(|t| t.index_select(0, ids)),
                cont: cont.as_ref().map(|t| t.index_select(0, ids)),
                ..Default::default()
            };
            parts.push(embed.forward_t(&input, train));
        }
        let mut x = if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Tensor::cat(&parts, 1)
        };
        if let Some(mlp) = &self.mlp {
            x = mlp.forward_t(&x, train);
        }
        match &self.proj {
            Some(p) => x.apply(p),
            None => x,
        }
    }

    /// Copies `table` into the feature values, checked against the tower's columns.
    fn set_features(&self, table: &FeatureTable) -> Result<()> {
        let input = format!("{}_features", self.name);
        let Some((embed, cat, cont)) = &self.features else {
            bail!(
                input(input),
                "the {} tower has no feature columns (set `features` in its config)",
                self.name
            );
        };
        for (what, dst, src) in [("cat", cat, &table.cat), ("cont", cont, &table.cont)] {
            match (dst, src) {
                (None, None) => {}
                (Some(dst), Some(src)) => {
                    ensure!(
                        dst.size() == src.size(),
                        input(format!("{input}.{what}")),
                        "expected {:?} (one row per {}), got {:?}",
                        dst.size(),
                        self.name,
                        src.size()
                    );
                }
                (Some(_), None) => bail!(input(format!("{input}.{what}")), "missing"),
                (None, Some(_)) => {
                    bail!(
                        input(format!("{input}.{what}")),
                        "the tower has no such columns"
                    )
                }
            }
        }
        embed.check_input(&ModelInput {
            cat: table.cat.as_ref().map(Tensor::shallow_clone),
            cont: table.cont.as_ref().map(Tensor::shallow_clone),
            ..Default::default()
        })?;
        if let Some(cont) = &table.cont {
            let finite = cont.isfinite().all().int64_value(&[]) == 1;
            ensure!(
                finite,
                input(format!("{input}.cont")),
                "holds a NaN or infinite value"
            );
        }
        tch::no_grad(|| {
            for (dst, src) in [(cat, &table.cat), (cont, &table.cont)] {
                if let (Some(dst), Some(src)) = (dst, src) {
                    dst.shallow_clone().f_copy_(src)?;
                }
            }
            Ok::<(), tch::TchError>(())
        })?;
        Ok(())
    }
}

/// The two-tower model: `users [b]`, `items [b]` (dense indices) → scores.
///
/// Build it with [`TwoTower::new`]; give feature values with [`TwoTower::set_user_features`]
/// / [`TwoTower::set_item_features`] when a tower has feature columns (they are saved with
/// the weights).
#[derive(Debug)]
pub struct TwoTower {
    vs: nn::VarStore,
    config: TwoTowerConfig,
    user: Tower,
    item: Tower,
}

/// Items scored per chunk by [`TwoTower::all_item_embeddings`].
const ITEM_CHUNK: i64 = 65_536;

const CONFIG_FILE: &str = "two_tower.json";
const WEIGHTS_FILE: &str = "two_tower.safetensors";

impl TwoTower {
    /// Builds the model on `device` with weights drawn from `config.seed` (under
    /// [`crate::torch_rng_lock`]); validates first. Tables too large to allocate are
    /// [`WideDeepError::ModelTooLarge`].
    pub fn new(config: &TwoTowerConfig, device: Device) -> Result<Self> {
        config.validate()?;
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(config.seed as i64);
        alloc::start_build();
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let (dim, std) = (config.dim, config.init_std);
        let user = alloc::guarded("two_tower.user", || {
            Tower::new(
                &(&root / "user"),
                &config.user,
                config.n_users,
                dim,
                std,
                "user",
            )
        })?;
        let item = alloc::guarded("two_tower.item", || {
            Tower::new(
                &(&root / "item"),
                &config.item,
                config.n_items,
                dim,
                std,
                "item",
            )
        })?;
        Ok(Self {
            vs,
            config: config.clone(),
            user,
            item,
        })
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &TwoTowerConfig {
        &self.config
    }

    /// The weights (and feature values, as non-trainable variables).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// The device of the weights.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The number of users.
    pub fn n_users(&self) -> usize {
        self.config.n_users as usize
    }

    /// The number of items.
    pub fn n_items(&self) -> usize {
        self.config.n_items as usize
    }

    /// Sets the feature values of every user.
    ///
    /// # Shapes
    /// - `table.cat`: `[n_users, n_cat]` i64, `table.cont`: `[n_users, n_cont]` f32, as the
    ///   user tower's `features` lists them
    pub fn set_user_features(&self, table: &FeatureTable) -> Result<()> {
        self.user.set_features(table)
    }

    /// Sets the feature values of every item.
    ///
    /// # Shapes
    /// - `table.cat`: `[n_items, n_cat]` i64, `table.cont`: `[n_items, n_cont]` f32
    pub fn set_item_features(&self, table: &FeatureTable) -> Result<()> {
        self.item.set_features(table)
    }

    /// Checks that `ids` are i64 indices in `0..n` of the tower `which`.
    fn check_ids(&self, ids: &Tensor, which: &str) -> Result<()> {
        let n = match which {
            "users" => self.user.n,
            _ => self.item.n,
        };
        ensure!(
            ids.dim() == 1,
            input(which),
            "expected [batch] indices, got {:?}",
            ids.size()
        );
        check_index_range(ids, which, n - 1)
    }

    /// Normalises the rows for the cosine similarity.
    fn finish(&self, x: Tensor) -> Tensor {
        match self.config.similarity {
            Similarity::Dot => x,
            Similarity::Cosine => {
                let norm = x.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
                x / norm
            }
        }
    }

    /// The user tower's vectors (L2-normalised for the cosine similarity).
    ///
    /// # Shapes
    /// - `users`: `[b]` i64 in `0..n_users`
    /// - returns `[b, dim]`
    pub fn user_embeddings(&self, users: &Tensor, train: bool) -> Tensor {
        self.finish(self.user.forward_t(users, train))
    }

    /// The item tower's vectors (L2-normalised for the cosine similarity).
    ///
    /// # Shapes
    /// - `items`: `[b]` i64 in `0..n_items`
    /// - returns `[b, dim]`
    pub fn item_embeddings(&self, items: &Tensor, train: bool) -> Tensor {
        self.finish(self.item.forward_t(items, train))
    }

    /// Every item's vector in evaluation mode, without gradients, in chunks.
    ///
    /// # Shapes
    /// - returns `[n_items, dim]`
    pub fn all_item_embeddings(&self) -> Tensor {
        tch::no_grad(|| {
            let n = self.item.n;
            let chunks: Vec<Tensor> = (0..n)
                .step_by(ITEM_CHUNK as usize)
                .map(|start| {
                    let len = ITEM_CHUNK.min(n - start);
                    let ids =
                        Tensor::arange_start(start, start + len, (Kind::Int64, self.device()));
                    self.item_embeddings(&ids, false)
                })
                .collect();
            Tensor::cat(&chunks, 0)
        })
    }

    /// Every pair's score: `sim(u, v) / temperature`.
    ///
    /// # Shapes
    /// - `user_vecs`: `[b_u, dim]`, `item_vecs`: `[b_i, dim]` (from the towers)
    /// - returns `[b_u, b_i]`
    pub fn similarity(&self, user_vecs: &Tensor, item_vecs: &Tensor) -> Tensor {
        user_vecs.matmul(&item_vecs.tr()) / self.config.temperature
    }

    /// The score of each `(users[i], items[i])` pair, in evaluation mode.
    ///
    /// # Shapes
    /// - `users`, `items`: `[b]` i64
    /// - returns `[b]`
    pub fn score(&self, users: &Tensor, items: &Tensor) -> Result<Tensor> {
        self.check_ids(users, "users")?;
        self.check_ids(items, "items")?;
        ensure!(
            users.size() == items.size(),
            input("items"),
            "{:?} items for {:?} users",
            items.size(),
            users.size()
        );
        Ok(tch::no_grad(|| {
            let u = self.user_embeddings(&users.to_device(self.device()), false);
            let v = self.item_embeddings(&items.to_device(self.device()), false);
            (u * v).sum_dim_intlist(1, false, Kind::Float) / self.config.temperature
        }))
    }

    /// Every item's score for each user, in evaluation mode.
    ///
    /// # Shapes
    /// - `users`: `[b]` i64 in `0..n_users`
    /// - returns `[b, n_items]` on the model's device
    pub fn score_all(&self, users: &Tensor) -> Result<Tensor> {
        self.check_ids(users, "users")?;
        let items = self.all_item_embeddings();
        Ok(tch::no_grad(|| {
            let u = self.user_embeddings(&users.to_device(self.device()), false);
            self.similarity(&u, &items)
        }))
    }

    /// The `k` best-scored items for `user` (dense indices with their scores, best first)
    /// among all items but `exclude` (e.g. the items the user already interacted with; see
    /// [`top_k_excluding`]).
    pub fn recommend(&self, user: usize, k: usize, exclude: &[usize]) -> Result<Vec<(usize, f32)>> {
        Ok(self
            .recommend_batch(&[user], k, &[exclude])?
            .pop()
            .expect("one user"))
    }

    /// [`TwoTower::recommend`] for several users at once (one matrix product).
    pub fn recommend_batch(
        &self,
        users: &[usize],
        k: usize,
        exclude: &[&[usize]],
    ) -> Result<Vec<Vec<(usize, f32)>>> {
        ensure!(
            exclude.len() == users.len(),
            input("exclude"),
            "{} exclusion lists for {} users",
            exclude.len(),
            users.len()
        );
        let ids: Vec<i64> = users.iter().map(|&u| u as i64).collect();
        let scores = self.score_all(&Tensor::from_slice(&ids))?;
        top_k_excluding(&scores, exclude, k)
    }

    /// Saves the configuration (`two_tower.json`) and the weights with the feature values
    /// (`two_tower.safetensors`) into the directory `dir` (created if needed).
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| WideDeepError::io(dir, e))?;
        let path = dir.join(CONFIG_FILE);
        let text = serde_json::to_string_pretty(&self.config)?;
        std::fs::write(&path, text).map_err(|e| WideDeepError::io(&path, e))?;
        self.vs.save(dir.join(WEIGHTS_FILE))?;
        Ok(())
    }

    /// Loads a model saved by [`TwoTower::save`] onto `device`: every tensor must be in the
    /// file with the model's shape, and nothing else (errors name the file and the tensor).
    pub fn load(dir: impl AsRef<Path>, device: Device) -> Result<Self> {
        let dir = dir.as_ref();
        let bad = |file: &str, reason: String| WideDeepError::BadPipeline {
            path: dir.to_path_buf(),
            reason: format!("{file}: {reason}"),
        };
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| bad(CONFIG_FILE, e.to_string()))?;
        let config: TwoTowerConfig =
            serde_json::from_str(&text).map_err(|e| bad(CONFIG_FILE, e.to_string()))?;
        let model = Self::new(&config, device)?;
        crate::models::weights::load_var_store(&model.vs, &dir.join(WEIGHTS_FILE))
            .map_err(|reason| bad(WEIGHTS_FILE, reason))?;
        Ok(model)
    }
}

/// The `k` best-scored columns of each row of `scores`, leaving out the columns listed for
/// that row in `exclude`: exact top-k, best first, as `(column, score)` pairs. A row gets
/// fewer than `k` pairs when fewer columns remain. Ties are returned in libtorch's `topk`
/// order (unspecified among equal scores).
///
/// # Shapes
/// - `scores`: `[b, n]` float, `exclude`: `b` lists of columns in `0..n`
pub fn top_k_excluding(
    scores: &Tensor,
    exclude: &[&[usize]],
    k: usize,
) -> Result<Vec<Vec<(usize, f32)>>> {
    let size = scores.size();
    ensure!(
        size.len() == 2 && size[0] == exclude.len() as i64,
        input("scores"),
        "expected [{}, n_items], got {size:?}",
        exclude.len()
    );
    let n = size[1] as usize;
    let mut masked = scores.to_kind(Kind::Float).to_device(Device::Cpu).copy();
    let mut rows = Vec::new();
    let mut cols = Vec::new();
    for (r, ex) in exclude.iter().enumerate() {
        for &c in ex.iter() {
            ensure!(
                c < n,
                input("exclude"),
                "item {c} is not below the number of items {n}"
            );
            rows.push(r as i64);
            cols.push(c as i64);
        }
    }
    if !rows.is_empty() {
        let index = [
            Some(Tensor::from_slice(&rows)),
            Some(Tensor::from_slice(&cols)),
        ];
        masked = masked.index_put_(&index, &Tensor::from(f32::NEG_INFINITY), false);
    }
    let kk = k.min(n) as i64;
    if kk == 0 {
        return Ok(vec![Vec::new(); exclude.len()]);
    }
    let (values, indices) = masked.topk(kk, 1, true, true);
    let values = Vec::<f32>::try_from(values.flatten(0, -1))?;
    let indices = Vec::<i64>::try_from(indices.flatten(0, -1))?;
    Ok(values
        .chunks(kk as usize)
        .zip(indices.chunks(kk as usize))
        .map(|(v, i)| {
            v.iter()
                .zip(i)
                .filter(|(s, _)| **s != f32::NEG_INFINITY)
                .map(|(&s, &c)| (c as usize, s))
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests;
