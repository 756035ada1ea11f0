// mmdet's CSPDarknet and CSPLayer (csp_darknet.h).
#include "models/detection/csp_darknet.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>

namespace automm::detection {

namespace idx = torch::indexing;

int64_t python_round(double value) {
  const double floor = std::floor(value);
  const double fraction = value - floor;
  if (fraction > 0.5) return static_cast<int64_t>(floor) + 1;
  if (fraction < 0.5) return static_cast<int64_t>(floor);
  return static_cast<int64_t>(std::fmod(floor, 2.0) == 0.0 ? floor
                                                           : floor + 1);  // a tie goes to the even one
}

torch::nn::AnyModule make_any_conv(const ConvModuleOptions& options, bool depthwise) {
  if (depthwise) return torch::nn::AnyModule(DepthwiseSeparableConvModule(options));
  return torch::nn::AnyModule(ConvModule(options));
}

FocusImpl::FocusImpl(int64_t in_channels, int64_t out_channels) {
  conv = register_module("conv", ConvModule(ConvModuleOptions(4 * in_channels, out_channels, 3)));
}

torch::Tensor FocusImpl::forward(const torch::Tensor& x) {
  auto even = idx::Slice(0, idx::None, 2), odd = idx::Slice(1, idx::None, 2);
  // Rows then columns: top-left, bottom-left, top-right, bottom-right.
  auto patches = torch::cat({x.index({idx::Ellipsis, even, even}), x.index({idx::Ellipsis, odd, even}),
                             x.index({idx::Ellipsis, even, odd}), x.index({idx::Ellipsis, odd, odd})},
                            1);
  return conv(patches);
}

namespace {
constexpr std::array<int64_t, 3> kSppKernels = {5, 9, 13};
}  // namespace

SppBottleneckImpl::SppBottleneckImpl(int64_t in_channels, int64_t out_channels) {
  const int64_t mid = in_channels / 2;
  conv1 = register_module("conv1", ConvModule(ConvModuleOptions(in_channels, mid, 1)));
  conv2 = register_module("conv2", ConvModule(ConvModuleOptions(
                                       mid * static_cast<int64_t>(kSppKernels.size() + 1), out_channels, 1)));
}

torch::Tensor SppBottleneckImpl::forward(const torch::Tensor& x) {
  auto y = conv1(x);
  std::vector<torch::Tensor> parts = {y};
  for (int64_t k : kSppKernels) parts.push_back(torch::max_pool2d(y, {k, k}, {1, 1}, {k / 2, k / 2}));
  return conv2(torch::cat(parts, 1));
}

DarknetBottleneckImpl::DarknetBottleneckImpl(int64_t in_channels, int64_t out_channels, bool add_identity,
                                             bool depthwise)
    : add_identity_(add_identity && in_channels == out_channels) {
  const int64_t hidden = out_channels;  // expansion 1.0, as CSPLayer builds it
  conv1 = register_module("conv1", ConvModule(ConvModuleOptions(in_channels, hidden, 1)));
  conv2 = make_conv(*this, "conv2", ConvModuleOptions(hidden, out_channels, 3), depthwise);
}

torch::Tensor DarknetBottleneckImpl::forward(const torch::Tensor& x) {
  auto out = conv2.forward(conv1(x));
  return add_identity_ ? out + x : out;
}

CspLayerImpl::CspLayerImpl(int64_t in_channels, int64_t out_channels, int64_t num_blocks, bool add_identity,
                           bool depthwise) {
  const int64_t mid = static_cast<int64_t>(static_cast<double>(out_channels) * 0.5);
  main_conv = register_module("main_conv", ConvModule(ConvModuleOptions(in_channels, mid, 1)));
  short_conv = register_module("short_conv", ConvModule(ConvModuleOptions(in_channels, mid, 1)));
  final_conv = register_module("final_conv", ConvModule(ConvModuleOptions(2 * mid, out_channels, 1)));
  blocks = register_module("blocks", torch::nn::Sequential());
  for (int64_t j = 0; j < num_blocks; ++j)
    blocks->push_back(DarknetBottleneck(mid, mid, add_identity, depthwise));
}

torch::Tensor CspLayerImpl::forward(const torch::Tensor& x) {
  auto shortcut = short_conv(x);
  auto main = blocks->forward(main_conv(x));
  return final_conv(torch::cat({main, shortcut}, 1));
}

namespace {
// P5: in, out, blocks, add_identity, use_spp.
struct StageSetting {
  int64_t in, out, blocks;
  bool add_identity, spp;
};
constexpr std::array<StageSetting, 4> kP5 = {{{64, 128, 3, true, false},
                                              {128, 256, 9, true, false},
                                              {256, 512, 9, true, false},
                                              {512, 1024, 3, false, true}}};
}  // namespace

CspDarknetImpl::CspDarknetImpl(double deepen, double widen, bool depthwise) {
  if (!(deepen > 0) || !(widen > 0))
    throw std::invalid_argument("CSPDarknet: deepen_factor and widen_factor must be positive, got " +
                                std::to_string(deepen) + " and " + std::to_string(widen));
  auto widened = [widen](int64_t c) { return static_cast<int64_t>(static_cast<double>(c) * widen); };
  stem = register_module("stem", Focus(3, widened(kP5[0].in)));
  for (size_t i = 0; i < kP5.size(); ++i) {
    const StageSetting& s = kP5[i];
    const int64_t in = widened(s.in), out = widened(s.out);
    const int64_t blocks = std::max<int64_t>(python_round(static_cast<double>(s.blocks) * deepen), 1);
    torch::nn::Sequential stage;
    stage->push_back(make_any_conv(ConvModuleOptions(in, out, 3).with_stride(2), depthwise));
    if (s.spp) stage->push_back(SppBottleneck(out, out));
    stage->push_back(CspLayer(out, out, blocks, s.add_identity, depthwise));
    stages.push_back(register_module("stage" + std::to_string(i + 1), stage));
    if (i > 0) out_channels_.push_back(out);
  }
}

std::vector<torch::Tensor> CspDarknetImpl::forward(const torch::Tensor& x) {
  auto y = stem(x);
  std::vector<torch::Tensor> outs;
  for (size_t i = 0; i < stages.size(); ++i) {
    y = stages[i]->forward(y);
    if (i > 0) outs.push_back(y);  // out_indices (2, 3, 4): stage2..stage4
  }
  return outs;
}

}  // namespace automm::detection
