// The C glue of `src/distributed/`: PyTorch's own distributed engine (c10d) as shipped in the
// libtorch we link: a TCPStore rendezvous (torchrun's logic), a ProcessGroupGloo over it, and
// the collectives the data-parallel trainer calls (all-reduce, broadcast, all-gather), each
// waited for with the group's timeout. Also a heartbeat per rank in the store, so that a failed
// collective can name the ranks that are gone, and the one autograd detail tch lacks (setting
// a variable's gradient). Every function catches C++ exceptions and returns their message.
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using std::chrono::milliseconds;

void write_err(const char* msg, char* err, size_t err_len) {
  if (err_len > 0) {
    std::strncpy(err, msg, err_len - 1);
    err[err_len - 1] = '\0';
  }
}

// One rank's membership: the store, the Gloo group over it and the heartbeat thread.
struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> pg;
  int rank = 0;
  int world = 1;
  milliseconds timeout{0};
  milliseconds beat{1000};
  std::thread heartbeat;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;

  ~Group() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
    }
    cv.notify_all();
    if (heartbeat.joinable()) heartbeat.join();
  }
};

std::string beat_key(int rank) { return "heartbeat/" + std::to_string(rank); }

// Bumps this rank's counter every `beat` through its own connection to the store, until the
// group is dropped or the store is gone.
void heartbeat_loop(Group* g, c10::intrusive_ptr<c10d::Store> store) {
  std::unique_lock<std::mutex> lock(g->mu);
  while (!g->stopping) {
    lock.unlock();
    try {
      store->add(beat_key(g->rank), 1);
    } catch (...) {
      return;  // the store's host is gone: nothing left to report to
    }
    lock.lock();
    g->cv.wait_for(lock, g->beat, [g] { return g->stopping; });
  }
}

template <typename F>
int guarded(char* err, size_t err_len, F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    write_err(e.what(), err, err_len);
  } catch (...) {
    write_err("unknown C++ exception", err, err_len);
  }
  return 1;
}

void wait_all(std::vector<c10::intrusive_ptr<c10d::Work>>& works, milliseconds timeout) {
  for (auto& w : works) {
    if (!w->wait(timeout)) {
      throw std::runtime_error("collective timed out after " + std::to_string(timeout.count()) +
                               " ms");
    }
  }
}

}  // namespace

// Joins the group: rank 0 hosts the TCPStore at host:port unless `agent_store` (torchrun's
// TORCHELASTIC_USE_AGENT_STORE: every rank is a client of the agent's store), then a
// ProcessGroupGloo over a PrefixStore `prefix`. Devices: one per interface of
// GLOO_SOCKET_IFNAME, else Gloo's default device (as torch.distributed does).
extern "C" int widedeep_c10d_init(const char* host, uint16_t port, int rank, int world,
                                  int agent_store, int64_t timeout_ms, int64_t heartbeat_ms,
                                  const char* prefix, void** out, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    auto g = std::make_unique<Group>();
    g->rank = rank;
    g->world = world;
    g->timeout = milliseconds(timeout_ms);
    g->beat = milliseconds(heartbeat_ms);
    c10d::TCPStoreOptions opts;
    opts.port = port;
    opts.isServer = !agent_store && rank == 0;
    opts.numWorkers = static_cast<size_t>(world);
    opts.waitWorkers = !agent_store;
    opts.timeout = g->timeout;
    opts.multiTenant = !agent_store;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), opts);
    g->store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
    auto options = c10d::ProcessGroupGloo::Options::create(g->timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname != nullptr && std::strlen(ifname) > 0) {
      std::stringstream ss(ifname);
      std::string iface;
      while (std::getline(ss, iface, ',')) {
        if (!iface.empty())
          options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
      }
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    options->threads = static_cast<int>(options->devices.size()) * 2;
    g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, rank, world, options);
    g->store->add(beat_key(rank), 1);
    g->heartbeat = std::thread(heartbeat_loop, g.get(), g->store->clone());
    *out = g.release();
  });
}

extern "C" void widedeep_c10d_free(void* group) { delete static_cast<Group*>(group); }

// Sums (op 0) or takes the maximum (op 1) of each tensor over the ranks, in place; all the
// collectives are started before the first is waited for.
extern "C" int widedeep_c10d_allreduce(void* group, at::Tensor** tensors, size_t n, int op,
                                       char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    auto* g = static_cast<Group*>(group);
    c10d::AllreduceOptions opts;
    opts.reduceOp = op == 1 ? c10d::ReduceOp::MAX : c10d::ReduceOp::SUM;
    opts.timeout = g->timeout;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (size_t i = 0; i < n; ++i) {
      std::vector<at::Tensor> one{*tensors[i]};
      works.push_back(g->pg->allreduce(one, opts));
    }
    wait_all(works, g->timeout);
  });
}

// Overwrites each tensor with rank `root`'s.
extern "C" int widedeep_c10d_broadcast(void* group, at::Tensor** tensors, size_t n, int root,
                                       char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    auto* g = static_cast<Group*>(group);
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    opts.timeout = g->timeout;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (size_t i = 0; i < n; ++i) {
      std::vector<at::Tensor> one{*tensors[i]};
      works.push_back(g->pg->broadcast(one, opts));
    }
    wait_all(works, g->timeout);
  });
}

// Every rank's `input` (same shape and kind everywhere), concatenated along dim 0 in rank
// order, as a new tensor.
extern "C" int widedeep_c10d_allgather(void* group, const at::Tensor* input, at::Tensor** out,
                                       char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    auto* g = static_cast<Group*>(group);
    std::vector<at::Tensor> inputs{input->contiguous()};
    std::vector<std::vector<at::Tensor>> outputs(1);
    for (int r = 0; r < g->world; ++r) outputs[0].push_back(at::empty_like(inputs[0]));
    c10d::AllgatherOptions opts;
    opts.timeout = g->timeout;
    std::vector<c10::intrusive_ptr<c10d::Work>> works{g->pg->allgather(outputs, inputs, opts)};
    wait_all(works, g->timeout);
    *out = new at::Tensor(at::cat(outputs[0], 0));
  });
}

// The ranks whose heartbeat did not advance within `window_ms` (written to `lost`, at most
// `cap`); returns their count, or -1 when the store itself cannot be reached (its host is gone).
extern "C" int64_t widedeep_c10d_lost_ranks(void* group, int64_t window_ms, int32_t* lost,
                                            size_t cap) {
  auto* g = static_cast<Group*>(group);
  try {
    auto store = g->store->clone();
    std::vector<int64_t> before(g->world);
    for (int r = 0; r < g->world; ++r) before[r] = store->add(beat_key(r), 0);
    std::this_thread::sleep_for(milliseconds(window_ms));
    int64_t n = 0;
    for (int r = 0; r < g->world; ++r) {
      if (r != g->rank && store->add(beat_key(r), 0) == before[r]) {
        if (static_cast<size_t>(n) < cap) lost[n] = r;
        ++n;
      }
    }
    return n;
  } catch (...) {
    return -1;
  }
}

namespace {

// Gradient averaging overlapped with the backward pass (DDP's reducer, reduced to what the
// trainer needs): the trainable variables are cut into buckets (in reverse order, as gradients
// arrive from the last layers first), and a post-hook on each variable's gradient accumulator
// starts a bucket's all-reduce as soon as all its gradients of the armed backward pass are
// accumulated, buckets always started in index order so that every rank issues the same
// sequence of collectives. `finish` starts what is left (variables without a gradient in this
// pass), waits, and writes the means back. Each bucket carries one defined-flag per variable,
// so a gradient missing on some ranks counts as zeros and one missing on all stays missing.
struct Overlap {
  Group* g;
  std::vector<at::Tensor> vars;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<uintptr_t> hook_keys;
  std::vector<std::vector<size_t>> buckets;
  std::vector<size_t> bucket_of;
  std::vector<size_t> pending;
  std::vector<char> seen;
  std::vector<at::Tensor> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  size_t next = 0;
  bool armed = false;
  std::string error;
  std::mutex mu;
  int64_t launched_in_backward = 0;

  void reset() {
    next = 0;
    armed = false;
    for (size_t b = 0; b < buckets.size(); ++b) {
      pending[b] = 0;
      for (size_t i : buckets[b]) pending[b] += vars[i].requires_grad() ? 1 : 0;
    }
    std::fill(seen.begin(), seen.end(), 0);
    flats.assign(buckets.size(), at::Tensor());
    works.assign(buckets.size(), c10::intrusive_ptr<c10d::Work>());
  }

  void launch(size_t b) {
    std::vector<at::Tensor> parts;
    std::vector<double> flags;
    auto kind = vars[buckets[b][0]].scalar_type();
    for (size_t i : buckets[b]) {
      at::Tensor grad = vars[i].grad();
      if (grad.defined()) {
        parts.push_back(grad.detach().reshape({-1}).to(at::kCPU, kind));
      } else {
        parts.push_back(at::zeros({vars[i].numel()}, at::TensorOptions().dtype(kind)));
      }
      flags.push_back(grad.defined() ? 1.0 : 0.0);
    }
    parts.push_back(at::tensor(flags, at::TensorOptions().dtype(at::kDouble)).to(kind));
    flats[b] = at::cat(parts, 0);
    c10d::AllreduceOptions opts;
    opts.timeout = g->timeout;
    std::vector<at::Tensor> one{flats[b]};
    works[b] = g->pg->allreduce(one, opts);
  }

  // Called by the hook of variable `i` after its gradient was accumulated.
  void on_grad(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed || seen[i] || !error.empty()) return;
    seen[i] = 1;
    size_t b = bucket_of[i];
    --pending[b];
    try {
      while (next < buckets.size() && pending[next] == 0) {
        launch(next++);
        ++launched_in_backward;
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
  }

  // Returns the buckets started during the backward pass since the last call.
  int64_t finish() {
    std::lock_guard<std::mutex> lock(mu);
    int64_t early = launched_in_backward;
    launched_in_backward = 0;
    if (!error.empty()) {
      std::string e = error;
      error.clear();
      reset();
      throw std::runtime_error(e);
    }
    try {
      while (next < buckets.size()) launch(next++);
      wait_all(works, g->timeout);
    } catch (...) {
      reset();
      throw;
    }
    double w = static_cast<double>(g->world);
    for (size_t b = 0; b < buckets.size(); ++b) {
      at::Tensor mean = flats[b].div(w);
      int64_t at = 0;
      int64_t n_vars = static_cast<int64_t>(buckets[b].size());
      int64_t total = mean.numel();
      at::Tensor flags = mean.narrow(0, total - n_vars, n_vars).to(at::kDouble);
      for (size_t k = 0; k < buckets[b].size(); ++k) {
        at::Tensor& var = vars[buckets[b][k]];
        int64_t n = var.numel();
        at::Tensor part = mean.narrow(0, at, n).view(var.sizes());
        at += n;
        at::Tensor grad = var.grad();
        if (grad.defined()) {
          at::NoGradGuard no_grad;
          grad.copy_(part);
        } else if (flags[k].item<double>() > 0) {
          var.mutable_grad() = part.to(var.device()).clone();
        }
      }
    }
    reset();
    return early;
  }

  ~Overlap() {
    for (size_t i = 0; i < accumulators.size(); ++i) {
      if (accumulators[i]) accumulators[i]->del_post_hook(hook_keys[i]);
    }
  }
};

}  // namespace

// Prepares the overlapped gradient averaging of `vars` (buckets of at most `cap_bytes`).
extern "C" int widedeep_c10d_overlap_new(void* group, at::Tensor** vars, size_t n,
                                         int64_t cap_bytes, void** out, char* err,
                                         size_t err_len) {
  return guarded(err, err_len, [&] {
    auto ov = std::make_unique<Overlap>();
    ov->g = static_cast<Group*>(group);
    for (size_t i = 0; i < n; ++i) ov->vars.push_back(*vars[i]);
    ov->bucket_of.assign(n, 0);
    ov->seen.assign(n, 0);
    int64_t bytes = 0;
    for (size_t k = n; k-- > 0;) {
      const at::Tensor& v = ov->vars[k];
      int64_t size = v.numel() * static_cast<int64_t>(v.element_size());
      bool fresh = ov->buckets.empty() || bytes + size > cap_bytes ||
                   ov->vars[ov->buckets.back()[0]].scalar_type() != v.scalar_type();
      if (fresh) {
        ov->buckets.emplace_back();
        bytes = 0;
      }
      ov->buckets.back().push_back(k);
      ov->bucket_of[k] = ov->buckets.size() - 1;
      bytes += size;
    }
    ov->pending.assign(ov->buckets.size(), 0);
    ov->reset();
    Overlap* raw = ov.get();
    for (size_t i = 0; i < n; ++i) {
      if (!ov->vars[i].requires_grad()) {
        ov->accumulators.push_back(nullptr);
        ov->hook_keys.push_back(0);
        continue;
      }
      auto acc = torch::autograd::impl::grad_accumulator(ov->vars[i]);
      uintptr_t key = acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [raw, i](const torch::autograd::variable_list& outputs,
                   const torch::autograd::variable_list& /*inputs*/) {
            raw->on_grad(i);
            return outputs;
          }));
      ov->accumulators.push_back(acc);
      ov->hook_keys.push_back(key);
    }
    *out = ov.release();
  });
}

// The next backward pass starts each bucket's all-reduce as soon as its gradients are in.
extern "C" void widedeep_c10d_overlap_arm(void* ov) {
  auto* o = static_cast<Overlap*>(ov);
  std::lock_guard<std::mutex> lock(o->mu);
  o->armed = true;
}

// Starts the buckets not started yet, waits for all, and replaces the gradients by their means
// over the ranks; `launched_early`: the buckets started during the backward pass.
extern "C" int widedeep_c10d_overlap_finish(void* ov, int64_t* launched_early, char* err,
                                            size_t err_len) {
  return guarded(err, err_len, [&] {
    auto* o = static_cast<Overlap*>(ov);
    *launched_early = o->finish();
  });
}

extern "C" void widedeep_c10d_overlap_free(void* ov) { delete static_cast<Overlap*>(ov); }
