//! Dense symmetric solves for the KernelSHAP regression and the k-additive surrogate.

/// Solves the symmetric system `a x = b` (n × n, `nrhs` right-hand sides, row-major) by
/// Gaussian elimination with partial pivoting; a tiny ridge keeps singular systems solvable.
pub(super) fn solve(mut a: Vec<f64>, mut b: Vec<f64>, n: usize, nrhs: usize) -> Vec<f64> {
    let trace: f64 = (0..n).map(|i| a[i * n + i].abs()).sum::<f64>().max(1e-300);
    for i in 0..n {
        a[i * n + i] += 1e-12 * trace / n as f64;
    }
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))
            .unwrap_or(col);
        if piv != col {
            for j in 0..n {
                a.swap(col * n + j, piv * n + j);
            }
            for j in 0..nrhs {
                b.swap(col * nrhs + j, piv * nrhs + j);
            }
        }
        let d = a[col * n + col];
        if d.abs() < 1e-300 {
            continue;
        }
        for i in col + 1..n {
            let f = a[i * n + col] / d;
            if f == 0.0 {
                continue;
            }
            for j in col..n {
                a[i * n + j] -= f * a[col * n + j];
            }
            for j in 0..nrhs {
                b[i * nrhs + j] -= f * b[col * nrhs + j];
            }
        }
    }
    let mut x = vec![0.0; n * nrhs];
    for i in (0..n).rev() {
        let d = a[i * n + i];
        for j in 0..nrhs {
            let mut s = b[i * nrhs + j];
            for c in i + 1..n {
                s -= a[i * n + c] * x[c * nrhs + j];
            }
            x[i * nrhs + j] = if d.abs() < 1e-300 { 0.0 } else { s / d };
        }
    }
    x
}

/// Cholesky factor (lower, row-major) of the symmetric positive semi-definite `a` (n × n),
/// with a tiny ridge; pivots that vanish in rounding are clamped to it.
pub(super) fn cholesky(mut a: Vec<f64>, n: usize) -> Vec<f64> {
    let trace: f64 = (0..n).map(|i| a[i * n + i].abs()).sum::<f64>().max(1e-300);
    let ridge = 1e-12 * trace / n as f64;
    for i in 0..n {
        a[i * n + i] += ridge;
    }
    let mut row_j = vec![0.0; n];
    for j in 0..n {
        row_j.copy_from_slice(&a[j * n..(j + 1) * n]);
        let d = (row_j[j] - row_j[..j].iter().map(|x| x * x).sum::<f64>())
            .max(ridge)
            .sqrt();
        a[j * n + j] = d;
        row_j[j] = d;
        for i in j + 1..n {
            let row_i = &mut a[i * n..(i + 1) * n];
            let dot: f64 = row_i[..j].iter().zip(&row_j[..j]).map(|(x, y)| x * y).sum();
            row_i[j] = (row_i[j] - dot) / d;
        }
    }
    a
}

/// Solves `l lᵀ x = b` in place (`b`: n × nrhs, row-major) with the factor of [`cholesky`].
pub(super) fn cholesky_solve(l: &[f64], b: &mut [f64], n: usize, nrhs: usize) {
    for i in 0..n {
        for c in 0..i {
            let f = l[i * n + c];
            for o in 0..nrhs {
                b[i * nrhs + o] -= f * b[c * nrhs + o];
            }
        }
        for o in 0..nrhs {
            b[i * nrhs + o] /= l[i * n + i];
        }
    }
    for i in (0..n).rev() {
        for o in 0..nrhs {
            b[i * nrhs + o] /= l[i * n + i];
        }
        for c in 0..i {
            let f = l[i * n + c];
            for o in 0..nrhs {
                b[c * nrhs + o] -= f * b[i * nrhs + o];
            }
        }
    }
}
