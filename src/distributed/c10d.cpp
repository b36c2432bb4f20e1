// The C glue of `src/distributed/`: PyTorch's own distributed engine (c10d) as shipped in the
// libtorch we link: a TCPStore rendezvous (torchrun's logic), a ProcessGroupGloo over it, and
// the collectives the data-parallel trainer calls (all-reduce, broadcast, all-gather), each
// waited for with the group's timeout. Also a heartbeat per rank in the store, so that a failed
// collective can name the ranks that are gone, and the one autograd detail tch lacks (setting
// a variable's gradient). Every function catches C++ exceptions and returns their message.
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

// Sets the gradient of a variable (tch has no setter): what the averaged buckets give a
// parameter that had none on this rank.
extern "C" int widedeep_set_grad(at::Tensor* var, const at::Tensor* grad, char* err,
                                 size_t err_len) {
  return guarded(err, err_len, [&] { var->mutable_grad() = *grad; });
}
