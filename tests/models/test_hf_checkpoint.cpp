// Offline Hugging Face checkpoint resolution against fake hub caches built in
// a temp folder; the environment variables are set per test and restored.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "checkpoints/hf_checkpoint.h"
#include "test_util.h"

namespace automm {
namespace {

namespace fs = std::filesystem;
using automm::testing::Contains;
using automm::testing::message_of;
using automm::testing::TempDir;
using automm::testing::write_file;

// The cache variables for one test, offline (test_util.h).
using CacheEnv = automm::testing::HubCacheEnv;

// A snapshot folder <cache>/models--.../snapshots/<hash>, with config.json unless told otherwise.
fs::path make_snapshot(const fs::path& repo, const std::string& hash, bool with_config = true) {
  const fs::path folder = repo / "snapshots" / hash;
  fs::create_directories(folder);
  if (with_config) write_file((folder / "config.json").string(), "{\"model_type\": \"bert\"}");
  return folder;
}

void write_ref(const fs::path& repo, const std::string& hash) {
  fs::create_directories(repo / "refs");
  write_file((repo / "refs" / "main").string(), hash + "\n");  // the hub writes no newline; be lenient
}

TEST(HfCheckpoint, RefsMainPicksItsSnapshot) {
  TempDir tmp;
  CacheEnv env((tmp.path() / "cache").string(), "", "", (tmp.path() / "home").string());
  const fs::path repo = tmp.path() / "cache" / "models--acme--tiny-bert";
  make_snapshot(repo, "aaaa");
  const fs::path chosen = make_snapshot(repo, "bbbb");
  make_snapshot(repo, "cccc");
  write_ref(repo, "bbbb");
  const ResolvedCheckpoint resolved = resolve_hf_checkpoint("acme/tiny-bert");
  EXPECT_EQ(fs::path(resolved.folder), chosen.lexically_normal());
  EXPECT_EQ(resolved.source, "Hugging Face cache (" + repo.string() + ")");
}

TEST(HfCheckpoint, SymlinkedBlobsLikeTheRealHub) {
  // The hub stores files in blobs/ and links them from the snapshot; a link to
  // a blob that was not copied counts as a missing config.json.
  TempDir tmp;
  CacheEnv env((tmp.path() / "cache").string(), "", "", (tmp.path() / "home").string());
  const fs::path repo = tmp.path() / "cache" / "models--acme--linked";
  const fs::path snapshot = make_snapshot(repo, "h1", false);
  fs::create_directories(repo / "blobs");
  write_file((repo / "blobs" / "b0").string(), "{}");
  fs::create_symlink("../../blobs/b0", snapshot / "config.json");
  EXPECT_EQ(fs::path(resolve_hf_checkpoint("acme/linked").folder), snapshot);
  fs::remove(repo / "blobs" / "b0");
  EXPECT_TRUE(Contains(message_of<std::runtime_error>([] { resolve_hf_checkpoint("acme/linked"); }),
                       "has no config.json"));
}

TEST(HfCheckpoint, OnlySnapshotWithoutRefs) {
  TempDir tmp;
  CacheEnv env((tmp.path() / "cache").string(), "", "", (tmp.path() / "home").string());
  const fs::path chosen = make_snapshot(tmp.path() / "cache" / "models--acme--solo", "1234");
  EXPECT_EQ(fs::path(resolve_hf_checkpoint("acme/solo").folder), chosen);
}

TEST(HfCheckpoint, MostRecentSnapshotWhenRefIsMissingOrStale) {
  TempDir tmp;
  CacheEnv env((tmp.path() / "cache").string(), "", "", (tmp.path() / "home").string());
  const fs::path repo = tmp.path() / "cache" / "models--acme--many";
  const fs::path old_one = make_snapshot(repo, "old");
  const fs::path new_one = make_snapshot(repo, "new");
  const auto now = fs::file_time_type::clock::now();
  fs::last_write_time(old_one, now - std::chrono::hours(1));
  fs::last_write_time(new_one, now);
  EXPECT_EQ(fs::path(resolve_hf_checkpoint("acme/many").folder), new_one);
  // A refs/main naming a snapshot that was not copied falls back too.
  write_ref(repo, "deadbeef");
  EXPECT_EQ(fs::path(resolve_hf_checkpoint("acme/many").folder), new_one);
  // ... and a valid one wins over the newer snapshot.
  write_ref(repo, "old");
  EXPECT_EQ(fs::path(resolve_hf_checkpoint("acme/many").folder), old_one);
}

TEST(HfCheckpoint, HfHomeHubAndNameWithoutOrg) {
  TempDir tmp;
  CacheEnv env("", (tmp.path() / "hf").string(), "", (tmp.path() / "home").string());
  const fs::path repo = tmp.path() / "hf" / "hub" / "models--plain-model";
  const fs::path chosen = make_snapshot(repo, "abc");
  const ResolvedCheckpoint resolved = resolve_hf_checkpoint("plain-model");
  EXPECT_EQ(fs::path(resolved.folder), chosen);
  EXPECT_TRUE(Contains(resolved.source, "Hugging Face cache ("));
  EXPECT_TRUE(Contains(resolved.source, "models--plain-model"));
}

TEST(HfCheckpoint, XdgAndHomeCachesAreSearchedToo) {
  TempDir tmp;
  CacheEnv env((tmp.path() / "empty").string(), "", (tmp.path() / "xdg").string(),
               (tmp.path() / "home").string());
  const fs::path in_home =
      make_snapshot(tmp.path() / "home" / ".cache" / "huggingface" / "hub" / "models--acme--h", "x");
  EXPECT_EQ(fs::path(resolve_hf_checkpoint("acme/h").folder), in_home);
  const fs::path in_xdg = make_snapshot(tmp.path() / "xdg" / "huggingface" / "hub" / "models--acme--h", "y");
  EXPECT_EQ(fs::path(resolve_hf_checkpoint("acme/h").folder), in_xdg);  // earlier in the order
}

TEST(HfCheckpoint, CacheDirsOrderAndDedup) {
  TempDir tmp;
  const fs::path hf = tmp.path() / "hf";
  CacheEnv env((hf / "hub").string(), hf.string(), (tmp.path() / "xdg").string(), (tmp.path() / "home").string());
  EXPECT_EQ(hf_hub_cache_dirs(),
            (std::vector<std::string>{(hf / "hub").string(),
                                      (tmp.path() / "xdg" / "huggingface" / "hub").string(),
                                      (tmp.path() / "home" / ".cache" / "huggingface" / "hub").string()}));
}

TEST(HfCheckpoint, LocalFolder) {
  TempDir tmp;
  const fs::path folder = tmp.path() / "my model";
  fs::create_directories(folder);
  write_file((folder / "config.json").string(), "{}");
  const ResolvedCheckpoint resolved = resolve_hf_checkpoint(folder.string());
  EXPECT_EQ(fs::path(resolved.folder), folder);
  EXPECT_EQ(resolved.source, "local folder");
}

TEST(HfCheckpoint, LocalUrlInsidePredictor) {
  TempDir tmp;
  const fs::path folder = tmp.path() / "hf_text";
  fs::create_directories(folder);
  write_file((folder / "config.json").string(), "{}");
  const ResolvedCheckpoint resolved = resolve_hf_checkpoint("local://hf_text", tmp.path().string());
  EXPECT_EQ(fs::path(resolved.folder), folder);
  EXPECT_EQ(resolved.source, "local:// inside predictor");

  EXPECT_TRUE(Contains(message_of<std::invalid_argument>([] { resolve_hf_checkpoint("local://hf_text"); }),
                       "no predictor folder was given"));
  EXPECT_TRUE(Contains(message_of<std::invalid_argument>([&] {
                         resolve_hf_checkpoint("local:///etc", tmp.path().string());
                       }),
                       "relative to the predictor folder"));
  EXPECT_TRUE(Contains(message_of<std::runtime_error>([&] {
                         resolve_hf_checkpoint("local://missing", tmp.path().string());
                       }),
                       "not a folder inside the predictor"));
}

TEST(HfCheckpoint, MissingConfigJsonIsAnError) {
  TempDir tmp;
  CacheEnv env((tmp.path() / "cache").string(), "", "", (tmp.path() / "home").string());
  const fs::path folder = tmp.path() / "no_config";
  fs::create_directories(folder);
  const std::string local = message_of<std::runtime_error>([&] { resolve_hf_checkpoint(folder.string()); });
  EXPECT_TRUE(Contains(local, "has no config.json"));
  EXPECT_TRUE(Contains(local, "(local folder)"));

  const fs::path snapshot = make_snapshot(tmp.path() / "cache" / "models--acme--broken", "h", false);
  const std::string cached = message_of<std::runtime_error>([] { resolve_hf_checkpoint("acme/broken"); });
  EXPECT_TRUE(Contains(cached, snapshot.string()));
  EXPECT_TRUE(Contains(cached, "has no config.json"));
}

TEST(HfCheckpoint, NotFoundNamesEveryPathTried) {
  TempDir tmp;
  const fs::path a = tmp.path() / "a", b = tmp.path() / "b", c = tmp.path() / "c", d = tmp.path() / "d";
  CacheEnv env(a.string(), b.string(), c.string(), d.string());
  // A repo folder without snapshots is not a hit either.
  fs::create_directories(a / "models--acme--ghost" / "refs");
  const std::string message = message_of<std::runtime_error>([] { resolve_hf_checkpoint("acme/ghost"); });
  for (const fs::path& path : {a / "models--acme--ghost", b / "hub" / "models--acme--ghost",
                               c / "huggingface" / "hub" / "models--acme--ghost",
                               d / ".cache" / "huggingface" / "hub" / "models--acme--ghost"}) {
    EXPECT_TRUE(Contains(message, path.string()));
  }
  EXPECT_TRUE(Contains(message, "It could not be downloaded: HF_HUB_OFFLINE"));
  EXPECT_TRUE(Contains(message, "huggingface-cli download acme/ghost"));
  EXPECT_TRUE(Contains(message, "pass the model folder's path"));
}

TEST(HfCheckpoint, NotFoundWithNoCacheVariables) {
  CacheEnv env("", "", "", "");
  const std::string message = message_of<std::runtime_error>([] { resolve_hf_checkpoint("acme/ghost"); });
  EXPECT_TRUE(Contains(message, "HOME are unset"));
  EXPECT_TRUE(Contains(message, "no cache folder to download into"));
}

TEST(HfCheckpoint, MalformedNames) {
  EXPECT_TRUE(Contains(message_of<std::invalid_argument>([] { resolve_hf_checkpoint(""); }), "is empty"));
  EXPECT_TRUE(Contains(message_of<std::runtime_error>([] { resolve_hf_checkpoint("/no/such/folder/x"); }),
                       "neither an existing local folder nor a Hugging Face id"));
  EXPECT_TRUE(Contains(message_of<std::runtime_error>([] { resolve_hf_checkpoint("a/b/c"); }),
                       "neither an existing local folder"));
}

}  // namespace
}  // namespace automm
