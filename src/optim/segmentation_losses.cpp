// Semantic segmentation losses (AutoMM's structure loss, Hugging Face's
// Mask2FormerLoss), scipy's linear_sum_assignment and AutoMM's semantic
// inference; see segmentation.h.
#include "optim/segmentation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace automm {
namespace F = torch::nn::functional;
namespace {

std::string shape_of(const torch::Tensor& t) { return c10::str(t.sizes()); }

}  // namespace

// ---- Losses

torch::Tensor structure_loss(const torch::Tensor& logits, const torch::Tensor& gt) {
  const torch::Tensor input = logits.dim() == 3 ? logits.unsqueeze(1) : logits;
  const torch::Tensor target = (gt.dim() == 3 ? gt.unsqueeze(1) : gt).to(input.dtype());
  if (input.dim() != 4 || input.sizes() != target.sizes())
    throw std::invalid_argument("structure_loss: logits " + shape_of(logits) + " and gt " + shape_of(gt) +
                                " must both be [N, 1, H, W]");
  const torch::Tensor weight =
      1 + 5 * torch::abs(F::avg_pool2d(target, F::AvgPool2dFuncOptions(31).stride(1).padding(15)) - target);
  torch::Tensor bce = F::binary_cross_entropy_with_logits(input, target);  // a mean (see the header)
  bce = (weight * bce).sum({2, 3}) / weight.sum({2, 3});
  const torch::Tensor prob = torch::sigmoid(input);
  const torch::Tensor inter = ((prob * target) * weight).sum({2, 3});
  const torch::Tensor uni = ((prob + target) * weight).sum({2, 3});
  const torch::Tensor iou = 1 - (inter + 1) / (uni - inter + 1);
  return (bce + iou).mean();
}

namespace {

// HF's sample_point: bilinear values of features [B, C, H, W] at points
// [B, P, 2] in [0, 1]^2 (zero outside, align_corners false): [B, C, P].
torch::Tensor sample_point(const torch::Tensor& features, const torch::Tensor& points) {
  return F::grid_sample(features, 2.0 * points.unsqueeze(2) - 1.0,
                        F::GridSampleFuncOptions()
                            .mode(torch::kBilinear)
                            .padding_mode(torch::kZeros)
                            .align_corners(false))
      .squeeze(3);
}

// Mean sigmoid cross-entropy of every prediction [T, P] with every target [G, P]: [T, G].
torch::Tensor pair_wise_sigmoid_cross_entropy(const torch::Tensor& inputs, const torch::Tensor& labels) {
  const int64_t points = inputs.size(1);
  const auto none = F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone);
  const torch::Tensor pos = F::binary_cross_entropy_with_logits(inputs, torch::ones_like(inputs), none);
  const torch::Tensor neg = F::binary_cross_entropy_with_logits(inputs, torch::zeros_like(inputs), none);
  return torch::matmul(pos / points, labels.t()) + torch::matmul(neg / points, (1 - labels).t());
}

// Dice loss of every prediction [T, P] with every target [G, P]: [T, G].
torch::Tensor pair_wise_dice(const torch::Tensor& inputs, const torch::Tensor& labels) {
  const torch::Tensor probs = inputs.sigmoid().flatten(1);
  const torch::Tensor numerator = 2 * torch::matmul(probs, labels.t());
  const torch::Tensor denominator = probs.sum(-1).unsqueeze(1) + labels.sum(-1).unsqueeze(0);
  return 1 - (numerator + 1) / (denominator + 1);
}

int64_t candidate_points(const Mask2FormerLossOptions& o) {
  return static_cast<int64_t>(static_cast<double>(o.num_points) * o.oversample_ratio);
}
int64_t uncertain_points(const Mask2FormerLossOptions& o) {
  return static_cast<int64_t>(o.importance_sample_ratio * static_cast<double>(o.num_points));
}

void check_points(const torch::Tensor& points, int64_t rows, int64_t count, const char* what) {
  if (points.dim() != 3 || points.size(0) != rows || points.size(1) != count || points.size(2) != 2)
    throw std::invalid_argument(std::string("mask2former_loss: points.") + what + " must be [" +
                                std::to_string(rows) + ", " + std::to_string(count) + ", 2], got " +
                                shape_of(points));
}

}  // namespace

Mask2FormerPoints draw_mask2former_points(int64_t batch_size, int64_t matched_masks,
                                          const Mask2FormerLossOptions& options) {
  Mask2FormerPoints points;
  std::vector<torch::Tensor> per_image;
  for (int64_t i = 0; i < batch_size; ++i) per_image.push_back(torch::rand({1, options.num_points, 2}));
  points.matcher = batch_size > 0 ? torch::cat(per_image) : torch::empty({0, options.num_points, 2});
  points.oversampled = torch::rand({matched_masks, candidate_points(options), 2});
  const int64_t random = options.num_points - uncertain_points(options);
  points.random = random > 0 ? torch::rand({matched_masks, random, 2}) : torch::empty({matched_masks, 0, 2});
  return points;
}

Mask2FormerLossTerms mask2former_loss_terms(const torch::Tensor& masks, const torch::Tensor& classes,
                                            const std::vector<torch::Tensor>& mask_labels,
                                            const std::vector<torch::Tensor>& class_labels,
                                            const Mask2FormerPoints& points,
                                            const Mask2FormerLossOptions& options) {
  if (masks.dim() != 4 || classes.dim() != 3 || classes.size(0) != masks.size(0) ||
      classes.size(1) != masks.size(1) || classes.size(2) < 2)
    throw std::invalid_argument(
        "mask2former_loss: masks must be [N, T, H, W] and classes [N, T, K + 1], got " + shape_of(masks) +
        " and " + shape_of(classes));
  const int64_t batch = masks.size(0), queries = masks.size(1), num_labels = classes.size(2) - 1;
  if (static_cast<int64_t>(mask_labels.size()) != batch || static_cast<int64_t>(class_labels.size()) != batch)
    throw std::invalid_argument("mask2former_loss: " + std::to_string(batch) + " images but " +
                                std::to_string(mask_labels.size()) + " mask_labels and " +
                                std::to_string(class_labels.size()) + " class_labels");
  int64_t num_masks = 0, matched = 0;
  std::vector<torch::Tensor> targets(batch), target_classes(batch);
  for (int64_t i = 0; i < batch; ++i) {
    const torch::Tensor& m = mask_labels[i];
    const torch::Tensor& c = class_labels[i];
    if (m.dim() != 3 || m.size(1) != masks.size(2) || m.size(2) != masks.size(3) || c.dim() != 1 ||
        c.size(0) != m.size(0))
      throw std::invalid_argument("mask2former_loss: image " + std::to_string(i) + " has mask_labels " +
                                  shape_of(m) + " and class_labels " + shape_of(c) + "; expected [G, " +
                                  std::to_string(masks.size(2)) + ", " + std::to_string(masks.size(3)) +
                                  "] and [G]");
    target_classes[i] = c.to(masks.device(), torch::kLong);
    if (c.numel() > 0 && (target_classes[i].min().item<int64_t>() < 0 ||
                          target_classes[i].max().item<int64_t>() >= num_labels))
      throw std::invalid_argument("mask2former_loss: image " + std::to_string(i) +
                                  " has a class label outside [0, " + std::to_string(num_labels) + ")");
    targets[i] = m.to(masks.options());
    num_masks += m.size(0);
    matched += std::min(queries, m.size(0));
  }
  const int64_t candidates = candidate_points(options), uncertain = uncertain_points(options);
  if (options.num_points < 1 || uncertain > candidates || uncertain < 0)
    throw std::invalid_argument(
        "mask2former_loss: needs num_points >= 1 and importance_sample_ratio * num_points <= "
        "num_points * oversample_ratio");
  check_points(points.matcher, batch, options.num_points, "matcher");
  check_points(points.oversampled, matched, candidates, "oversampled");
  check_points(points.random, matched, options.num_points - uncertain, "random");
  const auto point_options = masks.options().requires_grad(false);

  // Hungarian matching of queries to targets, per image.
  std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> matches(batch);
  {
    torch::NoGradGuard no_grad;
    for (int64_t i = 0; i < batch; ++i) {
      if (targets[i].size(0) == 0) continue;
      const int64_t g = targets[i].size(0);
      const torch::Tensor cost_class = -classes[i].softmax(-1).index_select(1, target_classes[i]);  // [T, G]
      const torch::Tensor at = points.matcher[i].unsqueeze(0).to(point_options);  // [1, P, 2]
      const torch::Tensor target_points =
          sample_point(targets[i].unsqueeze(1), at.repeat({g, 1, 1})).squeeze(1);
      const torch::Tensor pred_points =
          sample_point(masks[i].unsqueeze(1), at.repeat({queries, 1, 1})).squeeze(1);
      torch::Tensor cost = options.cost_mask * pair_wise_sigmoid_cross_entropy(pred_points, target_points) +
                           options.cost_class * cost_class +
                           options.cost_dice * pair_wise_dice(pred_points, target_points);
      cost = torch::nan_to_num(cost.clamp(-1e10, 1e10), 0.0);
      matches[i] = linear_sum_assignment(cost);
    }
  }

  // Classification: matched queries take their target's class, the rest "no object".
  std::vector<int64_t> batch_index, query_index, target_index;
  torch::Tensor class_targets = torch::full({batch, queries}, num_labels, torch::kLong);
  for (int64_t i = 0; i < batch; ++i) {
    const torch::Tensor labels = target_classes[i].cpu();
    for (size_t k = 0; k < matches[i].first.size(); ++k) {
      batch_index.push_back(i);
      query_index.push_back(matches[i].first[k]);
      target_index.push_back(matches[i].second[k]);
      class_targets[i][matches[i].first[k]] = labels[matches[i].second[k]];
    }
  }
  torch::Tensor class_weight = torch::ones({num_labels + 1}, classes.options().requires_grad(false));
  class_weight[num_labels] = options.no_object_weight;
  Mask2FormerLossTerms terms;
  terms.cross_entropy = F::cross_entropy(classes.transpose(1, 2), class_targets.to(classes.device()),
                                         F::CrossEntropyFuncOptions().weight(class_weight));

  // Masks: sigmoid-CE and dice at the most uncertain candidate points plus random points.
  const double normaliser = static_cast<double>(std::max<int64_t>(num_masks, 1));
  if (matched == 0) {
    terms.mask = masks.sum() * 0;
    terms.dice = masks.sum() * 0;
    return terms;
  }
  const auto index = [&](const std::vector<int64_t>& v) {
    return torch::tensor(v, torch::kLong).to(masks.device());
  };
  const torch::Tensor pred_masks =
      masks.index({index(batch_index), index(query_index)}).unsqueeze(1);  // [M,1,H,W]
  std::vector<torch::Tensor> matched_targets;
  for (size_t k = 0; k < batch_index.size(); ++k)
    matched_targets.push_back(targets[batch_index[k]][target_index[k]]);
  const torch::Tensor target_masks = torch::stack(matched_targets).unsqueeze(1);
  torch::Tensor coords, point_labels;
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor candidate = points.oversampled.to(point_options);
    const torch::Tensor uncertainty = -torch::abs(sample_point(pred_masks, candidate));  // [M, 1, S]
    torch::Tensor idx = std::get<1>(torch::topk(uncertainty.select(1, 0), uncertain, 1));
    idx = idx + (candidates * torch::arange(matched, idx.options())).unsqueeze(1);
    coords = candidate.view({-1, 2}).index_select(0, idx.view(-1)).view({matched, uncertain, 2});
    if (points.random.size(1) > 0) coords = torch::cat({coords, points.random.to(point_options)}, 1);
    point_labels = sample_point(target_masks, coords).squeeze(1);
  }
  const torch::Tensor point_logits = sample_point(pred_masks, coords).squeeze(1);  // [M, P]
  terms.mask =
      F::binary_cross_entropy_with_logits(
          point_logits, point_labels, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone))
          .mean(1)
          .sum() /
      normaliser;
  const torch::Tensor probs = point_logits.sigmoid().flatten(1);
  const torch::Tensor numerator = 2 * (probs * point_labels).sum(-1);
  const torch::Tensor denominator = probs.sum(-1) + point_labels.sum(-1);
  terms.dice = (1 - (numerator + 1) / (denominator + 1)).sum() / normaliser;
  return terms;
}

torch::Tensor mask2former_loss(const torch::Tensor& masks, const torch::Tensor& classes,
                               const std::vector<torch::Tensor>& mask_labels,
                               const std::vector<torch::Tensor>& class_labels,
                               const Mask2FormerLossOptions& options) {
  int64_t matched = 0;
  for (const auto& m : mask_labels) matched += std::min(masks.size(1), m.dim() > 0 ? m.size(0) : 0);
  const Mask2FormerPoints points = draw_mask2former_points(masks.size(0), matched, options);
  return mask2former_loss_terms(masks, classes, mask_labels, class_labels, points, options).total();
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> linear_sum_assignment(
    const torch::Tensor& cost_matrix) {
  if (cost_matrix.dim() != 2)
    throw std::invalid_argument("linear_sum_assignment: the cost must be a matrix, got " +
                                shape_of(cost_matrix));
  const torch::Tensor input = cost_matrix.detach().to(torch::kCPU, torch::kDouble).contiguous();
  int64_t rows = input.size(0), cols = input.size(1);
  if (rows == 0 || cols == 0) return {};
  // A tall matrix is solved transposed, so that every row gets a column.
  const bool transposed = cols < rows;
  std::vector<double> cost(input.data_ptr<double>(), input.data_ptr<double>() + rows * cols);
  if (transposed) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) cost[c * rows + r] = input.data_ptr<double>()[r * cols + c];
    std::swap(rows, cols);
  }
  for (double v : cost)
    if (std::isnan(v) || v == -std::numeric_limits<double>::infinity())
      throw std::invalid_argument("linear_sum_assignment: the cost matrix holds NaN or -inf");

  // Crouse's shortest augmenting path (IEEE TAES 52(4), 2016), in scipy's order
  // of visiting columns and breaking ties, with dual variables u (rows), v (cols).
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(rows, 0), v(cols, 0), path_cost(cols);
  std::vector<int64_t> path(cols, -1), col_of_row(rows, -1), row_of_col(cols, -1), remaining(cols);
  std::vector<char> row_visited(rows), col_visited(cols);
  for (int64_t current = 0; current < rows; ++current) {
    std::fill(row_visited.begin(), row_visited.end(), 0);
    std::fill(col_visited.begin(), col_visited.end(), 0);
    std::fill(path_cost.begin(), path_cost.end(), inf);
    // Reversed, so that a constant cost matrix gives the identity (scipy #11602).
    for (int64_t k = 0; k < cols; ++k) remaining[k] = cols - 1 - k;
    int64_t left = cols, row = current, sink = -1;
    double reached = 0;  // cost of the shortest path found so far
    while (sink < 0) {
      row_visited[row] = 1;
      int64_t best = -1;
      double lowest = inf;
      for (int64_t k = 0; k < left; ++k) {
        const int64_t col = remaining[k];
        const double reduced = reached + cost[row * cols + col] - u[row] - v[col];
        if (reduced < path_cost[col]) {
          path[col] = row;
          path_cost[col] = reduced;
        }
        // Among equal costs prefer a free column: it ends the path.
        if (path_cost[col] < lowest || (path_cost[col] == lowest && row_of_col[col] == -1)) {
          lowest = path_cost[col];
          best = k;
        }
      }
      reached = lowest;
      if (reached == inf) throw std::invalid_argument("linear_sum_assignment: the cost matrix is infeasible");
      const int64_t col = remaining[best];
      if (row_of_col[col] == -1)
        sink = col;
      else
        row = row_of_col[col];
      col_visited[col] = 1;
      remaining[best] = remaining[--left];
    }
    u[current] += reached;
    for (int64_t r = 0; r < rows; ++r)
      if (row_visited[r] && r != current) u[r] += reached - path_cost[col_of_row[r]];
    for (int64_t c = 0; c < cols; ++c)
      if (col_visited[c]) v[c] -= reached - path_cost[c];
    for (int64_t col = sink;;) {  // flip the path's edges
      const int64_t r = path[col];
      row_of_col[col] = r;
      std::swap(col_of_row[r], col);
      if (r == current) break;
    }
  }

  std::vector<int64_t> out_rows(rows), out_cols(rows);
  if (!transposed) {
    std::iota(out_rows.begin(), out_rows.end(), 0);
    out_cols = col_of_row;
  } else {  // back to the original orientation, original rows ascending
    std::vector<int64_t> order(rows);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](int64_t a, int64_t b) { return col_of_row[a] < col_of_row[b]; });
    for (int64_t k = 0; k < rows; ++k) {
      out_rows[k] = col_of_row[order[k]];
      out_cols[k] = order[k];
    }
  }
  return {out_rows, out_cols};
}

torch::Tensor semantic_scores(const torch::Tensor& masks, const torch::Tensor& classes) {
  if (masks.dim() != 4 || classes.dim() != 3 || classes.size(0) != masks.size(0) ||
      classes.size(1) != masks.size(1) || classes.size(2) < 2)
    throw std::invalid_argument(
        "semantic_scores: masks must be [N, T, H, W] and classes [N, T, K + 1], got " + shape_of(masks) +
        " and " + shape_of(classes));
  const torch::Tensor class_probs = classes.softmax(-1).narrow(-1, 0, classes.size(2) - 1);  // [N, T, K]
  return torch::einsum("nqc,nqhw->nchw", {class_probs, masks.sigmoid()});
}

}  // namespace automm
