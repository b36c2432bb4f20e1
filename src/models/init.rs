//! Weight initialisers shared by the components, matching PyTorch's defaults where a layer
//! of the reference is mirrored.
use tch::{nn, Kind, Tensor};

/// `nn::linear` with PyTorch's default initialisation (`U(±1/√in)` for weight and bias).
pub(crate) fn torch_linear(path: &nn::Path, in_dim: i64, out_dim: i64, bias: bool) -> nn::Linear {
    let bound = 1.0 / (in_dim.max(1) as f64).sqrt();
    let init = nn::Init::Uniform {
        lo: -bound,
        up: bound,
    };
    nn::linear(
        path,
        in_dim,
        out_dim,
        nn::LinearConfig {
            ws_init: init,
            bs_init: Some(init),
            bias,
        },
    )
}

/// A `Linear`-like parameter drawn as PyTorch's default `nn.Linear` init: `U(±1/√fan_in)`.
pub(crate) fn torch_uniform(path: &nn::Path, name: &str, dims: &[i64], fan_in: i64) -> Tensor {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    path.var(
        name,
        dims,
        nn::Init::Uniform {
            lo: -bound,
            up: bound,
        },
    )
}

/// A parameter drawn from `N(0, std²)` truncated to `[lo, hi]` (inverse-CDF sampling).
pub(crate) fn trunc_normal(
    path: &nn::Path,
    name: &str,
    dims: &[i64],
    std: f64,
    lo: f64,
    hi: f64,
) -> Tensor {
    let mut v = path.zeros(name, dims);
    let phi = |x: f64| {
        let z = Tensor::from(x / std / std::f64::consts::SQRT_2).erf();
        0.5 * (1.0 + z.double_value(&[]))
    };
    let (a, b) = (phi(lo), phi(hi));
    tch::no_grad(|| {
        let u = Tensor::rand(dims, (Kind::Float, path.device())) * (b - a) + a;
        let x = (u * 2.0 - 1.0).erfinv() * (std * std::f64::consts::SQRT_2);
        v.copy_(&x.clamp(lo, hi));
    });
    v
}
