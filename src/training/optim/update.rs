//! PyTorch's single-tensor update rules (`torch.optim`), one parameter at a time.
use super::group::ParamState;
use super::Optimizer;
use crate::training::host;
use tch::Tensor;

/// `t.mul_(a)` as a statement.
fn scale_(t: &mut Tensor, a: f64) {
    let _ = t
        .f_mul_scalar_(a)
        .expect("in-place scaling of an optimizer buffer");
}

/// The state buffer `name` of a parameter like `like`, created filled with `fill` at the first
/// use.
fn buffer(state: &mut ParamState, name: &str, like: &Tensor, fill: f64) -> Tensor {
    if let Some(t) = state.buffers.get(name) {
        return t.shallow_clone();
    }
    state
        .buffers
        .entry(name.to_string())
        .or_insert_with(|| {
            let t = Tensor::zeros_like(like);
            if fill != 0.0 {
                let _ = t.shallow_clone().fill_(fill);
            }
            t
        })
        .shallow_clone()
}

/// PyTorch's single-tensor update of `param` from `grad`.
pub(super) fn update(
    opt: &Optimizer,
    lr: f64,
    wd: f64,
    param: &mut Tensor,
    grad: Tensor,
    state: &mut ParamState,
) {
    match opt {
        Optimizer::Adam(c) | Optimizer::AdamW(c) => {
            state.step += 1;
            let decoupled = matches!(opt, Optimizer::AdamW(_));
            let (b1, b2) = c.betas;
            let mut m = buffer(state, "exp_avg", param, 0.0);
            let mut v = buffer(state, "exp_avg_sq", param, 0.0);
            let t = state.step as i32;
            if !c.amsgrad {
                let fused = host::AdamStep {
                    beta1: b1,
                    beta2: b2,
                    eps: c.eps,
                    step_size: lr / (1.0 - b1.powi(t)),
                    bc2_sqrt: (1.0 - b2.powi(t)).sqrt(),
                    l2: if decoupled { 0.0 } else { wd },
                    decay: if decoupled { 1.0 - lr * wd } else { 1.0 },
                };
                if host::adam_f32(param, &grad, &m, &v, fused) {
                    return;
                }
            }
            let grad = if wd != 0.0 && !decoupled {
                grad + &*param * wd
            } else {
                grad
            };
            if wd != 0.0 && decoupled {
                scale_(param, 1.0 - lr * wd);
            }
            let _ = m.lerp_(&grad, 1.0 - b1);
            scale_(&mut v, b2);
            let _ = v.addcmul_(&grad, &(&grad * (1.0 - b2)));
            let bc1 = 1.0 - b1.powi(t);
            let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
            let step_size = lr / bc1;
            let second = if c.amsgrad {
                let vmax = buffer(state, "max_exp_avg_sq", param, 0.0);
                let _ = vmax.maximum_out(&vmax, &v);
                vmax
            } else {
                v
            };
            let mut denom = second.sqrt();
            let _ = denom.f_div_scalar_(bc2_sqrt).expect("denominator");
            let _ = denom.f_add_scalar_(c.eps).expect("denominator");
            // param += -step_size · (m / denom), PyTorch's addcdiv_ rounding
            let _ = m.div_out(&denom, &denom);
            scale_(&mut denom, -step_size);
            let _ = param.g_add_(&denom);
        }
        Optimizer::Sgd(c) => {
            state.step += 1;
            let mut grad = if wd != 0.0 { grad + &*param * wd } else { grad };
            if c.momentum != 0.0 {
                let buf = match state.buffers.get_mut("momentum_buffer") {
                    None => {
                        let b = grad.detach().copy();
                        state
                            .buffers
                            .insert("momentum_buffer".into(), b.shallow_clone());
                        b
                    }
                    Some(b) => {
                        scale_(b, c.momentum);
                        if c.dampening == 0.0 {
                            let _ = b.g_add_(&grad);
                        } else {
                            let _ = b.g_add_(&(&grad * (1.0 - c.dampening)));
                        }
                        b.shallow_clone()
                    }
                };
                grad = if c.nesterov {
                    grad + buf * c.momentum
                } else {
                    buf
                };
            }
            let _ = param.g_add_(&(grad * -lr));
        }
        Optimizer::RmsProp(c) => {
            state.step += 1;
            let grad = if wd != 0.0 { grad + &*param * wd } else { grad };
            let mut sq = buffer(state, "square_avg", param, 0.0);
            scale_(&mut sq, c.alpha);
            let _ = sq.addcmul_(&grad, &(&grad * (1.0 - c.alpha)));
            let mut avg = if c.centered {
                let mut ga = buffer(state, "grad_avg", param, 0.0);
                let _ = ga.lerp_(&grad, 1.0 - c.alpha);
                let mut a = &sq - &ga * &ga;
                let _ = a.sqrt_();
                a
            } else {
                sq.sqrt()
            };
            let _ = avg.f_add_scalar_(c.eps).expect("denominator");
            if c.momentum > 0.0 {
                let mut buf = buffer(state, "momentum_buffer", param, 0.0);
                scale_(&mut buf, c.momentum);
                let _ = buf.addcdiv_(&grad, &avg);
                let _ = param.g_add_(&(&buf * -lr));
            } else {
                let _ = grad.div_out(&avg, &avg);
                scale_(&mut avg, -lr);
                let _ = param.g_add_(&avg);
            }
        }
        Optimizer::Adagrad(c) => {
            state.step += 1;
            let grad = if wd != 0.0 { grad + &*param * wd } else { grad };
            let clr = lr / (1.0 + (state.step - 1) as f64 * c.lr_decay);
            let mut sum = buffer(state, "sum", param, c.initial_accumulator_value);
            let _ = sum.addcmul_(&grad, &grad);
            let mut std = sum.sqrt();
            let _ = std.f_add_scalar_(c.eps).expect("denominator");
            let _ = grad.div_out(&std, &std);
            scale_(&mut std, -clr);
            let _ = param.g_add_(&std);
        }
    }
}
