// Data-parallel training on PyTorch's c10d (env.strategy = ddp): one process
// per worker, started by the user or a launcher with the variables torchrun
// sets (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT); rendezvous through c10d's TCPStore (rank 0 serves it),
// collectives through ProcessGroupGloo. Nothing here is a communication layer
// of its own: it names what each collective is for, so that a failure says
// which rank was doing what.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "automm/config.h"

namespace c10d {
class ProcessGroup;
}

namespace automm {

// Where this process stands in a data-parallel fit.
struct DistributedEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::chrono::milliseconds timeout{60000};

  bool active() const { return world_size > 1; }
  bool lead() const { return rank == 0; }
};

// env.strategy, env.num_nodes, env.num_gpus, env.ddp_timeout and, under ddp, the
// launcher's variables. One process (world size 1) for dp / auto / ddp_spawn on
// one device; throws naming the variable or key for what is missing or inconsistent.
DistributedEnv distributed_env(const Config& config);

// The process group of a data-parallel fit. Every collective throws
// std::runtime_error naming this rank and `what` it was for when a peer dies,
// hangs past the timeout or cannot be reached.
class Communicator {
 public:
  // Rendezvous (rank 0 listens on master_port) and the Gloo group.
  explicit Communicator(const DistributedEnv& env);
  ~Communicator();

  const DistributedEnv& env() const { return env_; }
  // Throws on every rank when the ranks' `fingerprint`s differ, naming `what`
  // and the first rank that differs from rank 0.
  void require_same(const std::string& what, uint64_t fingerprint);
  // Rank 0's values into every rank's tensors, in place.
  void broadcast(std::vector<torch::Tensor> tensors, const std::string& what);
  // Sum over ranks, in place; async: the returned handle's wait() finishes it.
  struct Pending;
  std::shared_ptr<Pending> allreduce_sum_async(torch::Tensor tensor, const std::string& what);
  void wait(const std::shared_ptr<Pending>& pending);
  // Every rank's `local` rows ([n_r, ...], n_r may differ by one), in rank order.
  torch::Tensor allgather_rows(const torch::Tensor& local, const std::string& what);
  // True on every rank when any rank says true (one small all-reduce).
  bool any(bool flag, const std::string& what);

 private:
  [[noreturn]] void fail(const std::string& what, const std::exception& e) const;
  // Every rank's `mine` (same shape on every rank), in rank order.
  std::vector<torch::Tensor> allgather(const torch::Tensor& mine, const std::string& what);

  DistributedEnv env_;
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
};

// env.strategy = ddp_spawn with env.num_gpus = n > 1 on one node: the automm
// command line re-runs itself as n worker processes (`arguments`, argv[0]
// excluded, run as /proc/self/exe) with the torchrun variables on loopback and
// AUTOMM_SPAWNED_WORKER=1, ranks > 0 with --quiet appended, and waits for them.
// When one fails, the others get SIGTERM (SIGKILL 10 s later): none is left
// running. SIGINT / SIGTERM to the launcher go to every worker. Returns the first
// failing worker's exit status (0 when all succeed); `failed_rank` says which.
int run_local_workers(const std::vector<std::string>& arguments, int workers, int* failed_rank);
// Whether `config` asks the command line to start local workers (and this
// process is not one of them).
int local_workers_to_spawn(const Config& config);
// Whether this process is one worker of a data-parallel fit (env.strategy = ddp,
// or a worker that ddp_spawn started): one device per process.
bool is_data_parallel_worker(const Config& config);

// The rows [begin, end) of `rows` that `rank` of `world_size` holds: contiguous
// shards whose sizes differ by at most one.
std::pair<int64_t, int64_t> shard_of(int64_t rows, int rank, int world_size);

// Gradient all-reduce in buckets, overlapped with backward: each bucket is
// summed across ranks as soon as the gradients of all its parameters have been
// accumulated in the backward pass of the last micro-step before an optimizer
// step (hooks after each parameter's AccumulateGrad node, as c10d's Reducer),
// never on accumulation micro-steps. finish() waits for every bucket and
// divides by the world size; parameters that got no gradient count as zeros.
class GradientReducer {
 public:
  GradientReducer(std::vector<torch::Tensor> params, Communicator& comm, int64_t bucket_bytes = 25 << 20);
  ~GradientReducer();
  // Before the backward pass of the micro-step whose gradients the next optimizer step uses.
  void arm();
  // After that backward pass: gradients are the mean over ranks.
  void finish();

 private:
  struct Bucket {
    std::vector<size_t> members;  // indices into params_
    int64_t ready = 0;
    torch::Tensor flat;
    std::shared_ptr<Communicator::Pending> pending;
  };
  void on_ready(size_t param);
  void launch(Bucket& bucket);

  std::vector<torch::Tensor> params_;
  std::vector<size_t> bucket_of_;
  std::vector<Bucket> buckets_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hooks_;
  Communicator& comm_;
  bool armed_ = false;
  size_t next_ = 0;  // the next bucket to launch
  std::vector<bool> seen_;
};

}  // namespace automm
