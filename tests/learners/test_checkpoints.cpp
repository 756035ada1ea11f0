// Tests of the in-memory top-k checkpoints and their averaging (AutoMM's learners/base.py: greedy
// soup, uniform soup, best).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "../src/learners/checkpoints.h"

namespace automm {
namespace {

// A module with a float parameter `w` [3], a float parameter `s` [1] (both averaged),
// a float buffer `running` [2] and an integer buffer `count` [1].
struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    w = register_parameter("w", torch::zeros({3}));
    s = register_parameter("s", torch::zeros({1}));
    running = register_buffer("running", torch::zeros({2}));
    count = register_buffer("count", torch::zeros({1}, torch::kInt64));
  }
  void set(const std::vector<float>& w_values, float s_value, const std::vector<float>& running_values,
           int64_t count_value) {
    torch::NoGradGuard guard;
    w.copy_(torch::tensor(w_values));
    s.fill_(s_value);
    running.copy_(torch::tensor(running_values));
    count.fill_(count_value);
  }
  torch::Tensor w, s, running, count;
};
TORCH_MODULE(Tiny);

std::vector<double> values(const torch::Tensor& t) {
  auto flat = t.to(torch::kDouble).contiguous().view({-1});
  return std::vector<double>(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
}

void expect_values(const torch::Tensor& t, const std::vector<double>& expected, double tol = 1e-6) {
  const auto got = values(t);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], tol) << "index " << i;
}

// ------------------------------------------------------------ snapshot/restore

TEST(CheckpointsSnapshot, RoundTripRestoresParametersAndBuffers) {
  Tiny m;
  m->set({1.f, 2.f, 3.f}, 4.f, {5.f, 6.f}, 7);
  const Weights saved = snapshot(*m);
  ASSERT_EQ(saved.size(), 4u);  // 2 parameters then 2 buffers
  m->set({-1.f, -2.f, -3.f}, -4.f, {-5.f, -6.f}, 70);
  restore(*m, saved);
  expect_values(m->w, {1, 2, 3});
  expect_values(m->s, {4});
  expect_values(m->running, {5, 6});
  expect_values(m->count, {7});
}

TEST(CheckpointsSnapshot, SnapshotIsADeepCopy) {
  Tiny m;
  m->set({1.f, 2.f, 3.f}, 4.f, {5.f, 6.f}, 7);
  const Weights saved = snapshot(*m);
  m->set({9.f, 9.f, 9.f}, 9.f, {9.f, 9.f}, 9);  // in-place change of the module
  expect_values(saved[0], {1, 2, 3});
  expect_values(saved[1], {4});
  expect_values(saved[2], {5, 6});
  expect_values(saved[3], {7});
  EXPECT_FALSE(saved[0].requires_grad());
}

TEST(CheckpointsSnapshot, RestoreKeepsTheModulesTensors) {
  // Restoring copies into the existing tensors: an optimizer holding them still sees them.
  Tiny m;
  m->set({1.f, 2.f, 3.f}, 4.f, {5.f, 6.f}, 7);
  const Weights saved = snapshot(*m);
  auto* before = m->w.data_ptr<float>();
  m->set({0.f, 0.f, 0.f}, 0.f, {0.f, 0.f}, 0);
  restore(*m, saved);
  EXPECT_EQ(m->w.data_ptr<float>(), before);
  EXPECT_TRUE(m->w.requires_grad());
  expect_values(m->parameters()[0], {1, 2, 3});
}

TEST(CheckpointsAverage, ElementwiseMeanOfFloats) {
  Tiny m;
  m->set({1.f, 2.f, 3.f}, 4.f, {0.f, 10.f}, 3);
  const Weights a = snapshot(*m);
  m->set({3.f, -2.f, 0.f}, 5.f, {1.f, 20.f}, 8);
  const Weights b = snapshot(*m);
  const Weights mean = average({&a, &b});
  ASSERT_EQ(mean.size(), 4u);
  expect_values(mean[0], {2, 0, 1.5});
  expect_values(mean[1], {4.5});
  expect_values(mean[2], {0.5, 15});
  // Integer buffers are not averaged: the first member's value is kept.
  expect_values(mean[3], {3});
  EXPECT_EQ(mean[3].scalar_type(), torch::kInt64);
  // The inputs are untouched.
  expect_values(a[0], {1, 2, 3});
  expect_values(b[0], {3, -2, 0});
}

TEST(CheckpointsAverage, ThreeMembersAndSingleMember) {
  Tiny m;
  std::vector<Weights> all;
  for (float v : {1.f, 2.f, 6.f}) {
    m->set({v, 2 * v, -v}, v, {v, v}, 1);
    all.push_back(snapshot(*m));
  }
  const Weights mean = average({&all[0], &all[1], &all[2]});
  expect_values(mean[0], {3, 6, -3});
  expect_values(mean[1], {3});
  const Weights one = average({&all[2]});
  expect_values(one[0], {6, 12, -6});
}

// ------------------------------------------------------------------- top-k

TEST(CheckpointsTopK, KeepsTheKBestBestFirst) {
  Tiny m;
  TopKCheckpoints top(2);
  EXPECT_TRUE(top.empty());
  EXPECT_TRUE(top.offer(0.5, *m));
  EXPECT_FALSE(top.empty());
  EXPECT_TRUE(top.offer(0.7, *m));
  EXPECT_EQ(top.scores(), (std::vector<double>{0.7, 0.5}));
  EXPECT_TRUE(top.offer(0.6, *m));  // evicts 0.5
  EXPECT_EQ(top.scores(), (std::vector<double>{0.7, 0.6}));
  EXPECT_FALSE(top.offer(0.1, *m));  // worse than every kept one while full
  EXPECT_FALSE(top.offer(0.55, *m));
  EXPECT_EQ(top.scores(), (std::vector<double>{0.7, 0.6}));
  EXPECT_TRUE(top.offer(0.9, *m));
  EXPECT_EQ(top.scores(), (std::vector<double>{0.9, 0.7}));
}

TEST(CheckpointsTopK, AcceptsAnythingWhileNotFull) {
  Tiny m;
  TopKCheckpoints top(3);
  EXPECT_TRUE(top.offer(-5.0, *m));
  EXPECT_TRUE(top.offer(-9.0, *m));
  EXPECT_TRUE(top.offer(-1.0, *m));
  EXPECT_EQ(top.scores(), (std::vector<double>{-1.0, -5.0, -9.0}));
  EXPECT_FALSE(top.offer(-10.0, *m));
}

TEST(CheckpointsTopK, NanScoreIsNeverKept) {
  Tiny m;
  TopKCheckpoints top(2);
  EXPECT_FALSE(top.offer(std::numeric_limits<double>::quiet_NaN(), *m));
  EXPECT_TRUE(top.empty());
}

TEST(CheckpointsTopK, KeepsTheWeightsOfEachScore) {
  Tiny m;
  TopKCheckpoints top(3);
  for (float v : {2.f, 5.f, 3.f}) {
    m->set({v, v, v}, v, {v, v}, static_cast<int64_t>(v));
    top.offer(v, *m);  // score = weight value
  }
  m->set({0.f, 0.f, 0.f}, 0.f, {0.f, 0.f}, 0);
  top.finalize("best", *m, [] { return 0.0; });
  expect_values(m->w, {5, 5, 5});
  expect_values(m->count, {5});
}

// -------------------------------------------------------------------- finalize

TEST(CheckpointsFinalize, BestRestoresTheBest) {
  Tiny m;
  TopKCheckpoints top(3);
  m->set({1.f, 1.f, 1.f}, 1.f, {1.f, 1.f}, 1);
  top.offer(0.2, *m);
  m->set({2.f, 3.f, 4.f}, 2.f, {2.f, 2.f}, 2);
  top.offer(0.8, *m);  // the best
  m->set({7.f, 7.f, 7.f}, 7.f, {7.f, 7.f}, 7);
  top.offer(0.5, *m);
  int calls = 0;
  top.finalize("best", *m, [&] { return ++calls, 0.0; });
  expect_values(m->w, {2, 3, 4});
  expect_values(m->s, {2});
  expect_values(m->running, {2, 2});
  expect_values(m->count, {2});
}

TEST(CheckpointsFinalize, UniformSoupRestoresMeanOfAllKept) {
  Tiny m;
  TopKCheckpoints top(3);
  m->set({1.f, 0.f, 3.f}, 1.f, {0.f, 3.f}, 10);
  top.offer(0.2, *m);
  m->set({2.f, 6.f, 0.f}, 2.f, {3.f, 3.f}, 20);
  top.offer(0.8, *m);
  m->set({6.f, 3.f, 0.f}, 6.f, {6.f, 0.f}, 30);
  top.offer(0.5, *m);
  m->set({0.f, 4.f, 0.f}, 9.f, {9.f, 9.f}, 40);  // a fourth, worse one, dropped (k = 3)
  top.offer(0.1, *m);
  m->set({100.f, 100.f, 100.f}, 100.f, {100.f, 100.f}, 100);
  top.finalize("uniform_soup", *m, [] { return 0.0; });
  expect_values(m->w, {3, 3, 1});
  expect_values(m->s, {3});
  expect_values(m->running, {3, 2});
  expect_values(m->count, {20});  // integer buffer: taken from the best checkpoint
}

TEST(CheckpointsFinalize, SingleCheckpointIsRestoredWhateverTheMethod) {
  for (const char* method : {"best", "uniform_soup", "greedy_soup"}) {
    SCOPED_TRACE(method);
    Tiny m;
    TopKCheckpoints top(3);
    m->set({4.f, 5.f, 6.f}, 1.f, {1.f, 1.f}, 1);
    top.offer(0.3, *m);
    m->set({0.f, 0.f, 0.f}, 0.f, {0.f, 0.f}, 0);
    top.finalize(method, *m, [] { return 0.0; });
    expect_values(m->w, {4, 5, 6});
  }
}

TEST(CheckpointsFinalize, EmptyLeavesTheModuleAlone) {
  Tiny m;
  m->set({4.f, 5.f, 6.f}, 1.f, {1.f, 1.f}, 1);
  TopKCheckpoints top(2);
  top.finalize("greedy_soup", *m, [] { return 0.0; });
  expect_values(m->w, {4, 5, 6});
}

// Greedy soup on a scalar weight: score = -|mean(w) - target| as the evaluate function
// reads the module. The offered scores are the same function of each checkpoint.
struct SoupCase {
  Tiny m;
  TopKCheckpoints top{3};
  double target = 0.0;
  int evaluations = 0;
  double score_of(double w) const { return -std::abs(w - target); }
  double evaluate() {
    ++evaluations;
    return score_of(m->w.mean().item<double>());
  }
  void add(float w) {
    m->set({w, w, w}, w, {w, w}, 0);
    EXPECT_TRUE(top.offer(score_of(w), *m));
  }
  double best_single() const {
    double best = -INFINITY;
    for (double s : top.scores()) best = std::max(best, s);
    return best;
  }
};

TEST(CheckpointsGreedySoup, RejectsCheckpointsThatHurt) {
  SoupCase c;
  c.target = 1.0;
  c.add(1.0f);   // score 0: the best
  c.add(3.0f);   // score -2 (third): average {1, 3} = 2, score -1 < 0 -> rejected
  c.add(-0.5f);  // score -1.5 (second): average {1, -0.5} = 0.25, score -0.75 < 0 -> rejected
  c.m->set({50.f, 50.f, 50.f}, 50.f, {50.f, 50.f}, 0);
  c.top.finalize("greedy_soup", *c.m, [&] { return c.evaluate(); });
  expect_values(c.m->w, {1, 1, 1});
  expect_values(c.m->s, {1});
  EXPECT_GE(c.evaluate(), c.best_single());
  EXPECT_EQ(c.evaluations, 3);  // one per candidate soup, plus the check above
}

TEST(CheckpointsGreedySoup, AddsCheckpointsThatHelp) {
  SoupCase c;
  c.target = 0.0;
  c.add(1.0f);   // score -1: the best
  c.add(-1.2f);  // score -1.2: average {1, -1.2} = -0.1, score -0.1 >= -1 -> added
  c.add(5.0f);   // score -5: average {1, -1.2, 5} = 1.6, score -1.6 < -0.1 -> rejected
  c.top.finalize("greedy_soup", *c.m, [&] { return c.evaluate(); });
  expect_values(c.m->w, {-0.1, -0.1, -0.1});
  expect_values(c.m->running, {-0.1, -0.1});  // float buffers are averaged too
  const double final_score = c.evaluate();
  EXPECT_NEAR(final_score, -0.1, 1e-6);
  EXPECT_GE(final_score, c.best_single());
  // The uniform soup of the same checkpoints would be worse here (1.6 -> -1.6).
  c.top.finalize("uniform_soup", *c.m, [&] { return c.evaluate(); });
  EXPECT_NEAR(c.evaluate(), -1.6, 1e-6);
}

TEST(CheckpointsGreedySoup, LaterCheckpointCanJoinAfterAnEarlierOneWasRejected) {
  SoupCase c;
  c.target = 0.0;
  c.add(1.0f);   // score -1: the best
  c.add(2.5f);   // score -2.5: avg {1, 2.5} = 1.75 -> -1.75 < -1, rejected
  c.add(-2.9f);  // score -2.9: avg {1, -2.9} = -0.95 -> -0.95 >= -1, added
  EXPECT_EQ(c.top.scores().size(), 3u);
  c.top.finalize("greedy_soup", *c.m, [&] { return c.evaluate(); });
  // Had the rejected 2.5 stayed in the soup, the result would be 0.2.
  expect_values(c.m->w, {-0.95, -0.95, -0.95}, 1e-5);
  EXPECT_GE(c.evaluate(), c.best_single());
}

TEST(CheckpointsGreedySoup, EqualScoreIsNotWorseSoTheCheckpointJoins) {
  SoupCase c;
  c.target = 0.0;
  c.add(1.0f);   // score -1
  c.add(-3.0f);  // score -3: avg {1, -3} = -1 -> -1, equal to the soup's score: added
  c.top.finalize("greedy_soup", *c.m, [&] { return c.evaluate(); });
  expect_values(c.m->w, {-1, -1, -1});
}

TEST(CheckpointsGreedySoup, NeverBelowTheBestSingleCheckpoint) {
  // Many random configurations: the greedy soup's score is never below the best
  // single checkpoint's (the evaluate function is the offered score function).
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-3.f, 3.f);
  for (int trial = 0; trial < 50; ++trial) {
    SCOPED_TRACE(trial);
    SoupCase c;
    c.target = uniform(rng);
    for (int i = 0; i < 3; ++i) c.add(uniform(rng));
    c.top.finalize("greedy_soup", *c.m, [&] { return c.evaluate(); });
    EXPECT_GE(c.evaluate() + 1e-6, c.best_single());
  }
}

TEST(CheckpointsGreedySoup, VectorWeightsAndAVectorTarget) {
  // score = -sum |w - target|: averaging helps some coordinates and hurts others.
  Tiny m;
  TopKCheckpoints top(2);
  const std::vector<double> target = {0.0, 0.0, 0.0};
  auto score_of = [&](const torch::Tensor& w) {
    double s = 0.0;
    const auto v = values(w);
    for (size_t i = 0; i < v.size(); ++i) s -= std::abs(v[i] - target[i]);
    return s;
  };
  m->set({1.f, 1.f, 0.f}, 0.f, {0.f, 0.f}, 0);  // score -2
  top.offer(score_of(m->w), *m);
  m->set({-1.f, 0.f, 1.5f}, 0.f, {0.f, 0.f}, 0);  // score -2.5; avg (0, .5, .75) -> -1.25: helps
  top.offer(score_of(m->w), *m);
  top.finalize("greedy_soup", *m, [&] { return score_of(m->w); });
  expect_values(m->w, {0, 0.5, 0.75});
  // The same pair where the second one hurts: avg (0.5, 0.5, 2.25) -> -3.25 < -2.
  TopKCheckpoints other(2);
  m->set({1.f, 1.f, 0.f}, 0.f, {0.f, 0.f}, 0);
  other.offer(score_of(m->w), *m);
  m->set({0.f, 0.f, 4.5f}, 0.f, {0.f, 0.f}, 0);  // score -4.5
  other.offer(score_of(m->w), *m);
  other.finalize("greedy_soup", *m, [&] { return score_of(m->w); });
  expect_values(m->w, {1, 1, 0});
}

}  // namespace
}  // namespace automm
