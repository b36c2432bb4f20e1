//! The dense symmetric solves of the KernelSHAP regression and the k-additive surrogate,
//! through faer's Cholesky factorisation (single-threaded).
use faer::linalg::solvers::Solve;
use faer::{Mat, Side};

/// Solves `(a + ε I) x = b` for a symmetric positive semi-definite `a` (n × n, row-major;
/// only its lower triangle is read) and `nrhs` right-hand sides `b` (n × nrhs, row-major).
/// The tiny ridge ε = 10⁻¹² · mean |aᵢᵢ| keeps singular systems solvable. Cholesky
/// (LLᵀ); should rounding leave a pivot non-positive, Bunch–Kaufman (LBLᵀ) instead.
pub(super) fn solve(a: Vec<f64>, b: Vec<f64>, n: usize, nrhs: usize) -> Vec<f64> {
    let trace: f64 = (0..n).map(|i| a[i * n + i].abs()).sum::<f64>().max(1e-300);
    let ridge = 1e-12 * trace / n as f64;
    let a = Mat::from_fn(n, n, |i, j| {
        if i == j {
            a[i * n + i] + ridge
        } else {
            a[i.max(j) * n + i.min(j)]
        }
    });
    let b = Mat::from_fn(n, nrhs, |i, j| b[i * nrhs + j]);
    let x = match a.llt(Side::Lower) {
        Ok(llt) => llt.solve(&b),
        Err(_) => a.lblt(Side::Lower).solve(&b),
    };
    (0..n)
        .flat_map(|i| (0..nrhs).map(move |j| (i, j)))
        .map(|(i, j)| x[(i, j)])
        .collect()
}
