// Load generator for `automm serve` (bench/serve_load.sh runs it): N clients,
// each on one kept-alive connection, POST one-row /predict requests for S
// seconds, rows taken in turn from a table; every answer is checked against the
// predictions `automm predict` wrote for that table. Loopback only; stops by itself.
//
//   automm_bench_serve PORT CLIENTS SECONDS DATA.csv EXPECTED.csv
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include <httplib.h>

#include "automm/config.h"
#include "automm/table.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s PORT CLIENTS SECONDS DATA.csv EXPECTED.csv\n", argv[0]);
    return 2;
  }
  const int port = std::atoi(argv[1]), clients = std::atoi(argv[2]);
  const double seconds = std::atof(argv[3]);
  const automm::Table data = automm::read_table(argv[4]);
  const automm::Table expected_table = automm::read_table(argv[5]);
  std::vector<std::string> expected;
  for (size_t r = 0; r < expected_table.num_rows(); ++r) expected.push_back(expected_table.columns().front().text(r));

  httplib::Client probe("127.0.0.1", port);
  const auto info_response = probe.Get("/info");
  if (!info_response || info_response->status != 200) {
    std::fprintf(stderr, "no /info from 127.0.0.1:%d\n", port);
    return 1;
  }
  const automm::Json info = automm::Json::parse(info_response->body);
  std::vector<std::string> bodies;
  for (size_t r = 0; r < data.num_rows(); ++r) {
    automm::Json row = automm::Json::object();
    for (const auto& [name, type] : info["columns"].items()) {
      const automm::Column& column = data.column(name);
      if (column.is_missing(r)) row[name] = nullptr;
      else if (type == "numerical") row[name] = std::stod(column.text(r));
      else row[name] = column.text(r);
    }
    bodies.push_back(automm::Json{{"data", automm::Json::array({row})}}.dump());
  }

  std::atomic<bool> running{true};
  std::atomic<int64_t> errors{0}, mismatches{0};
  std::vector<std::vector<double>> latencies(static_cast<size_t>(clients));
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", port);
      client.set_keep_alive(true);
      for (size_t i = static_cast<size_t>(c); running; i += static_cast<size_t>(clients)) {
        const size_t r = i % bodies.size();
        const auto begin = std::chrono::steady_clock::now();
        const auto response = client.Post("/predict", bodies[r], "application/json");
        latencies[static_cast<size_t>(c)].push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin).count());
        if (!response || response->status != 200) {
          if (++errors <= 3)
            std::fprintf(stderr, "error: %s\n",
                         response ? (std::to_string(response->status) + " " + response->body).c_str()
                                  : ("no answer: " + httplib::to_string(response.error())).c_str());
          continue;
        }
        const automm::Json answer = automm::Json::parse(response->body)["predictions"][0];
        const std::string text = answer.is_string() ? answer.get<std::string>() : answer.dump();
        if (text != expected[r]) ++mismatches;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  running = false;
  for (auto& thread : threads) thread.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  const auto quantile = [&](double q) { return all.empty() ? 0.0 : all[static_cast<size_t>(q * (all.size() - 1))]; };
  std::printf("{\"clients\": %d, \"seconds\": %.1f, \"requests\": %zu, \"requests_per_s\": %.1f, \"p50_ms\": %.2f, "
              "\"p99_ms\": %.2f, \"errors\": %lld, \"mismatches\": %lld}\n",
              clients, elapsed, all.size(), static_cast<double>(all.size()) / elapsed, quantile(0.5), quantile(0.99),
              static_cast<long long>(errors.load()), static_cast<long long>(mismatches.load()));
  return errors == 0 && mismatches == 0 ? 0 : 1;
}
