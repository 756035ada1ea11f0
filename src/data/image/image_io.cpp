// Image decoders that reproduce PIL's `Image.open(f).convert("RGB")` pixels.
// The C libraries report errors through callbacks; libjpeg and libpng must not
// return from theirs, so those longjmp back to run_guarded and become
// ImageDecodeError there. None of them writes to stderr.
#include "data/image/image_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csetjmp>
#include <cstdio>  // jpeglib.h uses FILE
#include <cstdlib>
#include <cstring>
#include <memory>

#include <gif_lib.h>
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <webp/decode.h>
#include <webp/demux.h>

namespace automm {
namespace {

constexpr int64_t kMaxPixels = int64_t{1} << 28;

[[noreturn]] void fail(const std::string& source, const std::string& why) {
  throw ImageDecodeError("cannot decode " + source + " as an image: " + why);
}

// Called before anything is allocated for the declared size, so a corrupt
// header cannot ask for gigabytes.
void check_dimensions(int64_t width, int64_t height, const char* format, const std::string& source) {
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  if (width <= 0 || height <= 0) fail(source, std::string(format) + " header declares an empty image (" + size + ")");
  if (width > kMaxPixels / height)
    fail(source, std::string(format) + " header declares " + size +
                     " pixels, more than the 2^28 accepted (corrupt header?)");
}

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t le32(const uint8_t* p) { return le16(p) | static_cast<uint32_t>(le16(p + 2)) << 16; }

// 256 RGB entries. Indices past a file's own palette read PIL's default
// palette, a gray ramp.
class Palette {
 public:
  Palette() {
    for (int i = 0; i < 256; ++i) std::fill_n(&rgb_[3 * i], 3, static_cast<uint8_t>(i));
  }
  void set(int i, uint8_t r, uint8_t g, uint8_t b) {
    rgb_[3 * i] = r;
    rgb_[3 * i + 1] = g;
    rgb_[3 * i + 2] = b;
  }
  void lookup(const uint8_t* indices, size_t n, uint8_t* out) const {
    for (size_t i = 0; i < n; ++i) std::memcpy(out + 3 * i, &rgb_[3 * indices[i]], 3);
  }

 private:
  std::array<uint8_t, 256 * 3> rgb_;
};

// Runs `step`; returns false when a C library's error callback longjmps to
// `jump`. setjmp sits in this frame, which owns no C++ objects, and `step`
// must own none either, so the jump skips no destructor.
template <typename Step>
bool run_guarded(std::jmp_buf& jump, Step&& step) {
  if (setjmp(jump)) return false;
  step();
  return true;
}

// ---- JPEG (libjpeg-turbo, PIL's settings: JDCT_ISLOW, fancy upsampling) ----

struct JpegDecoder {
  jpeg_decompress_struct cinfo{};
  jpeg_error_mgr errors{};
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = "";
  ~JpegDecoder() { jpeg_destroy_decompress(&cinfo); }
};

void jpeg_fail(j_common_ptr cinfo) {
  auto* decoder = static_cast<JpegDecoder*>(cinfo->client_data);
  (*cinfo->err->format_message)(cinfo, decoder->message);
  std::longjmp(decoder->jump, 1);
}

// libjpeg pads a file that ends early with gray and only warns; PIL fails on
// a truncated file, and ignores the other warnings (recoverable corruption).
void jpeg_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_fail(cinfo);
}

void jpeg_silent(j_common_ptr) {}

// PIL reads Adobe CMYK as inverted ("CMYK;I") and converts with its cmyk2rgb:
// channel = nk - nk * ink / 255 with nk = 255 - black, rounded its way.
void cmyk_to_rgb(const uint8_t* cmyk, int64_t width, uint8_t* rgb) {
  for (int64_t x = 0; x < width; ++x, cmyk += 4, rgb += 3) {
    const int nk = cmyk[3];  // 255 - (255 - stored k)
    for (int c = 0; c < 3; ++c) {
      const int t = (255 - cmyk[c]) * nk + 128;
      rgb[c] = static_cast<uint8_t>(nk - (((t >> 8) + t) >> 8));
    }
  }
}

Image decode_jpeg(const std::string& bytes, const std::string& source) {
  JpegDecoder d;
  jpeg_decompress_struct& cinfo = d.cinfo;
  cinfo.err = jpeg_std_error(&d.errors);
  d.errors.error_exit = jpeg_fail;
  d.errors.emit_message = jpeg_message;
  d.errors.output_message = jpeg_silent;
  cinfo.client_data = &d;  // jpeg_create_decompress keeps it and err
  const auto jpeg_failure = [&] { fail(source, std::string("JPEG: ") + d.message); };
  if (!run_guarded(d.jump, [&] {
        jpeg_create_decompress(&cinfo);
        jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
        jpeg_read_header(&cinfo, TRUE);
      }))
    jpeg_failure();
  check_dimensions(cinfo.image_width, cinfo.image_height, "JPEG", source);
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;  // libjpeg expands grayscale itself
  Image image(cinfo.image_width, cinfo.image_height);
  std::vector<uint8_t> cmyk_row(cmyk ? static_cast<size_t>(image.width) * 4 : 0);
  if (!run_guarded(d.jump, [&] {
        jpeg_start_decompress(&cinfo);
        if (cinfo.output_width != image.width || cinfo.output_height != image.height)
          fail(source, "JPEG: decoder output size differs from the header");
        while (cinfo.output_scanline < cinfo.output_height) {
          const int64_t y = cinfo.output_scanline;
          JSAMPROW row = cmyk ? cmyk_row.data() : image.row(y);
          if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) fail(source, "JPEG: the decoder stalled");
          if (cmyk) cmyk_to_rgb(cmyk_row.data(), image.width, image.row(y));
        }
        // No jpeg_finish_decompress: like PIL, accept a file whose EOI marker is missing.
      }))
    jpeg_failure();
  return image;
}

// ---- PNG (libpng) ----

struct PngDecoder {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::jmp_buf jump;
  char message[256] = "";
  const std::string* bytes = nullptr;
  size_t offset = 0;
  ~PngDecoder() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

void png_fail(png_structp png, png_const_charp message) {
  auto* d = static_cast<PngDecoder*>(png_get_error_ptr(png));
  std::snprintf(d->message, sizeof d->message, "%s", message);
  std::longjmp(d->jump, 1);
}

void png_silent(png_structp, png_const_charp) {}

void png_read_bytes(png_structp png, png_bytep out, size_t n) {
  auto* d = static_cast<PngDecoder*>(png_get_io_ptr(png));
  if (n > d->bytes->size() - d->offset) png_error(png, "the data ends early (truncated file?)");
  std::memcpy(out, d->bytes->data() + d->offset, n);
  d->offset += n;
}

// `indices` (when given) receives a palette image's indices; `single_channel`
// whether the file is gray (with or without alpha) or indexed.
Image decode_png(const std::string& bytes, const std::string& source, std::vector<uint8_t>* indices = nullptr,
                 bool* single_channel = nullptr) {
  PngDecoder d;
  d.bytes = &bytes;
  d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d, png_fail, png_silent);
  if (d.png) d.info = png_create_info_struct(d.png);
  if (!d.info) fail(source, "PNG: libpng could not allocate its decoder");
  const auto png_failure = [&] { fail(source, std::string("PNG: ") + d.message); };
  png_uint_32 width = 0, height = 0;
  int depth = 0, color = 0;
  if (!run_guarded(d.jump, [&] {
        png_set_read_fn(d.png, &d, png_read_bytes);
        png_read_info(d.png, d.info);
        png_get_IHDR(d.png, d.info, &width, &height, &depth, &color, nullptr, nullptr, nullptr);
      }))
    png_failure();
  check_dimensions(width, height, "PNG", source);
  // PIL reads 16-bit gray as 32-bit integers, which convert("RGB") clips to
  // 0..255; palettes go through Palette for PIL's out-of-range entries. Both
  // decode to samples first; everything else lands in the image directly.
  const bool gray16 = color == PNG_COLOR_TYPE_GRAY && depth == 16;
  const bool indexed = color == PNG_COLOR_TYPE_PALETTE;
  const size_t sample_bytes = gray16 ? 2 : indexed ? 1 : 3;
  Image image(width, height);
  std::vector<uint8_t> samples(gray16 || indexed ? image.pixels.size() / 3 * sample_bytes : 0);
  std::vector<png_bytep> rows(height);
  for (size_t y = 0; y < height; ++y)
    rows[y] = samples.empty() ? image.row(y) : samples.data() + y * width * sample_bytes;
  Palette palette;
  if (!run_guarded(d.jump, [&] {
        png_colorp entries = nullptr;
        int count = 0;
        if (indexed && png_get_PLTE(d.png, d.info, &entries, &count))
          for (int i = 0; i < std::min(count, 256); ++i) palette.set(i, entries[i].red, entries[i].green, entries[i].blue);
        if (indexed) {
          png_set_packing(d.png);  // 1/2/4-bit indices to one byte each
        } else if (!gray16) {
          png_set_strip_16(d.png);  // keeps the high byte, as PIL's ";16B" unpackers do
          png_set_strip_alpha(d.png);
          png_set_expand_gray_1_2_4_to_8(d.png);
          png_set_gray_to_rgb(d.png);
        }
        png_set_interlace_handling(d.png);
        png_read_update_info(d.png, d.info);
        if (png_get_rowbytes(d.png, d.info) != width * sample_bytes) png_error(d.png, "unexpected row layout");
        png_read_image(d.png, rows.data());  // no png_read_end: trailing chunks are not pixels
      }))
    png_failure();
  if (indexed) palette.lookup(samples.data(), samples.size(), image.pixels.data());
  if (indexed && indices) *indices = samples;
  if (single_channel) *single_channel = indexed || (color & PNG_COLOR_MASK_COLOR) == 0;
  if (gray16) {
    for (size_t i = 0; i < samples.size() / 2; ++i) {
      const int value = samples[2 * i] << 8 | samples[2 * i + 1];
      std::fill_n(&image.pixels[3 * i], 3, static_cast<uint8_t>(std::min(value, 255)));
    }
  }
  return image;
}

// ---- WebP (libwebp; PIL decodes through WebPAnimDecoder, which for a still
// image gives the same pixels as a direct decode) ----

std::string webp_status(VP8StatusCode status) {
  switch (status) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_BITSTREAM_ERROR: return "corrupt bitstream";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "the data ends early (truncated file?)";
    default: return "libwebp status " + std::to_string(static_cast<int>(status));
  }
}

Image decode_animated_webp(const std::string& bytes, const std::string& source) {
  WebPAnimDecoderOptions options;
  if (!WebPAnimDecoderOptionsInit(&options)) fail(source, "WebP: libwebp version mismatch");
  options.color_mode = MODE_RGBA;  // what PIL asks for; alpha is dropped below
  options.use_threads = 0;
  const WebPData data{reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
  std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder*)> decoder(WebPAnimDecoderNew(&data, &options),
                                                                       WebPAnimDecoderDelete);
  WebPAnimInfo info;
  if (!decoder || !WebPAnimDecoderGetInfo(decoder.get(), &info))
    fail(source, "WebP: corrupt or truncated animation");
  check_dimensions(info.canvas_width, info.canvas_height, "WebP", source);
  uint8_t* rgba = nullptr;
  int timestamp = 0;
  if (!WebPAnimDecoderGetNext(decoder.get(), &rgba, &timestamp))
    fail(source, "WebP: the first frame is corrupt or truncated");
  Image image(info.canvas_width, info.canvas_height);
  for (size_t i = 0; i < image.pixels.size() / 3; ++i) std::memcpy(&image.pixels[3 * i], rgba + 4 * i, 3);
  return image;
}

Image decode_webp(const std::string& bytes, const std::string& source) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  // The RIFF size catches a truncated file before the image buffer is allocated.
  if (bytes.size() < 12 || le32(data + 4) > bytes.size() - 8)
    fail(source, "WebP: " + webp_status(VP8_STATUS_NOT_ENOUGH_DATA));
  WebPDecoderConfig config;
  if (!WebPInitDecoderConfig(&config)) fail(source, "WebP: libwebp version mismatch");
  VP8StatusCode status = WebPGetFeatures(data, bytes.size(), &config.input);
  if (status != VP8_STATUS_OK) fail(source, "WebP: " + webp_status(status));
  check_dimensions(config.input.width, config.input.height, "WebP", source);
  if (config.input.has_animation) return decode_animated_webp(bytes, source);
  Image image(config.input.width, config.input.height);
  config.output.colorspace = MODE_RGB;
  config.output.is_external_memory = 1;
  config.output.u.RGBA.rgba = image.pixels.data();
  config.output.u.RGBA.stride = static_cast<int>(image.width * 3);
  config.output.u.RGBA.size = image.pixels.size();
  status = WebPDecode(data, bytes.size(), &config);
  WebPFreeDecBuffer(&config.output);
  if (status != VP8_STATUS_OK) fail(source, "WebP: " + webp_status(status));
  return image;
}

// ---- GIF (giflib; first frame, as PIL loads it) ----

struct GifInput {
  const std::string* bytes;
  size_t offset;
};

int gif_read_bytes(GifFileType* gif, GifByteType* out, int n) {
  auto* in = static_cast<GifInput*>(gif->UserData);
  const size_t count = std::min(static_cast<size_t>(n), in->bytes->size() - in->offset);
  std::memcpy(out, in->bytes->data() + in->offset, count);
  in->offset += count;
  return static_cast<int>(count);
}

struct GifCloser {
  void operator()(GifFileType* gif) const {
    int ignored = 0;
    DGifCloseFile(gif, &ignored);
  }
};

Image decode_gif(const std::string& bytes, const std::string& source) {
  GifInput input{&bytes, 0};
  int error = 0;
  std::unique_ptr<GifFileType, GifCloser> gif(DGifOpen(&input, gif_read_bytes, &error));
  const auto gif_failure = [&](int code) {
    const char* text = GifErrorString(code);
    // giflib names the record it failed to read, not that the data ran out.
    const char* truncated = input.offset == bytes.size() ? "the data ends early (truncated file?): " : "";
    fail(source, std::string("GIF: ") + truncated + (text ? text : "giflib error " + std::to_string(code)));
  };
  if (!gif) gif_failure(error);
  int transparent = -1;
  for (GifRecordType type = UNDEFINED_RECORD_TYPE; type != IMAGE_DESC_RECORD_TYPE;) {
    if (DGifGetRecordType(gif.get(), &type) == GIF_ERROR) gif_failure(gif->Error);
    if (type == TERMINATE_RECORD_TYPE) fail(source, "GIF: the file holds no image");
    if (type != EXTENSION_RECORD_TYPE) continue;
    int code = 0;
    GifByteType* block = nullptr;
    if (DGifGetExtension(gif.get(), &code, &block) == GIF_ERROR) gif_failure(gif->Error);
    // PIL fills the canvas around the first frame with its transparent index.
    if (code == GRAPHICS_EXT_FUNC_CODE && block && block[0] >= 4) transparent = (block[1] & 1) ? block[4] : -1;
    while (block)
      if (DGifGetExtensionNext(gif.get(), &block) == GIF_ERROR) gif_failure(gif->Error);
  }
  if (DGifGetImageDesc(gif.get()) == GIF_ERROR) gif_failure(gif->Error);
  const GifImageDesc& frame = gif->Image;
  // PIL grows the canvas when the frame reaches past the logical screen.
  const int64_t width = std::max<int64_t>(gif->SWidth, int64_t{frame.Left} + frame.Width);
  const int64_t height = std::max<int64_t>(gif->SHeight, int64_t{frame.Top} + frame.Height);
  check_dimensions(width, height, "GIF", source);
  std::vector<uint8_t> indices(static_cast<size_t>(width * height), static_cast<uint8_t>(std::max(transparent, 0)));
  const bool interlaced = frame.Interlace && frame.Height > 0;
  static constexpr int kPassStart[] = {0, 4, 2, 1}, kPassStep[] = {8, 8, 4, 2};
  for (int pass = 0; pass < (interlaced ? 4 : 1) && frame.Width > 0; ++pass)
    for (int y = interlaced ? kPassStart[pass] : 0; y < frame.Height; y += interlaced ? kPassStep[pass] : 1)
      if (DGifGetLine(gif.get(), &indices[(frame.Top + y) * width + frame.Left], frame.Width) == GIF_ERROR)
        gif_failure(gif->Error);
  Palette palette;
  if (const ColorMapObject* map = frame.ColorMap ? frame.ColorMap : gif->SColorMap)
    for (int i = 0; i < std::min(map->ColorCount, 256); ++i)
      palette.set(i, map->Colors[i].Red, map->Colors[i].Green, map->Colors[i].Blue);
  Image image(width, height);
  palette.lookup(indices.data(), indices.size(), image.pixels.data());
  return image;
}

// ---- BMP (own parser: BITMAPCOREHEADER and BITMAPINFOHEADER..V5) ----

// One color channel of a 16/32-bit pixel, scaled to 8 bits as PIL's unpackers do.
struct BitfieldChannel {
  uint32_t mask = 0;
  int shift = 0;
  explicit BitfieldChannel(uint32_t m) : mask(m) {
    while (mask && !((mask >> shift) & 1)) ++shift;
  }
  uint8_t operator()(uint32_t pixel) const {
    if (!mask) return 0;
    return static_cast<uint8_t>(uint64_t{(pixel & mask) >> shift} * 255 / (mask >> shift));
  }
};

Image decode_bmp(const std::string& bytes, const std::string& source) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  const auto need = [&](uint64_t end, const char* part) {
    if (end > bytes.size()) fail(source, std::string("BMP: the data ends early, in the ") + part + " (truncated file?)");
  };
  need(18, "header");
  const uint32_t pixel_offset = le32(data + 10), header = le32(data + 14);
  if (header != 12 && header < 40) fail(source, "BMP: unsupported header size " + std::to_string(header));
  need(14 + uint64_t{header}, "header");
  const uint8_t* h = data + 14;
  const bool core = header == 12;  // OS/2 BITMAPCOREHEADER: 16-bit sizes, RGB palette triples
  int64_t width = core ? le16(h + 4) : static_cast<int32_t>(le32(h + 4));
  int64_t height = core ? le16(h + 6) : static_cast<int32_t>(le32(h + 8));
  const unsigned bpp = core ? le16(h + 10) : le16(h + 14);
  const uint32_t compression = core ? 0 : le32(h + 16), colors = core ? 0 : le32(h + 32);
  const bool bottom_up = height > 0;
  height = std::abs(height);
  check_dimensions(width, height, "BMP", source);

  uint64_t table = 14 + uint64_t{header};  // masks or palette follow the header
  uint32_t masks[3] = {0xFF0000, 0xFF00, 0xFF};
  if (bpp == 16) masks[0] = 0x7C00, masks[1] = 0x3E0, masks[2] = 0x1F;
  if (compression == 3 || compression == 6) {  // BI_BITFIELDS, BI_ALPHABITFIELDS
    if (bpp != 16 && bpp != 32) fail(source, "BMP: bitfields with " + std::to_string(bpp) + " bits per pixel");
    const uint8_t* m = h + 40;  // V2+ headers hold the masks; after a 40-byte header they follow it
    if (header < 52) {
      need(table + 12, "color masks");
      m = data + table;
      table += compression == 6 ? 16 : 12;
    }
    for (int c = 0; c < 3; ++c) masks[c] = le32(m + 4 * c);
  } else if (compression == 1 || compression == 2) {
    fail(source, "BMP: RLE-compressed files are not supported; re-save it uncompressed or as PNG");
  } else if (compression != 0) {
    fail(source, "BMP: unsupported compression " + std::to_string(compression) + " (embedded JPEG/PNG?)");
  }
  Palette palette;
  if (bpp == 1 || bpp == 2 || bpp == 4 || bpp == 8) {
    const uint64_t count = colors ? colors : 1u << bpp, entry = core ? 3 : 4;
    if (count > 256) fail(source, "BMP: palette of " + std::to_string(count) + " colors (at most 256)");
    need(table + count * entry, "palette");
    for (uint64_t i = 0; i < count; ++i) {
      const uint8_t* bgr = data + table + i * entry;
      palette.set(static_cast<int>(i), bgr[2], bgr[1], bgr[0]);
    }
    table += count * entry;
  } else if (bpp != 16 && bpp != 24 && bpp != 32) {
    fail(source, "BMP: unsupported " + std::to_string(bpp) + " bits per pixel");
  }
  const uint64_t stride = (static_cast<uint64_t>(width) * bpp + 31) / 32 * 4;
  const uint64_t start = pixel_offset ? pixel_offset : table;  // PIL also reads on when the offset is 0
  need(start + stride * height, "pixel data");

  Image image(width, height);
  const BitfieldChannel channels[3] = {BitfieldChannel(masks[0]), BitfieldChannel(masks[1]), BitfieldChannel(masks[2])};
  std::vector<uint8_t> indices(bpp <= 8 ? width : 0);
  for (int64_t y = 0; y < height; ++y) {
    const uint8_t* in = data + start + (bottom_up ? height - 1 - y : y) * stride;
    uint8_t* out = image.row(y);
    if (bpp <= 8) {
      const unsigned per_byte = 8 / bpp, index_mask = (1u << bpp) - 1;
      for (int64_t x = 0; x < width; ++x)
        indices[x] = (in[x / per_byte] >> (8 - bpp * (x % per_byte + 1))) & index_mask;
      palette.lookup(indices.data(), indices.size(), out);
    } else if (bpp == 24) {
      for (int64_t x = 0; x < width; ++x, in += 3, out += 3) out[0] = in[2], out[1] = in[1], out[2] = in[0];
    } else {
      for (int64_t x = 0; x < width; ++x, out += 3) {
        const uint32_t pixel = bpp == 16 ? le16(in + 2 * x) : le32(in + 4 * x);
        for (int c = 0; c < 3; ++c) out[c] = channels[c](pixel);
      }
    }
  }
  return image;
}

// ---- format sniffing ----

enum class Format { kJpeg, kPng, kGif, kBmp, kWebp, kUnknown };

Format sniff(const std::string& b) {
  const auto starts = [&](const char* magic, size_t len, size_t at = 0) {
    return b.size() >= at + len && b.compare(at, len, magic, len) == 0;
  };
  if (starts("\xFF\xD8\xFF", 3)) return Format::kJpeg;
  if (starts("\x89PNG\r\n\x1A\n", 8)) return Format::kPng;
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return Format::kGif;
  if (starts("RIFF", 4) && starts("WEBP", 4, 8)) return Format::kWebp;
  if (starts("BM", 2)) {
    if (b.size() < 18) return Format::kBmp;  // too short to tell; decode_bmp will say
    const uint32_t header = le32(reinterpret_cast<const uint8_t*>(b.data()) + 14);
    for (uint32_t known : {12u, 40u, 52u, 56u, 64u, 108u, 124u})
      if (header == known) return Format::kBmp;
  }
  return Format::kUnknown;
}

// Why bytes with no known signature are not an image, in words a user can act on.
std::string describe_unknown(const std::string& bytes) {
  if (bytes.empty()) return "the data is empty (0 bytes)";
  const std::string head = bytes.substr(0, 24);
  const bool text = std::all_of(head.begin(), head.end(), [](char c) {
    return (c >= 0x20 && c < 0x7F) || c == '\n' || c == '\r' || c == '\t';
  });
  if (text) return "it holds text (\"" + head + "...\"), not a JPEG, PNG, GIF, BMP or WebP file";
  std::string hex;
  char buffer[4];
  for (size_t i = 0; i < std::min<size_t>(bytes.size(), 8); ++i) {
    std::snprintf(buffer, sizeof buffer, "%02x ", static_cast<uint8_t>(bytes[i]));
    hex += buffer;
  }
  return "unknown format: it starts with bytes " + hex + "(supported: JPEG, PNG, GIF, BMP, WebP)";
}

}  // namespace

Image decode_image(const std::string& bytes, const std::string& source) {
  switch (sniff(bytes)) {
    case Format::kJpeg: return decode_jpeg(bytes, source);
    case Format::kPng: return decode_png(bytes, source);
    case Format::kGif: return decode_gif(bytes, source);
    case Format::kBmp: return decode_bmp(bytes, source);
    case Format::kWebp: return decode_webp(bytes, source);
    case Format::kUnknown: break;
  }
  fail(source, describe_unknown(bytes));
}

MaskImage decode_mask(const std::string& bytes, const std::string& source) {
  MaskImage out;
  std::vector<uint8_t> indices;
  bool single_channel = false;
  out.rgb = sniff(bytes) == Format::kPng ? decode_png(bytes, source, &indices, &single_channel)
                                         : decode_image(bytes, source);
  const size_t n = out.rgb.pixels.size() / 3;
  if (!indices.empty()) {
    out.kind = MaskImage::Kind::kPalette;
    out.values = std::move(indices);
    return out;
  }
  const uint8_t* p = out.rgb.pixels.data();
  if (!single_channel)  // an RGB file whose channels agree everywhere holds gray levels too
    for (size_t i = 0; i < n; ++i)
      if (p[3 * i] != p[3 * i + 1] || p[3 * i] != p[3 * i + 2]) {
        out.kind = MaskImage::Kind::kColor;
        return out;
      }
  out.kind = MaskImage::Kind::kGray;
  out.values.resize(n);
  for (size_t i = 0; i < n; ++i) out.values[i] = p[3 * i];
  return out;
}

std::string read_file_bytes(const std::string& path) {
  const auto cannot_read = [&](const std::string& why) {
    throw ImageDecodeError("cannot read image file " + path + ": " + why);
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) cannot_read(std::strerror(errno));
  const std::unique_ptr<const int, void (*)(const int*)> closer(&fd, [](const int* f) { ::close(*f); });
  struct stat info {};
  if (::fstat(fd, &info) != 0) cannot_read(std::strerror(errno));
  if (!S_ISREG(info.st_mode)) cannot_read("not a regular file");
  std::string bytes(static_cast<size_t>(info.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, &bytes[done], bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) cannot_read(std::strerror(errno));
    if (n == 0) break;  // shrank while being read: decode what is there
    done += static_cast<size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

Image read_image(const std::string& path) { return decode_image(read_file_bytes(path), path); }

MaskImage read_mask(const std::string& path) { return decode_mask(read_file_bytes(path), path); }

namespace {

struct PngEncoder {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::jmp_buf jump;
  char message[256] = "";
  std::string* out = nullptr;
  ~PngEncoder() { png_destroy_write_struct(&png, info ? &info : nullptr); }
};

void png_write_fail(png_structp png, png_const_charp message) {
  auto* e = static_cast<PngEncoder*>(png_get_error_ptr(png));
  std::snprintf(e->message, sizeof e->message, "%s", message);
  std::longjmp(e->jump, 1);
}

void png_write_bytes(png_structp png, png_bytep data, size_t n) {
  static_cast<PngEncoder*>(png_get_io_ptr(png))->out->append(reinterpret_cast<const char*>(data), n);
}

void png_flush_nothing(png_structp) {}

}  // namespace

std::string encode_png(const uint8_t* pixels, int64_t width, int64_t height, int channels) {
  if (channels != 1 && channels != 3) throw std::invalid_argument("encode_png writes 1 or 3 channels");
  if (width <= 0 || height <= 0) throw std::invalid_argument("encode_png: an empty image");
  std::string out;
  PngEncoder e;
  e.out = &out;
  e.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &e, png_write_fail, png_silent);
  if (e.png) e.info = png_create_info_struct(e.png);
  if (!e.info) throw std::runtime_error("PNG: libpng could not allocate its encoder");
  std::vector<png_bytep> rows(static_cast<size_t>(height));
  for (int64_t y = 0; y < height; ++y)
    rows[static_cast<size_t>(y)] = const_cast<png_bytep>(pixels + y * width * channels);
  if (!run_guarded(e.jump, [&] {
        png_set_write_fn(e.png, &e, png_write_bytes, png_flush_nothing);
        png_set_IHDR(e.png, e.info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8,
                     channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(e.png, e.info);
        png_write_image(e.png, rows.data());
        png_write_end(e.png, nullptr);
      }))
    throw std::runtime_error(std::string("PNG: ") + e.message);
  return out;
}

std::string decode_base64(const std::string& text, const std::string& source) {
  const auto invalid = [&](const std::string& why) {
    throw ImageDecodeError("cannot decode " + source + " as base64: " + why);
  };
  // Values: 0..63 digits of either alphabet, -1 invalid, -2 whitespace, -3 padding.
  static const std::array<int8_t, 256> kValues = [] {
    std::array<int8_t, 256> v;
    v.fill(-1);
    for (int i = 0; i < 26; ++i) v['A' + i] = static_cast<int8_t>(i), v['a' + i] = static_cast<int8_t>(26 + i);
    for (int i = 0; i < 10; ++i) v['0' + i] = static_cast<int8_t>(52 + i);
    v['+'] = v['-'] = 62;
    v['/'] = v['_'] = 63;
    for (char c : {' ', '\t', '\n', '\r', '\f', '\v'}) v[static_cast<uint8_t>(c)] = -2;
    v['='] = -3;
    return v;
  }();
  size_t begin = 0;
  if (text.compare(0, 5, "data:") == 0) {  // a data URI, as browsers and notebooks write them
    const size_t marker = text.find(";base64,");
    if (marker == std::string::npos) invalid("a data URI without \";base64,\"");
    begin = marker + 8;
  }
  std::string out;
  out.reserve((text.size() - begin) / 4 * 3 + 3);
  uint32_t bits = 0;
  int pending = 0;
  size_t digits = 0, padding = 0;
  for (size_t i = begin; i < text.size(); ++i) {
    const int8_t value = kValues[static_cast<uint8_t>(text[i])];
    if (value == -2) continue;
    if (value == -3) {
      ++padding;
      continue;
    }
    if (value < 0 || padding) {
      char shown[16];
      const auto byte = static_cast<uint8_t>(text[i]);
      std::snprintf(shown, sizeof shown, byte >= 0x20 && byte < 0x7F ? "'%c'" : "byte 0x%02x", byte);
      invalid(std::string("unexpected ") + shown + (value < 0 ? "" : " after '='") + " at offset " +
              std::to_string(i));
    }
    bits = bits << 6 | static_cast<uint32_t>(value);
    pending += 6;
    ++digits;
    if (pending >= 8) {
      pending -= 8;
      out.push_back(static_cast<char>((bits >> pending) & 0xFF));
    }
  }
  if (digits % 4 == 1 || padding > 2 || (padding && (digits + padding) % 4 != 0))
    invalid(std::to_string(digits) + " digits and " + std::to_string(padding) +
            " '=' do not make whole bytes (text cut short?)");
  return out;
}

bool looks_like_image_bytes(const std::string& bytes) { return sniff(bytes) != Format::kUnknown; }

std::vector<std::string> split_image_paths(const std::string& cell) {
  std::vector<std::string> paths;
  size_t start = 0;
  while (start <= cell.size()) {
    const size_t end = std::min(cell.find(';', start), cell.size());
    const size_t first = cell.find_first_not_of(" \t\r\n", start);
    if (first < end) {
      const size_t last = cell.find_last_not_of(" \t\r\n", end - 1);
      paths.push_back(cell.substr(first, last - first + 1));
    }
    start = end + 1;
  }
  return paths;
}

}  // namespace automm
