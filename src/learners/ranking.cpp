#include "learners/ranking.h"

#include <algorithm>
#include <cmath>
#include <cctype>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>

namespace automm {
namespace {

struct MetricName {
  std::string kind;  // recall, precision, ndcg, map, mrr
  int64_t k = 0;     // 0: the whole list (mrr only)
};

std::optional<MetricName> parse_metric(const std::string& name) {
  const size_t at = name.find('@');
  MetricName m{name.substr(0, at), 0};
  static const std::set<std::string> kinds = {"recall", "precision", "ndcg", "map", "mrr"};
  if (!kinds.count(m.kind)) return std::nullopt;
  if (at == std::string::npos) return m.kind == "mrr" ? std::optional<MetricName>(m) : std::nullopt;
  const std::string k = name.substr(at + 1);
  if (k.empty() || k.size() > 9 || !std::all_of(k.begin(), k.end(), [](unsigned char c) { return std::isdigit(c); }))
    return std::nullopt;
  m.k = std::stoll(k);
  if (m.k < 1) return std::nullopt;
  return m;
}

}  // namespace

bool is_ranking_metric(const std::string& name) { return parse_metric(name).has_value(); }

std::map<std::string, double> ranking_metrics(const torch::Tensor& similarity,
                                              const std::vector<std::vector<int64_t>>& relevant,
                                              const std::vector<std::string>& metrics) {
  std::vector<MetricName> parsed;
  for (const std::string& name : metrics) {
    const auto m = parse_metric(name);
    if (!m)
      throw std::invalid_argument("unknown ranking metric '" + name +
                                  "'; known: recall@K, precision@K, ndcg@K, map@K, mrr, mrr@K");
    parsed.push_back(*m);
  }
  const torch::Tensor scores = similarity.to(torch::kFloat64).contiguous();
  const int64_t queries = scores.size(0), candidates = scores.size(1);
  if (static_cast<int64_t>(relevant.size()) != queries)
    throw std::invalid_argument("ranking_metrics: " + std::to_string(relevant.size()) + " relevance lists for " +
                                std::to_string(queries) + " queries");
  std::vector<double> sums(parsed.size(), 0.0);
  std::vector<int64_t> order(static_cast<size_t>(candidates));
  for (int64_t q = 0; q < queries; ++q) {
    if (relevant[q].empty()) throw std::invalid_argument("query " + std::to_string(q) + " has no relevant candidate");
    const std::set<int64_t> wanted(relevant[q].begin(), relevant[q].end());
    const double* row = scores[q].data_ptr<double>();
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return row[a] > row[b]; });
    std::vector<int64_t> hit_ranks;  // 1-based ranks of the relevant candidates
    for (int64_t r = 0; r < candidates; ++r)
      if (wanted.count(order[r])) hit_ranks.push_back(r + 1);
    const auto positives = static_cast<int64_t>(wanted.size());
    for (size_t i = 0; i < parsed.size(); ++i) {
      const MetricName& m = parsed[i];
      const int64_t k = m.k > 0 ? m.k : candidates;
      const auto within = static_cast<int64_t>(
          std::count_if(hit_ranks.begin(), hit_ranks.end(), [&](int64_t r) { return r <= k; }));
      double value = 0.0;
      if (m.kind == "recall") value = static_cast<double>(within) / static_cast<double>(positives);
      else if (m.kind == "precision") value = static_cast<double>(within) / static_cast<double>(k);
      else if (m.kind == "mrr") value = !hit_ranks.empty() && hit_ranks[0] <= k ? 1.0 / hit_ranks[0] : 0.0;
      else if (m.kind == "ndcg") {
        double dcg = 0.0, ideal = 0.0;
        for (int64_t r : hit_ranks)
          if (r <= k) dcg += 1.0 / std::log2(static_cast<double>(r) + 1.0);
        for (int64_t r = 1; r <= std::min(k, positives); ++r) ideal += 1.0 / std::log2(static_cast<double>(r) + 1.0);
        value = dcg / ideal;
      } else {  // map
        double sum = 0.0;
        int64_t seen = 0;
        for (int64_t r : hit_ranks)
          if (r <= k) sum += static_cast<double>(++seen) / static_cast<double>(r);
        value = sum / static_cast<double>(std::min(k, positives));
      }
      sums[i] += value;
    }
  }
  std::map<std::string, double> out;
  for (size_t i = 0; i < parsed.size(); ++i) out[metrics[i]] = queries > 0 ? sums[i] / static_cast<double>(queries) : 0.0;
  return out;
}

std::vector<SearchHit> semantic_search(const torch::Tensor& queries_in, const torch::Tensor& corpus_in, int64_t top_k,
                                       bool cosine) {
  if (top_k < 1) throw std::invalid_argument("top_k must be at least 1");
  auto queries = queries_in.to(torch::kFloat32), corpus = corpus_in.to(torch::kFloat32);
  if (queries.dim() != 2 || corpus.dim() != 2 || queries.size(1) != corpus.size(1))
    throw std::invalid_argument("semantic_search: query and corpus embeddings must be [rows, dim] of one dim");
  if (cosine) {
    queries = queries / queries.norm(2, -1, true).clamp_min(1e-12);
    corpus = corpus / corpus.norm(2, -1, true).clamp_min(1e-12);
  }
  const int64_t k = std::min(top_k, corpus.size(0));
  constexpr int64_t kChunk = 128;  // AutoMM's query_chunk_size
  std::vector<SearchHit> hits;
  for (int64_t first = 0; first < queries.size(0); first += kChunk) {
    const auto chunk = queries.slice(0, first, std::min(queries.size(0), first + kChunk));
    const auto [values, indices] = chunk.matmul(corpus.t()).topk(k, -1);
    for (int64_t q = 0; q < chunk.size(0); ++q)
      for (int64_t r = 0; r < k; ++r)
        hits.push_back({first + q, r + 1, indices[q][r].item<int64_t>(), values[q][r].item<double>()});
  }
  return hits;
}

}  // namespace automm
