//! Tests of the text preprocessor.

use tokenizers::models::wordlevel::{WordLevel, WordLevelTrainer};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::whitespace::Whitespace;

use super::train::special_tokens;
use super::*;
use crate::contract::assert_save_load;

fn frame() -> DataFrame {
    df!("t" => [
        Some("The dress is lovely and the fit is great"),
        Some("the fabric is cheap"),
        None,
        Some("Café CAFE cafe"),
        Some("lovely lovely dress"),
    ])
    .unwrap()
}

fn word(min_freq: u64) -> TextPreprocessor {
    TextPreprocessor::new("t").vocab(Vocab::Word {
        min_freq,
        max_vocab: 100,
    })
}

#[test]
fn word_vocab_padding_truncation_and_nulls() {
    let mut p = word(2).maxlen(5);
    let d = p.fit_transform(&frame()).unwrap();
    assert_eq!(d.ids.shape(), &[5, 5]);
    // null → padding only
    assert!(d.ids.row(2).iter().all(|&x| x == 0));
    assert_eq!(d.lengths[2], 0);
    // accents stripped + lowercased: three times "cafe"
    let cafe = p.token_to_id("cafe").unwrap();
    assert_eq!(d.ids.row(3).to_vec(), vec![0, 0, cafe, cafe, cafe]);
    // left truncation keeps the last five words "and the fit is great"; "and", "fit" and
    // "great" (seen once) are unknown with min_freq 2
    let the = p.token_to_id("the").unwrap();
    let is = p.token_to_id("is").unwrap();
    assert_eq!(d.ids.row(0).to_vec(), vec![1, the, 1, is, 1]);
    assert!(p.token_to_id("great").is_none());
    // right side
    let mut r = word(1)
        .maxlen(3)
        .padding_side(Side::Right)
        .truncation_side(Side::Right);
    let d = r.fit_transform(&frame()).unwrap();
    let the = r.token_to_id("the").unwrap();
    let dress = r.token_to_id("dress").unwrap();
    assert_eq!(
        d.ids.row(0).to_vec(),
        vec![the, dress, r.token_to_id("is").unwrap()]
    );
    assert_eq!(d.ids.row(1)[0], the);
    let lovely = r.token_to_id("lovely").unwrap();
    assert_eq!(d.ids.row(4).to_vec(), vec![lovely, lovely, dress]);
    assert_eq!(r.meta().unwrap().pad_id, 0);
}

/// The word-level fast path gives exactly the ids of the tokenizer pipeline, and the
/// counted vocabulary equals the one the tokenizers crate's `WordLevelTrainer` learns.
#[test]
fn word_fast_path_matches_the_tokenizer_on_the_reviews() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../datasets/womens_ecommerce_reviews.parquet");
    let file = std::fs::File::open(path).unwrap();
    let df = ParquetReader::new(file).finish().unwrap().head(Some(4000));
    let mut p = TextPreprocessor::new("Review Text").maxlen(40);
    let data = p.fit_transform(&df).unwrap();
    let tok = p.tokenizer().unwrap();
    let texts = read_texts(&df, "Review Text").unwrap();
    assert!(
        texts.iter().flatten().any(|t| !t.is_ascii()),
        "covers the slow path"
    );
    for (row, t) in texts.iter().enumerate() {
        let want = tok.encode_fast(t.unwrap_or(""), true).unwrap();
        let want: Vec<i64> = want.get_ids().iter().map(|&i| i as i64).collect();
        let got: Vec<i64> = data
            .ids
            .row(row)
            .iter()
            .copied()
            .filter(|&i| i != 0)
            .collect();
        assert_eq!(got, want, "row {row}: {t:?}");
    }
    let mut reference = Tokenizer::new(
        WordLevel::builder()
            .unk_token(UNK_TOKEN.into())
            .build()
            .unwrap(),
    );
    reference.with_normalizer(p.normalizer());
    reference.with_pre_tokenizer(Some(Whitespace {}));
    let mut trainer = TrainerWrapper::from(
        WordLevelTrainer::builder()
            .min_frequency(5)
            .vocab_size(30_000)
            .show_progress(false)
            .special_tokens(special_tokens())
            .build()
            .unwrap(),
    );
    reference
        .train(&mut trainer, texts.iter().flatten())
        .unwrap();
    assert_eq!(reference.get_vocab(true), tok.get_vocab(true));
}

#[test]
fn subword_vocabularies_train() {
    for vocab in [
        Vocab::WordPiece {
            min_freq: 1,
            vocab_size: 60,
        },
        Vocab::Bpe {
            min_freq: 1,
            vocab_size: 60,
        },
    ] {
        let mut p = TextPreprocessor::new("t").vocab(vocab).maxlen(12);
        let d = p.fit_transform(&frame()).unwrap();
        let meta = p.meta().unwrap();
        assert!(meta.vocab_size > 10 && meta.vocab_size <= 60, "{meta:?}");
        assert!(d
            .ids
            .iter()
            .all(|&x| x >= 0 && (x as usize) < meta.vocab_size));
        assert!(d.lengths[0] > 0);
    }
}

#[test]
fn save_load_round_trip_gives_same_ids() {
    let mut p = word(1).maxlen(6);
    let a = p.fit_transform(&frame()).unwrap();
    assert_save_load(&p, &frame(), &a);
    // the tokenizer also round-trips through a tokenizer.json
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("tokenizer.json");
    p.save_tokenizer(&tok).unwrap();
    let mut r = TextPreprocessor::from_tokenizer_file("t", &tok)
        .maxlen(6)
        .padding_side(Side::Left)
        .truncation_side(Side::Left);
    assert_eq!(r.fit_transform(&frame()).unwrap(), a);
}

#[test]
fn word_vectors_fill_the_matrix_with_the_mean_for_unknown_words() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("glove.txt");
    std::fs::write(&path, "the 1.0 2.0\ndress 3.0 4.0\nzebra 9 9\n").unwrap();
    let mut p = word(1).word_vectors(&path);
    p.fit(&frame()).unwrap();
    let m = p.embedding_matrix().unwrap();
    let vocab_size = p.meta().unwrap().vocab_size;
    assert_eq!(m.shape(), &[vocab_size, 2]);
    let row = |w: &str| m.row(p.token_to_id(w).unwrap() as usize).to_vec();
    assert_eq!(row("the"), vec![1.0, 2.0]);
    assert_eq!(row("dress"), vec![3.0, 4.0]);
    assert_eq!(row("lovely"), vec![2.0, 3.0]); // mean of the found vectors
    assert_eq!(m.row(0).to_vec(), vec![0.0, 0.0]); // padding
    std::fs::write(&path, "the 1.0 2.0\ndress 3.0\n").unwrap();
    let err = word(1).word_vectors(&path).fit(&frame()).unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn bad_inputs_are_typed_errors() {
    let df = df!("t" => [1i64, 2]).unwrap();
    assert!(matches!(
        word(1).fit(&df).unwrap_err(),
        PreprocessingError::WrongType { .. }
    ));
    assert!(matches!(
        word(1).fit(&frame().drop("t").unwrap()).unwrap_err(),
        PreprocessingError::MissingColumn { .. } | PreprocessingError::EmptyFrame
    ));
    let nulls = df!("t" => [None::<&str>, None]).unwrap();
    assert!(matches!(
        word(1).fit(&nulls).unwrap_err(),
        PreprocessingError::AllNull { .. }
    ));
    assert!(word(1).maxlen(0).fit(&frame()).is_err());
    assert!(matches!(
        word(1).transform(&frame()).unwrap_err(),
        PreprocessingError::NotFitted { .. }
    ));
    let err = TextPreprocessor::from_tokenizer_file("t", "/nonexistent/tokenizer.json")
        .fit(&frame())
        .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/tokenizer.json"),
        "{err}"
    );
}

#[test]
fn chunked_word_fit_equals_fit_and_subwords_are_refused() {
    use crate::stream::FitChunks;
    let df = frame();
    for min_freq in [1, 2] {
        let mut whole = word(min_freq);
        whole.fit(&df).unwrap();
        let mut chunked = word(min_freq);
        chunked
            .fit_chunks(&[df.slice(0, 2), df.slice(2, 1), df.slice(3, 2)])
            .unwrap();
        assert_eq!(
            serde_json::to_value(&chunked).unwrap(),
            serde_json::to_value(&whole).unwrap()
        );
        assert_eq!(
            chunked.transform(&df).unwrap(),
            whole.transform(&df).unwrap()
        );
    }
    let err = TextPreprocessor::new("t")
        .vocab(Vocab::Bpe {
            min_freq: 1,
            vocab_size: 50,
        })
        .fit_chunks(&[df])
        .unwrap_err();
    assert!(
        matches!(&err, PreprocessingError::InvalidConfig { field, .. } if field == "vocab"),
        "{err}"
    );
}

#[test]
fn fit_texts_from_an_iterator_equals_fit() {
    let df = frame();
    for vocab in [
        Vocab::Word {
            min_freq: 1,
            max_vocab: 100,
        },
        Vocab::WordPiece {
            min_freq: 1,
            vocab_size: 60,
        },
        Vocab::Bpe {
            min_freq: 1,
            vocab_size: 60,
        },
    ] {
        let mut whole = TextPreprocessor::new("t").vocab(vocab.clone());
        whole.fit(&df).unwrap();
        let mut streamed = TextPreprocessor::new("t").vocab(vocab.clone());
        let texts: Vec<String> = [df.slice(0, 2), df.slice(2, 3)]
            .iter()
            .flat_map(|part| streamed.texts_of(part).unwrap())
            .collect();
        assert_eq!(texts.len(), 4);
        assert!(streamed.trains_subwords() == !matches!(vocab, Vocab::Word { .. }));
        streamed.fit_texts(texts.into_iter()).unwrap();
        // the same tokens (ids may differ: the tokenizers crate numbers WordPiece's
        // continuation tokens in hash order)
        let tokens = |p: &TextPreprocessor| {
            let mut v: Vec<String> = p
                .fitted()
                .unwrap()
                .tokenizer
                .get_vocab(true)
                .into_keys()
                .collect();
            v.sort();
            v
        };
        assert_eq!(streamed.meta().unwrap(), whole.meta().unwrap());
        let (a, b) = (tokens(&streamed), tokens(&whole));
        if matches!(vocab, Vocab::Word { .. }) {
            assert_eq!(a, b);
        } else {
            // the tokenizers crate breaks ties between equally frequent merges in hash order,
            // so two trainings on the same texts (two `fit`s too) may differ in a few tokens
            let shared = a.iter().filter(|t| b.contains(t)).count();
            assert!(shared * 10 >= a.len() * 9, "{vocab:?}: {a:?} vs {b:?}");
        }
    }
    let err = TextPreprocessor::new("t")
        .vocab(Vocab::Bpe {
            min_freq: 1,
            vocab_size: 50,
        })
        .fit_texts(std::iter::empty::<String>())
        .unwrap_err();
    assert!(matches!(err, PreprocessingError::AllNull { .. }), "{err}");
}
