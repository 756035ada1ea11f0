// MultiModalPredictor end to end: fit, predict, evaluate, save and load, and the
// errors a user meets with bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "automm/predictor.h"
#include "automm_test_paths.h"
#include "test_util.h"

namespace automm {
namespace {

using automm::testing::cells;
using automm::testing::set_cells;

namespace fs = std::filesystem;
using automm::testing::make_column;
using automm::testing::make_tabular_table;
using automm::testing::TempDir;

PredictorOptions quick_options(const std::string& path, Json hyperparameters = Json::object()) {
  PredictorOptions options;
  options.label = "label";
  options.path = path;
  options.verbose = false;
  hyperparameters["optim.max_epochs"] = hyperparameters.value("optim.max_epochs", 2);
  options.hyperparameters = hyperparameters;
  return options;
}

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no error>";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int run_command(const std::string& command) { return std::system((command + " 2>/dev/null").c_str()); }

// The acceptance test: accuracy >= 0.9 on held-out rows, then a new
// process loads the saved folder and predicts exactly the same.
TEST(PredictorIntegration, FitsTabularTableAndPredictsIdenticallyInNewProcess) {
  TempDir dir;
  const Table train = make_tabular_table(2500, 1);
  Table test = make_tabular_table(800, 2);
  PredictorOptions options = quick_options(dir.file("predictor"));
  options.hyperparameters = Json::object();  // AutoMM's defaults
  options.eval_metric = "accuracy";
  MultiModalPredictor predictor(options);
  FitOptions fit;
  fit.seed = 3;
  predictor.fit(train, fit);

  const double accuracy = predictor.evaluate(test, {"accuracy"}).at("accuracy");
  EXPECT_GE(accuracy, 0.9);
  const Predictions labels = predictor.predict(test);
  const torch::Tensor proba = predictor.predict_proba(test);

  test.source = dir.file("test.csv");
  write_csv(test, dir.file("test.csv"));
  const std::string cli = AUTOMM_CLI_PATH;
  ASSERT_EQ(run_command(cli + " predict --path " + dir.file("predictor") + " --data " + dir.file("test.csv") +
                        " --out " + dir.file("labels.csv")),
            0);
  ASSERT_EQ(run_command(cli + " predict --proba --path " + dir.file("predictor") + " --data " +
                        dir.file("test.csv") + " --out " + dir.file("proba.csv")),
            0);
  const Table cli_labels = read_table(dir.file("labels.csv"));
  EXPECT_EQ(cells(cli_labels.column("label")), labels.labels());
  const Table cli_proba = read_table(dir.file("proba.csv"));
  ASSERT_EQ(cli_proba.column_names(), predictor.classes());
  for (int64_t c = 0; c < proba.size(1); ++c)
    for (int64_t r = 0; r < proba.size(0); ++r)
      ASSERT_NEAR(std::stod(cli_proba.columns()[c].text(r)), proba[r][c].item<double>(), 1e-7) << "row " << r;
}

TEST(PredictorFit, MulticlassAndRegressionLearnTheSignal) {
  TempDir dir;
  const Json settings = {{"optim.max_epochs", 15}, {"optim.lr", 2e-3}, {"env.per_gpu_batch_size", 32}, {"env.batch_size", 32}};
  {
    MultiModalPredictor predictor(quick_options(dir.file("multi"), settings));
    predictor.fit(make_tabular_table(1500, 4, "multiclass"));
    EXPECT_EQ(predictor.problem_type(), "multiclass");
    EXPECT_EQ(predictor.eval_metric(), "accuracy");
    EXPECT_EQ(predictor.classes(), (std::vector<std::string>{"high", "low", "mid"}));
    EXPECT_GE(predictor.evaluate(make_tabular_table(500, 5, "multiclass")).at("accuracy"), 0.85);
  }
  {
    MultiModalPredictor predictor(quick_options(dir.file("reg"), settings));
    predictor.fit(make_tabular_table(1500, 6, "regression"));
    EXPECT_EQ(predictor.problem_type(), "regression");
    EXPECT_EQ(predictor.eval_metric(), "rmse");
    const Table test = make_tabular_table(500, 7, "regression");
    const auto scores = predictor.evaluate(test, {"rmse", "r2"});
    EXPECT_GE(scores.at("r2"), 0.8);  // the label's std is about 5: predictions are in label units
    const Predictions predicted = predictor.predict(test);
    ASSERT_FALSE(predicted.are_classes());  // numbers stay numbers
    double mean = 0;
    for (double value : predicted.numbers()) mean += value;
    double truth = 0;
    for (const auto& cell : cells(test.column("label"))) truth += std::stod(cell);
    EXPECT_NEAR(mean / 500, truth / 500, 1.0);
  }
}

TEST(PredictorFit, SameSeedGivesIdenticalModels) {
  TempDir dir;
  const Table train = make_tabular_table(400, 8);
  MultiModalPredictor a(quick_options(dir.file("a")));
  MultiModalPredictor b(quick_options(dir.file("b")));
  FitOptions fit;
  fit.seed = 11;
  a.fit(train, fit);
  b.fit(train, fit);
  EXPECT_TRUE(torch::equal(a.predict_proba(train), b.predict_proba(train)));
}

TEST(PredictorFit, SummaryEmbeddingAndMetricsLog) {
  TempDir dir;
  MultiModalPredictor predictor(quick_options(dir.file("p"), {{"optim.track_grad_norm", 2}, {"optim.log_every_n_steps", 1}}));
  const Table train = make_tabular_table(400, 9);
  predictor.fit(train);
  const Json summary = predictor.fit_summary();
  EXPECT_EQ(summary["models"], Json::array({"categorical_mlp", "numerical_mlp", "fusion_mlp"}));
  EXPECT_EQ(summary["num_train_rows"].get<int>() + summary["num_validation_rows"].get<int>(), 400);
  EXPECT_EQ(predictor.column_types().at("color"), "categorical");
  EXPECT_EQ(predictor.column_types().at("x1"), "numerical");
  const torch::Tensor embedding = predictor.extract_embedding(train);
  EXPECT_EQ(embedding.sizes(), (std::vector<int64_t>{400, 128}));
  // metrics.csv: a row per optimizer step (log_every_n_steps 1) with a gradient norm.
  const Table log = read_table(dir.file("p/metrics.csv"));
  EXPECT_EQ(log.column_names(),
            (std::vector<std::string>{"step", "epoch", "lr", "loss", "grad_norm", "validation_score"}));
  size_t with_norm = 0, with_score = 0;
  for (size_t r = 0; r < log.num_rows(); ++r) {
    with_norm += !log.column("grad_norm").is_missing(r);
    with_score += !log.column("validation_score").is_missing(r);
  }
  EXPECT_EQ(with_norm, static_cast<size_t>(summary["optimizer_steps"].get<int>()));
  EXPECT_GE(with_score, 2u);
}

TEST(PredictorFit, MaxStepsAndTimeLimitStopTraining) {
  TempDir dir;
  const Table train = make_tabular_table(600, 10);
  MultiModalPredictor stepped(quick_options(dir.file("s"), {{"optim.max_steps", 3}, {"optim.max_epochs", 50}}));
  stepped.fit(train);
  EXPECT_EQ(stepped.fit_summary()["optimizer_steps"], 3);
  EXPECT_EQ(stepped.fit_summary()["stop_reason"], "reached max_steps");

  MultiModalPredictor timed(quick_options(dir.file("t"), {{"optim.max_epochs", 100000}, {"optim.patience", 100000}}));
  FitOptions fit;
  fit.time_limit = 1.0;
  timed.fit(train, fit);
  EXPECT_EQ(timed.fit_summary()["stop_reason"], "time limit reached");
  EXPECT_NO_THROW(timed.predict(train));  // the best model so far was kept and saved
}

TEST(PredictorFit, PatienceStopsWhenTheScoreStalls) {
  TempDir dir;
  // A learning rate of 1e-12 changes nothing, so the score never improves.
  MultiModalPredictor predictor(quick_options(
      dir.file("p"), {{"optim.lr", 1e-12}, {"optim.patience", 2}, {"optim.max_epochs", 50}, {"optim.val_check_interval", 1.0}}));
  predictor.fit(make_tabular_table(400, 12));
  EXPECT_EQ(predictor.fit_summary()["stop_reason"], "no improvement in 2 validation checks (patience)");
}

TEST(PredictorFit, GreedySoupIsNeverWorseThanTheBestCheckpoint) {
  TempDir dir;
  MultiModalPredictor predictor(quick_options(dir.file("p"), {{"optim.max_epochs", 4}, {"optim.top_k", 4}}));
  Table tuning = make_tabular_table(300, 13);
  FitOptions fit;
  fit.tuning_data = tuning;
  predictor.fit(make_tabular_table(800, 14), fit);
  const Json summary = predictor.fit_summary();
  EXPECT_EQ(summary["top_k_scores"].size(), 4u);
  // roc_auc: higher is better.
  EXPECT_GE(summary["final_validation_score"].get<double>(), summary["best_validation_score"].get<double>());
  EXPECT_NEAR(predictor.evaluate(tuning).at("roc_auc"), summary["final_validation_score"].get<double>(), 1e-9);
}

TEST(PredictorFit, SkipFinalValLeavesTheAveragedModelUnscored) {
  TempDir dir;
  MultiModalPredictor scored(quick_options(dir.file("a")));
  scored.fit(make_tabular_table(200, 17));
  EXPECT_TRUE(scored.fit_summary().contains("final_validation_score"));
  MultiModalPredictor skipped(quick_options(dir.file("b"), {{"optim.skip_final_val", true}}));
  skipped.fit(make_tabular_table(200, 17));
  EXPECT_FALSE(skipped.fit_summary().contains("final_validation_score"));
}

TEST(PredictorFit, LearningCurveHasPanelsTicksAndMarksAndRenders) {
  TempDir dir;
  MultiModalPredictor predictor(quick_options(dir.file("p"), {{"optim.max_epochs", 4}}));
  predictor.fit(make_tabular_table(300, 18));
  const std::string svg = read_file(dir.file("p/learning_curve.svg"));
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find(">training loss</text>"), std::string::npos);  // one panel per series
  const std::string metric = predictor.fit_summary()["validation_metric"].get<std::string>();
  EXPECT_EQ(metric, "log_loss");  // 60 validation rows: the budget validates on log_loss
  EXPECT_NE(svg.find(">validation " + metric + "</text>"), std::string::npos);
  EXPECT_EQ(std::count(svg.begin(), svg.end(), '<') - std::count(svg.begin(), svg.end(), '>'), 0);
  EXPECT_GE(static_cast<int>(std::count(svg.begin(), svg.end(), '\n')), 20);
  EXPECT_NE(svg.find("<circle"), std::string::npos);  // the best check
  EXPECT_NE(svg.find("best "), std::string::npos);
  const std::string stop = predictor.fit_summary()["stop_reason"].get<std::string>();
  EXPECT_NE(svg.find(": " + stop + "</text>"), std::string::npos) << "why the fit stopped";
  // Tick labels are rounded: no value with more than 3 significant digits.
  for (size_t at = svg.find("text-anchor=\"end\">"); at != std::string::npos;
       at = svg.find("text-anchor=\"end\">", at + 1)) {
    const std::string value = svg.substr(at + 18, svg.find('<', at + 18) - at - 18);
    EXPECT_LE(std::count_if(value.begin(), value.end(), ::isdigit), 4) << value;
  }
  // A real SVG renderer (librsvg) draws it.
  ASSERT_EQ(std::system(("rsvg-convert -o '" + dir.file("curve.png") + "' '" + dir.file("p/learning_curve.svg") +
                         "' 2>'" + dir.file("rsvg.log") + "'")
                            .c_str()),
            0)
      << read_file(dir.file("rsvg.log"));
  const std::string png = read_file(dir.file("curve.png"));
  ASSERT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
}

TEST(PredictorFit, SixtyFourBitPrecisionTrains) {
  TempDir dir;
  MultiModalPredictor predictor(quick_options(dir.file("p"), {{"env.precision", "64"}}));
  predictor.fit(make_tabular_table(300, 15));
  EXPECT_EQ(predictor.predict_proba(make_tabular_table(10, 16)).size(0), 10);
}

// ------------------------------------------------------------------ bad input
TEST(PredictorErrors, MissingLabelColumnNamesIt) {
  TempDir dir;
  PredictorOptions options = quick_options(dir.file("p"));
  options.label = "target";
  MultiModalPredictor predictor(options);
  const std::string message = error_of([&] { predictor.fit(make_tabular_table(50, 1)); });
  EXPECT_NE(message.find("'target'"), std::string::npos) << message;
  EXPECT_NE(message.find("color"), std::string::npos) << message;  // lists the columns there are
}

TEST(PredictorErrors, LabelAllMissingOrSingleClass) {
  TempDir dir;
  Table table = make_tabular_table(50, 1);
  table.drop_column("label");
  table.add_column(make_column("label", std::vector<std::string>(50, "")));
  MultiModalPredictor a(quick_options(dir.file("a")));
  EXPECT_NE(error_of([&] { a.fit(table); }).find("all missing"), std::string::npos);

  table.drop_column("label");
  table.add_column(make_column("label", std::vector<std::string>(50, "yes")));
  MultiModalPredictor b(quick_options(dir.file("b")));
  const std::string message = error_of([&] { b.fit(table); });
  EXPECT_NE(message.find("single value"), std::string::npos) << message;
}

TEST(PredictorErrors, PredictDataMissingATrainingColumn) {
  TempDir dir;
  MultiModalPredictor predictor(quick_options(dir.file("p")));
  predictor.fit(make_tabular_table(200, 1));
  Table test = make_tabular_table(20, 2);
  test.drop_column("x2");
  test.source = "test.csv";
  const std::string message = error_of([&] { predictor.predict(test); });
  EXPECT_NE(message.find("'x2'"), std::string::npos) << message;
  EXPECT_NE(message.find("test.csv"), std::string::npos) << message;
}

TEST(PredictorErrors, NonNumericValueAtPredictTimeIsMissingWithAWarning) {
  TempDir dir;
  PredictorOptions options = quick_options(dir.file("p"));
  options.verbose = true;
  MultiModalPredictor predictor(options);
  ::testing::internal::CaptureStderr();
  predictor.fit(make_tabular_table(200, 1));
  ::testing::internal::GetCapturedStderr();
  Table bad = make_tabular_table(5, 2);
  Table missing = bad;
  std::vector<std::string> x1 = cells(bad.column("x1"));
  x1[3] = "abc";
  set_cells(bad, "x1", x1);
  x1[3] = "";
  set_cells(missing, "x1", x1);
  ::testing::internal::CaptureStderr();
  const torch::Tensor with_text = predictor.predict_proba(bad);
  const std::string warning = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(warning.find("'x1'"), std::string::npos) << warning;
  EXPECT_NE(warning.find("abc"), std::string::npos) << warning;
  EXPECT_NE(warning.find("row 4"), std::string::npos) << warning;
  EXPECT_TRUE(torch::equal(with_text, predictor.predict_proba(missing)));
}

TEST(PredictorErrors, UnknownMetricKeyAndWrongType) {
  PredictorOptions options;
  options.label = "label";
  options.eval_metric = "acuracy";
  EXPECT_NE(error_of([&] { MultiModalPredictor p(options); }).find("known metrics"), std::string::npos);
  options.eval_metric = "";
  options.hyperparameters = {{"optim.learning_rat", 0.1}};
  EXPECT_NE(error_of([&] { MultiModalPredictor p(options); }).find("optim.learning_rate"), std::string::npos);
  options.hyperparameters = {{"optim.max_epochs", "many"}};
  EXPECT_NE(error_of([&] { MultiModalPredictor p(options); }).find("expects an integer"), std::string::npos);
  options.eval_metric = "rmse";
  options.hyperparameters = Json::object();
  TempDir dir;
  options.path = dir.file("p");
  options.verbose = false;
  MultiModalPredictor predictor(options);
  EXPECT_NE(error_of([&] { predictor.fit(make_tabular_table(60, 1)); }).find("does not apply"), std::string::npos);
}

TEST(PredictorErrors, PendingFeaturesAreRejectedNotIgnored) {
  TempDir dir;
  MultiModalPredictor predictor(quick_options(dir.file("p"), {{"model.ft_transformer.checkpoint_name", "x"}}));
  EXPECT_NE(error_of([&] { predictor.fit(make_tabular_table(60, 1)); }).find("not supported yet"), std::string::npos);
  // A detection key on a table problem: refused, not ignored.
  MultiModalPredictor detection_key(quick_options(dir.file("d"), {{"model.mmdet_image.frozen_layers", Json::array({"x"})}}));
  EXPECT_NE(error_of([&] { detection_key.fit(make_tabular_table(60, 1)); }).find("object_detection"),
            std::string::npos);
  // A segmentation key on a table problem: refused, not ignored.
  MultiModalPredictor segmentation_key(quick_options(dir.file("s"), {{"model.sam.num_mask_tokens", 2}}));
  EXPECT_NE(error_of([&] { segmentation_key.fit(make_tabular_table(60, 1)); }).find("semantic_segmentation"),
            std::string::npos);
  // torch.compile's backends do not exist here: refused before training, naming the key.
  MultiModalPredictor compiled(
      quick_options(dir.file("q"), {{"env.compile.turn_on", true}, {"env.compile.backend", "inductor"}}));
  const std::string message = error_of([&] { compiled.fit(make_tabular_table(60, 1)); });
  EXPECT_NE(message.find("env.compile.backend = inductor"), std::string::npos) << message;
}

TEST(PredictorErrors, TextColumnNeedsACheckpointOrScratch) {
  TempDir dir;
  Table table = make_tabular_table(200, 1);
  std::vector<std::string> text;
  for (size_t r = 0; r < 200; ++r) text.push_back("a review with several words number " + std::to_string(r));
  table.add_column(make_column("review", text));
  // No pretrained checkpoint can be had offline: the error offers the scratch models.
  automm::testing::ScopedEnv env({{"HF_HUB_OFFLINE", "1"}, {"HF_HUB_CACHE", dir.file("cache")}});
  MultiModalPredictor predictor(quick_options(dir.file("p")));
  const std::string message = error_of([&] { predictor.fit(table); });
  EXPECT_NE(message.find("scratch:bert-tiny"), std::string::npos) << message;
  // Without hf_text in model.names the text column is left out, as in AutoMM.
  MultiModalPredictor tabular(quick_options(
      dir.file("q"), {{"model.names", Json::array({"categorical_mlp", "numerical_mlp", "fusion_mlp"})}}));
  tabular.fit(table);
  EXPECT_EQ(tabular.column_types().at("review"), "text");
}

// ------------------------------------------------------------------ save / load
TEST(PredictorSave, FolderIsRelocatableAndReplacesAnOlderPredictor) {
  TempDir dir;
  MultiModalPredictor predictor(quick_options(dir.file("first")));
  const Table test = make_tabular_table(30, 2);
  predictor.fit(make_tabular_table(200, 1));
  const torch::Tensor expected = predictor.predict_proba(test);
  fs::rename(dir.file("first"), dir.file("moved"));
  const MultiModalPredictor loaded = MultiModalPredictor::load(dir.file("moved"));
  EXPECT_TRUE(torch::equal(loaded.predict_proba(test), expected));
  EXPECT_EQ(loaded.fit_summary(), predictor.fit_summary());
  EXPECT_EQ(loaded.config().to_json(), predictor.config().to_json());
  EXPECT_EQ(read_file(dir.file("moved/predictor.json")).find(dir.path().string()), std::string::npos)
      << "the saved folder must hold no absolute path";

  predictor.save(dir.file("moved"));  // over an existing predictor
  size_t entries = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) entries += entry.path().filename() != "" ? 1 : 0;
  EXPECT_EQ(entries, 1u) << "no temporary or old folder is left behind";
  EXPECT_TRUE(torch::equal(MultiModalPredictor::load(dir.file("moved")).predict_proba(test), expected));
}

TEST(PredictorSave, FailedSaveLeavesWhatWasThere) {
  TempDir dir;
  MultiModalPredictor predictor(quick_options(dir.file("p")));
  predictor.fit(make_tabular_table(200, 1));
  fs::create_directories(dir.file("mine"));
  automm::testing::write_file(dir.file("mine/notes.txt"), "keep me");
  EXPECT_NE(error_of([&] { predictor.save(dir.file("mine")); }).find("refusing"), std::string::npos);
  EXPECT_EQ(read_file(dir.file("mine/notes.txt")), "keep me");
  automm::testing::write_file(dir.file("a_file"), "x");
  EXPECT_NE(error_of([&] { predictor.save(dir.file("a_file")); }).find("not a folder"), std::string::npos);
  EXPECT_EQ(read_file(dir.file("a_file")), "x");
}

// Predictors saved before the word-wise digest recorded "weights_digest", a
// byte-wise FNV-1a of the weights file: they still load, and a damaged file still fails.
TEST(PredictorLoad, AcceptsTheByteWiseDigestOfEarlierSaves) {
  TempDir dir;
  MultiModalPredictor predictor(quick_options(dir.file("p")));
  predictor.fit(make_tabular_table(200, 1));
  const std::string weights = read_file(dir.file("p/model.safetensors"));
  uint64_t hash = 1469598103934665603ULL;
  for (unsigned char c : weights) hash = (hash ^ c) * 1099511628211ULL;
  char digest[17];
  std::snprintf(digest, sizeof digest, "%016llx", static_cast<unsigned long long>(hash));
  Json meta = Json::parse(read_file(dir.file("p/predictor.json")));
  ASSERT_TRUE(meta.contains("weights_xxh3_64"));  // format 2; format 1 folders carry FNV-1a
  meta.erase("weights_xxh3_64");
  meta["weights_digest"] = digest;
  automm::testing::write_file(dir.file("p/predictor.json"), meta.dump());
  const Table rows = make_tabular_table(20, 2);
  EXPECT_TRUE(torch::equal(MultiModalPredictor::load(dir.file("p")).predict_proba(rows), predictor.predict_proba(rows)));
  meta["weights_digest"] = "0000000000000000";
  automm::testing::write_file(dir.file("p/predictor.json"), meta.dump());
  EXPECT_NE(error_of([&] { MultiModalPredictor::load(dir.file("p")); }).find("corrupted"), std::string::npos);
}

TEST(PredictorLoad, CorruptedOrForeignFoldersGetClearErrors) {
  TempDir dir;
  MultiModalPredictor predictor(quick_options(dir.file("p")));
  predictor.fit(make_tabular_table(200, 1));
  const std::string meta_path = dir.file("p/predictor.json");
  const std::string original = read_file(meta_path);

  EXPECT_NE(error_of([&] { MultiModalPredictor::load(dir.file("nowhere")); }).find("not a folder"), std::string::npos);

  Json meta = Json::parse(original);
  meta["format_version"] = 99;
  automm::testing::write_file(meta_path, meta.dump());
  EXPECT_NE(error_of([&] { MultiModalPredictor::load(dir.file("p")); }).find("format version 99"), std::string::npos);

  automm::testing::write_file(meta_path, original.substr(0, original.size() / 2));
  EXPECT_NE(error_of([&] { MultiModalPredictor::load(dir.file("p")); }).find("corrupted"), std::string::npos);

  automm::testing::write_file(meta_path, original);
  std::string weights = read_file(dir.file("p/model.safetensors"));
  weights[weights.size() / 2] ^= 0x5a;
  automm::testing::write_file(dir.file("p/model.safetensors"), weights);
  EXPECT_NE(error_of([&] { MultiModalPredictor::load(dir.file("p")); }).find("corrupted"), std::string::npos);

  EXPECT_NE(error_of([&] { MultiModalPredictor::load(dir.file("p"), /*resume=*/true); }).find("resum"),
            std::string::npos);
}

}  // namespace
}  // namespace automm
