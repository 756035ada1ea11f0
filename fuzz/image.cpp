// One image decoder, picked at build time (AUTOMM_FUZZ_IMAGE_FORMAT: jpeg, png,
// gif, webp or bmp): inputs lacking the format's magic number get it prepended,
// so that every input reaches that decoder through decode_image's sniffing.
#include "data/image/image_io.h"
#include "fuzz_util.h"

namespace {

std::string with_magic(std::string bytes) {
  const auto starts = [&](const std::string& magic, size_t at = 0) {
    return bytes.size() >= at + magic.size() && bytes.compare(at, magic.size(), magic) == 0;
  };
  const std::string format = AUTOMM_FUZZ_IMAGE_FORMAT;
  if (format == "jpeg" && !starts("\xFF\xD8\xFF")) return "\xFF\xD8\xFF" + bytes;
  if (format == "png" && !starts("\x89PNG\r\n\x1A\n")) return "\x89PNG\r\n\x1A\n" + bytes;
  if (format == "gif" && !starts("GIF87a") && !starts("GIF89a")) return "GIF89a" + bytes;
  if (format == "bmp" && !starts("BM")) return "BM" + bytes;
  if (format == "webp" && !(starts("RIFF") && starts("WEBP", 8))) {
    const uint32_t riff_size = static_cast<uint32_t>(bytes.size() + 4);
    std::string header = "RIFF";
    for (int k = 0; k < 4; ++k) header.push_back(static_cast<char>((riff_size >> (8 * k)) & 0xFF));
    return header + "WEBP" + bytes;
  }
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes = with_magic(automm::fuzz::as_string(data, size));
  automm::fuzz::expect_result_or_error([&] {
    const automm::Image image = automm::decode_image(bytes, "fuzz." AUTOMM_FUZZ_IMAGE_FORMAT);
    // A decoded image has pixels, all of them.
    if (image.empty() || image.pixels.size() != static_cast<size_t>(image.width * image.height * 3)) std::abort();
  });
  return 0;
}
