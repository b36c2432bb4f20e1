// The autograd glue of `fused_attention.rs`: a torch::autograd::Function whose forward and
// backward run the Rust kernels passed in as function pointers, split over (row, head) pairs by
// at::parallel_for. tch cannot define autograd functions itself, so this is the one piece of
// C++ in widedeep; all arithmetic lives in the Rust kernels.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>
#include <cstring>
#include <exception>

namespace {

// Mirrors `View4` and `AttnArgs` in fused_attention.rs (#[repr(C)]).
struct View4 {
  const float* ptr;
  int64_t strides[4];
};

struct AttnArgs {
  int64_t b, h, s, l, e;
  View4 q, k, v;
  float* out;
  float* w;
  float* gq;
  float* gk;
  float* gv;
  float scale;
  float p;
  uint64_t seed;
};

using Kernel = void (*)(const AttnArgs*, int64_t, int64_t);

View4 view4(const at::Tensor& t) {
  return View4{t.data_ptr<float>(), {t.stride(0), t.stride(1), t.stride(2), t.stride(3)}};
}

AttnArgs args(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
              double p, uint64_t seed) {
  AttnArgs a{};
  a.b = q.size(0);
  a.h = q.size(1);
  a.s = q.size(2);
  a.l = k.size(2);
  a.e = q.size(3);
  a.q = view4(q);
  a.k = view4(k);
  a.v = view4(v);
  a.scale = static_cast<float>(scale);
  a.p = static_cast<float>(p);
  a.seed = seed;
  return a;
}

// Pairs per task: enough work to be worth a thread.
int64_t grain(const AttnArgs& a) {
  int64_t per_pair = a.s * a.l * a.e + 1;
  return std::max<int64_t>(1, 32768 / per_pair);
}

void run(Kernel kernel, const AttnArgs& a) {
  at::parallel_for(0, a.b * a.h, grain(a),
                   [&](int64_t begin, int64_t end) { kernel(&a, begin, end); });
}

struct FusedAttention : public torch::autograd::Function<FusedAttention> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const at::Tensor& q, const at::Tensor& k,
                                                const at::Tensor& v, double scale, double p,
                                                int64_t seed, int64_t forward_kernel,
                                                int64_t backward_kernel) {
    AttnArgs a = args(q, k, v, scale, p, static_cast<uint64_t>(seed));
    auto out = at::empty({a.b, a.s, a.h, a.e}, q.options());
    auto w = at::empty({a.b, a.h, a.s, a.l}, q.options());
    a.out = out.data_ptr<float>();
    a.w = w.data_ptr<float>();
    run(reinterpret_cast<Kernel>(forward_kernel), a);
    ctx->save_for_backward({q, k, v, w});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["p"] = p;
    ctx->saved_data["seed"] = seed;
    ctx->saved_data["backward"] = backward_kernel;
    ctx->mark_non_differentiable({w});
    return {out, w};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &w = saved[3];
    AttnArgs a = args(q, k, v, ctx->saved_data["scale"].toDouble(),
                      ctx->saved_data["p"].toDouble(),
                      static_cast<uint64_t>(ctx->saved_data["seed"].toInt()));
    at::Tensor gq = at::empty({a.b, a.h, a.s, a.e}, q.options());
    at::Tensor gk = at::empty({a.b, a.h, a.l, a.e}, q.options());
    at::Tensor gv = at::empty({a.b, a.h, a.l, a.e}, q.options());
    if (!grads[0].defined()) {
      gq.zero_();
      gk.zero_();
      gv.zero_();
    } else {
      at::Tensor go = grads[0].contiguous();
      a.out = go.data_ptr<float>();
      a.w = w.data_ptr<float>();
      a.gq = gq.data_ptr<float>();
      a.gk = gk.data_ptr<float>();
      a.gv = gv.data_ptr<float>();
      run(reinterpret_cast<Kernel>(ctx->saved_data["backward"].toInt()), a);
    }
    return {gq, gk, gv, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

extern "C" int widedeep_fused_attention(const at::Tensor* q, const at::Tensor* k,
                                        const at::Tensor* v, double scale, double p,
                                        uint64_t seed, Kernel forward_kernel,
                                        Kernel backward_kernel, at::Tensor** out,
                                        at::Tensor** weights, char* err, size_t err_len) {
  try {
    auto r = FusedAttention::apply(*q, *k, *v, scale, p, static_cast<int64_t>(seed),
                                   reinterpret_cast<int64_t>(forward_kernel),
                                   reinterpret_cast<int64_t>(backward_kernel));
    *out = new at::Tensor(r[0]);
    *weights = new at::Tensor(r[1]);
    return 0;
  } catch (const std::exception& e) {
    if (err_len > 0) {
      std::strncpy(err, e.what(), err_len - 1);
      err[err_len - 1] = '\0';
    }
    return 1;
  }
}
