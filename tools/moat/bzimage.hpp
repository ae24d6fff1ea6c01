#pragma once
// Linux bzImages on the host: a manifest's `image` may be the kernel as
// distributions ship it (/boot/vmlinuz-*). Like Xen's toolstack
// (libxenguest's bzImage loader), `moat` takes the compressed ELF vmlinux out
// of it and boots that: the builder domain has no decompressor, and need not
// trust one with a guest's image.
//
// The x86 boot protocol (Linux's Documentation/arch/x86/boot.rst), version
// 2.08 or later: the setup header's "HdrS" at 0x202; setup_sects at 0x1f1
// (0 means 4); payload_offset and payload_length at 0x248 and 0x24c, the
// offset counted from the protected-mode code, which starts after
// (setup_sects + 1) * 512 bytes. The payload is a compressed vmlinux whose
// last four bytes are its unpacked size (little-endian, as the kernel's
// build appends it; gzip's own trailer is that size too). gzip (zlib) and xz
// (liblzma) are unpacked; any other method is refused by name.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace moat::bzimage {

// Bytes the setup header needs (payload_length ends at 0x250).
inline constexpr size_t kHeaderBytes = 0x250;
// An unpacked kernel larger than this is refused (Debian's is 63 MiB).
inline constexpr uint64_t kMaxUnpacked = uint64_t{512} << 20;

enum class Method { gzip, xz, bzip2, lzma, lzo, lz4, zstd, unknown };
const char* method_name(Method m);
// The compression of a payload, by its magic (as Linux's decompress_method).
Method detect(std::string_view payload);

// Whether `data` (the first kHeaderBytes of a file, or more) is a bzImage:
// "HdrS" at 0x202, as Xen's loader asks. Such a file is then either unpacked
// or refused; anything else is left to the builder's ELF loader.
bool looks_like(std::string_view data);
// The same for a file (reads its first bytes); false if it cannot be read.
bool file_looks_like(const std::filesystem::path& path);

struct Header {
  uint16_t version = 0;          // boot protocol, 0x0208 and up
  uint32_t setup_bytes = 0;      // (setup_sects + 1) * 512
  uint64_t payload_offset = 0;   // in the file
  uint32_t payload_length = 0;
  Method method = Method::unknown;
};

// Parses and bounds-checks the setup header of a whole bzImage.
[[nodiscard]] bool parse(std::string_view image, Header* out, std::string* why);

// The ELF vmlinux inside a whole bzImage. On any problem (not a bzImage,
// protocol older than 2.08, payload outside the file, unsupported or corrupt
// compression, a size that disagrees with the payload's, more than
// kMaxUnpacked, not an ELF image) returns false with a one-line reason.
[[nodiscard]] bool unpack(std::string_view image, std::string* elf, std::string* why);

// unpack() of the file at `path` into `cache_dir`, named after the image and
// a CRC-64 of its bytes, unless it is there already: two runs of one kernel
// unpack it once, and runs side by side (system tests) never see half a file
// (written to a temporary name, then renamed). *out is the ELF's path; on
// failure *why says why (as unpack() does, or what could not be read or
// written), and nothing is left in `cache_dir`.
[[nodiscard]] bool unpack_cached(const std::filesystem::path& path, const std::filesystem::path& cache_dir,
                                 std::filesystem::path* out, std::string* why);

// Reads a whole file; false with the reason if it cannot.
[[nodiscard]] bool read_file(const std::filesystem::path& path, std::string* bytes, std::string* why);

}  // namespace moat::bzimage
