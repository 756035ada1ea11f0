// Matching (text_similarity, image_text_similarity): a siamese tower trained
// from scratch on generated query / response pairs whose two sides share no
// words, so that only a learned mapping retrieves the right response: recall@1
// on held-out pairs against a TF-IDF cosine baseline computed here; the ranking
// metrics by hand; labels, save / load, per-side embeddings, the command line
// and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "automm/predictor.h"
#include "automm/table.h"
#include "automm_test_paths.h"
#include "image_test_util.h"
#include "learners/ranking.h"
#include "test_util.h"

namespace automm {
namespace {

using testing::Contains;
using testing::error_of;
using testing::TempDir;

constexpr int kConcepts = 24;

// Concept i is "qw<i>" on the query side and "rw<i>" on the response side;
// both sides add words from a shared noise list.
std::string concept_word(char side, int i) { return std::string(1, side) + "w" + std::string(1, 'a' + i % 26) + std::string(1, 'a' + i / 26); }

struct Pairs {
  Table table;
  std::vector<std::pair<int, int>> concepts;
};

Pairs make_pairs(const std::vector<std::pair<int, int>>& combos, uint64_t seed) {
  static const std::vector<std::string> noise = {"the", "item", "about", "with", "some", "thing", "here", "note"};
  std::mt19937_64 rng(seed);
  Column query("query"), response("response");
  for (const auto& [i, j] : combos) {
    std::string q = "find " + concept_word('q', i) + " " + concept_word('q', j);
    std::string r = concept_word('r', j) + " and " + concept_word('r', i);
    for (int n = 0; n < 2; ++n) {
      q += " " + noise[rng() % noise.size()];
      r += " " + noise[rng() % noise.size()];
    }
    query.push(q, true);
    response.push(r, true);
  }
  Pairs out;
  out.table.add_column(std::move(query));
  out.table.add_column(std::move(response));
  out.concepts = combos;
  return out;
}

// Every unordered pair of concepts; a seeded fifth held out.
std::pair<std::vector<std::pair<int, int>>, std::vector<std::pair<int, int>>> split_combos() {
  std::vector<std::pair<int, int>> all, train, test;
  for (int i = 0; i < kConcepts; ++i)
    for (int j = i + 1; j < kConcepts; ++j) all.emplace_back(i, j);
  std::mt19937_64 rng(7);
  std::shuffle(all.begin(), all.end(), rng);
  for (size_t k = 0; k < all.size(); ++k) (k % 5 == 0 ? test : train).push_back(all[k]);
  return {train, test};
}

// recall@1 of TF-IDF cosine (whitespace tokens, idf over the queries and responses).
double tfidf_recall_at_1(const Table& table) {
  const auto tokens = [](const std::string& text) {
    std::istringstream in(text);
    std::vector<std::string> out;
    for (std::string word; in >> word;) out.push_back(word);
    return out;
  };
  const size_t n = table.num_rows();
  std::vector<std::vector<std::string>> docs;
  for (size_t r = 0; r < n; ++r) docs.push_back(tokens(table.column("query").text(r)));
  for (size_t r = 0; r < n; ++r) docs.push_back(tokens(table.column("response").text(r)));
  std::map<std::string, double> df;
  for (const auto& doc : docs)
    for (const std::string& w : std::set<std::string>(doc.begin(), doc.end())) df[w] += 1;
  std::map<std::string, int64_t> index;
  for (const auto& [w, count] : df) index.emplace(w, static_cast<int64_t>(index.size()));
  torch::Tensor m = torch::zeros({static_cast<int64_t>(docs.size()), static_cast<int64_t>(index.size())}, torch::kFloat64);
  for (size_t d = 0; d < docs.size(); ++d)
    for (const std::string& w : docs[d])
      m[static_cast<int64_t>(d)][index[w]] += std::log(static_cast<double>(docs.size()) / df[w]) + 1.0;
  m = m / m.norm(2, -1, true).clamp_min(1e-12);
  const torch::Tensor sim = m.slice(0, 0, n).matmul(m.slice(0, n).t());
  std::vector<std::vector<int64_t>> diagonal;
  for (size_t r = 0; r < n; ++r) diagonal.push_back({static_cast<int64_t>(r)});
  return ranking_metrics(sim, diagonal, {"recall@1"}).at("recall@1");
}

PredictorOptions text_options(const std::string& path, Json extra = Json::object()) {
  PredictorOptions options;
  options.problem_type = "text_similarity";
  options.query = "query";
  options.response = "response";
  options.path = path;
  options.verbose = false;
  Json h = {{"model.hf_text.checkpoint_name", "scratch:bert-tiny"},
            {"model.hf_text.text_trivial_aug_maxscale", 0.0},
            {"optim.lr", 1e-3},
            {"optim.max_epochs", 30},
            {"env.batch_size", 32},
            {"env.per_gpu_batch_size", 32}};
  h.update(extra);
  options.hyperparameters = h;
  return options;
}

TEST(RankingMetrics, MatchHandComputedValues) {
  // Query 0 ranks candidates 2, 0, 1 with 0 and 1 relevant; query 1 ranks 1 first.
  const torch::Tensor sim = torch::tensor({{0.5, 0.1, 0.9}, {0.2, 0.8, 0.3}}, torch::kFloat64);
  const auto m = ranking_metrics(sim, {{0, 1}, {1}},
                                 {"recall@1", "recall@2", "precision@2", "mrr", "ndcg@3", "map@3", "mrr@1"});
  EXPECT_DOUBLE_EQ(m.at("recall@1"), (0.0 + 1.0) / 2);
  EXPECT_DOUBLE_EQ(m.at("recall@2"), (0.5 + 1.0) / 2);
  EXPECT_DOUBLE_EQ(m.at("precision@2"), (0.5 + 0.5) / 2);
  EXPECT_DOUBLE_EQ(m.at("mrr"), (0.5 + 1.0) / 2);
  EXPECT_DOUBLE_EQ(m.at("mrr@1"), (0.0 + 1.0) / 2);
  const double dcg0 = 1 / std::log2(3.0) + 1 / std::log2(4.0), idcg0 = 1 + 1 / std::log2(3.0);
  EXPECT_NEAR(m.at("ndcg@3"), (dcg0 / idcg0 + 1.0) / 2, 1e-12);
  EXPECT_NEAR(m.at("map@3"), ((1.0 / 2 + 2.0 / 3) / 2 + 1.0) / 2, 1e-12);
  EXPECT_TRUE(Contains(error_of([&] { ranking_metrics(sim, {{0}, {1}}, {"recall@0"}); }), "recall@0"));
  // Search: the best corpus rows by cosine, best first.
  const auto hits = semantic_search(torch::tensor({{1.0, 0.0}}), torch::tensor({{0.0, 1.0}, {2.0, 0.1}, {1.0, 1.0}}), 2);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].corpus, 1);
  EXPECT_EQ(hits[1].corpus, 2);
  EXPECT_EQ(hits[1].rank, 2);
}

TEST(TextMatching, ScratchTowerBeatsTfIdfOnHeldOutPairs) {
  TempDir dir;
  const auto [train_combos, test_combos] = split_combos();
  const Pairs train = make_pairs(train_combos, 1), test = make_pairs(test_combos, 2);
  MultiModalPredictor predictor(text_options(dir.file("p")));
  predictor.fit(train.table);
  const auto scores = predictor.evaluate(test.table, {"recall@1", "recall@5", "mrr", "ndcg@10"});
  const double baseline = tfidf_recall_at_1(test.table);
  std::cout << "text_similarity (scratch:bert-tiny, " << train_combos.size() << " pairs) held-out recall@1 "
            << scores.at("recall@1") << ", recall@5 " << scores.at("recall@5") << ", mrr " << scores.at("mrr")
            << "; TF-IDF recall@1 " << baseline << " (" << test_combos.size() << " candidates)" << std::endl;
  EXPECT_GT(scores.at("recall@1"), baseline + 0.3);
  EXPECT_GE(scores.at("recall@5"), scores.at("recall@1"));

  // Matching pairs score above shuffled ones; predict says match for most of them.
  const torch::Tensor p = predictor.predict_proba(test.table);
  Table shuffled = test.table;
  shuffled.drop_column("response");
  Column moved("response");
  for (size_t r = 0; r < test.table.num_rows(); ++r)
    moved.push(test.table.column("response").text((r + 1) % test.table.num_rows()), true);
  shuffled.add_column(std::move(moved));
  EXPECT_GT(p.select(1, 1).mean().item<double>(), predictor.predict_proba(shuffled).select(1, 1).mean().item<double>());

  // Per-side embeddings for indexing, and the saved folder gives the same.
  Table queries = test.table;
  queries.drop_column("response");
  const torch::Tensor q = predictor.extract_embedding(queries);
  EXPECT_EQ(q.size(0), static_cast<int64_t>(test.table.num_rows()));
  const MultiModalPredictor loaded = MultiModalPredictor::load(dir.file("p"));
  EXPECT_EQ(loaded.problem_type(), "text_similarity");
  EXPECT_LE((loaded.extract_embedding(queries) - q).abs().max().item<double>(), 1e-5);
  EXPECT_TRUE(Contains(error_of([&] { loaded.extract_embedding(test.table); }), "both the query column"));
}

TEST(TextMatching, BinaryLabelsTrainTheContrastiveLoss) {
  TempDir dir;
  const auto [train_combos, test_combos] = split_combos();
  Pairs train = make_pairs(train_combos, 3);
  // Every other row gets another row's response and the label "no".
  Table labeled;
  Column query("query"), response("response"), label("label");
  const size_t n = train.table.num_rows();
  for (size_t r = 0; r < n; ++r) {
    const bool match = r % 2 == 0;
    query.push(train.table.column("query").text(r), true);
    response.push(train.table.column("response").text(match ? r : (r + 7) % n), true);
    label.push(match ? "yes" : "no", true);
  }
  for (Column* c : {&query, &response, &label}) labeled.add_column(std::move(*c));
  PredictorOptions options = text_options(dir.file("p"));
  options.label = "label";
  options.match_label = "yes";
  MultiModalPredictor predictor(options);
  predictor.fit(labeled);
  EXPECT_EQ(predictor.classes(), (std::vector<std::string>{"no", "yes"}));
  const torch::Tensor p = predictor.predict_proba(labeled).select(1, 1);  // P(yes)
  const torch::Tensor is_match = torch::arange(static_cast<int64_t>(n)) % 2 == 0;
  const double match_mean = p.masked_select(is_match).mean().item<double>();
  const double other_mean = p.masked_select(~is_match).mean().item<double>();
  std::cout << "contrastive loss: mean P(match) " << match_mean << " on matching rows, " << other_mean
            << " on the others" << std::endl;
  EXPECT_GT(match_mean, other_mean + 0.1);
  // match_label must be one of the label's values.
  options.match_label = "maybe";
  options.path = dir.file("q");
  MultiModalPredictor wrong(options);
  EXPECT_TRUE(Contains(error_of([&] { wrong.fit(labeled); }), "match_label 'maybe' never occurs"));
}

TEST(TextMatching, BadColumnsAreClearErrors) {
  TempDir dir;
  const Pairs pairs = make_pairs(split_combos().first, 4);
  PredictorOptions missing = text_options(dir.file("a"));
  missing.response = "answer";
  EXPECT_TRUE(Contains(error_of([&] { MultiModalPredictor(missing).fit(pairs.table); }), "response column 'answer'"));
  PredictorOptions none = text_options(dir.file("b"));
  none.query.clear();
  EXPECT_TRUE(Contains(error_of([&] { MultiModalPredictor(none).fit(pairs.table); }), "query and response column"));
  // An image column given to text_similarity.
  Table images = testing::make_shape_table(dir.path().string(), "img", 8, 1);
  write_csv(images, images.source);
  images = read_table(images.source);
  PredictorOptions image_query = text_options(dir.file("c"));
  image_query.query = "photo";
  image_query.response = "label";
  EXPECT_TRUE(Contains(error_of([&] { MultiModalPredictor(image_query).fit(images); }),
                       "query column 'photo' holds images"));
  // A key the matching learner would not apply is refused, naming it.
  PredictorOptions lora = text_options(dir.file("d"), {{"optim.peft", "lora"}});
  EXPECT_TRUE(Contains(error_of([&] { MultiModalPredictor(lora).fit(pairs.table); }),
                       "optim.peft is not used by problem type text_similarity"));
  // Presets choose AutoMM's checkpoints under the user's keys.
  PredictorOptions medium = text_options(dir.file("e"));
  medium.presets = "fastest";
  EXPECT_TRUE(Contains(error_of([&] { MultiModalPredictor(medium).fit(pairs.table); }), "unknown presets 'fastest'"));
}

TEST(ImageTextMatching, ScratchClipRetrievesCaptionsAndSearches) {
  TempDir dir;
  Table table = testing::make_shape_table(dir.path().string(), "img", 64, 5);
  Column caption("caption");
  for (size_t r = 0; r < table.num_rows(); ++r)
    caption.push(table.column("label").text(r) + " shape number " + std::to_string(r), true);
  table.add_column(std::move(caption));
  write_csv(table, table.source);
  table = read_table(table.source);
  PredictorOptions options;
  options.problem_type = "image_text_similarity";
  options.query = "photo";
  options.response = "caption";
  options.path = dir.file("p");
  options.verbose = false;
  options.hyperparameters = {{"model.clip.checkpoint_name", "scratch:clip-tiny"},
                             {"model.clip.image_size", 32},
                             {"model.clip.train_transforms", Json::array({"resize_to_square"})},
                             {"model.clip.val_transforms", Json::array({"resize_to_square"})},
                             {"optim.lr", 1e-3},
                             {"optim.max_epochs", 3},
                             {"env.per_gpu_batch_size", 16},
                             {"env.batch_size", 16}};
  MultiModalPredictor predictor(options);
  predictor.fit(table);
  const auto scores = predictor.evaluate(table);
  for (const char* m : {"recall@1", "recall@5", "recall@10", "mrr", "ndcg@10"}) {
    ASSERT_EQ(scores.count(m), 1u) << m;
    EXPECT_GE(scores.at(m), 0.0);
    EXPECT_LE(scores.at(m), 1.0);
  }
  // The command line: evaluate and search on the saved predictor.
  Table captions = table;
  for (const char* c : {"photo", "weight", "label"}) captions.drop_column(c);
  write_csv(captions, dir.file("corpus.csv"));
  // Queries: the image column alone (a table with both sides is refused: which side would it embed?).
  Table photos = table;
  for (const char* c : {"caption", "weight", "label"}) photos.drop_column(c);
  write_csv(photos, dir.file("img_queries.csv"));
  const std::string search = std::string(AUTOMM_CLI_PATH) + " search --path " + dir.file("p") + " --queries " +
                             dir.file("img_queries.csv") + " --corpus " + dir.file("corpus.csv") +
                             " --top-k 3 --out " + dir.file("hits.csv") + " 2>&1";
  ASSERT_EQ(std::system(search.c_str()), 0) << search;
  const Table hits = read_table(dir.file("hits.csv"));
  EXPECT_EQ(hits.num_rows(), 64u * 3);
  EXPECT_EQ(hits.column_names(), (std::vector<std::string>{"query_row", "rank", "corpus_row", "score"}));
}

TEST(TextMatching, CommandLineFitsAndEvaluates) {
  TempDir dir;
  const auto [train_combos, test_combos] = split_combos();
  write_csv(make_pairs(train_combos, 6).table, dir.file("train.csv"));
  write_csv(make_pairs(test_combos, 7).table, dir.file("test.csv"));
  const std::string fit = std::string(AUTOMM_CLI_PATH) + " fit --train " + dir.file("train.csv") +
                          " --problem-type text_similarity --query query --response response --path " +
                          dir.file("p") + " --hp model.hf_text.checkpoint_name=scratch:bert-tiny --hp optim.max_epochs=2" +
                          " --quiet > " + dir.file("fit.txt") + " 2>&1";
  ASSERT_EQ(std::system(fit.c_str()), 0) << std::ifstream(dir.file("fit.txt")).rdbuf();
  const std::string evaluate = std::string(AUTOMM_CLI_PATH) + " evaluate --path " + dir.file("p") + " --data " +
                               dir.file("test.csv") + " --metrics recall@1,recall@10,mrr,ndcg@10 --json > " +
                               dir.file("scores.json") + " 2>&1";
  ASSERT_EQ(std::system(evaluate.c_str()), 0) << std::ifstream(dir.file("scores.json")).rdbuf();
  const Json scores = Json::parse(std::ifstream(dir.file("scores.json")));
  for (const char* m : {"recall@1", "recall@10", "mrr", "ndcg@10"}) EXPECT_TRUE(scores.contains(m)) << scores.dump();
}

}  // namespace
}  // namespace automm
