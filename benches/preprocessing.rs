//! Preprocessing throughput on Adult replicated to about one million rows: fit and transform of
//! the TabPreprocessor and WidePreprocessor (with two crossed columns). Prints a markdown table
//! of the median of 5 runs.
//!
//! Run: `cargo bench --bench preprocessing` (libtorch set up as in the README).

mod common;
use common::median_of;
use widedeep::datasets;
use widedeep::prelude::*;

fn main() -> anyhow::Result<()> {
    let adult = datasets::adult()?;
    let mut df = adult.clone();
    for _ in 0..20 {
        df.vstack_mut(&adult)?;
    }
    df.rechunk_mut();
    // the categorical columns without capital-gain/-loss (continuous here)
    let cat = &datasets::adult_columns::CATEGORICAL[..8];
    let cont = [
        "age",
        "fnlwgt",
        "capital-gain",
        "capital-loss",
        "hours-per-week",
    ];
    let crossed = vec![
        vec!["education".to_string(), "occupation".to_string()],
        vec!["native-country".to_string(), "occupation".to_string()],
    ];

    let mut tab = TabPreprocessor::new(cat, &cont);
    let tab_fit = median_of(5, || tab.fit(&df).expect("fit"));
    let tab_transform = median_of(5, || {
        tab.transform(&df).expect("transform");
    });
    let mut wide = WidePreprocessor::new(cat).crossed_cols(crossed);
    let wide_fit = median_of(5, || wide.fit(&df).expect("fit"));
    let wide_transform = median_of(5, || {
        wide.transform(&df).expect("transform");
    });

    println!("Adult × 21 = {} rows, median of 5 runs\n", df.height());
    println!("| step | ms | rows/s |\n|---|---:|---:|");
    for (name, t) in [
        ("TabPreprocessor fit (8 cat + 5 cont)", tab_fit),
        ("TabPreprocessor transform", tab_transform),
        ("WidePreprocessor fit (8 cols + 2 crossed)", wide_fit),
        ("WidePreprocessor transform", wide_transform),
    ] {
        let rate = df.height() as f64 / t.as_secs_f64();
        println!("| {name} | {:.0} | {:.2e} |", t.as_secs_f64() * 1e3, rate);
    }
    Ok(())
}
