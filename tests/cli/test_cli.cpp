// The automm command line, run as a user would: a separate process per command.
#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <cstdio>
#include <sys/wait.h>

#include "automm/config.h"
#include "automm/table.h"
#include "automm_test_paths.h"
#include "detection_test_util.h"
#include "image_test_util.h"
#include "test_util.h"

namespace automm {
namespace {

using automm::testing::make_tabular_table;
using automm::testing::TempDir;
using automm::testing::write_file;

struct Result {
  int status = -1;
  std::string output;  // stdout and stderr together
};

Result run(const std::string& arguments) {
  const std::string command = std::string(AUTOMM_CLI_PATH) + " " + arguments + " 2>&1";
  Result result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_csv(make_tabular_table(600, 21), dir.file("train.csv"));
    write_csv(make_tabular_table(200, 22), dir.file("test.csv"));
  }
  TempDir dir;
};

TEST_F(CliTest, FitPredictEvaluateInfo) {
  write_file(dir.file("config.yaml"), "optim:\n  max_epochs: 3\n  lr: 0.001\nenv.per_gpu_batch_size: 16\n");
  const Result fit = run("fit --train " + dir.file("train.csv") + " --label label --path " + dir.file("p") +
                         " --config " + dir.file("config.yaml") + " --hp optim.top_k=2 --hp model.names=[categorical_mlp,numerical_mlp,fusion_transformer] --seed 1 --eval-metric accuracy");
  ASSERT_EQ(fit.status, 0) << fit.output;
  EXPECT_NE(fit.output.find("best validation accuracy"), std::string::npos) << fit.output;
  EXPECT_NE(fit.output.find("fusion_transformer"), std::string::npos) << fit.output;

  const Result info = run("info --path " + dir.file("p"));
  ASSERT_EQ(info.status, 0) << info.output;
  EXPECT_NE(info.output.find("problem type: binary"), std::string::npos) << info.output;
  // The YAML and --hp values reached the saved config.
  const Json meta = Json::parse(std::ifstream(dir.file("p/predictor.json")));
  EXPECT_EQ(meta["config"]["optim.max_epochs"], 3);
  EXPECT_EQ(meta["config"]["optim.lr"], 0.001);
  EXPECT_EQ(meta["config"]["env.per_gpu_batch_size"], 16);
  EXPECT_EQ(meta["config"]["optim.top_k"], 2);

  const Result eval = run("evaluate --path " + dir.file("p") + " --data " + dir.file("test.csv") +
                          " --metrics accuracy,log_loss --json");
  ASSERT_EQ(eval.status, 0) << eval.output;
  const Json scores = Json::parse(eval.output);
  // Three epochs on 600 rows reach 0.75-0.88 across seeds 1-6 (chance is about 0.5).
  EXPECT_GE(scores["accuracy"].get<double>(), 0.7);
  EXPECT_GT(scores["log_loss"].get<double>(), 0.0);

  const Result predict = run("predict --path " + dir.file("p") + " --data " + dir.file("test.csv") + " --out " +
                             dir.file("out.csv"));
  ASSERT_EQ(predict.status, 0) << predict.output;
  const Table out = read_table(dir.file("out.csv"));
  EXPECT_EQ(out.num_rows(), 200u);
  EXPECT_EQ(out.column_names(), std::vector<std::string>{"label"});
}

TEST_F(CliTest, BadInputFailsWithAClearMessage) {
  const std::string base = "fit --train " + dir.file("train.csv") + " --label label --path " + dir.file("p");
  Result r = run(base + " --hp optim.lrate=0.1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("closest keys:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("optim.lr,"), std::string::npos) << r.output;
  r = run(base + " --hp optim.optim_type=lamb");
  EXPECT_NE(r.output.find("allowed values"), std::string::npos) << r.output;
  r = run(base + " --hp optim.max_epochs=ten");
  EXPECT_NE(r.output.find("expects an integer"), std::string::npos) << r.output;
  r = run(base + " --eval-metric accurcy");
  EXPECT_NE(r.output.find("unknown metric 'accurcy'"), std::string::npos) << r.output;
  r = run(base + " --presets ultra_quality");
  EXPECT_NE(r.output.find("unknown preset"), std::string::npos) << r.output;
  write_file(dir.file("empty.csv"), "");
  r = run("fit --train " + dir.file("empty.csv") + " --label label --path " + dir.file("q"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("empty"), std::string::npos) << r.output;
  r = run("predict --path " + dir.file("missing") + " --data " + dir.file("test.csv") + " --out x.csv");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("not a folder"), std::string::npos) << r.output;
  r = run(base + " --bogus 1");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("--bogus"), std::string::npos) << r.output;
  // A value that is not a number names its flag (CLI11), not std::stod.
  r = run(base + " --time-limit abc");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("--time-limit"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("stod"), std::string::npos) << r.output;
}

// --no-pretrained: image backbones start from random weights, no checkpoint needed.
TEST(Cli, NoPretrainedFitsImagesOffline) {
  TempDir dir;
  automm::testing::ScopedEnv env({{"HF_HUB_OFFLINE", "1"}, {"HF_HUB_CACHE", dir.file("cache")}});
  write_csv(automm::testing::make_shape_table(dir.path().string(), "img", 40, 7), dir.file("train.csv"));
  const std::string base = "fit --train " + dir.file("train.csv") + " --label label --hp optim.max_epochs=1 " +
                           "--hp model.timm_image.checkpoint_name=mobilenetv3_large_100 " +
                           "--hp model.timm_image.image_size=32 --quiet --path ";
  const Result pretrained = run(base + dir.file("p"));
  EXPECT_NE(pretrained.status, 0);
  EXPECT_NE(pretrained.output.find("--no-pretrained"), std::string::npos) << pretrained.output;
  const Result random = run(base + dir.file("q") + " --no-pretrained");
  ASSERT_EQ(random.status, 0) << random.output;
  EXPECT_NE(random.output.find("timm_image"), std::string::npos) << random.output;
}

// Object detection from COCO files: no --label, a coco_root for images kept
// elsewhere, COCO results and a CSV of boxes, evaluate's 12 statistics.
TEST(Cli, DetectionReadsCocoFilesAndWritesCocoResults) {
  TempDir dir;
  const std::string train = automm::testing::make_coco_dataset(dir.path().string(), "train", 16, 5);
  const std::string test = automm::testing::make_coco_dataset(dir.path().string(), "test", 4, 6);
  const std::string fit = "fit --train " + train + " --tuning " + test + " --problem-type object_detection " +
                          "--no-pretrained --hp model.mmdet_image.checkpoint_name=yolox_nano " +
                          "--hp model.mmdet_image.image_size=64 --hp optim.max_epochs=1 " +
                          "--hp env.per_gpu_batch_size=8 --quiet --path ";
  const Result fitted = run(fit + dir.file("m"));
  ASSERT_EQ(fitted.status, 0) << fitted.output;
  const Result json = run("predict --path " + dir.file("m") + " --data " + test + " --out " + dir.file("p.json") +
                          " --visualize " + dir.file("drawn"));
  ASSERT_EQ(json.status, 0) << json.output;
  EXPECT_NE(json.output.find("(COCO results)"), std::string::npos) << json.output;
  const Json results = Json::parse(std::ifstream(dir.file("p.json")));
  ASSERT_TRUE(results.is_array());
  if (!results.empty()) {
    EXPECT_TRUE(results[0].contains("bbox") && results[0].contains("category_id"));
  }
  EXPECT_TRUE(std::filesystem::exists(dir.file("drawn/test_0.png")));
  const Result csv = run("predict --path " + dir.file("m") + " --data " + test + " --out " + dir.file("p.csv"));
  ASSERT_EQ(csv.status, 0) << csv.output;
  EXPECT_EQ(read_table(dir.file("p.csv")).column_names(),
            (std::vector<std::string>{"image", "class", "class_index", "score", "x1", "y1", "x2", "y2"}));
  const Result scores = run("evaluate --path " + dir.file("m") + " --data " + test + " --json");
  ASSERT_EQ(scores.status, 0) << scores.output;
  const Json parsed = Json::parse(scores.output);
  EXPECT_EQ(parsed.size(), 12u);
  EXPECT_TRUE(parsed.contains("map_50") && parsed.contains("mar_large"));
  // Images kept elsewhere: model.mmdet_image.coco_root names their root.
  std::filesystem::create_directories(dir.path() / "elsewhere/deeper");
  std::filesystem::copy_file(train, dir.file("elsewhere/deeper/train.json"));
  const std::string moved = "fit --train " + dir.file("elsewhere/deeper/train.json") + " --problem-type object_detection " +
                            "--no-pretrained --hp model.mmdet_image.checkpoint_name=yolox_nano " +
                            "--hp model.mmdet_image.image_size=64 --hp optim.max_epochs=1 --quiet ";
  const Result lost = run(moved + "--path " + dir.file("n"));
  EXPECT_NE(lost.status, 0);
  EXPECT_NE(lost.output.find("model.mmdet_image.coco_root"), std::string::npos) << lost.output;
  const Result found = run(moved + "--hp model.mmdet_image.coco_root=" + dir.path().string() + " --path " + dir.file("o"));
  EXPECT_EQ(found.status, 0) << found.output;
}

TEST(Cli, TokenizePrintsTheIdsTheModelSees) {
  TempDir dir;
  write_file(dir.file("vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n");
  write_file(dir.file("config.json"), "{\"model_type\": \"bert\", \"max_position_embeddings\": 512}");
  write_file(dir.file("input.txt"), "hello world\nworld unknownword\n");
  const Result r = run("tokenize --checkpoint " + dir.path().string() + " --input " + dir.file("input.txt"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "[2,4,5,3]\n[2,5,1,3]\n");
  const Result missing = run("tokenize --checkpoint no-such-org/no-such-model --input " + dir.file("input.txt"));
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.output.find("models--no-such-org--no-such-model"), std::string::npos) << missing.output;
}

TEST(Cli, HyperparametersTableMatchesTheDocs) {
  const Result r = run("hyperparameters");
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(r.output, hyperparameters_markdown());
  EXPECT_NE(r.output.find("`optim.lr`"), std::string::npos);
}

}  // namespace
}  // namespace automm
