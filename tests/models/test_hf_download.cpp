// Downloads from tests/models/hub_server.py, a local stand-in for the Hugging
// Face hub's file API, into a hub cache in a temp folder.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "automm_test_paths.h"
#include "checkpoints/hf_checkpoint.h"
#include "checkpoints/hf_download.h"
#include "test_util.h"

namespace automm {
namespace {

namespace fs = std::filesystem;
using automm::testing::Contains;
using automm::testing::message_of;
using automm::testing::HubCacheEnv;
using automm::testing::ScopedEnv;
using automm::testing::TempDir;
using automm::testing::write_file;

constexpr const char* kCommit = "0123456789abcdef0123456789abcdef01234567";

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

size_t count_of(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

// hub_server.py serving root (one folder per repo id), stopped when this dies.
class HubServer {
 public:
  HubServer(const fs::path& root, const fs::path& log, const std::string& token = "") {
    const std::vector<std::string> args = {"/usr/bin/python3",
                                           std::string(AUTOMM_SOURCE_DIR) + "/tests/models/hub_server.py",
                                           "--root",
                                           root.string(),
                                           "--commit",
                                           kCommit,
                                           "--log",
                                           log.string(),
                                           "--token",
                                           token};
    int pipe_ends[2];
    if (pipe(pipe_ends) != 0) throw std::runtime_error("pipe() failed");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(pipe_ends[1], STDOUT_FILENO);
      close(pipe_ends[0]);
      close(pipe_ends[1]);
      std::vector<char*> argv;
      for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(pipe_ends[1]);
    FILE* out = fdopen(pipe_ends[0], "r");
    char line[32] = "";
    const bool started = out && std::fgets(line, sizeof line, out);
    if (out) std::fclose(out);
    port_ = started ? std::atoi(line) : 0;
    if (port_ <= 0) {
      stop();
      throw std::runtime_error("hub_server.py did not start (it prints its port once listening)");
    }
  }
  ~HubServer() { stop(); }
  HubServer(const HubServer&) = delete;
  HubServer& operator=(const HubServer&) = delete;
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  pid_t pid_ = -1;
  int port_ = 0;
};

// A temp hub (hub/<repo id>/<files>) and cache, with every variable the
// downloader reads set for the test alone.
class HfDownload : public ::testing::Test {
 protected:
  HfDownload()
      : env_(cache().string(), "", "", (tmp_.path() / "home").string(), HubCacheEnv::Hub::kOnline) {}

  fs::path hub() const { return tmp_.path() / "hub"; }
  fs::path cache() const { return tmp_.path() / "cache"; }
  fs::path log() const { return tmp_.path() / "requests.log"; }

  void add_repo(const std::string& repo_id, const std::map<std::string, std::string>& files) const {
    for (const auto& [name, content] : files) {
      fs::create_directories((hub() / repo_id / name).parent_path());
      write_file((hub() / repo_id / name).string(), content);
    }
  }

  // Checks snapshot/<name> against the hub's copy: a relative link into blobs/
  // named by an etag of etag_length hex digits.
  void expect_linked(const fs::path& snapshot, const std::string& repo_id, const std::string& name,
                     size_t etag_length) const {
    SCOPED_TRACE(name);
    const fs::path link = snapshot / name;
    ASSERT_TRUE(fs::is_symlink(link));
    const fs::path target = fs::read_symlink(link);
    EXPECT_EQ(target.parent_path(), fs::path("../../blobs"));
    EXPECT_EQ(target.filename().string().size(), etag_length);
    EXPECT_EQ(read_text(link), read_text(hub() / repo_id / name));
  }

  TempDir tmp_;
  HubCacheEnv env_;
};

TEST_F(HfDownload, SingleSafetensorsFileIntoTheCacheLayout) {
  add_repo("acme/tiny", {{"config.json", "{\"model_type\": \"bert\"}"},
                         {"vocab.txt", "[PAD]\n[UNK]\nhello\n"},
                         {"model.safetensors", std::string("weights\0\x01\x02", 10)}});
  const fs::path repo = cache() / "models--acme--tiny";
  const fs::path snapshot = repo / "snapshots" / kCommit;
  {
    HubServer server(hub(), log());
    env_.set("HF_ENDPOINT", server.endpoint());
    const ResolvedCheckpoint downloaded = resolve_hf_checkpoint("acme/tiny");
    EXPECT_EQ(fs::path(downloaded.folder), snapshot);
    EXPECT_EQ(downloaded.source, "downloaded from " + server.endpoint() + " into " + repo.string());
  }
  EXPECT_EQ(read_text(repo / "refs" / "main"), kCommit);
  expect_linked(snapshot, "acme/tiny", "config.json", 40);  // git sha1
  expect_linked(snapshot, "acme/tiny", "vocab.txt", 40);
  // The hub's X-Linked-Etag (sha256), not the ETag of the CDN it redirects to.
  expect_linked(snapshot, "acme/tiny", "model.safetensors", 64);
  EXPECT_FALSE(fs::exists(snapshot / "tokenizer.json"));  // 404: absent, fine
  for (const auto& blob : fs::directory_iterator(repo / "blobs")) {
    EXPECT_NE(blob.path().extension(), ".incomplete");
  }
  // Found in the cache with the server gone.
  const ResolvedCheckpoint cached = resolve_hf_checkpoint("acme/tiny");
  EXPECT_EQ(fs::path(cached.folder), snapshot);
  EXPECT_EQ(cached.source, "Hugging Face cache (" + repo.string() + ")");
}

TEST_F(HfDownload, ShardedSafetensorsFetchesEveryShardOnce) {
  add_repo("acme/sharded", {{"config.json", "{}"},
                            {"model.safetensors.index.json",
                             R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                "b": "model-00002-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}})"},
                            {"model-00001-of-00002.safetensors", "shard one"},
                            {"model-00002-of-00002.safetensors", "shard two"}});
  HubServer server(hub(), log());
  env_.set("HF_ENDPOINT", server.endpoint() + "/");  // the trailing slash is dropped
  const fs::path snapshot = download_hf_snapshot("acme/sharded", cache().string());
  expect_linked(snapshot, "acme/sharded", "model.safetensors.index.json", 40);
  expect_linked(snapshot, "acme/sharded", "model-00001-of-00002.safetensors", 64);
  expect_linked(snapshot, "acme/sharded", "model-00002-of-00002.safetensors", 64);
  EXPECT_FALSE(fs::exists(snapshot / "pytorch_model.bin"));
  // config.json at the asked revision; everything after at the commit it answered.
  const std::string requests = read_text(log());
  EXPECT_EQ(count_of(requests, "GET /acme/sharded/resolve/main/config.json"), 1u);
  EXPECT_EQ(count_of(requests, std::string("/resolve/") + kCommit + "/model-00001-of-00002.safetensors"), 1u);
  EXPECT_EQ(count_of(requests, std::string("/resolve/") + kCommit + "/model-00002-of-00002.safetensors"), 1u);
  EXPECT_EQ(count_of(requests, "GET //"), 0u);
}

TEST_F(HfDownload, PytorchBinFallbackAndNoWeights) {
  add_repo("acme/old", {{"config.json", "{}"}, {"pytorch_model.bin", "pickle bytes"}});
  add_repo("acme/empty", {{"config.json", "{}"}, {"tokenizer.json", "{}"}});
  HubServer server(hub(), log());
  env_.set("HF_ENDPOINT", server.endpoint());
  const fs::path snapshot = download_hf_snapshot("acme/old", cache().string());
  expect_linked(snapshot, "acme/old", "pytorch_model.bin", 64);

  const std::string message =
      message_of<std::runtime_error>([&] { download_hf_snapshot("acme/empty", cache().string()); });
  EXPECT_TRUE(Contains(message, "acme/empty on " + server.endpoint()));
  EXPECT_TRUE(
      Contains(message, "none of model.safetensors, model.safetensors.index.json or pytorch_model.bin"));
  // Nothing that looks like a usable snapshot is left behind.
  EXPECT_FALSE(fs::exists(cache() / "models--acme--empty" / "snapshots"));
  EXPECT_FALSE(fs::exists(cache() / "models--acme--empty" / "refs"));
}

TEST_F(HfDownload, MissingRepoNamesTheUrl) {
  HubServer server(hub(), log());
  env_.set("HF_ENDPOINT", server.endpoint());
  const std::string url = server.endpoint() + "/acme/ghost/resolve/main/config.json";
  const std::string direct =
      message_of<std::runtime_error>([&] { download_hf_snapshot("acme/ghost", cache().string()); });
  EXPECT_TRUE(Contains(direct, "no model acme/ghost on " + server.endpoint()));
  EXPECT_TRUE(Contains(direct, url + " answered HTTP 404"));
  // resolve_hf_checkpoint keeps its advice and adds why the download failed.
  const std::string resolved = message_of<std::runtime_error>([] { resolve_hf_checkpoint("acme/ghost"); });
  EXPECT_TRUE(Contains(resolved, (cache() / "models--acme--ghost").string()));
  EXPECT_TRUE(Contains(resolved, "It could not be downloaded: no model acme/ghost"));
  EXPECT_TRUE(Contains(resolved, "huggingface-cli download acme/ghost"));
  EXPECT_FALSE(fs::exists(cache() / "models--acme--ghost"));  // no empty folder left behind
}

TEST_F(HfDownload, OfflineNeverContactsTheServer) {
  add_repo("acme/tiny", {{"config.json", "{}"}, {"model.safetensors", "w"}});
  HubServer server(hub(), log());
  env_.set("HF_ENDPOINT", server.endpoint());
  for (const char* variable : {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}) {
    ScopedEnv offline({{variable, "1"}});
    const std::string message = message_of<std::runtime_error>([] { resolve_hf_checkpoint("acme/tiny"); });
    EXPECT_TRUE(
        Contains(message, "It could not be downloaded: HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set"));
    EXPECT_TRUE(Contains(message, "Looked in:"));
  }
  EXPECT_FALSE(fs::exists(log()));
  EXPECT_FALSE(fs::exists(cache() / "models--acme--tiny"));
}

TEST_F(HfDownload, SendsHfTokenAsBearer) {
  add_repo("acme/private", {{"config.json", "{}"}, {"model.safetensors", "w"}});
  HubServer server(hub(), log(), "hf_secret");
  env_.set("HF_ENDPOINT", server.endpoint());
  const std::string refused =
      message_of<std::runtime_error>([&] { download_hf_snapshot("acme/private", cache().string()); });
  EXPECT_TRUE(Contains(refused, "answered HTTP 401"));
  EXPECT_TRUE(Contains(refused, "set HF_TOKEN"));

  env_.set("HF_TOKEN", "hf_secret");
  const fs::path snapshot = download_hf_snapshot("acme/private", cache().string());
  expect_linked(snapshot, "acme/private", "model.safetensors", 64);
  EXPECT_TRUE(Contains(read_text(log()), "Bearer hf_secret"));
}

}  // namespace
}  // namespace automm
