//! Tests of the image preprocessor.

use super::*;
use crate::contract::assert_save_load;
use image::{GrayImage, ImageFormat, Luma, Rgb, RgbImage};
use std::io::Cursor;

fn png(img: &image::DynamicImage) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, ImageFormat::Png).unwrap();
    buf.into_inner()
}

/// A 6×4 RGB image whose red channel encodes x and green encodes y.
fn gradient() -> image::DynamicImage {
    image::DynamicImage::ImageRgb8(RgbImage::from_fn(6, 4, |x, y| {
        Rgb([(x * 40) as u8, (y * 60) as u8, 100])
    }))
}

/// PNG bytes of a `w × h` gray image whose pixels are all `value`.
fn gray(w: u32, h: u32, value: u8) -> Vec<u8> {
    png(&image::DynamicImage::ImageLuma8(GrayImage::from_pixel(
        w,
        h,
        Luma([value]),
    )))
}

/// A bytes frame of `n` 5×5 gray images, image `i` of value `i * step`.
fn gray_frame(n: u8, step: u8) -> DataFrame {
    bytes_frame((0..n).map(|i| Some(gray(5, 5, i * step))).collect())
}

fn bytes_frame(images: Vec<Option<Vec<u8>>>) -> DataFrame {
    let col = Column::new("img".into(), images);
    DataFrame::new(col.len(), vec![col]).unwrap()
}

#[test]
fn center_crop_without_resize_keeps_the_middle_columns() {
    let df = bytes_frame(vec![Some(png(&gradient()))]);
    let mut p = ImagePreprocessor::from_bytes("img")
        .size(4, 4)
        .normalization(Normalization::None);
    let (raw, _) = p.decode_resize(&df).unwrap();
    assert_eq!(raw.shape(), &[1, 4, 4, 3]);
    assert_eq!(raw[[0, 0, 0, 0]], 40); // column 1 of the source
    let d = p.fit_transform(&df).unwrap();
    assert_eq!(d.pixels.shape(), &[1, 3, 4, 4]);
    // columns 1..5 of the 6-wide image, planar
    let red: Vec<u8> = (0..4).map(|x| d.pixels[[0, 0, 0, x]]).collect();
    assert_eq!(red, vec![40, 80, 120, 160]);
    assert_eq!(d.pixels[[0, 1, 3, 0]], 180);
    assert_eq!(d.pixels[[0, 2, 0, 0]], 100);
    let (mean, std) = p.stats().unwrap();
    assert_eq!((mean, std), ([0.0; 3], [1.0; 3]));
    let f = d.normalized(mean, std);
    assert!((f[[0, 1, 3, 0]] - 180.0 / 255.0).abs() < 1e-6);
}

#[test]
fn grayscale_smaller_than_the_crop_is_upscaled_to_rgb() {
    let df = bytes_frame(vec![Some(gray(3, 2, 51))]);
    let mut p = ImagePreprocessor::from_bytes("img").size(8, 8);
    let d = p.fit_transform(&df).unwrap();
    assert_eq!(d.pixels.shape(), &[1, 3, 8, 8]);
    let meta = p.meta().unwrap();
    assert_eq!((meta.mean, meta.std), (IMAGENET_MEAN, IMAGENET_STD));
    let f = d.normalized(meta.mean, meta.std);
    for c in 0..3 {
        assert_eq!(d.pixels[[0, c, 5, 7]], 51);
        let want = (0.2 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        assert!((f[[0, c, 5, 7]] - want).abs() < 1e-5);
    }
}

#[test]
fn fitted_statistics_and_save_load() {
    let df = bytes_frame(vec![Some(gray(4, 4, 0)), Some(gray(4, 4, 255))]);
    let mut p = ImagePreprocessor::from_bytes("img")
        .size(4, 4)
        .normalization(Normalization::Fitted);
    let d = p.fit_transform(&df).unwrap();
    let (mean, std) = p.stats().unwrap();
    assert!(mean.iter().all(|m| (m - 0.5).abs() < 1e-6), "{mean:?}");
    assert!(std.iter().all(|s| (s - 0.5).abs() < 1e-6), "{std:?}");
    let f = d.normalized(mean, std);
    assert!((f[[0, 0, 0, 0]] + 1.0).abs() < 1e-6);
    assert!((f[[1, 2, 3, 3]] - 1.0).abs() < 1e-6);
    // fit alone (chunked statistics) gives the same statistics
    let mut alone = ImagePreprocessor::from_bytes("img")
        .size(4, 4)
        .normalization(Normalization::Fitted);
    alone.fit(&df).unwrap();
    assert_eq!(alone.stats().unwrap(), (mean, std));
    assert_save_load(&p, &df, &d);
}

#[test]
fn missing_and_corrupt_images_fail_or_become_zero() {
    let dir = tempfile::tempdir().unwrap();
    gradient().save(dir.path().join("a.png")).unwrap();
    std::fs::write(dir.path().join("bad.png"), b"not a png").unwrap();
    let df = df!("p" => ["a.png", "missing.png", "bad.png"]).unwrap();
    let mut p = ImagePreprocessor::from_paths("p", dir.path()).size(4, 4);
    p.fit(&df).unwrap();
    let err = p.transform(&df).unwrap_err().to_string();
    assert!(err.contains("missing.png"), "{err}");
    let only_bad = df!("p" => ["bad.png"]).unwrap();
    let err = p.transform(&only_bad).unwrap_err().to_string();
    assert!(err.contains("bad.png"), "{err}");
    let z = p.clone().on_error(OnError::Zero).transform(&df).unwrap();
    assert_eq!(z.n_failed, 2);
    // failed rows are the mean image: about 0 once normalised
    let f = z.normalized(IMAGENET_MEAN, IMAGENET_STD);
    assert!(f
        .slice(ndarray::s![1..3, .., .., ..])
        .iter()
        .all(|&v| v.abs() < 0.01));
    assert!(f
        .slice(ndarray::s![0, .., .., ..])
        .iter()
        .any(|&v| v.abs() > 0.1));
    let corrupt = bytes_frame(vec![Some(b"\x89PNG garbage".to_vec())]);
    let mut b = ImagePreprocessor::from_bytes("img");
    let err = b.fit_transform(&corrupt).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::BadImage { row: 0, .. }),
        "{err}"
    );
    // wrong dtypes name the column
    let err = ImagePreprocessor::from_bytes("p")
        .fit_transform(&df)
        .unwrap_err();
    assert!(err.to_string().contains("`p`"), "{err}");
}

#[test]
fn rows_decode_any_rows_like_the_full_transform() {
    let df = gray_frame(5, 40);
    let mut p = ImagePreprocessor::from_bytes("img").size(3, 3);
    let full = p.fit_transform(&df).unwrap();
    let rows = p.rows(&df).unwrap();
    assert_eq!(rows.len(), 5);
    let got = rows.decode(&[4, 1, 1]).unwrap();
    assert_eq!(got.pixels.shape(), &[3, 3, 3, 3]);
    for (k, r) in [4, 1, 1].into_iter().enumerate() {
        assert_eq!(
            got.pixels.index_axis(ndarray::Axis(0), k),
            full.pixels.index_axis(ndarray::Axis(0), r)
        );
    }
    assert!(rows.decode(&[5]).is_err());
    // errors name the DataFrame row, not the position in the batch
    let bad = bytes_frame(vec![Some(png(&gradient())), Some(b"junk".to_vec())]);
    let err = p.rows(&bad).unwrap().decode(&[1]).unwrap_err();
    assert!(
        matches!(err, PreprocessingError::BadImage { row: 1, .. }),
        "{err}"
    );
}

#[test]
fn batches_equal_the_full_transform() {
    let df = gray_frame(7, 30);
    let mut p = ImagePreprocessor::from_bytes("img").size(3, 3);
    let full = p.fit_transform(&df).unwrap();
    let batches = p.batches(&df, 3, 2).unwrap();
    assert_eq!(batches.n_batches(), 3);
    let parts: Vec<ImageData> = batches.map(|b| b.unwrap()).collect();
    assert_eq!(parts.len(), 3);
    let views: Vec<_> = parts.iter().map(|p| p.pixels.view()).collect();
    let joined = ndarray::concatenate(ndarray::Axis(0), &views).unwrap();
    assert_eq!(joined, full.pixels);
    // dropping a half-consumed iterator stops the worker
    let mut it = p.batches(&df, 1, 1).unwrap();
    assert!(it.next().is_some());
    drop(it);
}

#[test]
fn chunked_fit_equals_fit() {
    use crate::stream::FitChunks;
    let df = gray_frame(9, 25);
    let mut whole = ImagePreprocessor::from_bytes("img")
        .size(5, 5)
        .normalization(Normalization::Fitted);
    whole.fit(&df).unwrap();
    let mut chunked = whole.clone();
    chunked.fitted = None;
    chunked
        .fit_chunks(&[df.slice(0, 4), df.slice(4, 0), df.slice(4, 5)])
        .unwrap();
    assert_eq!(chunked, whole);
    // a corrupt image in the second chunk is named at its row of the stream
    let mut bad: Vec<Option<Vec<u8>>> = (0..6).map(|i| Some(gray(5, 5, i * 10))).collect();
    bad[4] = Some(vec![1, 2, 3]);
    let bad = bytes_frame(bad);
    let err = chunked
        .fit_chunks(&[bad.slice(0, 3), bad.slice(3, 3)])
        .unwrap_err();
    assert!(
        matches!(err, PreprocessingError::BadImage { row: 4, .. }),
        "{err}"
    );
}
