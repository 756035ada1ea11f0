#include "learners/distributed.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace automm {
namespace {

std::string env_text(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

int env_int(const char* name, int fallback, bool required) {
  const std::string text = env_text(name);
  if (text.empty()) {
    if (required)
      throw std::invalid_argument(std::string("env.strategy = ddp reads ") + name +
                                  " (set by torchrun or your launcher: RANK, WORLD_SIZE, LOCAL_RANK, "
                                  "LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), and it is not set");
    return fallback;
  }
  try {
    size_t used = 0;
    const int value = std::stoi(text, &used);
    if (used != text.size() || value < 0) throw std::invalid_argument(text);
    return value;
  } catch (const std::exception&) {
    throw std::invalid_argument(std::string(name) + " = '" + text + "' is not a non-negative integer");
  }
}

}  // namespace

DistributedEnv distributed_env(const Config& config) {
  DistributedEnv env;
  const std::string strategy = config.get_string("env.strategy");
  env.timeout = std::chrono::milliseconds(static_cast<int64_t>(config.get_double("env.ddp_timeout") * 1000));
  const int64_t num_gpus = config.get_int("env.num_gpus");
  const int64_t num_nodes = config.get_int("env.num_nodes");
  const bool spawned = strategy.rfind("ddp_spawn", 0) == 0 && !env_text("AUTOMM_SPAWNED_WORKER").empty();
  if (!spawned && (strategy.rfind("ddp_spawn", 0) == 0 || strategy == "dp" || strategy == "auto")) {
    if (strategy.rfind("ddp_spawn", 0) == 0 && num_gpus > 1 && num_nodes == 1)
      throw std::invalid_argument(
          "env.strategy = ddp_spawn with env.num_gpus = " + std::to_string(num_gpus) +
          ": the automm command line starts those workers (automm fit ...); from C++ or Python, start one process "
          "per worker with the torchrun variables and env.strategy = ddp (docs/distributed.md)");
    const bool all_of_several = num_gpus == -1 && torch::cuda::is_available() && torch::cuda::device_count() > 1;
    if (num_gpus > 1 || num_nodes > 1 || all_of_several)
      throw std::invalid_argument(
          "env.strategy = " + strategy + " with env.num_gpus = " + std::to_string(num_gpus) +
          " / env.num_nodes = " + std::to_string(num_nodes) +
          ": start one process per worker (on each node) with the torchrun variables and env.strategy = ddp "
          "(docs/distributed.md); ddp_spawn starts local workers on one node only");
    return env;
  }
  // ddp, ddp_find_unused_parameters_true: the launcher's variables.
  env.world_size = env_int("WORLD_SIZE", 1, true);
  env.rank = env_int("RANK", 0, true);
  env.local_rank = env_int("LOCAL_RANK", env.rank, false);
  env.local_world_size = env_int("LOCAL_WORLD_SIZE", env.world_size, false);
  env.master_addr = env_text("MASTER_ADDR");
  if (env.master_addr.empty()) env.master_addr = "127.0.0.1";
  env.master_port = env_int("MASTER_PORT", 29500, false);
  if (env.world_size < 1 || env.rank >= env.world_size)
    throw std::invalid_argument("RANK = " + std::to_string(env.rank) + " is outside WORLD_SIZE = " +
                                std::to_string(env.world_size));
  if (env.local_world_size < 1 || env.local_rank >= env.local_world_size || env.world_size % env.local_world_size)
    throw std::invalid_argument("LOCAL_RANK = " + std::to_string(env.local_rank) + ", LOCAL_WORLD_SIZE = " +
                                std::to_string(env.local_world_size) + " do not fit WORLD_SIZE = " +
                                std::to_string(env.world_size));
  if (env.master_port <= 0 || env.master_port > 65535)
    throw std::invalid_argument("MASTER_PORT = " + std::to_string(env.master_port) + " is not a port number");
  const int nodes = env.world_size / env.local_world_size;
  if (config.user_keys().count("env.num_nodes") && num_nodes != nodes)
    throw std::invalid_argument("env.num_nodes = " + std::to_string(num_nodes) + ", but WORLD_SIZE / LOCAL_WORLD_SIZE = " +
                                std::to_string(nodes));
  if (config.user_keys().count("env.num_gpus") && num_gpus > 0 && num_gpus != env.local_world_size)
    throw std::invalid_argument("env.num_gpus = " + std::to_string(num_gpus) +
                                " (worker processes per node), but LOCAL_WORLD_SIZE = " +
                                std::to_string(env.local_world_size));
  return env;
}

bool is_data_parallel_worker(const Config& config) {
  const std::string strategy = config.get_string("env.strategy");
  if (strategy.rfind("ddp_spawn", 0) == 0) return !env_text("AUTOMM_SPAWNED_WORKER").empty();
  return strategy.rfind("ddp", 0) == 0;
}

int local_workers_to_spawn(const Config& config) {
  if (!env_text("AUTOMM_SPAWNED_WORKER").empty()) return 0;
  if (config.get_string("env.strategy").rfind("ddp_spawn", 0) != 0) return 0;
  if (config.get_int("env.num_nodes") != 1) return 0;  // distributed_env refuses it
  const int64_t workers = config.get_int("env.num_gpus");
  return workers > 1 ? static_cast<int>(workers) : 0;
}

namespace {

std::vector<pid_t>* g_workers = nullptr;
std::atomic<int> g_forwarded_signal{0};

void forward_signal(int signal) {
  g_forwarded_signal = signal;
  if (g_workers)
    for (pid_t pid : *g_workers)
      if (pid > 0) kill(pid, signal);
}

int free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    if (fd >= 0) close(fd);
    throw std::runtime_error("ddp_spawn: cannot find a free loopback port for the rendezvous");
  }
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

}  // namespace

int run_local_workers(const std::vector<std::string>& arguments, int workers, int* failed_rank) {
  const int port = free_loopback_port();
  std::vector<pid_t> pids(workers, -1);
  for (int rank = 0; rank < workers; ++rank) {
    std::vector<std::string> args = {"automm"};
    args.insert(args.end(), arguments.begin(), arguments.end());
    if (rank > 0) args.push_back("--quiet");
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = fork();
    if (pid < 0) {
      for (pid_t p : pids)
        if (p > 0) kill(p, SIGKILL);
      throw std::runtime_error("ddp_spawn: cannot start worker " + std::to_string(rank));
    }
    if (pid == 0) {  // the worker: this program again, placed by the torchrun variables
      setenv("RANK", std::to_string(rank).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(workers).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(workers).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      setenv("AUTOMM_SPAWNED_WORKER", "1", 1);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv("/proc/self/exe", argv.data());
      std::perror("ddp_spawn: exec");
      _exit(127);
    }
    pids[rank] = pid;
  }
  g_workers = &pids;
  struct sigaction forward {}, old_int {}, old_term {};
  forward.sa_handler = forward_signal;
  sigemptyset(&forward.sa_mask);
  sigaction(SIGINT, &forward, &old_int);
  sigaction(SIGTERM, &forward, &old_term);
  int first_status = 0, running = workers;
  *failed_rank = -1;
  auto deadline = std::chrono::steady_clock::time_point::max();
  while (running > 0) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      if (std::chrono::steady_clock::now() > deadline)
        for (pid_t p : pids)
          if (p > 0) kill(p, SIGKILL);  // workers that ignored SIGTERM
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    const auto it = std::find(pids.begin(), pids.end(), pid);
    if (it == pids.end()) continue;
    const int rank = static_cast<int>(it - pids.begin());
    *it = -1;
    --running;
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code != 0 && first_status == 0) {
      first_status = code;
      *failed_rank = rank;
      for (pid_t p : pids)
        if (p > 0) kill(p, SIGTERM);
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    }
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  g_workers = nullptr;
  return first_status;
}

std::pair<int64_t, int64_t> shard_of(int64_t rows, int rank, int world_size) {
  const int64_t base = rows / world_size, extra = rows % world_size;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

struct Communicator::Pending {
  c10::intrusive_ptr<c10d::Work> work;
  std::string what;
};

Communicator::Communicator(const DistributedEnv& env) : env_(env) {
  c10::intrusive_ptr<c10d::Store> store;
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(env.master_port);
    options.isServer = env.rank == 0;
    options.numWorkers = env.world_size;
    options.waitWorkers = true;
    options.timeout = env.timeout;
    store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
  } catch (const std::exception& e) {
    throw std::runtime_error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                             (env.rank == 0 ? ": cannot serve the rendezvous store on " + where +
                                                  " (is the port in use? set MASTER_PORT)"
                                            : ": cannot reach the rendezvous store at " + where) +
                             " within env.ddp_timeout: " + e.what());
  }
  try {
    auto options = c10d::ProcessGroupGloo::Options::create(env.timeout);
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, options);
  } catch (const std::exception& e) {
    fail("joining the process group", e);
  }
}

Communicator::~Communicator() = default;

void Communicator::fail(const std::string& what, const std::exception& e) const {
  std::string message = e.what();
  if (const auto* error = dynamic_cast<const c10::Error*>(&e)) message = error->what_without_backtrace();
  char timeout[32];
  std::snprintf(timeout, sizeof(timeout), "%g", static_cast<double>(env_.timeout.count()) / 1000.0);
  throw std::runtime_error("rank " + std::to_string(env_.rank) + " of " + std::to_string(env_.world_size) + ": " +
                           what + " failed (a worker died, hung past env.ddp_timeout = " + timeout +
                           " s, or is unreachable): " + message);
}

void Communicator::require_same(const std::string& what, uint64_t fingerprint) {
  const torch::Tensor mine = torch::tensor({static_cast<int64_t>(fingerprint)}, torch::kInt64);
  const torch::Tensor all = allgather_rows(mine, "comparing the ranks' " + what);
  for (int r = 1; r < env_.world_size; ++r)
    if (all[r].item<int64_t>() != all[0].item<int64_t>())
      throw std::invalid_argument("data-parallel ranks disagree: rank " + std::to_string(r) + "'s " + what +
                                  " differs from rank 0's; every rank must run the same fit");
}

void Communicator::broadcast(std::vector<torch::Tensor> tensors, const std::string& what) {
  try {
    for (auto& t : tensors) {
      std::vector<torch::Tensor> one = {t};
      group_->broadcast(one)->wait();
      t.unsafeGetTensorImpl()->bump_version();  // Gloo wrote it in place: caches keyed on versions must see it
    }
  } catch (const std::exception& e) {
    fail(what, e);
  }
}

std::shared_ptr<Communicator::Pending> Communicator::allreduce_sum_async(torch::Tensor tensor, const std::string& what) {
  auto pending = std::make_shared<Pending>();
  pending->what = what;
  try {
    std::vector<torch::Tensor> one = {std::move(tensor)};
    pending->work = group_->allreduce(one);
  } catch (const std::exception& e) {
    fail(what, e);
  }
  return pending;
}

void Communicator::wait(const std::shared_ptr<Pending>& pending) {
  try {
    pending->work->wait(env_.timeout);
  } catch (const std::exception& e) {
    fail(pending->what, e);
  }
}

std::vector<torch::Tensor> Communicator::allgather(const torch::Tensor& mine, const std::string& what) {
  std::vector<std::vector<torch::Tensor>> all(1);
  for (int r = 0; r < env_.world_size; ++r) all[0].push_back(torch::empty_like(mine));
  std::vector<torch::Tensor> input = {mine};
  try {
    group_->allgather(all, input)->wait();
  } catch (const std::exception& e) {
    fail(what, e);
  }
  return all[0];
}

torch::Tensor Communicator::allgather_rows(const torch::Tensor& local, const std::string& what) {
  // Row counts first, then the rows padded to the longest.
  const std::vector<torch::Tensor> counts = allgather(torch::tensor({local.size(0)}, torch::kInt64), what);
  int64_t longest = 0;
  for (const auto& c : counts) longest = std::max(longest, c.item<int64_t>());
  auto shape = local.sizes().vec();
  shape[0] = longest;
  torch::Tensor padded = torch::zeros(shape, local.options());
  padded.slice(0, 0, local.size(0)).copy_(local);
  const std::vector<torch::Tensor> rows = allgather(padded, what);
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < env_.world_size; ++r) parts.push_back(rows[r].slice(0, 0, counts[r].item<int64_t>()));
  return torch::cat(parts, 0);
}

bool Communicator::any(bool flag, const std::string& what) {
  torch::Tensor t = torch::tensor({flag ? 1.0f : 0.0f});
  wait(allreduce_sum_async(t, what));
  return t.item<float>() > 0;
}

GradientReducer::GradientReducer(std::vector<torch::Tensor> params, Communicator& comm, int64_t bucket_bytes)
    : params_(std::move(params)), comm_(comm) {
  // Buckets in reverse registration order, the order backward tends to produce
  // gradients in; a parameter's dtype must match its bucket's.
  bucket_of_.assign(params_.size(), 0);
  int64_t bytes = bucket_bytes;
  for (size_t k = params_.size(); k-- > 0;) {
    const torch::Tensor& p = params_[k];
    const int64_t size = p.numel() * p.element_size();
    if (buckets_.empty() || bytes + size > bucket_bytes ||
        params_[buckets_.back().members.front()].scalar_type() != p.scalar_type()) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().members.push_back(k);
    bucket_of_[k] = buckets_.size() - 1;
    bytes += size;
  }
  seen_.assign(params_.size(), false);
  for (size_t k = 0; k < params_.size(); ++k) {
    auto accumulator = torch::autograd::impl::grad_accumulator(params_[k]);
    hooks_.push_back(accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [this, k](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
          on_ready(k);
          return outputs;
        })));
    accumulators_.push_back(std::move(accumulator));
  }
}

GradientReducer::~GradientReducer() {
  for (size_t k = 0; k < accumulators_.size(); ++k) accumulators_[k]->del_post_hook(hooks_[k]);
}

void GradientReducer::arm() {
  armed_ = true;
  seen_.assign(params_.size(), false);
  next_ = 0;
  for (auto& bucket : buckets_) {
    bucket.ready = 0;
    bucket.pending.reset();
  }
}

void GradientReducer::on_ready(size_t param) {
  if (!armed_ || seen_[param]) return;
  seen_[param] = true;
  ++buckets_[bucket_of_[param]].ready;
  // Collectives must be issued in the same order on every rank: buckets go out in
  // their fixed order, each once it and all before it are complete.
  while (next_ < buckets_.size() &&
         buckets_[next_].ready == static_cast<int64_t>(buckets_[next_].members.size()))
    launch(buckets_[next_++]);
}

void GradientReducer::launch(Bucket& bucket) {
  std::vector<torch::Tensor> grads;
  for (size_t k : bucket.members) {
    const torch::Tensor& g = params_[k].grad();
    grads.push_back(g.defined() ? g.reshape({-1}) : torch::zeros({params_[k].numel()}, params_[k].options()));
  }
  bucket.flat = torch::cat(grads).to(torch::kFloat32);  // Gloo sums fp32 whatever the parameters' dtype
  bucket.pending = comm_.allreduce_sum_async(bucket.flat, "the gradient all-reduce");
}

void GradientReducer::finish() {
  if (!armed_) return;
  armed_ = false;
  // Buckets with a parameter that got no gradient in this backward pass, in order.
  while (next_ < buckets_.size()) launch(buckets_[next_++]);
  const double scale = 1.0 / comm_.env().world_size;
  torch::NoGradGuard no_grad;
  for (auto& bucket : buckets_) {
    comm_.wait(bucket.pending);
    int64_t offset = 0;
    for (size_t k : bucket.members) {
      torch::Tensor& p = params_[k];
      const int64_t n = p.numel();
      torch::Tensor mean = (bucket.flat.slice(0, offset, offset + n).view(p.sizes()) * scale).to(p.scalar_type());
      if (p.grad().defined()) p.mutable_grad().copy_(mean);
      else p.mutable_grad() = mean.clone();
      offset += n;
    }
    bucket.pending.reset();
    bucket.flat = torch::Tensor();
  }
}

}  // namespace automm
