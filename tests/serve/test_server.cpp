// automm serve: answers equal the predictor's, bad requests get 400 naming the
// field, batching merges concurrent requests, shutdown answers what is in
// flight, malformed bodies never take the server down.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <httplib.h>

#include "automm/predictor.h"
#include "automm/serve.h"
#include "automm_test_paths.h"
#include "image_test_util.h"
#include "test_util.h"

namespace automm {
namespace {

using automm::testing::cells;
using automm::testing::set_cells;

namespace fs = std::filesystem;
using automm::testing::make_tabular_table;
using automm::testing::TempDir;

MultiModalPredictor fit_tabular(const std::string& path) {
  PredictorOptions options;
  options.label = "label";
  options.path = path;
  options.verbose = false;
  options.hyperparameters = {{"optim.max_epochs", 2}, {"optim.min_steps", 0}};
  MultiModalPredictor predictor(options);
  predictor.fit(make_tabular_table(300, 1));
  return predictor;
}

// Rows [begin, end) of a generated table as request rows (numbers as JSON numbers).
Json rows_json(const Table& table, size_t begin, size_t end) {
  Json rows = Json::array();
  for (size_t r = begin; r < end; ++r) {
    Json row = Json::object();
    for (const Column& column : table.columns()) {
      if (column.name() == "label") continue;
      const bool number = column.name() == "x1" || column.name() == "x2" || column.name() == "noise";
      row[column.name()] = number ? Json(std::stod(column.text(r))) : Json(column.text(r));
    }
    rows.push_back(row);
  }
  return rows;
}

// The table a request of rows_json becomes (numbers written as JSON writes them).
Table request_rows(const Table& table, size_t begin, size_t end) {
  std::vector<size_t> rows;
  for (size_t r = begin; r < end; ++r) rows.push_back(r);
  Table out = table.select_rows(rows);
  for (const char* name : {"x1", "x2", "noise"})
  {
    std::vector<std::string> texts = cells(out.column(name));
    for (std::string& cell : texts) cell = Json(std::stod(cell)).dump();
    set_cells(out, name, texts);
  }
  return out;
}

class RunningServer {
 public:
  RunningServer(const MultiModalPredictor& predictor, ServeOptions options) : server_(predictor, with_any_port(options)) {
    server_.bind();
    thread_ = std::thread([this] { server_.run(); });
  }
  ~RunningServer() { stop(); }
  void stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::unique_ptr<httplib::Client> client() const {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", server_.port());
    client->set_read_timeout(30, 0);
    return client;
  }

 private:
  static ServeOptions with_any_port(ServeOptions options) {
    options.port = 0;
    return options;
  }
  PredictionServer server_;
  std::thread thread_;
};

Json post(const httplib::Client& client, const std::string& path, const Json& body, int expected_status = 200) {
  auto& c = const_cast<httplib::Client&>(client);
  const auto response = c.Post(path.c_str(), body.dump(), "application/json");
  EXPECT_TRUE(response) << path << ": no answer";
  if (!response) return Json();
  EXPECT_EQ(response->status, expected_status) << path << ": " << response->body;
  return Json::parse(response->body);
}

TEST(Serve, AnswersEqualThePredictorsInRowAndColumnForm) {
  TempDir dir;
  const MultiModalPredictor predictor = fit_tabular(dir.file("p"));
  RunningServer server(predictor, {});
  auto client = server.client();
  const Table test = make_tabular_table(20, 7);
  const Table expected_rows = request_rows(test, 0, 20);

  const Json labels = post(*client, "/predict", {{"data", rows_json(test, 0, 20)}});
  EXPECT_EQ(labels["predictions"].get<std::vector<std::string>>(), predictor.predict(expected_rows).labels());

  // The same rows as columns.
  Json columns = Json::object();
  for (const Json& row : rows_json(test, 0, 20))
    for (const auto& [name, value] : row.items()) columns[name].push_back(value);
  EXPECT_EQ(post(*client, "/predict", {{"data", columns}})["predictions"], labels["predictions"]);

  const Json proba = post(*client, "/predict_proba", {{"data", rows_json(test, 0, 20)}});
  EXPECT_EQ(proba["classes"].get<std::vector<std::string>>(), predictor.classes());
  const torch::Tensor p = predictor.predict_proba(expected_rows).to(torch::kFloat64);
  for (int64_t r = 0; r < 20; ++r)
    for (int64_t c = 0; c < 2; ++c) EXPECT_EQ(proba["probabilities"][r][c].get<double>(), p[r][c].item<double>());

  const Json embed = post(*client, "/embed", {{"data", rows_json(test, 0, 3)}});
  const torch::Tensor e = predictor.extract_embedding(request_rows(test, 0, 3)).to(torch::kFloat64);
  ASSERT_EQ(embed["embeddings"].size(), 3u);
  ASSERT_EQ(static_cast<int64_t>(embed["embeddings"][0].size()), e.size(1));
  EXPECT_EQ(embed["embeddings"][2][5].get<double>(), e[2][5].item<double>());

  const auto info = client->Get("/info");
  ASSERT_TRUE(info);
  const Json meta = Json::parse(info->body);
  EXPECT_EQ(meta["problem_type"], "binary");
  EXPECT_EQ(meta["columns"]["x1"], "numerical");
  EXPECT_FALSE(meta["columns"].contains("label"));
  EXPECT_EQ(client->Get("/health")->body, R"({"status":"ok"})");
  const std::string metrics = client->Get("/metrics")->body;
  EXPECT_NE(metrics.find("automm_requests_total{path=\"/predict\",code=\"200\"} 2"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("automm_request_seconds_bucket{le=\"+Inf\"}"), std::string::npos);
  EXPECT_NE(metrics.find("automm_batch_rows_count"), std::string::npos);
}

TEST(Serve, BadRequestsGet400NamingTheField) {
  TempDir dir;
  const MultiModalPredictor predictor = fit_tabular(dir.file("p"));
  ServeOptions options;
  options.max_rows = 10;
  options.max_body_bytes = 20000;
  RunningServer server(predictor, options);
  auto client = server.client();
  const Table test = make_tabular_table(12, 7);
  const auto error_of = [&](const std::string& body, int status = 400) {
    const auto response = client->Post("/predict", body, "application/json");
    EXPECT_TRUE(response);
    if (!response) return std::string();
    EXPECT_EQ(response->status, status) << body.substr(0, 200) << " -> " << response->body;
    return Json::parse(response->body).value("error", std::string());
  };
  EXPECT_NE(error_of("{\"data\": [").find("malformed JSON"), std::string::npos);
  EXPECT_NE(error_of("[1, 2]").find("{\"data\""), std::string::npos);
  EXPECT_NE(error_of(R"({"data": [], "extra": 1})").find("unknown field 'extra'"), std::string::npos);
  EXPECT_NE(error_of(R"({"data": []})").find("no rows"), std::string::npos);
  Json rows = rows_json(test, 0, 2);
  rows[1].erase("x1");
  EXPECT_NE(error_of(Json{{"data", rows}}.dump()).find("data[1]: missing column 'x1'"), std::string::npos);
  rows = rows_json(test, 0, 2);
  rows[0]["zip"] = "0150";
  EXPECT_NE(error_of(Json{{"data", rows}}.dump()).find("data[0]: unknown column 'zip'"), std::string::npos);
  rows = rows_json(test, 0, 2);
  rows[1]["x2"] = "three";
  EXPECT_NE(error_of(Json{{"data", rows}}.dump()).find("data[1].x2: expected a number"), std::string::npos);
  rows = rows_json(test, 0, 2);
  rows[0]["label"] = "yes";  // the label column is accepted and not used
  EXPECT_EQ(error_of(Json{{"data", rows}}.dump(), 200), "");
  EXPECT_NE(error_of(Json{{"data", rows_json(test, 0, 11)}}.dump()).find("at most 10"), std::string::npos);
  Json columns = Json::object();
  for (const Json& row : rows_json(test, 0, 2))
    for (const auto& [name, value] : row.items()) columns[name].push_back(value);
  columns["size"].push_back("M");
  EXPECT_NE(error_of(Json{{"data", columns}}.dump()).find("data.size: 3 values, but data.city has 2"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(30000, ' ') + "{}", 413).find("larger than"), std::string::npos);
  std::string deep(200, '[');
  EXPECT_NE(error_of(R"({"data": )" + deep).find("nests deeper"), std::string::npos);
  const auto missing = client->Post("/nowhere", "{}", "application/json");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(missing->body.find("no such endpoint"), std::string::npos);
}

TEST(Serve, BearerTokenGuardsEveryEndpointButHealth) {
  TempDir dir;
  const MultiModalPredictor predictor = fit_tabular(dir.file("p"));
  ServeOptions options;
  options.token = "s3cret";
  RunningServer server(predictor, options);
  auto client = server.client();
  const Json body{{"data", rows_json(make_tabular_table(2, 3), 0, 2)}};
  EXPECT_EQ(client->Post("/predict", body.dump(), "application/json")->status, 401);
  EXPECT_EQ(client->Get("/info")->status, 401);
  EXPECT_EQ(client->Get("/health")->status, 200);
  client->set_bearer_token_auth("wrong!");
  EXPECT_EQ(client->Post("/predict", body.dump(), "application/json")->status, 401);
  client->set_bearer_token_auth("s3cret");
  EXPECT_EQ(client->Post("/predict", body.dump(), "application/json")->status, 200);
  EXPECT_EQ(client->Get("/metrics")->status, 200);
}

TEST(Serve, ConcurrentRequestsAreBatchedAndAnsweredInOrder) {
  TempDir dir;
  const MultiModalPredictor predictor = fit_tabular(dir.file("p"));
  ServeOptions options;
  options.max_batch = 64;
  options.max_delay_ms = 20;
  options.threads = 16;
  RunningServer server(predictor, options);
  const Table test = make_tabular_table(200, 9);
  // Probabilities, within a tolerance: under bf16-mixed precision (the CPU default)
  // a row's numbers depend a little on which rows share its batch, so a label
  // near 0.5 may flip between a batched and an unbatched pass.
  const torch::Tensor expected = predictor.predict_proba(request_rows(test, 0, 200)).to(torch::kFloat64);
  std::atomic<int> wrong{0}, requests{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 16; ++t) {
    clients.emplace_back([&, t] {
      auto client = server.client();
      for (int i = 0; i < 10; ++i) {
        const size_t begin = static_cast<size_t>((t * 10 + i) % 190), end = begin + 1 + static_cast<size_t>(i % 3);
        const std::string body = Json{{"data", rows_json(test, begin, end)}}.dump();
        auto response = client->Post("/predict_proba", body, "application/json");
        // A kept-alive connection the server closed (httplib's 5-request limit) is
        // reopened by a second try; a wrong answer is not retried.
        if (!response) response = client->Post("/predict_proba", body, "application/json");
        ++requests;
        if (!response || response->status != 200) {
          ADD_FAILURE() << (response ? std::to_string(response->status) + " " + response->body
                                     : "no answer: " + httplib::to_string(response.error()));
          ++wrong;
          continue;
        }
        const Json got = Json::parse(response->body)["probabilities"];
        for (size_t r = begin; r < end; ++r)
          if (std::abs(got[r - begin][1].get<double>() - expected[static_cast<int64_t>(r)][1].item<double>()) > 2e-2)
            ++wrong;
      }
    });
  }
  for (auto& thread : clients) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  const std::string metrics = server.client()->Get("/metrics")->body;
  const size_t at = metrics.find("automm_batch_rows_count ");
  ASSERT_NE(at, std::string::npos);
  const int forwards = std::stoi(metrics.substr(at + 24));
  EXPECT_LT(forwards, requests.load()) << "no two requests shared a forward pass\n" << metrics;
}

TEST(Serve, StopAnswersTheRequestInFlight) {
  TempDir dir;
  const MultiModalPredictor predictor = fit_tabular(dir.file("p"));
  ServeOptions options;
  options.max_delay_ms = 500;  // the request waits in the batcher while the server stops
  RunningServer server(predictor, options);
  const Json body{{"data", rows_json(make_tabular_table(3, 3), 0, 3)}};
  int status = 0;
  std::thread request([&] {
    const auto response = server.client()->Post("/predict", body.dump(), "application/json");
    status = response ? response->status : -1;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  server.stop();
  request.join();
  EXPECT_EQ(status, 200);
}

TEST(Serve, MalformedBodiesNeverTakeTheServerDown) {
  TempDir dir;
  const MultiModalPredictor predictor = fit_tabular(dir.file("p"));
  ServeOptions options;
  options.max_body_bytes = 1 << 16;
  RunningServer server(predictor, options);
  auto client = server.client();
  const Table test = make_tabular_table(4, 5);
  const std::string valid = Json{{"data", rows_json(test, 0, 4)}}.dump();
  std::mt19937_64 rng(11);
  std::map<int, int> statuses;
  const std::string alphabet = "{}[]\",:0123456789.eE-+truefalsnul \\\x00\xff\xc3\x28";
  for (int i = 0; i < 3000; ++i) {
    std::string body = valid;
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      const size_t at = rng() % body.size();
      switch (rng() % 4) {
        case 0: body[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: body.erase(at, 1 + rng() % 16); break;
        case 2: body.insert(at, std::string(1 + rng() % 4, alphabet[rng() % alphabet.size()])); break;
        default: body.resize(at); break;
      }
    }
    const auto response = client->Post("/predict_proba", body, "application/json");
    ASSERT_TRUE(response) << "no answer to body " << i;
    if (++statuses[response->status] == 1 && response->status != 200 && response->status != 400)
      ADD_FAILURE() << "status " << response->status << " for body " << Json(body).dump() << ": " << response->body;
  }
  EXPECT_GT(statuses[400], 1000);
  EXPECT_EQ(client->Get("/health")->status, 200);
  const Json labels = post(*client, "/predict", Json::parse(valid));
  EXPECT_EQ(labels["predictions"].get<std::vector<std::string>>(), predictor.predict(request_rows(test, 0, 4)).labels());
}

std::string base64_of_file(const std::string& path) {  // test data only
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  static const char* digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 2]);
    out += digits[(n >> 18) & 63];
    out += digits[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? digits[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? digits[n & 63] : '=';
  }
  return out;
}

TEST(Serve, ImagesAsBase64OrPathsInsideTheAllowedFolder) {
  TempDir dir;
  const std::string images = dir.file("images");
  fs::create_directories(images);
  const Table train = testing::make_shape_table(images, "train_", 40, 1);
  PredictorOptions options;
  options.label = "label";
  options.path = dir.file("p");
  options.verbose = false;
  options.pretrained = false;
  options.hyperparameters = {{"model.names", {"timm_image", "numerical_mlp", "fusion_mlp"}},
                             {"model.timm_image.checkpoint_name", "resnet18"},
                             {"model.timm_image.image_size", 40},
                             {"optim.max_epochs", 1},
                             {"optim.min_steps", 0}};
  MultiModalPredictor predictor(options);
  predictor.fit(train);
  const std::string photo = images + "/train_0.bmp";
  Table one;
  one.add_column(Column::from_cells("photo", {photo}));
  one.add_column(Column::from_cells("weight", {"0.5"}));
  const torch::Tensor expected = predictor.predict_proba(one).to(torch::kFloat64);

  ServeOptions serve;
  RunningServer closed(predictor, serve);
  const auto body_of = [](const Json& photo_value) {
    Json row = Json::object();
    row["photo"] = photo_value;
    row["weight"] = 0.5;
    return Json{{"data", Json::array({row})}};
  };
  const Json base64_row = body_of(base64_of_file(photo));
  const Json proba = post(*closed.client(), "/predict_proba", base64_row);
  EXPECT_NEAR(proba["probabilities"][0][0].get<double>(), expected[0][0].item<double>(), 1e-12);
  const Json path_row = body_of(Json{{"path", "train_0.bmp"}});
  EXPECT_NE(post(*closed.client(), "/predict", path_row, 400)["error"].get<std::string>().find("base64"),
            std::string::npos);
  const Json not_base64 = body_of("train_0.bmp");
  EXPECT_NE(post(*closed.client(), "/predict", not_base64, 400)["error"].get<std::string>().find("data[0].photo"),
            std::string::npos);
  closed.stop();

  serve.allow_image_dir = images;
  RunningServer open(predictor, serve);
  const Json by_path = post(*open.client(), "/predict_proba", path_row);
  EXPECT_NEAR(by_path["probabilities"][0][0].get<double>(), expected[0][0].item<double>(), 1e-12);
  const auto refused = [&](const std::string& path) {
    return post(*open.client(), "/predict", body_of(Json{{"path", path}}), 400)["error"].get<std::string>();
  };
  EXPECT_NE(refused("../p/predictor.json").find("'..'"), std::string::npos);
  EXPECT_NE(refused(dir.file("p") + "/predictor.json").find("outside"), std::string::npos);
  fs::create_symlink(dir.file("p"), images + "/escape");
  EXPECT_NE(refused("escape/predictor.json").find("outside"), std::string::npos);
  EXPECT_NE(refused("missing.bmp").find("does not exist"), std::string::npos);
}

TEST(ServeCommand, SigtermStopsTheServerCleanly) {
  TempDir dir;
  fit_tabular(dir.file("p"));
  const std::string log = dir.file("serve.log"), pid_file = dir.file("pid");
  ASSERT_EQ(std::system((std::string(AUTOMM_CLI_PATH) + " serve --path " + dir.file("p") + " --port 0 2> " + log +
                         " & echo $! > " + pid_file)
                            .c_str()),
            0);
  int pid = 0;
  std::ifstream(pid_file) >> pid;
  ASSERT_GT(pid, 0);
  int port = 0;
  for (int i = 0; i < 600 && port == 0; ++i) {  // up to 60 s for the predictor to load
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::ifstream in(log);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    const size_t at = text.find("on http://127.0.0.1:");
    if (at != std::string::npos) port = std::atoi(text.c_str() + at + 20);
  }
  ASSERT_GT(port, 0) << "the server never said where it listens";
  httplib::Client client("127.0.0.1", port);
  EXPECT_EQ(client.Get("/health")->status, 200);
  ::kill(pid, SIGTERM);
  // The server says it stopped as it exits (the shell that started it is gone,
  // so the test cannot wait for it as a child).
  std::string text;
  for (int i = 0; i < 300 && text.find("automm serve: stopped") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::ifstream in(log);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  EXPECT_NE(text.find("SIGTERM, answering the requests in flight"), std::string::npos) << text;
  EXPECT_NE(text.find("automm serve: stopped"), std::string::npos) << "still running 30 s after SIGTERM:\n" << text;

  // A port in use (here by another automm serve) is a clear error.
  httplib::Server holder;
  holder.set_socket_options([](socket_t socket) {});
  const int taken = holder.bind_to_any_port("127.0.0.1");
  const std::string out = dir.file("taken.log");
  const int status = std::system(("timeout 60 " + std::string(AUTOMM_CLI_PATH) + " serve --path " + dir.file("p") + " --port " +
                                  std::to_string(taken) + " 2> " + out)
                                     .c_str());
  EXPECT_NE(status, 0);
  std::ifstream taken_log(out);
  const std::string message((std::istreambuf_iterator<char>(taken_log)), {});
  EXPECT_NE(message.find("cannot listen on 127.0.0.1:" + std::to_string(taken)), std::string::npos) << message;
}

}  // namespace
}  // namespace automm
