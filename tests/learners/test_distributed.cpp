// Data-parallel training (env.strategy = ddp, src/learners/distributed.h):
// ranks started as a launcher would (the torchrun variables) on loopback end
// where one process with the same effective batch ends; a killed worker fails
// the fit naming the rank; the environment and configuration are checked.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "automm/config.h"
#include "automm/predictor.h"
#include "automm_test_paths.h"
#include "learners/distributed.h"
#include "text_test_util.h"

namespace automm {
namespace {

namespace fs = std::filesystem;
using testing::contains;
using testing::error_of;
using testing::make_tabular_table;
using testing::TempDir;

// A TCP port nobody listens on right now.
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

struct Process {
  pid_t pid = -1;
  std::string log;
};

// `automm <arguments>` with extra environment variables, output to `log`.
Process spawn(const std::vector<std::string>& arguments, const std::map<std::string, std::string>& env,
              const std::string& log) {
  Process p;
  p.log = log;
  std::cout.flush();  // or the child's copy of the buffer prints again
  std::fflush(stdout);
  p.pid = fork();
  if (p.pid == 0) {
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    setenv("AUTOMM_NUM_THREADS", "1", 1);
    std::vector<char*> argv = {const_cast<char*>(AUTOMM_CLI_PATH)};
    for (const auto& a : arguments) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    freopen(log.c_str(), "w", stdout);
    dup2(fileno(stdout), fileno(stderr));
    execv(AUTOMM_CLI_PATH, argv.data());
    _exit(127);
  }
  return p;
}

int wait_for(const Process& p) {
  int status = 0;
  waitpid(p.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_log(const Process& p) {
  std::ifstream in(p.log);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::map<std::string, std::string> rank_env(int rank, int world, int local_world, int port) {
  return {{"RANK", std::to_string(rank)},
          {"WORLD_SIZE", std::to_string(world)},
          {"LOCAL_RANK", std::to_string(rank % local_world)},
          {"LOCAL_WORLD_SIZE", std::to_string(local_world)},
          {"MASTER_ADDR", "127.0.0.1"},
          {"MASTER_PORT", std::to_string(port)}};
}

std::vector<std::string> fit_arguments(const std::string& train, const std::string& path,
                                       const std::vector<std::string>& hps) {
  std::vector<std::string> a = {"fit", "--train", train, "--label", "label", "--path", path, "--quiet", "--seed", "3"};
  for (const auto& hp : hps) {
    a.push_back("--hp");
    a.push_back(hp);
  }
  return a;
}

// Two ranks of per-device batch 8 against one process of batch 16: the same
// rows in every optimizer step, the same mean gradient up to float rounding.
void expect_two_ranks_match_one_process(const std::string& train, const std::string& test_file, TempDir& dir,
                                        const std::vector<std::string>& hps, int local_world,
                                        const std::string& name, double tolerance) {
  SCOPED_TRACE(name);
  std::vector<std::string> one = hps, two = hps;
  one.insert(one.end(), {"env.per_gpu_batch_size=16", "env.batch_size=16"});
  two.insert(two.end(), {"env.per_gpu_batch_size=8", "env.batch_size=16", "env.strategy=ddp"});
  if (local_world == 1) two.push_back("env.num_nodes=2");  // two "nodes" on loopback
  const Process single = spawn(fit_arguments(train, dir.file(name + "_one"), one), {}, dir.file(name + "_one.log"));
  ASSERT_EQ(wait_for(single), 0) << read_log(single);
  const int port = free_port();
  const Process rank0 =
      spawn(fit_arguments(train, dir.file(name + "_ddp"), two), rank_env(0, 2, local_world, port), dir.file(name + "_r0.log"));
  const Process rank1 =
      spawn(fit_arguments(train, dir.file(name + "_ddp"), two), rank_env(1, 2, local_world, port), dir.file(name + "_r1.log"));
  ASSERT_EQ(wait_for(rank0), 0) << read_log(rank0);
  ASSERT_EQ(wait_for(rank1), 0) << read_log(rank1);
  const MultiModalPredictor a = MultiModalPredictor::load(dir.file(name + "_one"));
  const MultiModalPredictor b = MultiModalPredictor::load(dir.file(name + "_ddp"));
  EXPECT_EQ(b.fit_summary().at("data_parallel").at("world_size"), 2);
  EXPECT_EQ(a.fit_summary().at("optimizer_steps"), b.fit_summary().at("optimizer_steps"));
  const Table test = read_table(test_file);
  const double difference = (a.predict_proba(test) - b.predict_proba(test)).abs().max().item<double>();
  std::cout << name << ": largest probability difference, 2 ranks vs 1 process: " << difference << "\n";
  EXPECT_LT(difference, tolerance);
}

TEST(DataParallel, TwoRanksEndWhereOneProcessEnds) {
  TempDir dir;
  write_csv(make_tabular_table(400, 1), dir.file("train.csv"));
  write_csv(make_tabular_table(200, 2), dir.file("test.csv"));
  const std::vector<std::string> tabular = {"optim.max_epochs=3", "optim.patience=1000", "env.precision=32",
                                            "model.numerical_mlp.drop_rate=0", "model.categorical_mlp.drop_rate=0",
                                            "model.fusion_mlp.drop_rate=0"};
  expect_two_ranks_match_one_process(dir.file("train.csv"), dir.file("test.csv"), dir, tabular, 2, "tabular", 1e-5);
  expect_two_ranks_match_one_process(dir.file("train.csv"), dir.file("test.csv"), dir, tabular, 1, "two_nodes", 1e-5);

  // A text model (BERT without dropout, so that no rank draws its own masks). Each
  // rank pads its 8-row batches to their own longest review, one process its 16
  // rows: the same values up to float rounding, which 2 epochs of training at lr
  // 1e-3 grow to about 1e-3 in the probabilities.
  std::vector<std::string> words = testing::positive_words();
  for (const auto& w : testing::negative_words()) words.push_back(w);
  for (const char* w : {"the", "a", "this", "product", "service", "was", "is", "and", "it", "very"}) words.push_back(w);
  nlohmann::json config = testing::write_bert_checkpoint(dir.file("ckpt"), words, 3);
  config.update({{"hidden_dropout_prob", 0.0}, {"attention_probs_dropout_prob", 0.0}});
  std::ofstream(dir.file("ckpt/config.json")) << config.dump(2);
  write_csv(testing::make_review_table(160, 5), dir.file("reviews.csv"));
  write_csv(testing::make_review_table(60, 6), dir.file("reviews_test.csv"));
  expect_two_ranks_match_one_process(dir.file("reviews.csv"), dir.file("reviews_test.csv"), dir,
                                     {"optim.max_epochs=2", "optim.patience=1000", "env.precision=32",
                                      "model.names=[hf_text]", "model.hf_text.checkpoint_name=" + dir.file("ckpt"),
                                      "optim.lr=1e-3"},
                                     2, "text", 5e-3);
  // LoRA, bf16-mixed and gradient checkpointing under ddp: bf16 rounding differs with the padding too.
  expect_two_ranks_match_one_process(dir.file("reviews.csv"), dir.file("reviews_test.csv"), dir,
                                     {"optim.max_epochs=2", "optim.patience=1000", "env.precision=bf16-mixed",
                                      "model.names=[hf_text]", "model.hf_text.checkpoint_name=" + dir.file("ckpt"),
                                      "optim.lr=1e-3", "optim.peft=lora", "model.hf_text.gradient_checkpointing=true"},
                                     2, "text_lora_bf16", 2e-2);
}

TEST(DataParallel, AKilledWorkerFailsTheFitNamingTheRank) {
  TempDir dir;
  write_csv(make_tabular_table(2000, 1), dir.file("train.csv"));
  const std::vector<std::string> hps = {"env.strategy=ddp", "optim.max_epochs=500", "optim.patience=100000",
                                        "env.ddp_timeout=20", "env.per_gpu_batch_size=8", "env.batch_size=16"};
  const int port = free_port();
  const auto start = std::chrono::steady_clock::now();
  const Process rank0 = spawn(fit_arguments(dir.file("train.csv"), dir.file("p"), hps), rank_env(0, 2, 2, port),
                              dir.file("r0.log"));
  const Process rank1 = spawn(fit_arguments(dir.file("train.csv"), dir.file("p"), hps), rank_env(1, 2, 2, port),
                              dir.file("r1.log"));
  // Mid-epoch, once rank 0 has written its first checkpoint.
  const fs::path checkpoint = fs::path(dir.file("p")) / "resume" / "last.pt";
  while (!fs::exists(checkpoint) && std::chrono::steady_clock::now() - start < std::chrono::seconds(240))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(fs::exists(checkpoint)) << read_log(rank0);
  kill(rank1.pid, SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  wait_for(rank1);
  const int status = wait_for(rank0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  const std::string log = read_log(rank0);
  const size_t said = log.find("rank 0 of 2");
  std::cout << "rank 0 ended " << seconds << " s after rank 1 was killed: "
            << (said == std::string::npos ? log : log.substr(said)) << "\n";
  EXPECT_NE(status, 0);
  EXPECT_LT(seconds, 60.0);
  EXPECT_TRUE(contains(log, "rank 0 of 2")) << log;
  EXPECT_FALSE(fs::exists(dir.file("p/predictor.json")));
}

// A worker that stops answering (SIGSTOP) fails the others after env.ddp_timeout.
TEST(DataParallel, AHungWorkerFailsTheFitWithinTheTimeout) {
  TempDir dir;
  write_csv(make_tabular_table(2000, 1), dir.file("train.csv"));
  const std::vector<std::string> hps = {"env.strategy=ddp", "optim.max_epochs=500", "optim.patience=100000",
                                        "env.ddp_timeout=5"};
  const int port = free_port();
  const Process rank0 = spawn(fit_arguments(dir.file("train.csv"), dir.file("p"), hps), rank_env(0, 2, 2, port),
                              dir.file("r0.log"));
  const Process rank1 = spawn(fit_arguments(dir.file("train.csv"), dir.file("p"), hps), rank_env(1, 2, 2, port),
                              dir.file("r1.log"));
  const fs::path checkpoint = fs::path(dir.file("p")) / "resume" / "last.pt";
  const auto start = std::chrono::steady_clock::now();
  while (!fs::exists(checkpoint) && std::chrono::steady_clock::now() - start < std::chrono::seconds(240))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(rank1.pid, SIGSTOP);
  const auto stopped = std::chrono::steady_clock::now();
  const int status = wait_for(rank0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped).count();
  kill(rank1.pid, SIGKILL);
  wait_for(rank1);
  const std::string log = read_log(rank0);
  std::cout << "rank 0 ended " << seconds << " s after rank 1 stopped answering\n";
  EXPECT_NE(status, 0);
  EXPECT_LT(seconds, 30.0);
  EXPECT_TRUE(contains(log, "rank 0 of 2") && contains(log, "env.ddp_timeout = 5 s")) << log;
}

// Both ranks of a killed fit resume from rank 0's checkpoint and end where an
// uninterrupted two-rank fit ends.
TEST(DataParallel, AKilledFitResumesOnEveryRank) {
  TempDir dir;
  write_csv(make_tabular_table(1200, 1), dir.file("train.csv"));
  write_csv(make_tabular_table(200, 2), dir.file("test.csv"));
  const std::vector<std::string> hps = {"env.strategy=ddp", "optim.max_epochs=6", "optim.patience=1000",
                                        "env.precision=32", "env.per_gpu_batch_size=8", "env.batch_size=16"};
  int port = free_port();
  Process r0 = spawn(fit_arguments(dir.file("train.csv"), dir.file("whole"), hps), rank_env(0, 2, 2, port), dir.file("w0.log"));
  Process r1 = spawn(fit_arguments(dir.file("train.csv"), dir.file("whole"), hps), rank_env(1, 2, 2, port), dir.file("w1.log"));
  ASSERT_EQ(wait_for(r0), 0) << read_log(r0);
  ASSERT_EQ(wait_for(r1), 0) << read_log(r1);

  port = free_port();
  r0 = spawn(fit_arguments(dir.file("train.csv"), dir.file("cut"), hps), rank_env(0, 2, 2, port), dir.file("c0.log"));
  r1 = spawn(fit_arguments(dir.file("train.csv"), dir.file("cut"), hps), rank_env(1, 2, 2, port), dir.file("c1.log"));
  const fs::path checkpoint = fs::path(dir.file("cut")) / "resume" / "last.pt";
  const auto start = std::chrono::steady_clock::now();
  while (!fs::exists(checkpoint) && std::chrono::steady_clock::now() - start < std::chrono::seconds(240))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  kill(r1.pid, SIGKILL);
  wait_for(r1);
  EXPECT_NE(wait_for(r0), 0);
  ASSERT_FALSE(fs::exists(dir.file("cut/predictor.json"))) << "the fit finished before the kill";

  port = free_port();
  const std::vector<std::string> resume = {"fit", "--resume", "--path", dir.file("cut"), "--train", dir.file("train.csv"),
                                           "--quiet"};
  r0 = spawn(resume, rank_env(0, 2, 2, port), dir.file("s0.log"));
  r1 = spawn(resume, rank_env(1, 2, 2, port), dir.file("s1.log"));
  ASSERT_EQ(wait_for(r0), 0) << read_log(r0);
  ASSERT_EQ(wait_for(r1), 0) << read_log(r1);
  const MultiModalPredictor resumed = MultiModalPredictor::load(dir.file("cut"));
  const MultiModalPredictor whole = MultiModalPredictor::load(dir.file("whole"));
  EXPECT_GT(resumed.fit_summary().at("resumed_from_step").get<int>(), 0);
  const Table test = read_table(dir.file("test.csv"));
  EXPECT_LT((resumed.predict_proba(test) - whole.predict_proba(test)).abs().max().item<double>(), 1e-6);
}

TEST(DataParallel, EnvironmentAndConfigurationAreChecked) {
  Config config;
  config.merge({{"env.strategy", "ddp"}});
  {
    testing::ScopedEnv env({{"RANK", ""}, {"WORLD_SIZE", ""}});  // empty counts as unset
    EXPECT_TRUE(contains(error_of([&] { distributed_env(config); }), "WORLD_SIZE"));
  }
  {
    testing::ScopedEnv env({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}, {"LOCAL_WORLD_SIZE", "2"}});
    EXPECT_TRUE(contains(error_of([&] { distributed_env(config); }), "RANK = 2"));
  }
  {
    testing::ScopedEnv env({{"RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                            {"MASTER_PORT", "29511"}});
    const DistributedEnv e = distributed_env(config);
    EXPECT_EQ(e.rank, 1);
    EXPECT_EQ(e.world_size, 4);
    EXPECT_EQ(e.master_port, 29511);
    Config three_nodes = config;
    three_nodes.merge({{"env.num_nodes", 3}});
    EXPECT_TRUE(contains(error_of([&] { distributed_env(three_nodes); }), "env.num_nodes = 3"));
    Config gpus = config;
    gpus.merge({{"env.num_gpus", 4}});
    EXPECT_TRUE(contains(error_of([&] { distributed_env(gpus); }), "LOCAL_WORLD_SIZE = 2"));
  }
  Config several;
  several.merge({{"env.num_gpus", 2}});  // ddp_spawn, the default: one process
  EXPECT_TRUE(contains(error_of([&] { distributed_env(several); }), "env.strategy = ddp"));
  EXPECT_EQ(shard_of(10, 0, 3), (std::pair<int64_t, int64_t>{0, 4}));
  EXPECT_EQ(shard_of(10, 2, 3), (std::pair<int64_t, int64_t>{7, 10}));

  // Ranks whose configurations differ; a port already taken.
  TempDir dir;
  write_csv(make_tabular_table(200, 1), dir.file("train.csv"));
  const int port = free_port();
  const Process rank0 = spawn(fit_arguments(dir.file("train.csv"), dir.file("p"), {"env.strategy=ddp", "optim.lr=1e-3"}),
                              rank_env(0, 2, 2, port), dir.file("r0.log"));
  const Process rank1 = spawn(fit_arguments(dir.file("train.csv"), dir.file("p"), {"env.strategy=ddp", "optim.lr=2e-3"}),
                              rank_env(1, 2, 2, port), dir.file("r1.log"));
  EXPECT_NE(wait_for(rank0), 0);
  EXPECT_NE(wait_for(rank1), 0);
  EXPECT_TRUE(contains(read_log(rank0), "rank 1's configuration")) << read_log(rank0);

  const int taken = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  address.sin_port = 0;
  bind(taken, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  listen(taken, 1);
  socklen_t length = sizeof(address);
  getsockname(taken, reinterpret_cast<sockaddr*>(&address), &length);
  const Process blocked = spawn(fit_arguments(dir.file("train.csv"), dir.file("q"), {"env.strategy=ddp", "env.ddp_timeout=5"}),
                                rank_env(0, 2, 2, ntohs(address.sin_port)), dir.file("q.log"));
  EXPECT_NE(wait_for(blocked), 0);
  close(taken);
  EXPECT_TRUE(contains(read_log(blocked), "port")) << read_log(blocked);

  // A worker whose rank 0 never comes: the store cannot be reached within the timeout.
  const Process alone = spawn(fit_arguments(dir.file("train.csv"), dir.file("r"), {"env.strategy=ddp", "env.ddp_timeout=3"}),
                              rank_env(1, 2, 2, free_port()), dir.file("alone.log"));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_NE(wait_for(alone), 0);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 30.0);
  EXPECT_TRUE(contains(read_log(alone), "cannot reach the rendezvous store")) << read_log(alone);
}

}  // namespace
}  // namespace automm

namespace automm {
namespace {

// env.strategy = ddp_spawn with env.num_gpus = 2: `automm fit` starts the two
// workers itself; the result is the one of two ranks started by hand; when a
// worker is killed the launcher stops the other and fails naming the rank.
TEST(DataParallel, DdpSpawnStartsLocalWorkersFromTheCommandLine) {
  TempDir dir;
  write_csv(make_tabular_table(400, 1), dir.file("train.csv"));
  write_csv(make_tabular_table(100, 2), dir.file("test.csv"));
  const std::vector<std::string> common = {"optim.max_epochs=3", "optim.patience=1000", "env.precision=32",
                                           "env.per_gpu_batch_size=8", "env.batch_size=16"};
  std::vector<std::string> spawned = common, by_hand = common;
  spawned.insert(spawned.end(), {"env.strategy=ddp_spawn", "env.num_gpus=2"});
  by_hand.push_back("env.strategy=ddp");
  const Process launcher = spawn(fit_arguments(dir.file("train.csv"), dir.file("spawned"), spawned), {}, dir.file("l.log"));
  ASSERT_EQ(wait_for(launcher), 0) << read_log(launcher);
  const int port = free_port();
  const Process r0 = spawn(fit_arguments(dir.file("train.csv"), dir.file("hand"), by_hand), rank_env(0, 2, 2, port), dir.file("h0.log"));
  const Process r1 = spawn(fit_arguments(dir.file("train.csv"), dir.file("hand"), by_hand), rank_env(1, 2, 2, port), dir.file("h1.log"));
  ASSERT_EQ(wait_for(r0), 0) << read_log(r0);
  ASSERT_EQ(wait_for(r1), 0) << read_log(r1);
  const MultiModalPredictor a = MultiModalPredictor::load(dir.file("spawned"));
  const MultiModalPredictor b = MultiModalPredictor::load(dir.file("hand"));
  EXPECT_EQ(a.fit_summary().at("data_parallel").at("world_size"), 2);
  const Table test = read_table(dir.file("test.csv"));
  EXPECT_LT((a.predict_proba(test) - b.predict_proba(test)).abs().max().item<double>(), 1e-6);
  // From the library the workers cannot be started: the error says how.
  PredictorOptions options;
  options.label = "label";
  options.path = dir.file("lib");
  options.verbose = false;
  options.hyperparameters = {{"env.strategy", "ddp_spawn"}, {"env.num_gpus", 2}};
  MultiModalPredictor library(options);
  EXPECT_TRUE(contains(error_of([&] { library.fit(make_tabular_table(100, 3)); }), "command line"));

  // A killed worker: the launcher stops the other and fails, naming the rank.
  write_csv(make_tabular_table(2000, 4), dir.file("big.csv"));
  std::vector<std::string> long_fit = {"env.strategy=ddp_spawn", "env.num_gpus=2", "optim.max_epochs=500",
                                       "optim.patience=100000"};
  const Process big = spawn(fit_arguments(dir.file("big.csv"), dir.file("big"), long_fit), {}, dir.file("big.log"));
  const fs::path checkpoint = fs::path(dir.file("big")) / "resume" / "last.pt";
  const auto start = std::chrono::steady_clock::now();
  while (!fs::exists(checkpoint) && std::chrono::steady_clock::now() - start < std::chrono::seconds(240))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::ifstream children_file("/proc/" + std::to_string(big.pid) + "/task/" + std::to_string(big.pid) + "/children");
  std::vector<pid_t> children;
  for (pid_t pid; children_file >> pid;) children.push_back(pid);
  ASSERT_EQ(children.size(), 2u) << read_log(big);
  kill(children[1], SIGKILL);
  EXPECT_NE(wait_for(big), 0);
  const std::string log = read_log(big);
  EXPECT_TRUE(contains(log, "worker rank")) << log;
  for (pid_t pid : children) EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid))) << "worker " << pid << " left running";
}

}  // namespace
}  // namespace automm
