// The training loop. One optimizer step per `accumulation` batches; validation
// every val_check_interval batches; top-k checkpoints; resumable state.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "learners/trainer.h"
#include "automm/log.h"
#include "automm/options.h"
#include "learners/batch_loader.h"
#include "learners/checkpoints.h"
#include "learners/training_state.h"
#include "optim/optim.h"

namespace automm {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// p-norm of all gradients together (p = inf for the largest magnitude).
double gradient_norm(const std::vector<torch::Tensor>& params, double p) {
  double total = 0.0;
  for (const auto& param : params) {
    if (!param.grad().defined()) continue;
    const double n = param.grad().norm(p).item<double>();
    total = std::isinf(p) ? std::max(total, n) : total + std::pow(n, p);
  }
  return std::isinf(p) ? total : std::pow(total, 1.0 / p);
}

// Batches between validation checks (Lightning's val_check_interval).
int64_t validation_interval(const Config& config, int64_t batches_per_epoch) {
  const Json& value = config.get("optim.val_check_interval");
  if (value.is_number_integer()) return std::clamp<int64_t>(value.get<int64_t>(), 1, batches_per_epoch);
  const double fraction = value.get<double>();
  if (fraction > 1.0)
    throw std::invalid_argument("optim.val_check_interval = " + value.dump() +
                                ": a float is a fraction of an epoch in (0, 1]; write an integer for a batch count");
  return std::max<int64_t>(1, static_cast<int64_t>(fraction * static_cast<double>(batches_per_epoch)));
}

// Progress and messages through the log sink, from the lead rank when verbose;
// the sink's progress bar closes however training ends.
class ProgressReport {
 public:
  explicit ProgressReport(bool on) : sink_(on ? log_sink() : nullptr) {}
  ~ProgressReport() {
    if (sink_) sink_->progress_end();
  }
  void update(int64_t epoch, int64_t max_epochs, int64_t batch, int64_t batches, int64_t step, double loss) {
    if (sink_) sink_->progress({epoch, max_epochs, batch, batches, step, loss});
  }
  void line(const std::string& text) {
    if (sink_) sink_->message(LogLevel::kInfo, text);
  }

 private:
  std::shared_ptr<LogSink> sink_;
};

}  // namespace

torch::Tensor epoch_rows(int64_t rows, uint64_t seed, int64_t epoch, int rank, int world_size) {
  if (world_size < 1 || rank < 0 || rank >= world_size)
    throw std::invalid_argument("rank " + std::to_string(rank) + " is outside a world of " +
                                std::to_string(world_size));
  auto generator = at::detail::createCPUGenerator(seed * 1000003ULL + static_cast<uint64_t>(epoch));
  return torch::randperm(rows, generator, torch::kInt64).slice(0, rank, rows, world_size);
}

int64_t inference_batch_size(const Config& config) {
  return config.get_int("env.per_gpu_batch_size") * config.get_int("env.inference_batch_size_ratio");
}

std::string checkpoint_file(const std::string& checkpoint_dir) {
  return (std::filesystem::path(checkpoint_dir) / "last.pt").string();
}

std::map<std::string, int64_t> network_layer_ids(MultiModalNet& net) {
  std::map<std::string, int64_t> ids;
  for (const std::string& backbone : net->pretrained_backbones()) {
    const std::string prefix = backbone + ".";
    std::vector<std::string> names;  // relative to the backbone, in registration order
    for (const auto& item : net->named_parameters())
      if (item.key().rfind(prefix, 0) == 0) names.push_back(item.key().substr(prefix.size()));
    for (const auto& [name, id] : layerwise_ids(names)) ids[prefix + name] = id;
  }
  return ids;
}

torch::Tensor predict_logits(MultiModalNet& net, const Dataset& data, const Config& config, bool features,
                             InferenceCache* cache, std::pair<int64_t, int64_t> rows) {
  const int64_t first = rows.first, last = rows.second < 0 ? data.rows : rows.second;
  const Placement placement = resolve_placement(config);
  const int64_t batch_size = inference_batch_size(config);
  torch::NoGradGuard no_grad;
  CastWeightCache pass_cache;  // without a lasting cache: one cast per call, not per batch
  std::optional<CastWeightCache::Scope> cast_weights;
  if (placement.autocast)
    cast_weights.emplace((cache ? cache->weights : pass_cache).apply(*net, placement.autocast_dtype));
  const CompileOptions compile = cache ? CompileOptions::from(config) : CompileOptions{};
  const bool was_training = net->is_training();
  net->eval();
  std::vector<torch::Tensor> chunks;
  const int64_t batches = (last - first + batch_size - 1) / batch_size;
  // Workers only prefetch the batches after the first: a one-batch call (a one-row
  // predict) builds it inline. Starting threads whose torch ops each spin up an
  // OpenMP team cost 10-30 ms per call here, against well under 1 ms of work.
  const int workers = static_cast<int>(std::min<int64_t>(config.get_int("env.num_workers_inference"), batches - 1));
  BatchLoader<Batch> loader(0, batches, std::max(workers, 0),
                            [&](int64_t b) {
                              auto rows = torch::arange(first + b * batch_size,
                                                        std::min(first + (b + 1) * batch_size, last), torch::kInt64);
                              return make_batch(data, rows, placement.batch());
                            });
  while (auto batch = loader.next()) {
    NetOutput out = compile.turn_on ? cache->traced.forward(net, *batch, placement, compile)
                                    : run_forward(net, *batch, placement);
    chunks.push_back((features ? out.features : out.logits).to(torch::kCPU, torch::kFloat32));
  }
  net->train(was_training);
  if (chunks.empty()) return torch::empty({0, 0});
  return torch::cat(chunks, 0);
}

TrainResult train(MultiModalNet& net, const Dataset& train_data, const Dataset& val_data, const LossFunction& loss_of,
                  const Config& config, const ValidationScorer& scorer, const TrainOptions& options) {
  const auto start = Clock::now();
  const Placement placement = resolve_placement(config);
  Communicator* comm = options.comm;
  const int rank = comm ? comm->env().rank : 0;
  const int world_size = comm ? comm->env().world_size : 1;
  const bool lead = rank == 0;  // the rank that writes and prints
  ProgressReport progress(options.verbose && lead);
  if (!placement.note.empty()) progress.line(placement.note);
  const DeterministicScope deterministic(config.get_bool("env.deterministic"));
  torch::manual_seed(options.seed);
  net->to(placement.device, placement.dtype);
  net->train();
  if (comm) {  // every rank starts from rank 0's weights
    std::vector<torch::Tensor> state = net->parameters();
    for (const auto& b : net->buffers()) state.push_back(b);
    comm->broadcast(state, "broadcasting rank 0's initial weights");
  }

  const int64_t batch_size = config.get_int("env.per_gpu_batch_size");
  // Every rank the same number of rows (a remainder of fewer than world_size rows
  // sits out the epoch; the order reshuffles), so ranks step in lockstep.
  const int64_t rank_rows = train_data.rows / world_size;
  if (rank_rows < 1)
    throw std::invalid_argument(std::to_string(train_data.rows) + " training rows cannot give each of " +
                                std::to_string(world_size) + " data-parallel ranks a row");
  // A last batch of a single row is left out of the epoch, as PyTorch's
  // drop_last would: batch norm cannot train on one value per channel (a ResNet
  // at 32 px ends in 1x1 maps). The order reshuffles, so the row trains next epoch.
  const int64_t batches_per_epoch =
      rank_rows > batch_size && rank_rows % batch_size == 1 ? rank_rows / batch_size
                                                            : (rank_rows + batch_size - 1) / batch_size;
  const int64_t accumulation =
      std::max<int64_t>(config.get_int("env.batch_size") / (batch_size * world_size), 1);
  const int64_t steps_per_epoch = (batches_per_epoch + accumulation - 1) / accumulation;
  const int64_t max_epochs = config.get_int("optim.max_epochs");
  const int64_t max_steps = config.get_int("optim.max_steps");
  const int64_t total_steps = max_steps > 0 ? max_steps : max_epochs * steps_per_epoch;
  const int64_t val_interval = validation_interval(config, batches_per_epoch);
  const int64_t val_every_epochs = config.get_int("optim.check_val_every_n_epoch");
  const int64_t patience = config.get_int("optim.patience");
  const int64_t min_steps = config.get_int("optim.min_steps");
  const int64_t log_every = config.get_int("optim.log_every_n_steps");
  const int workers = static_cast<int>(config.get_int("env.num_workers"));
  const Json& track = config.get("optim.track_grad_norm");
  const double track_p = track.is_string() ? INFINITY : track.get<double>();
  const std::string clip_algorithm = config.get_string("optim.gradient_clip_algorithm");
  const double clip_value = config.get_double("optim.gradient_clip_val");

  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& item : net->named_parameters()) named.emplace_back(item.key(), item.value());
  const std::vector<ParameterGroup> groups = make_parameter_groups(named, config, network_layer_ids(net));
  std::vector<torch::Tensor> params;
  for (const auto& g : groups) params.insert(params.end(), g.params.begin(), g.params.end());
  auto optimizer = make_optimizer(groups, config);
  std::optional<GradientReducer> reducer;
  if (comm) reducer.emplace(params, *comm);
  const LrSchedule schedule = make_schedule(config, total_steps, steps_per_epoch);

  TopKCheckpoints top_k(static_cast<size_t>(config.get_int("optim.top_k")));
  TrainResult result;
  TrainingState state;
  if (options.resume) {
    load_training_state(checkpoint_file(options.checkpoint_dir), *net, *optimizer, top_k, state);
    result.log = state.log;
    result.resumed_from_step = state.step;
    progress.line("resuming from optimizer step " + std::to_string(state.step) + " (epoch " +
                  std::to_string(state.epoch + 1) + ")");
  }
  apply_schedule(*optimizer, groups, schedule, state.step);
  auto elapsed = [&] { return state.elapsed_before + seconds_since(start); };
  auto validate = [&]() {
    torch::Tensor logits;
    if (comm) {  // each rank predicts its shard; the score reads them all
      const torch::Tensor mine = predict_logits(net, val_data, config, false, nullptr,
                                                shard_of(val_data.rows, rank, world_size));
      logits = comm->allgather_rows(mine, "gathering the validation predictions");
    } else {
      logits = predict_logits(net, val_data, config);
    }
    const double score = scorer.score(logits);
    net->train();
    return score;
  };
  auto log_row = [&](int64_t epoch, int64_t batch) {
    LogRow row;
    row.step = state.step;
    row.epoch = static_cast<double>(epoch) + static_cast<double>(batch + 1) / static_cast<double>(batches_per_epoch);
    row.lr = optimizer->param_groups().front().options().get_lr();
    row.loss = state.loss_sum / static_cast<double>(std::max<int64_t>(state.loss_count, 1));
    return row;
  };

  bool checkpoint_due = false;
  int64_t epoch = state.epoch;
  for (; epoch < max_epochs && result.stop_reason.empty(); ++epoch) {
    const torch::Tensor order =
        epoch_rows(train_data.rows, options.seed, epoch, rank, world_size).slice(0, 0, rank_rows);
    const int64_t first_batch = epoch == state.epoch ? state.batch : 0;
    BatchLoader<Batch> loader(first_batch, batches_per_epoch, workers, [&](int64_t b) {
      auto rows = order.slice(0, b * batch_size, std::min((b + 1) * batch_size, order.size(0)));
      const uint64_t batch_seed = options.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch) * 1000003ULL +
                                  static_cast<uint64_t>(b);
      Batch batch = make_batch(train_data, rows, placement.batch(), batch_seed);
      if (options.transform_batch) options.transform_batch(batch, epoch, batch_seed ^ 0x5851F42D4C957F2DULL);
      return batch;
    });
    if (options.epoch_note)
      if (const std::string note = options.epoch_note(epoch); !note.empty()) progress.line(note);
    for (int64_t b = first_batch; b < batches_per_epoch && result.stop_reason.empty(); ++b) {
      const Batch batch = *loader.next();
      NetOutput out = run_forward(net, batch, placement);
      const bool step_now = (b + 1) % accumulation == 0 || b + 1 == batches_per_epoch;
      if (reducer && step_now) reducer->arm();
      // Losses in fp32, whatever precision the forward pass used.
      auto loss = loss_of(out.logits.to(torch::kFloat32), batch.targets);
      for (const auto& aux : out.aux_logits)
        loss = loss + net->aux_loss_weight() * loss_of(aux.to(torch::kFloat32), batch.targets);
      if (options.total_loss) loss = options.total_loss(loss, out, batch.targets);
      (loss / static_cast<double>(accumulation)).backward();
      if (reducer && step_now) reducer->finish();  // the mean gradient over ranks
      state.loss_sum += loss.item<double>();
      ++state.loss_count;
      progress.update(epoch, max_epochs, b, batches_per_epoch, state.step,
                      state.loss_sum / static_cast<double>(state.loss_count));
      bool interrupt = options.stop_requested && options.stop_requested();
      if (comm) interrupt = comm->any(interrupt, "agreeing whether to stop");
      if (interrupt)
        throw FitInterrupted("fit interrupted at epoch " + std::to_string(epoch + 1) + ", optimizer step " +
                             std::to_string(state.step) + "; any predictor already saved at the path is unchanged");

      if (step_now) {
        const double norm = track_p > 0 ? gradient_norm(params, track_p) : -1.0;
        if (clip_value > 0) {
          if (clip_algorithm == "norm") torch::nn::utils::clip_grad_norm_(params, clip_value);
          else torch::nn::utils::clip_grad_value_(params, clip_value);
        }
        optimizer->step();
        clear_gradients(*optimizer);
        ++state.step;
        if (state.step % log_every == 0) {
          LogRow row = log_row(epoch, b);
          row.grad_norm = norm;
          result.log.push_back(row);
        }
        apply_schedule(*optimizer, groups, schedule, state.step);
        if (max_steps > 0 && state.step >= max_steps) result.stop_reason = "reached max_steps";
      }

      const bool check_epoch = (epoch + 1) % val_every_epochs == 0;
      if (check_epoch && (b + 1) % val_interval == 0) {
        const double score = validate();
        const double comparable = scorer.comparable(score);
        top_k.offer(comparable, *net);
        if (comparable > state.best) {
          state.best = comparable;
          state.checks_without_gain = 0;
        } else {
          ++state.checks_without_gain;
        }
        LogRow row = log_row(epoch, b);
        row.validation_score = score;
        result.log.push_back(row);
        char text[256];
        std::snprintf(text, sizeof(text), "epoch %lld step %lld: train loss %.4f, val %s %.4f (best %.4f) [%.1fs]",
                      static_cast<long long>(epoch + 1), static_cast<long long>(state.step), row.loss,
                      scorer.metric.name.c_str(), score, scorer.comparable(state.best), elapsed());
        progress.line(text);
        state.loss_sum = 0.0;
        state.loss_count = 0;
        checkpoint_due = lead && !options.checkpoint_dir.empty();
        const bool may_stop = state.step >= min_steps;  // optim.min_steps
        if (may_stop && score == scorer.metric.optimum)
          result.stop_reason = "validation " + scorer.metric.name + " reached its optimum";
        else if (may_stop && state.checks_without_gain >= patience)
          result.stop_reason = "no improvement in " + std::to_string(patience) + " validation checks (patience)";
      }
      // The resumable state is written only between optimizer steps, so no
      // partly accumulated gradient is lost.
      if (checkpoint_due && step_now && result.stop_reason.empty()) {
        state.epoch = b + 1 == batches_per_epoch ? epoch + 1 : epoch;
        state.batch = b + 1 == batches_per_epoch ? 0 : b + 1;
        state.elapsed_at_save = elapsed();
        state.log = result.log;
        save_training_state(checkpoint_file(options.checkpoint_dir), *net, *optimizer, top_k, state);
        checkpoint_due = false;
      }
      bool out_of_time = options.time_limit_seconds > 0 && elapsed() > options.time_limit_seconds;
      if (comm && options.time_limit_seconds > 0) out_of_time = comm->any(out_of_time, "agreeing on the time limit");
      if (out_of_time) result.stop_reason = "time limit reached";
    }
  }
  if (result.stop_reason.empty()) result.stop_reason = "reached max_epochs";
  if (top_k.empty()) top_k.offer(scorer.comparable(validate()), *net);
  const std::string method = config.get_string("optim.top_k_average_method");
  top_k.finalize(method, *net, [&] { return scorer.comparable(validate()); });
  net->eval();

  result.top_k_scores = top_k.scores();
  for (double& s : result.top_k_scores) s = scorer.comparable(s);
  result.best_validation_score = result.top_k_scores.front();
  if (!config.get_bool("optim.skip_final_val")) result.final_validation_score = validate();
  net->eval();
  result.steps = state.step;
  result.epochs = static_cast<double>(epoch);
  result.seconds = elapsed();
  progress.line("stopped: " + result.stop_reason + "; " + std::to_string(state.step) + " optimizer steps in " +
                std::to_string(static_cast<int>(result.seconds)) + "s");
  return result;
}

}  // namespace automm
