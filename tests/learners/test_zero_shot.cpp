// problem_type zero_shot_image_classification: a CLIP checkpoint (here a
// scratch:clip-tiny folder with random weights in Hugging Face's format)
// scores images against candidate class names with nothing to fit; the
// probabilities equal softmax(100 * cosine) of the model's own embeddings;
// save / load; the command line; bad candidates.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <sys/wait.h>

#include "automm/predictor.h"
#include "automm/table.h"
#include "automm/weights_io.h"
#include "automm_test_paths.h"
#include "data/image/image_processor.h"
#include "data/text/scratch_checkpoint.h"
#include "data/text/text_tokenizer.h"
#include "image_test_util.h"
#include "models/clip/clip_model.h"
#include "test_util.h"

namespace automm {
namespace {

using testing::Contains;
using testing::error_of;
using testing::TempDir;

// A Hugging Face CLIP folder: scratch:clip-tiny's config and tokenizer, random weights.
std::string make_clip_folder(const TempDir& dir) {
  const std::string folder = dir.file("clip-ckpt");
  write_scratch_clip_checkpoint("scratch:clip-tiny", {"a red shape", "a blue shape", "a photo of a green thing"}, 32,
                                folder);
  torch::manual_seed(3);
  ClipModel model(ClipConfig::from_json(Json::parse(std::ifstream(folder + "/config.json"))));
  StateDict weights;
  for (const auto& item : model->named_parameters()) weights[item.key()] = item.value().detach();
  save_safetensors(weights, folder + "/model.safetensors");
  return folder;
}

PredictorOptions zero_shot_options(const std::string& checkpoint, Json extra = Json::object()) {
  PredictorOptions options;
  options.problem_type = "zero_shot_image_classification";
  options.verbose = false;
  Json h = {{"model.clip.checkpoint_name", checkpoint}};
  h.update(extra);
  options.hyperparameters = h;
  return options;
}

// softmax(100 * cos(image, text)) from the model, processor and tokenizer directly.
torch::Tensor expected_probabilities(const std::string& folder, const Table& images,
                                     const std::vector<std::string>& texts) {
  torch::NoGradGuard no_grad;
  ClipModel model(ClipConfig::from_json(Json::parse(std::ifstream(folder + "/config.json"))));
  model->load_hf_state_dict(load_weights(folder));
  model->eval();
  ImageProcessorOptions o;
  o.image_size = 32;
  std::tie(o.mean, o.std) = image_norm_stats("clip");
  o.val_transforms = o.train_transforms = {"resize_shorter_side", "center_crop"};
  const auto processor = ImageProcessor::create("clip", {{"photo", true}}, o);
  std::vector<int64_t> rows;
  for (size_t r = 0; r < images.num_rows(); ++r) rows.push_back(static_cast<int64_t>(r));
  const ImageBatch batch =
      processor->make_batch(*processor->transform(images, std::filesystem::path(images.source).parent_path()), rows,
                            nullptr);
  auto image = model->image_features(batch.images.flatten(0, 1));
  image = image / image.norm(2, -1, true);
  const TextTokenizer tokenizer = TextTokenizer::from_folder(folder, "clip");
  std::vector<torch::Tensor> text;
  for (const std::string& t : texts) {
    std::vector<int64_t> ids = {tokenizer.cls_id()};
    for (int64_t id : tokenizer.encode(t)) ids.push_back(id);
    ids.push_back(tokenizer.sep_id());
    const auto tensor = torch::tensor(ids, torch::kLong).unsqueeze(0);
    text.push_back(model->text_features(tensor, torch::ones_like(tensor)));
  }
  auto t = torch::cat(text);
  t = t / t.norm(2, -1, true);
  return torch::softmax(100.0 * image.matmul(t.t()), -1);
}

class ZeroShot : public ::testing::Test {
 protected:
  void SetUp() override {
    folder = make_clip_folder(dir);
    images = testing::make_shape_table(dir.path().string(), "img", 6, 9);
    write_csv(images, images.source);
    images = read_table(images.source);
  }
  TempDir dir;
  std::string folder;
  Table images;
};

TEST_F(ZeroShot, ProbabilitiesAreSoftmaxOfScaledCosineNeedingNoFit) {
  MultiModalPredictor predictor(zero_shot_options(folder));
  EXPECT_EQ(predictor.problem_type(), "zero_shot_image_classification");
  const std::vector<std::string> classes = {"red shape", "blue shape", "green thing"};
  const torch::Tensor p = predictor.predict_proba(images, classes);
  ASSERT_EQ(p.sizes(), (std::vector<int64_t>{6, 3}));
  const torch::Tensor expected = expected_probabilities(folder, images, classes);
  EXPECT_LE((p - expected).abs().max().item<double>(), 1e-5);
  // Permuting the candidates permutes the columns; predict is the argmax, by name.
  const torch::Tensor swapped = predictor.predict_proba(images, {"green thing", "red shape", "blue shape"});
  EXPECT_LE((swapped.index_select(1, torch::tensor({1, 2, 0})) - p).abs().max().item<double>(), 1e-5);
  const Predictions names = predictor.predict(images, classes);
  for (size_t r = 0; r < 6; ++r) EXPECT_EQ(names.text(r), classes[p[r].argmax().item<int64_t>()]);
  // The embedding is the normalised image features.
  const torch::Tensor embedding = predictor.extract_embedding(images);
  EXPECT_EQ(embedding.size(1), 128);
  EXPECT_LE((embedding.norm(2, -1) - 1).abs().max().item<double>(), 1e-5);
}

TEST_F(ZeroShot, PromptTemplateChangesTheTextsRead) {
  MultiModalPredictor plain(zero_shot_options(folder));
  MultiModalPredictor prompted(zero_shot_options(folder, {{"model.clip.prompt_template", "a photo of a {}."}}));
  const torch::Tensor p = prompted.predict_proba(images, {"red", "blue"});
  const torch::Tensor expected = expected_probabilities(folder, images, {"a photo of a red.", "a photo of a blue."});
  EXPECT_LE((p - expected).abs().max().item<double>(), 1e-5);
  EXPECT_GT((plain.predict_proba(images, {"red", "blue"}) - p).abs().max().item<double>(), 1e-4);
  // model.clip.max_text_len: with 3 tokens ([bos] word [eos]) only the first word of each name is read.
  MultiModalPredictor short_text(zero_shot_options(folder, {{"model.clip.max_text_len", 3}}));
  const torch::Tensor cut = short_text.predict_proba(images, {"red shape", "red thing"});
  EXPECT_LE((cut.select(1, 0) - cut.select(1, 1)).abs().max().item<double>(), 5e-5);
  const torch::Tensor whole = plain.predict_proba(images, {"red shape", "red thing"});
  EXPECT_GT((whole.select(1, 0) - whole.select(1, 1)).abs().max().item<double>(), 1e-3);
  EXPECT_TRUE(Contains(error_of([&] { MultiModalPredictor(zero_shot_options(folder, {{"model.clip.prompt_template", "x"}})); }),
                       "model.clip.prompt_template"));
}

TEST_F(ZeroShot, SavesAFolderThatLoadsOffline) {
  MultiModalPredictor predictor(zero_shot_options(folder));
  const torch::Tensor before = predictor.predict_proba(images, {"a", "b"});
  predictor.save(dir.file("saved"));
  EXPECT_TRUE(std::filesystem::exists(dir.file("saved/clip/model.safetensors")));
  EXPECT_TRUE(std::filesystem::exists(dir.file("saved/clip/tokenizer.json")));
  std::filesystem::remove_all(folder);  // the saved folder stands alone
  const MultiModalPredictor loaded = MultiModalPredictor::load(dir.file("saved"));
  EXPECT_EQ(loaded.problem_type(), "zero_shot_image_classification");
  EXPECT_LE((loaded.predict_proba(images, {"a", "b"}) - before).abs().max().item<double>(), 1e-6);
}

TEST_F(ZeroShot, AnotherImageSizeResamplesAndSurvivesSaving) {
  // The checkpoint is for 32 px; at 64 px its position embeddings are resampled.
  MultiModalPredictor predictor(zero_shot_options(folder, {{"model.clip.image_size", 64}}));
  const torch::Tensor before = predictor.predict_proba(images, {"a", "b"});
  EXPECT_GT((before - MultiModalPredictor(zero_shot_options(folder)).predict_proba(images, {"a", "b"}))
                .abs()
                .max()
                .item<double>(),
            1e-6);
  predictor.save(dir.file("big"));
  EXPECT_LE((MultiModalPredictor::load(dir.file("big")).predict_proba(images, {"a", "b"}) - before)
                .abs()
                .max()
                .item<double>(),
            1e-6);
}

TEST_F(ZeroShot, BadCandidatesAndMisuseAreClearErrors) {
  MultiModalPredictor predictor(zero_shot_options(folder));
  EXPECT_TRUE(Contains(error_of([&] { predictor.predict_proba(images, std::vector<std::string>{}); }), "empty"));
  EXPECT_TRUE(Contains(error_of([&] { predictor.predict_proba(images, std::vector<std::string>{"cat", "dog", "cat"}); }), "\"cat\" is given twice"));
  EXPECT_TRUE(Contains(error_of([&] { predictor.predict(images); }), "candidate class names"));
  EXPECT_TRUE(Contains(error_of([&] { predictor.fit(images); }), "nothing to fit"));
  EXPECT_TRUE(Contains(error_of([&] { MultiModalPredictor(zero_shot_options(folder, {{"optim.lr", 0.1}})); }),
                       "optim.lr is not used by problem type zero_shot_image_classification"));
  // AutoMM's presets pick the checkpoint unless the key is set.
  PredictorOptions preset = zero_shot_options(folder);
  preset.hyperparameters = Json::object();
  preset.presets = "best_quality";
  EXPECT_EQ(MultiModalPredictor(preset).config().get_string("model.clip.checkpoint_name"),
            "openai/clip-vit-large-patch14-336");
  Table no_images;
  Column text("caption");
  text.push("hello there", true);
  no_images.add_column(std::move(text));
  EXPECT_TRUE(Contains(error_of([&] { predictor.predict_proba(no_images, std::vector<std::string>{"a"}); }), "needs an image column"));
  // A classifier with classes of its own does not take candidates.
  PredictorOptions tabular;
  tabular.label = "label";
  tabular.path = dir.file("t");
  tabular.verbose = false;
  tabular.hyperparameters = {{"optim.max_epochs", 1}};
  MultiModalPredictor classifier(tabular);
  classifier.fit(testing::make_tabular_table(60, 1));
  EXPECT_TRUE(Contains(error_of([&] { classifier.predict_proba(testing::make_tabular_table(5, 2), std::vector<std::string>{"a"}); }),
                       "zero_shot_image_classification"));
}

TEST_F(ZeroShot, CommandLinePredictsWithoutASavedPredictor) {
  const std::string classes = dir.file("classes.txt");
  std::ofstream(classes) << "red shape\nblue shape\n";
  const std::string command = std::string(AUTOMM_CLI_PATH) + " predict --zero-shot --checkpoint " + folder +
                              " --data " + images.source + " --classes-file " + classes + " --proba --out " +
                              dir.file("p.csv") + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const Table out = read_table(dir.file("p.csv"));
  ASSERT_EQ(out.num_rows(), 6u);
  MultiModalPredictor predictor(zero_shot_options(folder));
  const torch::Tensor p = predictor.predict_proba(images, {"red shape", "blue shape"});
  for (size_t r = 0; r < 6; ++r) EXPECT_NEAR(std::stod(out.column("red shape").text(r)), p[r][0].item<double>(), 1e-6);
  // --zero-shot without classes names what is missing.
  const std::string missing = std::string(AUTOMM_CLI_PATH) + " predict --zero-shot --checkpoint " + folder +
                              " --data " + images.source + " --out " + dir.file("q.csv") + " > " +
                              dir.file("err.txt") + " 2>&1";
  EXPECT_NE(std::system(missing.c_str()), 0);
  std::ifstream err(dir.file("err.txt"));
  EXPECT_TRUE(Contains(std::string(std::istreambuf_iterator<char>(err), {}), "--classes"));
}

}  // namespace
}  // namespace automm
