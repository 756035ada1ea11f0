// Tests of image decoding (data/image/image_io.h) against PIL: image_reference.py,
// run by /usr/bin/python3 with Debian's python3-pil, writes images in every
// format and mode with PIL's `Image.open(f).convert("RGB")` pixels beside them;
// ours must equal them exactly (JPEG and WebP included: same libjpeg-turbo and
// libwebp). Corrupt input must raise ImageDecodeError naming its source.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "automm_test_paths.h"
#include "data/image/image_io.h"
#include "test_util.h"

namespace automm {
namespace {

using automm::testing::Contains;
using automm::testing::message_of;
using automm::testing::TempDir;
using automm::testing::write_file;
using automm::testing::XorShiftRng;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Reference {
  std::string name;
  int64_t width = 0, height = 0;
};

// PIL's files, written once for all the tests here.
class ImageIOReference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    skip_reason_ = testing::python_reference_missing("PIL", "python3-pil", "the image decoding tests");
    if (!skip_reason_.empty()) return;
    error_ = testing::run_reference_command(
        "/usr/bin/python3 " AUTOMM_SOURCE_DIR "/tests/data/image_reference.py " + dir_->path().string(),
        dir_->file("log.txt"));
    if (!error_.empty()) return;
    std::ifstream manifest(dir_->file("manifest.txt"));
    for (Reference r; manifest >> r.name >> r.width >> r.height;) references_.push_back(r);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(error_.empty()) << error_;
  }
  static std::string file(const std::string& name) { return dir_->file(name); }
  static std::string bytes(const std::string& name) { return read_bytes(file(name)); }

  static inline TempDir* dir_ = nullptr;
  static inline std::string skip_reason_;  // PIL is absent
  static inline std::string error_;        // the reference script failed
  static inline std::vector<Reference> references_;
};

// Single-frame files, one or two per format, for the corruption tests.
const std::vector<std::string> kSingleFrame = {"q90_420.jpg", "progressive.jpg",  "rgb.png",
                                               "interlaced_rgb.png", "lossy.webp", "lossless_alpha.webp",
                                               "palette.gif", "rgb24.bmp",  "palette4.bmp"};

TEST_F(ImageIOReference, EqualsPilPixelForPixelInEveryFormatAndMode) {
  ASSERT_GE(references_.size(), 40u) << "image_reference.py wrote too few images";
  for (const Reference& r : references_) {
    SCOPED_TRACE(r.name);
    const Image image = read_image(file(r.name));
    ASSERT_EQ(image.width, r.width);
    ASSERT_EQ(image.height, r.height);
    const std::string expected = bytes(r.name + ".rgb");
    ASSERT_EQ(image.pixels.size(), expected.size());
    int max_diff = 0;
    size_t differing = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
      const int diff = std::abs(int{image.pixels[i]} - int{static_cast<uint8_t>(expected[i])});
      max_diff = std::max(max_diff, diff);
      differing += diff != 0;
    }
    EXPECT_EQ(max_diff, 0) << differing << " of " << expected.size() << " samples differ from PIL";
  }
  std::printf("[ image parity ] %zu files, all compared exactly against PIL\n", references_.size());
}

TEST_F(ImageIOReference, DecodesBase64AndDataUris) {
  const std::string png = bytes("rgba.png");
  static const char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string text;
  for (size_t i = 0; i < png.size(); i += 3) {
    uint32_t group = static_cast<uint8_t>(png[i]) << 16;
    if (i + 1 < png.size()) group |= static_cast<uint8_t>(png[i + 1]) << 8;
    if (i + 2 < png.size()) group |= static_cast<uint8_t>(png[i + 2]);
    for (size_t k = 0; k < 4; ++k) text += k <= png.size() - i ? kDigits[(group >> (18 - 6 * k)) & 63] : '=';
  }
  const Image reference = read_image(file("rgba.png"));
  EXPECT_EQ(decode_image(decode_base64(text), "row 0").pixels, reference.pixels);
  EXPECT_EQ(decode_image(decode_base64("data:image/png;base64," + text), "row 0").pixels, reference.pixels);
}

TEST_F(ImageIOReference, TruncatedFilesThrowNamingTheSource) {
  const std::string source = "row 7 of column 'photo'";
  for (const std::string& name : kSingleFrame) {
    const std::string whole = bytes(name);
    for (size_t length : {size_t{1}, size_t{8}, size_t{20}, size_t{60}, whole.size() / 4, whole.size() / 2,
                          whole.size() * 3 / 4}) {
      SCOPED_TRACE(name + " cut to " + std::to_string(length) + " bytes");
      const std::string message = message_of<ImageDecodeError>([&] { decode_image(whole.substr(0, length), source); });
      EXPECT_TRUE(Contains(message, source));
    }
  }
}

// Flipped bytes in valid files: every outcome but a crash, a hang or stderr
// output is fine, so the test decodes and only checks the exception type.
TEST_F(ImageIOReference, CorruptedFilesEitherDecodeOrThrowQuietly) {
  XorShiftRng rng(99);
  size_t failures = 0, decoded = 0;
  ::testing::internal::CaptureStderr();
  for (const std::string& name : kSingleFrame) {
    const std::string whole = bytes(name);
    for (int trial = 0; trial < 40; ++trial) {
      std::string corrupt = whole;
      for (int k = 0; k < 1 + trial % 8; ++k) corrupt[4 + rng.below(corrupt.size() - 4)] = static_cast<char>(rng.next());
      try {
        decode_image(corrupt, name);
        ++decoded;
      } catch (const ImageDecodeError& e) {
        ++failures;
        EXPECT_TRUE(Contains(e.what(), name));
      }
    }
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_GT(failures, 0u);
  std::printf("[ corruption ] %zu decoded, %zu rejected\n", decoded, failures);
}

// Writes big-endian `value` into `bytes` at `at`, `width` bytes wide.
void put_be(std::string& bytes, size_t at, uint32_t value, int width) {
  for (int i = 0; i < width; ++i) bytes[at + i] = static_cast<char>(value >> (8 * (width - 1 - i)));
}

uint32_t crc32(const std::string& data) {
  uint32_t crc = 0xFFFFFFFF;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320 & (0u - (crc & 1)));
  }
  return ~crc;
}

TEST_F(ImageIOReference, AbsurdDeclaredSizesAreRejectedBeforeAllocating) {
  std::string jpeg = bytes("q90_420.jpg");
  const size_t sof = jpeg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  put_be(jpeg, sof + 5, 65000, 2);
  put_be(jpeg, sof + 7, 65000, 2);
  std::string png = bytes("rgb.png");  // IHDR data at 16, its CRC at 29
  put_be(png, 16, 100000, 4);
  put_be(png, 20, 100000, 4);
  put_be(png, 29, crc32(png.substr(12, 17)), 4);
  std::string gif = bytes("palette.gif");
  gif[6] = gif[7] = gif[8] = gif[9] = '\xFF';  // logical screen 65535x65535
  std::string bmp = bytes("rgb24.bmp");
  for (size_t at : {18, 22}) bmp.replace(at, 4, std::string("\xA0\x86\x01\x00", 4));  // 100000, little-endian
  for (const std::string* data : {&jpeg, &png, &gif, &bmp})
    EXPECT_TRUE(Contains(message_of<ImageDecodeError>([&] { decode_image(*data, "huge"); }), "2^28"));
}

TEST(ImageIOErrors, NonImagesSayWhatTheyAre) {
  TempDir dir;
  write_file(dir.file("photo.jpg"), "id,label\n1,cat\n");
  std::string message = message_of<ImageDecodeError>([&] { read_image(dir.file("photo.jpg")); });
  EXPECT_TRUE(Contains(message, dir.file("photo.jpg")));
  EXPECT_TRUE(Contains(message, "text"));
  EXPECT_TRUE(Contains(message_of<ImageDecodeError>([] { decode_image("", "row 3"); }), "empty"));
  EXPECT_TRUE(Contains(message_of<ImageDecodeError>([&] { read_image(dir.file("missing.png")); }),
                       dir.file("missing.png")));
  EXPECT_TRUE(Contains(message_of<ImageDecodeError>([&] { read_image(dir.path().string()); }), "regular file"));
  XorShiftRng rng(5);
  for (int trial = 0; trial < 50; ++trial) {
    std::string noise(1 + rng.below(300), '\0');
    for (char& c : noise) c = static_cast<char>(rng.next());
    // Random bytes behind each signature, then alone.
    for (const std::string& magic : {std::string("\xFF\xD8\xFF"), std::string("\x89PNG\r\n\x1A\n"),
                                     std::string("GIF89a"), std::string("RIFF\x40\0\0\0WEBP", 12),
                                     std::string("BM"), std::string()}) {
      const std::string data = magic + noise;
      try {
        decode_image(data, "noise");
      } catch (const ImageDecodeError& e) {
        EXPECT_TRUE(Contains(e.what(), "noise"));
      }
    }
  }
}

TEST(ImageIOErrors, RleBmpIsRejectedClearly) {
  std::string bmp = "BM" + std::string(52, '\0');
  bmp[14] = 40;                  // BITMAPINFOHEADER
  bmp[18] = bmp[22] = 4;         // 4x4
  bmp[26] = 1, bmp[28] = 8;      // planes, bits per pixel
  bmp[30] = 1;                   // BI_RLE8
  EXPECT_TRUE(Contains(message_of<ImageDecodeError>([&] { decode_image(bmp, "scan.bmp"); }), "RLE"));
}

TEST(ImageIOBase64, RoundTripsBothAlphabetsWithAndWithoutPadding) {
  static const char kStandard[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  XorShiftRng rng(17);
  for (size_t length = 0; length < 40; ++length) {
    std::string data(length, '\0');
    for (char& c : data) c = static_cast<char>(rng.next());
    std::string standard;
    for (size_t i = 0; i < length; i += 3) {
      uint32_t group = 0;
      for (size_t k = 0; k < 3; ++k) group = group << 8 | (i + k < length ? static_cast<uint8_t>(data[i + k]) : 0);
      for (size_t k = 0; k < 4; ++k) standard += k <= length - i ? kStandard[(group >> (18 - 6 * k)) & 63] : '=';
    }
    std::string url_safe = standard, unpadded = standard, wrapped;
    for (char& c : url_safe) c = c == '+' ? '-' : c == '/' ? '_' : c;
    unpadded.erase(unpadded.find_last_not_of('=') + 1);
    for (size_t i = 0; i < standard.size(); ++i) wrapped += (i % 7 == 6 ? "\r\n " : "") + std::string(1, standard[i]);
    for (const std::string* text : {&standard, &url_safe, &unpadded, &wrapped}) EXPECT_EQ(decode_base64(*text), data);
  }
}

TEST(ImageIOBase64, InvalidTextIsAnError) {
  EXPECT_TRUE(Contains(message_of<ImageDecodeError>([] { decode_base64("QUJD$A==", "row 2"); }), "offset 4"));
  EXPECT_TRUE(Contains(message_of<ImageDecodeError>([] { decode_base64("QUJDR", "row 2"); }), "row 2"));
  message_of<ImageDecodeError>([] { decode_base64("QQ==QQ=="); });
  message_of<ImageDecodeError>([] { decode_base64("QQ==="); });
  message_of<ImageDecodeError>([] { decode_base64("data:image/png,QUJD"); });
}

TEST_F(ImageIOReference, MagicNumbersIdentifyImageBytes) {
  for (const Reference& r : references_) EXPECT_TRUE(looks_like_image_bytes(bytes(r.name))) << r.name;
  for (const char* text : {"", "hello", "BMW 3 series touring", "RIFF....WAVE", "\xFF\xD8", "GIF88a"})
    EXPECT_FALSE(looks_like_image_bytes(text)) << text;
}

TEST(ImageIOPaths, SplitsOnSemicolonsTrimmingAndDroppingEmptyParts) {
  using Paths = std::vector<std::string>;
  EXPECT_EQ(split_image_paths(" a.jpg ; dir/b c.png;; \t;c.gif\n"), (Paths{"a.jpg", "dir/b c.png", "c.gif"}));
  EXPECT_EQ(split_image_paths("only.png"), Paths{"only.png"});
  EXPECT_EQ(split_image_paths(""), Paths{});
  EXPECT_EQ(split_image_paths(" ; ;"), Paths{});
}

TEST_F(ImageIOReference, DecodeSpeed640x480Jpeg) {
  const std::string jpeg = bytes("big_640x480.jpg");
  const int runs = 40;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; ++i) ASSERT_EQ(decode_image(jpeg, "bench").width, 640);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ speed ] 640x480 JPEG q90 4:2:0: %.0f images/s (one thread)\n", runs / seconds);
}

}  // namespace
}  // namespace automm
