//! MobileNetV2 feature extractor with torchvision's variable names (`features.N…`), so that
//! torchvision `state_dict` weights load as they are. tch's `vision::mobilenet::v2` always adds
//! its classifier, hence this features-only version.
use tch::nn::{self, ModuleT};

/// Conv2d + BatchNorm + ReLU6 (`features.N.0`, `features.N.1`).
fn conv_bn_relu6(
    p: nn::Path,
    c_in: i64,
    c_out: i64,
    k: i64,
    stride: i64,
    groups: i64,
) -> nn::SequentialT {
    let cfg = nn::ConvConfig {
        stride,
        padding: (k - 1) / 2,
        groups,
        bias: false,
        ..Default::default()
    };
    nn::seq_t()
        .add(nn::conv2d(&p / 0, c_in, c_out, k, cfg))
        .add(nn::batch_norm2d(&p / 1, c_out, Default::default()))
        .add_fn(|x| x.clamp(0.0, 6.0))
}

/// Inverted residual block (`features.N.conv.M`).
fn inverted_residual(p: nn::Path, c_in: i64, c_out: i64, stride: i64, expand: i64) -> impl ModuleT {
    let hidden = c_in * expand;
    let p = &p / "conv";
    let mut seq = nn::seq_t();
    let mut id = 0;
    if expand != 1 {
        seq = seq.add(conv_bn_relu6(&p / id, c_in, hidden, 1, 1, 1));
        id += 1;
    }
    seq = seq
        .add(conv_bn_relu6(&p / id, hidden, hidden, 3, stride, hidden))
        .add(nn::conv2d(&p / (id + 1), hidden, c_out, 1, nn::no_bias()))
        .add(nn::batch_norm2d(&p / (id + 2), c_out, Default::default()));
    let residual = stride == 1 && c_in == c_out;
    nn::func_t(move |x, train| {
        let y = x.apply_t(&seq, train);
        if residual {
            x + y
        } else {
            y
        }
    })
}

/// `[batch, 3, H, W]` → `[batch, 1280]` (global average pooled).
pub(super) fn features(p: &nn::Path) -> impl ModuleT {
    // (expansion, channels, repeats, first stride), as in the paper and torchvision
    const SETTINGS: [(i64, i64, i64, i64); 7] = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ];
    let f = p / "features";
    let mut seq = nn::seq_t().add(conv_bn_relu6(&f / 0, 3, 32, 3, 2, 1));
    let mut c_in = 32;
    let mut idx = 1;
    for (t, c, n, s) in SETTINGS {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            seq = seq.add(inverted_residual(&f / idx, c_in, c, stride, t));
            c_in = c;
            idx += 1;
        }
    }
    seq = seq.add(conv_bn_relu6(&f / idx, c_in, 1280, 1, 1, 1));
    nn::func_t(move |x, train| {
        x.apply_t(&seq, train)
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
    })
}
