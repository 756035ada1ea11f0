// Retrieval metrics and semantic search over embeddings (AutoMM's
// RankingMetrics and utils/matcher.py semantic_search), used by the matching
// learner's evaluate and by `automm search`.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace automm {

// Whether `name` is a ranking metric: recall@K, precision@K, ndcg@K, map@K,
// mrr or mrr@K (K >= 1).
bool is_ranking_metric(const std::string& name);

// Each query ranks every candidate by `similarity` [queries, candidates]
// (higher first; ties by candidate index); `relevant[q]` lists the candidates
// relevant to query q (at least one). Per query, then averaged:
//   precision@K = hits in the top K / K;  recall@K = hits in the top K / relevant;
//   mrr = 1 / rank of the first hit (mrr@K: 0 when it is below K);
//   ndcg@K = sum over hits at rank r <= K of 1 / log2(r + 1), over the same
//            sum for min(K, relevant) hits at the top;
//   map@K = sum over hits at rank r <= K of precision@r, over min(K, relevant)
//           (the usual average precision; AutoMM's weights each hit by its
//           score instead, a quirk left out).
// Throws std::invalid_argument naming an unknown metric or an empty relevant set.
std::map<std::string, double> ranking_metrics(const torch::Tensor& similarity,
                                              const std::vector<std::vector<int64_t>>& relevant,
                                              const std::vector<std::string>& metrics);

struct SearchHit {
  int64_t query = 0, rank = 0, corpus = 0;  // rank 1 = best
  double score = 0.0;
};
// The top_k corpus rows of every query by cosine similarity (both sides
// L2-normalised) or dot product, best first; queries and corpus are
// [rows, dim]. Runs in chunks of queries so the score matrix stays small.
std::vector<SearchHit> semantic_search(const torch::Tensor& queries, const torch::Tensor& corpus, int64_t top_k,
                                       bool cosine = true);

}  // namespace automm
