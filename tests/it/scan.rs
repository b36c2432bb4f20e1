//! Fitting, training and evaluation streamed from Parquet folders: `ParquetScan`,
//! `Preprocessors::fit_scan`, `Dataset::scan`, `Trainer::fit_stream`,
//! `Trainer::evaluate_stream`.
use crate::common::*;
use crate::parquet_stream::{adult_frames, write_groups};
use polars::prelude::*;
use std::path::{Path, PathBuf};
use widedeep::datasets;
use widedeep::pipeline::{ParquetScan, ScanOptions};
use widedeep::prelude::*;
use widedeep::training::BatchSource;

/// Writes `df` as `files` Parquet files `part-{k}.parquet` of consecutive rows in `dir`, in
/// row groups of 256 rows; returns the folder.
fn folder(df: &DataFrame, dir: &Path, files: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let per = df.height().div_ceil(files);
    for k in 0..files {
        let part = df.slice((k * per) as i64, per);
        write_groups(&part, &dir.join(format!("part-{k}.parquet")), 256);
    }
    dir.to_path_buf()
}

fn json(prep: &Preprocessors) -> serde_json::Value {
    serde_json::to_value(prep).unwrap()
}

#[test]
fn fit_scan_equals_fit_on_the_collected_rows() {
    let (df, _) = adult_frames(3_000, 10);
    let tmp = tempfile::tempdir().unwrap();
    let dir = folder(&df, tmp.path(), 3);
    let quantized = || {
        adult_preprocessors().tab(
            TabPreprocessor::new(&CAT, &CONT)
                .quantize("age", Quantization::Bins(6))
                .missing_indicator(true),
        )
    };
    let mut whole = quantized();
    whole.fit(&df).unwrap();
    for path in [dir.clone(), dir.join("part-*.parquet")] {
        let scan = ParquetScan::open(&path, 600).unwrap();
        assert_eq!(scan.rows(), 3_000);
        assert_eq!(scan.files().len(), 3);
        // 1000 rows per file in row groups of 256: pages 512 + 488
        assert_eq!(scan.pages(), 6);
        let mut streamed = quantized();
        streamed.fit_scan(&scan).unwrap();
        assert_eq!(json(&streamed), json(&whole));
    }
}

/// With shuffling off, a streamed epoch takes the in-memory epoch's batches: same weights.
#[test]
fn unshuffled_stream_trains_like_the_in_memory_rows() {
    let (df, _) = adult_frames(2_000, 500);
    let tmp = tempfile::tempdir().unwrap();
    let dir = folder(&df, tmp.path(), 4);
    let mut prep = adult_preprocessors();
    prep.fit(&df).unwrap();
    let data = prep.transform(&df).unwrap();
    let trainer = || {
        let model = WideDeep::new(&wide_tabmlp_config(&prep, 5), Device::Cpu).unwrap();
        let mut cfg = trainer_config(&prep, 5, 2);
        cfg.shuffle = false;
        Trainer::new(model, cfg).unwrap()
    };
    let mut memory = trainer();
    memory.fit(&data, None).unwrap();
    let mut streamed = trainer();
    let scan = Dataset::scan(
        &dir,
        &prep,
        ScanOptions::default().shuffle(false).page_rows(300),
    )
    .unwrap();
    assert_eq!(scan.rows(), 2_000);
    streamed.fit_stream(&scan, None).unwrap();
    let a = memory.model().var_store().variables();
    let b = streamed.model().var_store().variables();
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        let d = (t - &b[name]).abs().max().double_value(&[]);
        assert!(d <= 1e-6, "{name}: max |difference| {d}");
    }
    for (ea, eb) in memory
        .history()
        .epochs
        .iter()
        .zip(&streamed.history().epochs)
    {
        assert!((ea["loss"] - eb["loss"]).abs() < 1e-9);
        assert!((ea["auc"] - eb["auc"]).abs() < 1e-9);
    }
    // evaluation over a stream is evaluation over the rows
    let eval_scan = Dataset::scan(&dir, &prep, ScanOptions::default().page_rows(256)).unwrap();
    let streamed_eval = memory.evaluate_stream(&eval_scan, None).unwrap();
    let in_memory = memory.evaluate(&data, None).unwrap();
    for (k, v) in &in_memory {
        assert!(
            (v - streamed_eval[k]).abs() < 1e-6,
            "{k}: {v} vs {}",
            streamed_eval[k]
        );
    }
}

/// Every epoch's shuffled batches hold every row once, in an order set by the seed and the
/// epoch; batches are full but the last.
#[test]
fn shuffled_stream_visits_every_row_once_per_epoch() {
    let n: usize = 1_700;
    let ids: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let y: Vec<i64> = (0..n).map(|i| i64::from(i % 3 == 0)).collect();
    let df = df!("id" => ids, "y" => y).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = folder(&df, tmp.path(), 2);
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&[], &["id"]).scaling(Scaling::None))
        .target(TargetEncoder::new("y", TargetKind::Binary));
    prep.fit(&df).unwrap();
    let options = ScanOptions::default().page_rows(200).shuffle_buffer(500);
    let scan = Dataset::scan(&dir, &prep, options).unwrap();
    let epoch = |e: usize, seed: u64| -> (Vec<i64>, Vec<i64>) {
        let mut sizes = Vec::new();
        let mut seen = Vec::new();
        for batch in scan.batches(e, 64, seed).unwrap() {
            let batch = batch.unwrap();
            sizes.push(batch.len());
            let cont = batch.input.cont.unwrap().view([-1]);
            seen.extend(
                Vec::<f32>::try_from(cont)
                    .unwrap()
                    .iter()
                    .map(|v| *v as i64),
            );
        }
        (seen, sizes)
    };
    let (e0, sizes) = epoch(0, 9);
    assert_eq!(sizes.len(), n.div_ceil(64));
    assert!(sizes[..sizes.len() - 1].iter().all(|&s| s == 64));
    assert_eq!(sizes.iter().sum::<i64>(), n as i64);
    let mut sorted = e0.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..n as i64).collect::<Vec<_>>());
    let (e1, _) = epoch(1, 9);
    assert_ne!(e0, e1, "a new order every epoch");
    assert_eq!(
        epoch(0, 9).0,
        e0,
        "the order is a function of seed and epoch"
    );
    assert_ne!(epoch(0, 10).0, e0);
    // rows are mixed across pages, not only pages reordered
    let in_page_order = e0.windows(2).filter(|w| w[1] == w[0] + 1).count();
    assert!(in_page_order < n / 10, "{in_page_order} consecutive pairs");
    // a model learns from it: training runs with validation streamed too
    let model = WideDeep::new(
        &WideDeepConfig::new().deeptabular(TabMlpConfig::from_meta(&prep.tab_meta().unwrap())),
        Device::Cpu,
    )
    .unwrap();
    let mut trainer = Trainer::new(
        model,
        TrainerConfig::new(prep.objective().unwrap())
            .epochs(2)
            .verbose(0),
    )
    .unwrap();
    trainer.fit_stream(&scan, Some(&scan)).unwrap();
    assert_eq!(trainer.history().epochs.len(), 2);
    assert!(trainer.history().epochs[1]["val_loss"].is_finite());
}

#[test]
fn bad_files_are_named_with_the_row() {
    let (df, _) = adult_frames(3_000, 10);
    let tmp = tempfile::tempdir().unwrap();
    let mut prep = adult_preprocessors();
    prep.fit(&df).unwrap();

    // a null target at row 2,123 of the data: row 123 of the third file
    let mut income: Vec<Option<String>> = df
        .column("income")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_owned))
        .collect();
    income[2_123] = None;
    let mut nulls = df.clone();
    nulls
        .with_column(Column::new("income".into(), income))
        .unwrap();
    let dir = folder(&nulls, &tmp.path().join("nulls"), 3);
    let check = |err: WideDeepError| {
        let text = err.to_string();
        assert!(matches!(err, WideDeepError::InputMismatch { .. }), "{text}");
        for part in ["part-2.parquet", "income", "row 123 "] {
            assert!(text.contains(part), "`{part}` not in: {text}");
        }
    };
    let scan = Dataset::scan(&dir, &prep, ScanOptions::default().page_rows(400)).unwrap();
    let mut trainer = wide_tabmlp_trainer(&prep, 1, 1);
    check(trainer.fit_stream(&scan, None).unwrap_err());
    let mut refit = adult_preprocessors();
    check(
        refit
            .fit_scan(&ParquetScan::open(&dir, 400).unwrap())
            .unwrap_err(),
    );

    // a file whose `age` holds strings
    let dir = tmp.path().join("schema");
    folder(&df, &dir, 2);
    let mut strings = df.slice(0, 10);
    let age = strings
        .column("age")
        .unwrap()
        .cast(&DataType::String)
        .unwrap();
    strings.with_column(age).unwrap();
    write_groups(&strings, &dir.join("part-9.parquet"), 256);
    let err = ParquetScan::open(&dir, 400).err().unwrap().to_string();
    for part in ["part-9.parquet", "`age`", "part-0.parquet"] {
        assert!(err.contains(part), "`{part}` not in: {err}");
    }

    // a truncated file
    let dir = tmp.path().join("truncated");
    folder(&df, &dir, 2);
    let file = dir.join("part-1.parquet");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let err = ParquetScan::open(&dir, 400).err().unwrap();
    assert!(
        matches!(&err, WideDeepError::InputMismatch { input, .. } if input.ends_with("part-1.parquet")),
        "{err}"
    );

    // nothing to read
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        ParquetScan::open(&empty, 400).err().unwrap(),
        WideDeepError::Missing(_)
    ));
}

/// Text (word counts) and image (pixel sums) preprocessors fitted from a scan equal the
/// in-memory fit; batches streamed from it carry the decoded images.
#[test]
fn fit_scan_covers_text_and_images() {
    let df = digits_frame(120, "note");
    let tmp = tempfile::tempdir().unwrap();
    let dir = folder(&df, tmp.path(), 2);
    let prep = || digits_preprocessors("note", TargetEncoder::new("y", TargetKind::Binary));
    let mut whole = prep();
    whole.fit(&df).unwrap();
    let mut streamed = prep();
    streamed
        .fit_scan(&ParquetScan::open(&dir, 50).unwrap())
        .unwrap();
    assert_eq!(json(&streamed), json(&whole));
    let scan = Dataset::scan(&dir, &streamed, ScanOptions::default().shuffle(false)).unwrap();
    let batch = scan.batches(0, 120, 0).unwrap().next().unwrap().unwrap();
    let memory = whole.transform(&df).unwrap();
    assert!(batch.input.image[0].equal(&memory.input.image[0]));
    assert!(batch.input.text[0].equal(&memory.input.text[0]));
}

/// For data-parallel training each rank streams its own pages: the ranks' real rows are
/// disjoint and cover the data, and every rank is padded to the same number of rows.
#[test]
fn shards_are_disjoint_cover_the_rows_and_pad_to_one_length() {
    let n: usize = 1_030;
    let ids: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let y: Vec<i64> = (0..n).map(|i| i64::from(i % 2 == 0)).collect();
    let df = df!("id" => ids, "y" => y).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = folder(&df, tmp.path(), 3);
    let mut prep = Preprocessors::new()
        .tab(TabPreprocessor::new(&[], &["id"]).scaling(Scaling::None))
        .target(TargetEncoder::new("y", TargetKind::Binary));
    prep.fit(&df).unwrap();
    for shuffle in [false, true] {
        let options = ScanOptions::default()
            .page_rows(100)
            .shuffle(shuffle)
            .shuffle_buffer(300);
        let scan = Dataset::scan(&dir, &prep, options).unwrap();
        let world = 3;
        let padded = scan.shard_rows(world);
        let mut all = Vec::new();
        for rank in 0..world {
            let (batches, real) = scan.shard(1, 64, 4, rank, world).unwrap();
            let mut ids = Vec::new();
            for b in batches {
                let cont = b.unwrap().input.cont.unwrap().view([-1]);
                ids.extend(
                    Vec::<f32>::try_from(cont)
                        .unwrap()
                        .iter()
                        .map(|v| *v as i64),
                );
            }
            assert_eq!(ids.len(), padded, "rank {rank}");
            // the padding repeats rows of this rank
            assert!(ids[real..].iter().all(|i| ids[..real].contains(i)));
            all.extend_from_slice(&ids[..real]);
        }
        all.sort_unstable();
        assert_eq!(all, (0..n as i64).collect::<Vec<_>>(), "shuffle {shuffle}");
    }
    let scan = Dataset::scan(&dir, &prep, ScanOptions::default().page_rows(1_000)).unwrap();
    assert!(
        scan.shard(0, 64, 4, 0, 5).is_err(),
        "fewer pages than ranks"
    );
}

/// A BPE vocabulary is trained from the texts of every page (one more pass): the same
/// tokenizer as `fit` on the collected rows.
#[test]
fn fit_scan_trains_subword_vocabularies_on_every_page() {
    let df = datasets::womens_ecommerce_reviews()
        .unwrap()
        .head(Some(600));
    let tmp = tempfile::tempdir().unwrap();
    let dir = folder(&df, tmp.path(), 3);
    let prep = || {
        Preprocessors::new()
            .text(TextPreprocessor::new("Review Text").vocab(Vocab::Bpe {
                min_freq: 2,
                vocab_size: 300,
            }))
            .target(TargetEncoder::new("Recommended IND", TargetKind::Binary).positive_class("1"))
    };
    let mut whole = prep();
    whole.fit(&df).unwrap();
    let mut streamed = prep();
    streamed
        .fit_scan(&ParquetScan::open(&dir, 64).unwrap())
        .unwrap();
    assert_eq!(streamed.text_meta(0).unwrap(), whole.text_meta(0).unwrap());
    // the same vocabulary up to ties: the tokenizers crate breaks ties between equally
    // frequent merges in hash order, so even two `fit`s may differ in a few tokens
    let vocab = |p: &Preprocessors| -> Vec<String> {
        let v = json(p)["text"][0]["fitted"]["tokenizer"]["model"]["vocab"].clone();
        v.as_object().unwrap().keys().cloned().collect()
    };
    let (a, b) = (vocab(&streamed), vocab(&whole));
    assert!(a.len() > 100);
    let shared = a.iter().filter(|t| b.contains(t)).count();
    assert!(
        shared * 20 >= a.len() * 19,
        "{shared} of {} tokens shared",
        a.len()
    );
}

/// Piecewise-linear embedding edges fitted from a scan equal those of the in-memory rows.
#[test]
fn piecewise_edges_from_a_scan_equal_the_in_memory_ones() {
    let (df, _) = adult_frames(1_500, 10);
    let tmp = tempfile::tempdir().unwrap();
    let dir = folder(&df, tmp.path(), 3);
    let mut prep = adult_preprocessors();
    prep.fit(&df).unwrap();
    let data = prep.transform(&df).unwrap();
    let memory = ContEmbed::piecewise_quantiles(data.input.cont.as_ref().unwrap(), 8).unwrap();
    let scan = Dataset::scan(&dir, &prep, ScanOptions::default().page_rows(200)).unwrap();
    assert_eq!(scan.piecewise_quantiles(8).unwrap(), memory);
}
