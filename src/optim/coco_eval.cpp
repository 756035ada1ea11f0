// COCO box mAP (coco_eval.h), following pycocotools' cocoeval.py step by step:
// evaluate() -> per (category, image) matches at each IoU threshold and area
// range, accumulate() -> precision [T, R, K, A, M] and recall [T, K, A, M],
// summarize() -> the 12 stats. Every float operation is the one numpy does, in
// the same order, so the results are bit-identical to pycocotools'.
#include "optim/coco_eval.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace automm {
namespace {

constexpr int kIouCount = 10;      // T
constexpr int kRecallCount = 101;  // R
constexpr int kAreaCount = 4;      // A: all, small, medium, large
constexpr int kMaxDetCount = 3;    // M
constexpr std::array<int, kMaxDetCount> kMaxDets = {1, 10, 100};
// Params.areaRng: [0, 1e5 ** 2], [0, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2] (both ends inclusive).
constexpr double kAreaRanges[kAreaCount][2] = {{0, 1e10}, {0, 1024}, {1024, 9216}, {9216, 1e10}};

// np.linspace(start, stop, num, endpoint=True) for num >= 2 and a non-zero step:
// i * step + start, each rounded, and the last value set to stop.
std::vector<double> linspace(double start, double stop, int64_t num) {
  const double step = (stop - start) / static_cast<double>(num - 1);
  std::vector<double> values(num);
  for (int64_t i = 0; i < num; ++i) values[i] = static_cast<double>(i) * step + start;
  values[num - 1] = stop;
  return values;
}

// Params.iouThrs and Params.recThrs, with their np.round'ed counts.
const std::vector<double>& iou_thresholds() {
  static const std::vector<double> values =
      linspace(.5, 0.95, static_cast<int64_t>(std::nearbyint((0.95 - .5) / .05)) + 1);
  return values;
}
const std::vector<double>& recall_thresholds() {
  static const std::vector<double> values =
      linspace(.0, 1.00, static_cast<int64_t>(std::nearbyint((1.00 - .0) / .01)) + 1);
  return values;
}

// The order of np.argsort(-scores, kind="mergesort") as a stable sort's "less":
// higher score first, NaN (numpy sorts it last) after every number.
bool sorts_before(double score_a, double score_b) {
  const double a = -score_a, b = -score_b;
  return a < b || (!std::isnan(a) && std::isnan(b));
}

// numpy's float64 add.reduce of a contiguous array (np.mean's sum): the inner
// loop gets chunks of at most 8192 values (the iterator's buffer size), each
// summed pairwise (8 accumulators up to 128 values, halves beyond), and the
// chunk sums are added to the running total in order.
double pairwise_sum(const double* a, int64_t n) {
  if (n < 8) {
    double sum = 0.;
    for (int64_t i = 0; i < n; ++i) sum += a[i];
    return sum;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    int64_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) sum += a[i];
    return sum;
  }
  int64_t half = n / 2;
  half -= half % 8;
  return pairwise_sum(a, half) + pairwise_sum(a + half, n - half);
}

// summarize's mean of s[s > -1]; -1 when nothing is left.
double mean_of_valid(const std::vector<double>& values) {
  std::vector<double> valid;
  for (double v : values)
    if (v > -1) valid.push_back(v);
  if (valid.empty()) return -1;
  constexpr int64_t kBufferSize = 8192;
  const int64_t n = static_cast<int64_t>(valid.size());
  double sum = 0.;
  for (int64_t start = 0; start < n; start += kBufferSize)
    sum += pairwise_sum(valid.data() + start, std::min(kBufferSize, n - start));
  return sum / static_cast<double>(n);
}

// maskUtils.iou for boxes (common/maskApi.c bbIou): [D, G] row-major; a crowd
// ground truth's union is the detection's area.
std::vector<double> box_ious(const std::vector<const CocoDetection*>& dts,
                             const std::vector<const CocoAnnotation*>& gts) {
  const size_t num_dt = dts.size(), num_gt = gts.size();
  std::vector<double> ious(num_dt * num_gt, 0.0);
  for (size_t g = 0; g < num_gt; ++g) {
    const CocoAnnotation& G = *gts[g];
    const double ga = G.w * G.h;
    for (size_t d = 0; d < num_dt; ++d) {
      const CocoDetection& D = *dts[d];
      const double da = D.w * D.h;
      const double w = std::fmin(D.w + D.x, G.w + G.x) - std::fmax(D.x, G.x);
      if (w <= 0) continue;
      const double h = std::fmin(D.h + D.y, G.h + G.y) - std::fmax(D.y, G.y);
      if (h <= 0) continue;
      const double inter = w * h;
      const double uni = G.iscrowd ? da : da + ga - inter;
      ious[d * num_gt + g] = inter / uni;
    }
  }
  return ious;
}

// One kept detection of evaluateImg for one category and image, with its
// outcome per area range: bit t of tp / fp is set when it is a true / false
// positive (matched / unmatched and not ignored) at IoU threshold t.
struct EvaluatedDetection {
  double score = 0;
  int rank = 0;  // position in its image's score order (maxDet truncation)
  std::array<uint16_t, kAreaCount> tp{}, fp{};
};

// evaluateImg(image, category, areaRng, maxDet=100) for every area range:
// appends the image's detections (score order, first 100) to `out` and adds its
// non-ignored ground truths per area range to `num_positive`.
void evaluate_image(std::vector<const CocoAnnotation*> gts, std::vector<const CocoDetection*> dts,
                    std::vector<EvaluatedDetection>& out, std::array<int64_t, kAreaCount>& num_positive) {
  const auto& thresholds = iou_thresholds();
  std::stable_sort(dts.begin(), dts.end(), [](const CocoDetection* a, const CocoDetection* b) {
    return sorts_before(a->score, b->score);
  });
  if (dts.size() > static_cast<size_t>(kMaxDets.back())) dts.resize(kMaxDets.back());
  const size_t num_dt = dts.size(), num_gt = gts.size();
  // computeIoU returns [] when either side is empty: no matching at all then.
  const std::vector<double> ious = box_ious(dts, gts);
  const size_t base = out.size();
  for (size_t d = 0; d < num_dt; ++d) {
    EvaluatedDetection e;
    e.score = dts[d]->score;
    e.rank = static_cast<int>(d);
    out.push_back(e);
  }
  std::vector<size_t> order(num_gt);
  std::vector<char> gt_ignore(num_gt), gt_matched(num_gt);
  for (int a = 0; a < kAreaCount; ++a) {
    const double lo = kAreaRanges[a][0], hi = kAreaRanges[a][1];
    auto ignored = [&](size_t g) { return gts[g]->iscrowd || gts[g]->area < lo || gts[g]->area > hi; };
    // np.argsort(_ignore, kind="mergesort"): the non-ignored first, each in annotation order.
    std::iota(order.begin(), order.end(), 0);
    std::stable_partition(order.begin(), order.end(), [&](size_t g) { return !ignored(g); });
    for (size_t g = 0; g < num_gt; ++g) {
      gt_ignore[g] = ignored(order[g]);
      if (!gt_ignore[g]) ++num_positive[a];
    }
    for (int t = 0; t < kIouCount; ++t) {
      std::fill(gt_matched.begin(), gt_matched.end(), 0);
      for (size_t d = 0; d < num_dt; ++d) {
        double best = std::min(thresholds[t], 1 - 1e-10);
        std::optional<size_t> match;  // a position in `order`
        for (size_t g = 0; g < num_gt; ++g) {
          const CocoAnnotation& gt = *gts[order[g]];
          if (gt_matched[g] && !gt.iscrowd) continue;
          if (match && !gt_ignore[*match] && gt_ignore[g]) break;  // ignored ones come last
          const double iou = ious[d * num_gt + order[g]];
          if (iou < best) continue;
          best = iou;
          match = g;
        }
        // dtm holds the matched annotation id, 0 for none: an id-0 match reads as unmatched.
        const bool matched = match && gts[order[*match]]->id != 0;
        bool ignore = match && gt_ignore[*match];
        if (match) gt_matched[*match] = 1;
        const double area = dts[d]->w * dts[d]->h;  // loadRes: area = w * h
        if (!matched && (area < lo || area > hi)) ignore = true;
        if (ignore) continue;
        auto& e = out[base + d];
        (matched ? e.tp : e.fp)[a] |= static_cast<uint16_t>(1u << t);
      }
    }
  }
}

// accumulate() for one category k: fills precision[:, :, k] and recall[:, k]
// ([T, R, K, A, M] and [T, K, A, M], row-major) where the range has ground truth.
void accumulate_category(const std::vector<EvaluatedDetection>& dets,
                         const std::array<int64_t, kAreaCount>& num_positive, size_t k, size_t num_categories,
                         std::vector<double>& precision, std::vector<double>& recall) {
  const auto& rec_thrs = recall_thresholds();
  // Images in id order, each in score order: one stable sort serves every maxDet
  // (a stable sort of a subset keeps the subset's relative order).
  std::vector<size_t> order(dets.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return sorts_before(dets[a].score, dets[b].score); });
  std::vector<double> rc, pr;
  for (int a = 0; a < kAreaCount; ++a) {
    if (num_positive[a] == 0) continue;
    const double npig = static_cast<double>(num_positive[a]);
    for (int m = 0; m < kMaxDetCount; ++m) {
      for (int t = 0; t < kIouCount; ++t) {
        rc.clear();
        pr.clear();
        double tp = 0, fp = 0;
        for (size_t i : order) {
          const EvaluatedDetection& e = dets[i];
          if (e.rank >= kMaxDets[m]) continue;
          tp += (e.tp[a] >> t) & 1;
          fp += (e.fp[a] >> t) & 1;
          rc.push_back(tp / npig);
          pr.push_back(tp / (fp + tp + DBL_EPSILON));  // np.spacing(1)
        }
        const size_t nd = rc.size();
        recall[((t * num_categories + k) * kAreaCount + a) * kMaxDetCount + m] = nd ? rc.back() : 0;
        for (size_t i = nd; i-- > 1;)
          if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
        // np.searchsorted(rc, recThrs, side="left"); 0 past the end.
        size_t idx = 0;
        for (int r = 0; r < kRecallCount; ++r) {
          while (idx < nd && rc[idx] < rec_thrs[r]) ++idx;
          precision[(((t * kRecallCount + r) * num_categories + k) * kAreaCount + a) * kMaxDetCount + m] =
              idx < nd ? pr[idx] : 0;
        }
      }
    }
  }
}

std::vector<int64_t> sorted_unique(std::vector<int64_t> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace

const std::array<std::string, 12>& coco_metric_names() {
  static const std::array<std::string, 12> names = {"map",        "map_50",    "map_75",     "map_small",
                                                    "map_medium", "map_large", "mar_1",      "mar_10",
                                                    "mar_100",    "mar_small", "mar_medium", "mar_large"};
  return names;
}

std::array<double, 12> coco_bbox_stats(const std::vector<int64_t>& image_ids_in,
                                       const std::vector<int64_t>& category_ids_in,
                                       const std::vector<CocoAnnotation>& ground_truth,
                                       const std::vector<CocoDetection>& detections) {
  const std::vector<int64_t> image_ids = sorted_unique(image_ids_in),
                             category_ids = sorted_unique(category_ids_in);
  std::unordered_map<int64_t, size_t> image_index, category_index;
  for (size_t i = 0; i < image_ids.size(); ++i) image_index[image_ids[i]] = i;
  for (size_t k = 0; k < category_ids.size(); ++k) category_index[category_ids[k]] = k;
  for (size_t i = 0; i < detections.size(); ++i)
    if (!image_index.count(detections[i].image_id))
      throw std::invalid_argument(
          "COCO evaluation: detection " + std::to_string(i) + " names image id " +
          std::to_string(detections[i].image_id) + ", which is not among the " +
          std::to_string(image_ids.size()) +
          " ground-truth image ids (pycocotools' loadRes: results do not correspond to "
          "the current coco set)");
  std::unordered_set<int64_t> annotation_ids;
  for (const auto& gt : ground_truth)
    if (!annotation_ids.insert(gt.id).second)
      throw std::invalid_argument("COCO evaluation: two ground-truth annotations have id " +
                                  std::to_string(gt.id) +
                                  " (pycocotools indexes annotations by id; give each a unique id)");

  // Per (category, image) in that order, each in input order (COCO.getAnnIds).
  const size_t num_categories = category_ids.size(), num_images = image_ids.size();
  auto key_of = [&](int64_t image_id, int64_t category_id) -> std::optional<size_t> {
    const auto image = image_index.find(image_id);
    const auto category = category_index.find(category_id);
    if (image == image_index.end() || category == category_index.end()) return std::nullopt;
    return category->second * num_images + image->second;
  };
  std::vector<std::pair<size_t, const CocoAnnotation*>> gts;
  std::vector<std::pair<size_t, const CocoDetection*>> dts;
  for (const auto& gt : ground_truth)
    if (const auto key = key_of(gt.image_id, gt.category_id)) gts.emplace_back(*key, &gt);
  for (const auto& dt : detections)
    if (const auto key = key_of(dt.image_id, dt.category_id)) dts.emplace_back(*key, &dt);
  auto by_key = [](const auto& a, const auto& b) { return a.first < b.first; };
  std::stable_sort(gts.begin(), gts.end(), by_key);
  std::stable_sort(dts.begin(), dts.end(), by_key);

  std::vector<double> precision(
      static_cast<size_t>(kIouCount) * kRecallCount * num_categories * kAreaCount * kMaxDetCount, -1.0);
  std::vector<double> recall(static_cast<size_t>(kIouCount) * num_categories * kAreaCount * kMaxDetCount,
                             -1.0);
  size_t gi = 0, di = 0;
  std::vector<const CocoAnnotation*> image_gts;
  std::vector<const CocoDetection*> image_dts;
  for (size_t k = 0; k < num_categories; ++k) {
    std::vector<EvaluatedDetection> evaluated;
    std::array<int64_t, kAreaCount> num_positive{};
    const size_t end_key = (k + 1) * num_images;
    // Only images with ground truth or detections of k (evaluateImg returns None for the rest).
    while ((gi < gts.size() && gts[gi].first < end_key) || (di < dts.size() && dts[di].first < end_key)) {
      const size_t key =
          std::min(gi < gts.size() ? gts[gi].first : end_key, di < dts.size() ? dts[di].first : end_key);
      image_gts.clear();
      image_dts.clear();
      for (; gi < gts.size() && gts[gi].first == key; ++gi) image_gts.push_back(gts[gi].second);
      for (; di < dts.size() && dts[di].first == key; ++di) image_dts.push_back(dts[di].second);
      evaluate_image(image_gts, image_dts, evaluated, num_positive);
    }
    accumulate_category(evaluated, num_positive, k, num_categories, precision, recall);
  }

  // summarize(): the mean of the valid entries of a slice, in numpy's C order.
  const auto& iou_thrs = iou_thresholds();
  auto thresholds_at = [&](std::optional<double> iou) {
    std::vector<int> ts;
    for (int t = 0; t < kIouCount; ++t)
      if (!iou || iou_thrs[t] == *iou) ts.push_back(t);  // np.where(iouThr == p.iouThrs)
    return ts;
  };
  auto average_precision = [&](std::optional<double> iou, int a, int m) {
    std::vector<double> values;
    for (int t : thresholds_at(iou))
      for (int r = 0; r < kRecallCount; ++r)
        for (size_t k = 0; k < num_categories; ++k)
          values.push_back(
              precision[(((t * kRecallCount + r) * num_categories + k) * kAreaCount + a) * kMaxDetCount + m]);
    return mean_of_valid(values);
  };
  auto average_recall = [&](int a, int m) {
    std::vector<double> values;
    for (int t : thresholds_at(std::nullopt))
      for (size_t k = 0; k < num_categories; ++k)
        values.push_back(recall[((t * num_categories + k) * kAreaCount + a) * kMaxDetCount + m]);
    return mean_of_valid(values);
  };
  const int all = 0, small = 1, medium = 2, large = 3, max100 = 2;
  return {average_precision(std::nullopt, all, max100),
          average_precision(.5, all, max100),
          average_precision(.75, all, max100),
          average_precision(std::nullopt, small, max100),
          average_precision(std::nullopt, medium, max100),
          average_precision(std::nullopt, large, max100),
          average_recall(all, 0),
          average_recall(all, 1),
          average_recall(all, max100),
          average_recall(small, max100),
          average_recall(medium, max100),
          average_recall(large, max100)};
}

}  // namespace automm
