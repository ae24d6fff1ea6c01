// Unpacking a Linux bzImage on the host (see bzimage.hpp).
#include "bzimage.hpp"

#include <lzma.h>
#include <zlib.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

namespace moat::bzimage {
namespace {

// Offsets in the setup header (boot.rst).
constexpr size_t kSetupSects = 0x1f1;
constexpr size_t kMagic = 0x202;        // "HdrS"
constexpr size_t kVersion = 0x206;
constexpr size_t kPayloadOffset = 0x248;
constexpr size_t kPayloadLength = 0x24c;
constexpr uint16_t kMinVersion = 0x0208;   // the first with payload_offset/payload_length
// A bzImage larger than this is refused before it is read (Debian's is 8 MiB).
constexpr uint64_t kMaxImage = uint64_t{256} << 20;
constexpr size_t kChunk = size_t{1} << 20;

uint16_t le16(std::string_view b, size_t at) {
  return uint16_t(uint8_t(b[at]) | uint8_t(b[at + 1]) << 8);
}
uint32_t le32(std::string_view b, size_t at) {
  return uint32_t(uint8_t(b[at])) | uint32_t(uint8_t(b[at + 1])) << 8 | uint32_t(uint8_t(b[at + 2])) << 16 |
         uint32_t(uint8_t(b[at + 3])) << 24;
}

std::string mib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

bool unpack_xz(std::string_view in, std::string* out, std::string* why) {
  lzma_stream s = LZMA_STREAM_INIT;
  // Linux's xz_wrap.sh uses a dictionary of 32 MiB at most; no
  // LZMA_CONCATENATED: the stream ends before the appended size.
  if (lzma_stream_decoder(&s, uint64_t{256} << 20, 0) != LZMA_OK) {
    *why = "cannot start liblzma's xz decoder";
    return false;
  }
  std::unique_ptr<lzma_stream, void (*)(lzma_stream*)> guard(&s, lzma_end);
  s.next_in = reinterpret_cast<const uint8_t*>(in.data());
  s.avail_in = in.size();
  std::vector<uint8_t> buf(kChunk);
  for (;;) {
    s.next_out = buf.data();
    s.avail_out = buf.size();
    lzma_ret r = lzma_code(&s, LZMA_FINISH);
    out->append(reinterpret_cast<const char*>(buf.data()), buf.size() - s.avail_out);
    if (out->size() > kMaxUnpacked) {
      *why = "the xz payload unpacks to more than " + mib(kMaxUnpacked);
      return false;
    }
    if (r == LZMA_STREAM_END) return true;
    if (r == LZMA_OK) continue;
    switch (r) {
      case LZMA_BUF_ERROR: *why = "the xz payload ends before its stream does (truncated)"; break;
      case LZMA_DATA_ERROR: *why = "the xz payload is corrupt (liblzma: data error)"; break;
      case LZMA_FORMAT_ERROR: *why = "the xz payload is not an xz stream"; break;
      case LZMA_OPTIONS_ERROR: *why = "the xz payload uses options liblzma does not support"; break;
      case LZMA_MEMLIMIT_ERROR: *why = "the xz payload needs more than 256 MiB to unpack"; break;
      case LZMA_MEM_ERROR: *why = "out of memory unpacking the xz payload"; break;
      default: *why = "liblzma failed on the xz payload (error " + std::to_string(int(r)) + ")"; break;
    }
    return false;
  }
}

bool unpack_gzip(std::string_view in, std::string* out, std::string* why) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {   // gzip framing only
    *why = "cannot start zlib's gzip decoder";
    return false;
  }
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, inflateEnd);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = uInt(in.size());   // at most 4 GiB: payload_length is a uint32
  std::vector<Bytef> buf(kChunk);
  for (;;) {
    z.next_out = buf.data();
    z.avail_out = uInt(buf.size());
    int r = inflate(&z, Z_NO_FLUSH);
    out->append(reinterpret_cast<const char*>(buf.data()), buf.size() - z.avail_out);
    if (out->size() > kMaxUnpacked) {
      *why = "the gzip payload unpacks to more than " + mib(kMaxUnpacked);
      return false;
    }
    if (r == Z_STREAM_END) return true;
    if (r == Z_OK) continue;
    if (r == Z_BUF_ERROR && z.avail_in == 0) {
      *why = "the gzip payload ends before its stream does (truncated)";
    } else {
      *why = std::string("the gzip payload is corrupt (zlib: ") +
             (z.msg ? std::string(z.msg) : "error " + std::to_string(r)) + ")";
    }
    return false;
  }
}

std::string hex_bytes(std::string_view b, size_t n) {
  std::string s;
  char t[4];
  for (size_t i = 0; i < n && i < b.size(); ++i) {
    std::snprintf(t, sizeof t, "%s%02x", i ? " " : "", unsigned(uint8_t(b[i])));
    s += t;
  }
  return s;
}

}  // namespace

const char* method_name(Method m) {
  switch (m) {
    case Method::gzip: return "gzip";
    case Method::xz: return "xz";
    case Method::bzip2: return "bzip2";
    case Method::lzma: return "lzma";
    case Method::lzo: return "lzo";
    case Method::lz4: return "lz4";
    case Method::zstd: return "zstd";
    case Method::unknown: break;
  }
  return "an unknown method";
}

Method detect(std::string_view p) {
  auto starts = [&](std::string_view magic) { return p.substr(0, magic.size()) == magic; };
  using namespace std::string_view_literals;
  if (starts("\x1f\x8b"sv) || starts("\x1f\x9e"sv)) return Method::gzip;
  if (starts("\xfd" "7zXZ\x00"sv)) return Method::xz;
  if (starts("BZh"sv)) return Method::bzip2;
  if (starts("\x5d\x00\x00"sv)) return Method::lzma;
  if (starts("\x89LZO"sv)) return Method::lzo;
  if (starts("\x02\x21\x4c\x18"sv)) return Method::lz4;
  if (starts("\x28\xb5\x2f\xfd"sv)) return Method::zstd;
  return Method::unknown;
}

bool looks_like(std::string_view data) { return data.size() >= kMagic + 4 && data.substr(kMagic, 4) == "HdrS"; }

bool file_looks_like(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  char head[kMagic + 4];
  in.read(head, sizeof head);
  return in.gcount() == std::streamsize(sizeof head) && looks_like(std::string_view(head, sizeof head));
}

bool parse(std::string_view image, Header* h, std::string* why) {
  if (image.size() < kHeaderBytes) {
    *why = looks_like(image) ? "a bzImage shorter than its setup header (" + std::to_string(image.size()) + " bytes)"
                             : "not a bzImage (" + std::to_string(image.size()) + " bytes)";
    return false;
  }
  if (!looks_like(image)) {
    *why = "not a bzImage (no \"HdrS\" at 0x202)";
    return false;
  }
  h->version = le16(image, kVersion);
  if (h->version < kMinVersion) {
    char v[16];
    std::snprintf(v, sizeof v, "%u.%02u", unsigned(h->version >> 8), unsigned(h->version & 0xff));
    *why = std::string("boot protocol ") + v + " is older than 2.08: the bzImage does not say where its payload is";
    return false;
  }
  unsigned sects = uint8_t(image[kSetupSects]);
  h->setup_bytes = (sects ? sects + 1 : 5) * 512;   // 0 means 4
  h->payload_offset = uint64_t(h->setup_bytes) + le32(image, kPayloadOffset);
  h->payload_length = le32(image, kPayloadLength);
  if (h->payload_offset >= image.size() || h->payload_length > image.size() - h->payload_offset) {
    *why = "its payload (" + std::to_string(h->payload_length) + " bytes at offset " +
           std::to_string(h->payload_offset) + ") goes past the end of the file (" + std::to_string(image.size()) +
           " bytes): truncated?";
    return false;
  }
  if (h->payload_length < 8) {
    *why = "its payload is " + std::to_string(h->payload_length) + " bytes: too short for a compressed kernel";
    return false;
  }
  h->method = detect(image.substr(h->payload_offset, h->payload_length));
  return true;
}

bool unpack(std::string_view image, std::string* elf, std::string* why) {
  Header h;
  if (!parse(image, &h, why)) return false;
  std::string_view payload = image.substr(h.payload_offset, h.payload_length);
  elf->clear();
  bool ok = false;
  switch (h.method) {
    case Method::xz: ok = unpack_xz(payload, elf, why); break;
    case Method::gzip: ok = unpack_gzip(payload, elf, why); break;
    case Method::unknown:
      *why = "its payload is compressed with an unknown method (it starts " + hex_bytes(payload, 6) +
             "): moat unpacks gzip and xz";
      return false;
    default:
      *why = std::string("its payload is compressed with ") + method_name(h.method) +
             ": moat unpacks gzip and xz only (Debian's kernels are xz)";
      return false;
  }
  if (!ok) return false;
  // The kernel's build appends the unpacked size (gzip's trailer is that size).
  uint32_t said = le32(payload, payload.size() - 4);
  if (said != uint32_t(elf->size())) {
    *why = "its payload says it unpacks to " + std::to_string(said) + " bytes, but it unpacked to " +
           std::to_string(elf->size());
    return false;
  }
  if (elf->size() < 4 || elf->compare(0, 4, "\x7f" "ELF") != 0) {
    *why = std::string("its ") + method_name(h.method) + " payload is not an ELF image (it starts " +
           hex_bytes(*elf, 4) + ")";
    return false;
  }
  return true;
}

bool read_file(const std::filesystem::path& path, std::string* bytes, std::string* why) {
  std::error_code ec;
  uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) {
    *why = "cannot read " + path.string() + ": " + ec.message();
    return false;
  }
  if (size > kMaxImage) {
    *why = path.string() + " is larger than " + mib(kMaxImage);
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  bytes->resize(size_t(size));
  if (!in || !in.read(bytes->data(), std::streamsize(size)) || in.gcount() != std::streamsize(size)) {
    *why = "cannot read " + path.string() + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

bool unpack_cached(const std::filesystem::path& path, const std::filesystem::path& cache_dir,
                   std::filesystem::path* out, std::string* why) {
  std::string image;
  if (!read_file(path, &image, why)) return false;
  uint64_t crc = lzma_crc64(reinterpret_cast<const uint8_t*>(image.data()), image.size(), 0);
  std::string stem = path.filename().string();
  for (char& ch : stem)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-') ch = '_';
  char key[20];
  std::snprintf(key, sizeof key, "%016llx", static_cast<unsigned long long>(crc));
  std::filesystem::path target = cache_dir / (stem + "-" + key + ".elf");
  std::error_code ec;
  if (std::filesystem::is_regular_file(target, ec) && std::filesystem::file_size(target, ec) > 0 && !ec) {
    *out = target;
    return true;
  }
  std::string elf;
  if (!unpack(image, &elf, why)) return false;
  std::filesystem::create_directories(cache_dir, ec);
  if (ec) {
    *why = "cannot create " + cache_dir.string() + ": " + ec.message();
    return false;
  }
  std::string tmpl = (cache_dir / (stem + "-" + key + ".XXXXXX")).string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) {
    *why = "cannot create a file in " + cache_dir.string() + ": " + std::strerror(errno);
    return false;
  }
  bool ok = true;
  for (size_t done = 0; ok && done < elf.size();) {
    ssize_t n = ::write(fd, elf.data() + done, elf.size() - done);
    if (n <= 0) ok = false;
    else done += size_t(n);
  }
  ok = ::fchmod(fd, 0644) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(name.data(), target.c_str()) != 0) {
    *why = "cannot write " + target.string() + ": " + std::strerror(errno);
    ::unlink(name.data());
    return false;
  }
  *out = target;
  return true;
}

}  // namespace moat::bzimage
