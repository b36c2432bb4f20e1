//! Loaders for the data sets bundled in `datasets/`, returned as Polars DataFrames.
//!
//! The folder is found at `$WIDEDEEP_DATASETS` when set, else next to this crate's manifest.
//! MovieLens 100k, whose licence forbids redistribution, is not bundled: [`movielens100k`]
//! fetches it on first use.
use crate::error::{Result, WideDeepError};
use crate::macros::ensure;
use polars::prelude::*;
use std::path::PathBuf;

mod movielens;
pub use movielens::{
    movielens100k, movielens100k_cache_dir, movielens100k_from_dir, MovieLens100k, GENRES,
    MOVIELENS_DIR_VAR,
};

/// The folder holding the bundled data files.
pub fn datasets_dir() -> PathBuf {
    std::env::var_os("WIDEDEEP_DATASETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("datasets"))
}

/// Reads one Parquet file into a DataFrame; errors name the file.
pub fn read_parquet(path: impl Into<PathBuf>) -> Result<DataFrame> {
    let path = path.into();
    let file = std::fs::File::open(&path).map_err(|e| WideDeepError::io(&path, e))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| WideDeepError::Io {
            source: std::io::Error::other(e.to_string()),
            path,
        })
}
/// The Adult columns that the examples and benchmarks use: every categorical column (with
/// `capital-gain` and `capital-loss` as categories, as the reference's Adult examples treat
/// them), the three continuous ones, and a wide part of eight columns plus two crossed pairs.
pub mod adult_columns {
    /// Categorical (embedded) columns.
    pub const CATEGORICAL: [&str; 10] = [
        "workclass",
        "education",
        "marital-status",
        "occupation",
        "relationship",
        "race",
        "gender",
        "native-country",
        "capital-gain",
        "capital-loss",
    ];
    /// The categorical columns without `race` and `native-country`: the smaller set of the
    /// quick tests and benchmarks.
    pub const CATEGORICAL_SMALL: [&str; 8] = [
        "workclass",
        "education",
        "marital-status",
        "occupation",
        "relationship",
        "gender",
        "capital-gain",
        "capital-loss",
    ];
    /// Continuous columns.
    pub const CONTINUOUS: [&str; 3] = ["age", "educational-num", "hours-per-week"];
    /// Columns of the wide (linear) part.
    pub const WIDE: [&str; 8] = [
        "education",
        "relationship",
        "workclass",
        "occupation",
        "native-country",
        "gender",
        "capital-gain",
        "capital-loss",
    ];
    /// The target column and its positive class.
    pub const TARGET: &str = "income";
    /// The positive class of [`TARGET`].
    pub const POSITIVE_CLASS: &str = ">50K";

    /// The crossed wide columns: education × occupation and native-country × occupation.
    pub fn crossed() -> Vec<Vec<String>> {
        [
            ["education", "occupation"],
            ["native-country", "occupation"],
        ]
        .iter()
        .map(|pair| pair.iter().map(|c| c.to_string()).collect())
        .collect()
    }
}

/// The California housing columns: the eight numeric block-group features and the target.
pub mod california_columns {
    /// The features, all continuous.
    pub const FEATURES: [&str; 8] = [
        "MedInc",
        "HouseAge",
        "AveRooms",
        "AveBedrms",
        "Population",
        "AveOccup",
        "Latitude",
        "Longitude",
    ];
    /// The regression target: the median house value, in $100k.
    pub const TARGET: &str = "MedHouseVal";
}

/// UCI Adult (census income): 48,842 rows × 15 columns; target `income` (`<=50K` / `>50K`).
pub fn adult() -> Result<DataFrame> {
    read_parquet(datasets_dir().join("adult.parquet"))
}

/// California housing: 20,640 rows × 9 float columns; regression target `MedHouseVal`.
pub fn california_housing() -> Result<DataFrame> {
    read_parquet(datasets_dir().join("california_housing.parquet"))
}

/// Women's e-commerce clothing reviews: 23,486 rows; text `Review Text`, targets `Rating`,
/// `Recommended IND`.
pub fn womens_ecommerce_reviews() -> Result<DataFrame> {
    read_parquet(datasets_dir().join("womens_ecommerce_reviews.parquet"))
}

/// UCI Ecoli: 336 rows, 7 numeric features, imbalanced multiclass target `class`.
pub fn ecoli() -> Result<DataFrame> {
    read_parquet(datasets_dir().join("ecoli.parquet"))
}

/// mnist5k labels: columns `image` (path relative to [`mnist5k_dir`]) and `label` (0–9).
pub fn mnist5k_labels() -> Result<DataFrame> {
    let path = mnist5k_dir().join("labels.csv");
    let text = std::fs::read_to_string(&path).map_err(|e| WideDeepError::io(&path, e))?;
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let bad = || WideDeepError::io(&path, std::io::Error::other(format!("bad line {}", i + 1)));
        let (img, label) = line.split_once(',').ok_or_else(bad)?;
        images.push(img.to_string());
        labels.push(label.trim().parse::<i64>().map_err(|_| bad())?);
    }
    let n = labels.len();
    Ok(DataFrame::new(
        n,
        vec![
            Column::new("image".into(), images),
            Column::new("label".into(), labels),
        ],
    )?)
}

/// The folder of the mnist5k PNG images (`images/NNNN.png`) and `labels.csv`.
pub fn mnist5k_dir() -> PathBuf {
    datasets_dir().join("mnist5k")
}

/// Splits `df` into a shuffled train part and a `test_fraction` test part, reproducibly for a
/// given `seed`.
pub fn train_test_split(
    df: &DataFrame,
    test_fraction: f64,
    seed: u64,
) -> Result<(DataFrame, DataFrame)> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    ensure!(
        test_fraction > 0.0 && test_fraction < 1.0,
        config("test_fraction"),
        "must be in (0, 1), got {test_fraction}"
    );
    let n = df.height();
    let n_test = (n as f64 * test_fraction).round() as usize;
    ensure!(
        !(n_test == 0 || n_test == n),
        config("test_fraction"),
        "{test_fraction} of {n} rows leaves a part empty"
    );
    let mut idx: Vec<IdxSize> = (0..n as IdxSize).collect();
    idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let take = |ix: &[IdxSize]| df.take(&IdxCa::from_vec("idx".into(), ix.to_vec()));
    Ok((take(&idx[n_test..])?, take(&idx[..n_test])?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn split_is_a_seeded_partition() {
        let df = super::ecoli().unwrap();
        let (a, b) = super::train_test_split(&df, 0.25, 7).unwrap();
        assert_eq!((a.height(), b.height()), (252, 84));
        let (a2, _) = super::train_test_split(&df, 0.25, 7).unwrap();
        assert!(a.equals(&a2));
        assert!(super::train_test_split(&df, 1.0, 7).is_err());
    }

    #[test]
    fn bundled_sets_load_with_their_shapes() {
        assert_eq!(super::adult().unwrap().shape(), (48_842, 15));
        assert_eq!(super::california_housing().unwrap().shape(), (20_640, 9));
        assert_eq!(
            super::womens_ecommerce_reviews().unwrap().shape(),
            (23_486, 10)
        );
        assert_eq!(super::ecoli().unwrap().shape(), (336, 9));
        assert_eq!(super::mnist5k_labels().unwrap().shape(), (5_000, 2));
    }
}
