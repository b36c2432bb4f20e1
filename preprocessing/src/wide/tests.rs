//! Tests of the wide preprocessor.

use ndarray::array;

use super::*;
use crate::contract::assert_save_load;

fn tiny() -> DataFrame {
    df!(
        "edu" => [Some("Bachelors"), Some("HS"), Some("Bachelors"), None],
        "occ" => [Some("Adm-clerical"), Some("Sales"), Some("Sales"), Some("Sales")],
        "age" => [30i64, 40, 30, 50],
    )
    .unwrap()
}

#[test]
fn indices_on_tiny_frame() {
    let mut wide = WidePreprocessor::new(&["edu", "occ", "age"]);
    let data = wide.fit_transform(&tiny()).unwrap();
    // edu: Bachelors=1, HS=2; occ: Adm-clerical=3, Sales=4; age: "30"=5, "40"=6, "50"=7.
    let expected = array![[1, 3, 5], [2, 4, 6], [1, 4, 5], [0, 4, 7]];
    assert_eq!(data.indices, expected);
    assert_eq!(wide.wide_dim(), 7);
    assert_eq!(wide.feature_names(), vec!["edu", "occ", "age"]);
    assert_eq!(
        wide.feature_of(6),
        Some(("age".to_string(), "40".to_string()))
    );
    assert_eq!(wide.feature_of(0), None);
    assert_eq!(wide.feature_of(8), None);
}

#[test]
fn unseen_and_null_are_zero() {
    let mut wide = WidePreprocessor::new(&["edu", "age"]);
    wide.fit(&tiny()).unwrap();
    let new = df!(
        "edu" => [Some("PhD"), None, Some("HS")],
        "age" => [Some(30i64), Some(99), None],
    )
    .unwrap();
    let data = wide.transform(&new).unwrap();
    // edu: Bachelors=1, HS=2; age: 30=3, 40=4, 50=5.
    assert_eq!(data.indices, array![[0, 3], [0, 0], [2, 0]]);
}

#[test]
fn crossed_columns() {
    let mut wide =
        WidePreprocessor::new(&["edu"]).crossed_cols(vec![vec!["edu".into(), "occ".into()]]);
    let data = wide.fit_transform(&tiny()).unwrap();
    // edu: Bachelors=1, HS=2; edu-occ (sorted tuples): Bachelors-Adm-clerical=3,
    // Bachelors-Sales=4, HS-Sales=5; row 3 has a null edu -> 0.
    assert_eq!(data.indices, array![[1, 3], [2, 5], [1, 4], [0, 0]]);
    assert_eq!(wide.wide_dim(), 5);
    assert_eq!(wide.feature_names(), vec!["edu", "edu-occ"]);
    assert_eq!(
        wide.feature_of(3),
        Some(("edu-occ".to_string(), "Bachelors-Adm-clerical".to_string()))
    );
    // An unseen combination of seen values is 0 as well.
    let new = df!("edu" => ["HS"], "occ" => ["Adm-clerical"]).unwrap();
    assert_eq!(wide.transform(&new).unwrap().indices, array![[2, 0]]);
}

#[test]
fn bool_and_float_columns() {
    let df = df!("b" => [true, false, true], "f" => [0.5f64, 1.0, 0.5]).unwrap();
    let mut wide = WidePreprocessor::new(&["b", "f"]);
    let data = wide.fit_transform(&df).unwrap();
    // b: false=1, true=2; f: "0.5"=3, "1.0"=4.
    assert_eq!(data.indices, array![[2, 3], [1, 4], [2, 3]]);
}

#[test]
fn quantized_columns_in_wide_and_crossed_columns() {
    let df = df!(
        "age" => [Some(20.0f64), Some(30.0), Some(50.0), None, Some(f64::NAN)],
        "sex" => ["f", "m", "f", "m", "f"],
    )
    .unwrap();
    let mut wide = WidePreprocessor::new(&["age"])
        .crossed_cols(vec![vec!["age".into(), "sex".into()]])
        .quantize("age", Quantization::Bins(2));
    let data = wide.fit_transform(&df).unwrap();
    // Edges: the 0, 0.5, 1 quantiles of [20, 30, 50] = [20, 30, 50].
    assert_eq!(wide.bin_edges("age"), Some([20.0, 30.0, 50.0].as_slice()));
    // age: "(30, 50]"=1, "[20, 30]"=2 (sorted by name); age-sex: 3 combinations.
    assert_eq!(wide.wide_dim(), 5);
    assert_eq!(data.indices.column(0).to_vec(), vec![2, 2, 1, 0, 0]);
    assert_eq!(
        wide.feature_of(1),
        Some(("age".to_string(), "(30, 50]".to_string()))
    );
    let (name, value) = wide.feature_of(data.indices[[0, 1]]).unwrap();
    assert_eq!((name.as_str(), value.as_str()), ("age-sex", "[20, 30]-f"));
    // Out-of-range values fall in the outer bins; infinity is a typed error.
    let new = df!("age" => [-5.0f64, 99.0], "sex" => ["f", "f"]).unwrap();
    assert_eq!(
        wide.transform(&new).unwrap().indices.column(0).to_vec(),
        vec![2, 1]
    );
    let inf = df!("age" => [1.0f64, f64::INFINITY], "sex" => ["f", "f"]).unwrap();
    let err = wide.transform(&inf).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::NonFinite { ref column, row: 1, .. } if column == "age")
    );
    // Saved and loaded with its edges.
    let json = serde_json::to_string(&wide).unwrap();
    let back: WidePreprocessor = serde_json::from_str(&json).unwrap();
    assert_eq!(back.transform(&df).unwrap(), data);
    // Only used, numeric columns can be quantized.
    let err = WidePreprocessor::new(&["sex"])
        .quantize("age", Quantization::Bins(2))
        .fit(&df)
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "quantize")
    );
    let err = WidePreprocessor::new(&["sex"])
        .quantize("sex", Quantization::Bins(2))
        .fit(&df)
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::WrongType { ref column, .. } if column == "sex"));
}

#[test]
fn changed_dtype_is_an_error_and_all_null_is_reported() {
    let mut wide = WidePreprocessor::new(&["edu"]);
    wide.fit(&tiny()).unwrap();
    let ints = df!("edu" => [1i64, 2, 3, 4]).unwrap();
    let err = wide.transform(&ints).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::DtypeChanged { ref column, ref fitted, .. }
            if column == "edu" && fitted == "text"),
        "{err}"
    );
    let nulls = df!("edu" => [None::<&str>, None]).unwrap();
    let data = wide.transform(&nulls).unwrap();
    assert_eq!(data.all_null, vec!["edu"]);
    assert_eq!(data.indices.column(0).to_vec(), vec![0, 0]);
    assert!(wide.transform(&tiny()).unwrap().all_null.is_empty());
    // A save from before dtypes were recorded still transforms.
    let mut json: serde_json::Value = serde_json::to_value(&wide).unwrap();
    json["fitted"].as_object_mut().unwrap().remove("dtypes");
    let old: WidePreprocessor = serde_json::from_value(json).unwrap();
    assert!(old.transform(&ints).is_ok());
}

#[test]
fn categorical_dtype_matches_strings() {
    let strings = tiny();
    let cat_dtype = DataType::from_categories(Categories::global());
    let edu = strings.column("edu").unwrap().cast(&cat_dtype).unwrap();
    let cats = DataFrame::new(4, vec![edu]).unwrap();
    let mut wide = WidePreprocessor::new(&["edu"]);
    wide.fit(&strings).unwrap();
    assert_eq!(
        wide.transform(&cats).unwrap().indices,
        wide.transform(&strings).unwrap().indices
    );
}

#[test]
fn validation_errors() {
    let df = tiny();
    let err = WidePreprocessor::new(&[]).fit(&df).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "wide_cols")
    );
    let err = WidePreprocessor::new(&["nope"]).fit(&df).unwrap_err();
    assert!(matches!(err, PreprocessingError::MissingColumn { ref column } if column == "nope"));
    let err = WidePreprocessor::new(&["edu", "edu"]).fit(&df).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::DuplicateColumn { ref column, .. } if column == "edu")
    );
    let err = WidePreprocessor::new(&["edu"])
        .crossed_cols(vec![vec!["edu".into()]])
        .fit(&df)
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "crossed_cols")
    );
    let empty = df.head(Some(0));
    let err = WidePreprocessor::new(&["edu"]).fit(&empty).unwrap_err();
    assert!(matches!(err, PreprocessingError::EmptyFrame));
    let nulls = df!("x" => [None::<&str>, None]).unwrap();
    let err = WidePreprocessor::new(&["x"]).fit(&nulls).unwrap_err();
    assert!(matches!(err, PreprocessingError::AllNull { ref column } if column == "x"));
    let err = WidePreprocessor::new(&["edu"]).transform(&df).unwrap_err();
    assert!(matches!(err, PreprocessingError::NotFitted { .. }));
}

#[test]
fn adult_wide_dim_and_names() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../datasets/adult.parquet");
    let df = ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap();
    let mut wide = WidePreprocessor::new(&["education", "relationship", "workclass"])
        .crossed_cols(vec![vec!["education".into(), "occupation".into()]]);
    let data = wide.fit_transform(&df).unwrap();
    assert_eq!(data.indices.shape(), &[48_842, 4]);
    // 16 + 6 + 9 single values; 225 education-occupation pairs (Python Polars:
    // df.select("education", "occupation").unique().height).
    assert_eq!(wide.wide_dim(), 16 + 6 + 9 + 225);
    assert_eq!(
        wide.feature_names(),
        vec![
            "education",
            "relationship",
            "workclass",
            "education-occupation"
        ]
    );
    assert!(data.indices.iter().all(|&i| i > 0 && i <= 256));
    // Row 0: education "11th", occupation "Machine-op-inspct".
    let (name, value) = wide.feature_of(data.indices[[0, 3]]).unwrap();
    assert_eq!(name, "education-occupation");
    assert_eq!(value, "11th-Machine-op-inspct");
}

#[test]
fn save_load_round_trip() {
    let mut wide =
        WidePreprocessor::new(&["edu", "age"]).crossed_cols(vec![vec!["edu".into(), "occ".into()]]);
    let before = wide.fit_transform(&tiny()).unwrap();
    assert_save_load(&wide, &tiny(), &before);
}
