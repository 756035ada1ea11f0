// Image loading benchmark: JPEG decoding and AutoMM's default train transforms,
// as training runs them, against torchvision 0.14 + PIL on the same files.
// bench/image_pipeline_peer.py writes N photo-like 640x480 JPEGs (PIL, quality
// 90) into a temporary folder; both sides then read them in batches of 32:
//
//   decode   read_image(path)                      Image.open(f).convert("RGB")
//   train    ImageProcessor::make_batch with       Resize(224, BICUBIC), CenterCrop(224),
//            resize_shorter_side, center_crop,     AutoMM's TrivialAugment, ToTensor,
//            trivial_augment at 224, imagenet      Normalize, collated to [32, 3, 224, 224]
//            normalization -> [32, 1, 3, 224, 224]
//
// C++ runs the batches through BatchLoader with 1 and 2 worker threads (the
// trainer's env.num_workers); Python through a torch DataLoader with
// num_workers=0 (one process) and 2. Best of --repeats passes over all files,
// worker start-up included, in images per wall-clock second and per CPU-second
// (all threads; for Python the process and its workers), the latter holding up
// when other work shares the cores. Every figure is printed beside Python's
// from the same run.
//
//   bash bench/run.sh            (or: automm_bench_images OUT.json [--images N] [--repeats R]
//                                      [--peer bench/image_pipeline_peer.py] [--python /usr/bin/python3])
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "learners/batch_loader.h"
#include "automm/config.h"
#include "data/image/image_io.h"
#include "data/image/image_processor.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

void run_or_throw(const std::string& command) {
  if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
}

// CPU time of the whole process (all threads), seconds.
double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// Best of `repeats` passes, each a fresh BatchLoader over all batches: images
// per wall-clock second, images per CPU-second, and the cores the fastest pass
// used (CPU-seconds / wall seconds; below `workers` when other work shares the cores).
template <typename T, typename Make>
nlohmann::json images_per_s(int64_t images, int64_t batch_size, int workers, int repeats, Make make) {
  const int64_t batches = (images + batch_size - 1) / batch_size;
  double best = 0, best_per_cpu = 0, cores = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    const double cpu_start = cpu_seconds();
    {
      automm::BatchLoader<T> loader(0, batches, workers, make);
      while (auto batch = loader.next()) {
      }
    }
    const double wall = seconds(start), cpu = cpu_seconds() - cpu_start, n = static_cast<double>(images);
    if (n / wall > best) best = n / wall, cores = cpu / wall;
    best_per_cpu = std::max(best_per_cpu, n / cpu);
  }
  return {{"images_per_s", best}, {"images_per_cpu_s", best_per_cpu}, {"cores", cores}};
}

}  // namespace

int main(int argc, char** argv) try {
  std::string json_path = "bench_images.json", peer = "bench/image_pipeline_peer.py", python = "/usr/bin/python3";
  int64_t num_images = 512;
  int repeats = 3;
  const int64_t batch_size = 32, image_size = 224;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--images") num_images = std::stoll(value());
    else if (arg == "--repeats") repeats = std::stoi(value());
    else if (arg == "--peer") peer = value();
    else if (arg == "--python") python = value();
    else if (!arg.empty() && arg[0] != '-') json_path = arg;
    else throw std::invalid_argument("unknown argument " + arg);
  }
  if (num_images < 1 || repeats < 1) throw std::invalid_argument("--images and --repeats must be >= 1");
  if (!fs::exists(peer)) throw std::invalid_argument(peer + " not found; run from the repository root or pass --peer");

  std::string dir_template = (fs::temp_directory_path() / "automm_bench_images_XXXXXX").string();
  if (!mkdtemp(dir_template.data())) throw std::runtime_error("cannot create a temporary folder");
  const fs::path dir = dir_template;
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  } cleanup{dir};

  std::printf("automm.cpp image loading benchmark: %lld photo-like 640x480 JPEGs (PIL quality 90), batches of %lld\n",
              static_cast<long long>(num_images), static_cast<long long>(batch_size));
  std::fflush(stdout);
  run_or_throw(python + " " + peer + " write " + dir.string() + " --images " + std::to_string(num_images));
  std::vector<std::string> paths;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".jpg") paths.push_back(entry.path().string());
  std::sort(paths.begin(), paths.end());
  if (static_cast<int64_t>(paths.size()) != num_images) throw std::runtime_error("the peer wrote too few images");
  for (size_t i = 0; i < std::min<size_t>(8, paths.size()); ++i) automm::read_image(paths[i]);  // warm-up

  // The trainer's image path: default options at image size 224, one image column.
  automm::ImageProcessorOptions options = automm::image_processor_options(automm::Config(), "model.timm_image", image_size, "bicubic");
  const auto processor = automm::ImageProcessor::create("timm_image", {{"image", true}}, options);
  automm::ImageInputs inputs;
  inputs.processor = processor;
  for (size_t i = 0; i < paths.size(); ++i) inputs.rows.push_back({{paths[i], "", "image " + std::to_string(i)}});
  std::string transforms;
  for (const auto& t : options.train_transforms) transforms += (transforms.empty() ? "" : ", ") + t;

  auto rows_of = [&](int64_t b) {
    std::vector<int64_t> rows;
    for (int64_t r = b * batch_size; r < std::min((b + 1) * batch_size, num_images); ++r) rows.push_back(r);
    return rows;
  };
  auto decode_batch = [&](int64_t b) {
    int64_t pixels = 0;
    for (int64_t r : rows_of(b)) pixels += automm::read_image(paths[static_cast<size_t>(r)]).width;
    return pixels;
  };
  auto train_batch = [&](int64_t b) {
    std::mt19937_64 rng(0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(b));  // a seed per batch, as the trainer
    return processor->make_batch(inputs, rows_of(b), &rng);
  };

  nlohmann::json cpp = nlohmann::json::object();
  for (const std::string stage : {"decode", "train"}) {
    for (int workers : {1, 2}) {
      const nlohmann::json r =
          stage == "decode" ? images_per_s<int64_t>(num_images, batch_size, workers, repeats, decode_batch)
                            : images_per_s<automm::ImageBatch>(num_images, batch_size, workers, repeats, train_batch);
      cpp[stage][std::to_string(workers)] = r;
      std::printf("  c++    %-6s workers=%d:     %8.1f images/s %8.1f images/CPU-s %5.2f cores\n", stage.c_str(),
                  workers, r["images_per_s"].get<double>(), r["images_per_cpu_s"].get<double>(),
                  r["cores"].get<double>());
      std::fflush(stdout);
    }
  }

  const fs::path python_json = dir / "python.json";
  run_or_throw(python + " " + peer + " measure " + dir.string() + " --json " + python_json.string() + " --repeats " +
               std::to_string(repeats) + " --batch-size " + std::to_string(batch_size));
  nlohmann::json py;
  std::ifstream(python_json) >> py;

  nlohmann::json report = {{"images", num_images},        {"image_width", 640},     {"image_height", 480},
                           {"jpeg_quality", 90},          {"batch_size", batch_size}, {"image_size", image_size},
                           {"repeats", repeats},          {"train_transforms", options.train_transforms},
                           {"python_torch", py.value("torch", "")}, {"python_pillow", py.value("pillow", "")}};
  std::printf("\nbest of %d passes%*s  images/s (wall clock)           images per CPU-second        cores used\n",
              repeats, 21, "");
  std::printf("%-28s %7s %8s %9s %7s %8s %9s %7s %6s %5s\n", "", "workers", "C++", "Python", "C++/Py", "C++",
              "Python", "C++/Py", "C++", "Py");
  const std::pair<std::string, std::string> python_workers[] = {{"1", "0"}, {"2", "2"}};
  for (const std::string stage : {"decode", "train"}) {
    nlohmann::json rows = nlohmann::json::object();
    for (const auto& [workers, py_workers] : python_workers) {
      const nlohmann::json &c = cpp[stage][workers], &p = py.at(stage).at(py_workers);
      const double speed = c["images_per_s"].get<double>() / p.at("images_per_s").get<double>();
      const double cpu_speed = c["images_per_cpu_s"].get<double>() / p.at("images_per_cpu_s").get<double>();
      rows[workers] = {{"cpp", c}, {"python", p}, {"python_num_workers", std::stoi(py_workers)},
                       {"speed_vs_python", speed}, {"cpu_efficiency_vs_python", cpu_speed}};
      const char* label = workers != "1" ? "" : stage == "decode" ? "decode only" : "decode + train transforms";
      std::printf("%-28s %7s %8.1f %9.1f %6.2fx %8.1f %9.1f %6.2fx %6.2f %5.2f\n", label, workers.c_str(),
                  c["images_per_s"].get<double>(), p.at("images_per_s").get<double>(), speed,
                  c["images_per_cpu_s"].get<double>(), p.at("images_per_cpu_s").get<double>(), cpu_speed,
                  c["cores"].get<double>(), p.at("cores").get<double>());
    }
    report[stage] = rows;
  }
  std::printf("\ntrain transforms: %s at %lld, then imagenet normalization (ImageProcessor::make_batch)\n",
              transforms.c_str(), static_cast<long long>(image_size));
  std::printf("workers: C++ BatchLoader threads 1 / 2; Python (torchvision + PIL) DataLoader num_workers=0 (one\n"
              "process) / 2. Cores used below the worker count mean other work shared the cores: compare the\n"
              "per-CPU-second figures then.\n");
  std::ofstream(json_path) << report.dump(2) << "\n";
  std::printf("\nwrote %s\n", json_path.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "automm_bench_images: %s\n", e.what());
  return 1;
}
