#include "training_state.h"
#include "config/json_text.h"

#include <filesystem>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include "learners/learner_io.h"

namespace automm {
namespace {

nlohmann::json log_to_json(const std::vector<LogRow>& log) {
  nlohmann::json rows = nlohmann::json::array();
  for (const LogRow& r : log)
    rows.push_back({r.step, r.epoch, r.lr, r.loss, r.grad_norm,
                    std::isnan(r.validation_score) ? nlohmann::json(nullptr) : nlohmann::json(r.validation_score)});
  return rows;
}

std::vector<LogRow> log_from_json(const nlohmann::json& rows) {
  std::vector<LogRow> log;
  for (const auto& r : rows) {
    LogRow row;
    row.step = r[0].get<int64_t>();
    row.epoch = r[1].get<double>();
    row.lr = r[2].get<double>();
    row.loss = r[3].get<double>();
    row.grad_norm = r[4].get<double>();
    row.validation_score = r[5].is_null() ? std::nan("") : r[5].get<double>();
    log.push_back(row);
  }
  return log;
}

}  // namespace

void save_training_state(const std::string& file, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                         const TopKCheckpoints& top_k, const TrainingState& state) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive, optimizer_archive;
  model.save(model_archive);
  optimizer.save(optimizer_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optimizer_archive);
  nlohmann::json scores = nlohmann::json::array();
  for (size_t i = 0; i < top_k.entries().size(); ++i) {
    scores.push_back(top_k.entries()[i].first);
    const Weights& weights = top_k.entries()[i].second;
    for (size_t j = 0; j < weights.size(); ++j)
      if (weights[j].defined()) archive.write("topk_" + std::to_string(i) + "_" + std::to_string(j), weights[j]);
  }
  archive.write("rng", at::detail::getDefaultCPUGenerator().get_state());
  const nlohmann::json meta = {{"step", state.step},
                               {"epoch", state.epoch},
                               {"batch", state.batch},
                               {"best", state.best},
                               {"checks_without_gain", state.checks_without_gain},
                               {"loss_sum", state.loss_sum},
                               {"loss_count", state.loss_count},
                               {"elapsed", state.elapsed_at_save},
                               {"top_k_scores", scores},
                               {"log", log_to_json(state.log)}};
  archive.write("state", c10::IValue(meta.dump()));
  // Written beside the old file and renamed over it: a kill leaves one or the other.
  const std::string temp = file + ".tmp";
  save_archive(archive, temp);
  std::filesystem::rename(temp, file);
}

void load_training_state(const std::string& file, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                         TopKCheckpoints& top_k, TrainingState& state) {
  if (!std::filesystem::exists(file))
    throw std::runtime_error("no training checkpoint at " + file +
                             ": the fit stopped before its first validation check; start it again");
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(file);
    torch::serialize::InputArchive model_archive, optimizer_archive;
    archive.read("model", model_archive);
    archive.read("optimizer", optimizer_archive);
    model.load(model_archive);
    optimizer.load(optimizer_archive);
    c10::IValue text;
    archive.read("state", text);
    const nlohmann::json meta = parse_json(text.toStringRef(), file + " (training state)");
    state.step = meta.at("step").get<int64_t>();
    state.epoch = meta.at("epoch").get<int64_t>();
    state.batch = meta.at("batch").get<int64_t>();
    state.best = meta.at("best").is_null() ? -INFINITY : meta.at("best").get<double>();
    state.checks_without_gain = meta.at("checks_without_gain").get<int64_t>();
    state.loss_sum = meta.at("loss_sum").get<double>();
    state.loss_count = meta.at("loss_count").get<int64_t>();
    state.elapsed_before = meta.at("elapsed").get<double>();
    state.log = log_from_json(meta.at("log"));
    const size_t num_weights = model.parameters().size() + model.buffers().size();
    std::vector<std::pair<double, Weights>> entries;
    const auto scores = meta.at("top_k_scores").get<std::vector<double>>();
    for (size_t i = 0; i < scores.size(); ++i) {
      Weights weights(num_weights);
      for (size_t j = 0; j < num_weights; ++j)  // frozen parameters were not written
        archive.try_read("topk_" + std::to_string(i) + "_" + std::to_string(j), weights[j]);
      entries.emplace_back(scores[i], std::move(weights));
    }
    top_k.set_entries(std::move(entries));
    torch::Tensor rng;
    archive.read("rng", rng);
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(rng);
  } catch (const c10::Error& e) {
    throw std::runtime_error("cannot resume from " + file + ": " + e.what_without_backtrace());
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("cannot resume from " + file + ": " + e.what());
  }
}

}  // namespace automm
