#pragma once
// The system manifest on the host: parse the text format (proto/manifest.proto)
// with the position of every field, check it, and turn it into the binary boot
// module the builder decodes.
//
// Every problem is a Diagnostic at a line and column of the text, so that
// `moat check` can print them all as FILE:LINE:COL: message.

#include "manifest.pb.h"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/text_format.h>

namespace moat::manifest {

// 1-based, as editors count. Columns count tabs as the protobuf tokenizer
// does (to the next multiple of 8).
struct Pos {
  int line = 1;
  int column = 1;
};

struct Diagnostic {
  Pos pos;
  std::string message;
};

using ParseInfoTree = google::protobuf::TextFormat::ParseInfoTree;

// A manifest read from a file: the message and where each field was written.
struct Loaded {
  System system;
  ParseInfoTree tree;
};

// Reads and parses `path`. On a syntax error (the parser stops at the first)
// returns false with the error in *errors. A file that cannot be read is
// reported at 1:1.
[[nodiscard]] bool load(const std::filesystem::path& path, Loaded* out, std::vector<Diagnostic>* errors);

// Every semantic problem of a parsed manifest, in order of position. Image
// and ramdisk paths are relative to `base_dir` (the manifest's directory). An
// image that is a bzImage must unpack (bzimage.hpp): with a `cache_dir` it is
// unpacked there (`moat run` then finds it), else in memory only. A manifest
// with no problem of its own is also compiled and decoded as the builder will
// (manifest::decode): whatever the builder would refuse is reported at 1:1.
[[nodiscard]] std::vector<Diagnostic> check(const Loaded& manifest, const std::filesystem::path& base_dir,
                                            const std::filesystem::path& cache_dir = {});

// Largest ramdisk `moat check` accepts (and at most half the domain's memory).
inline constexpr uint64_t kMaxRamdiskBytes = uint64_t{64} << 20;

// The boot modules of a checked manifest, in the order `moat run` hands them
// to QEMU (docs/system.md): module 0 the BUILDER's image, module 1 the binary
// manifest, then modules 2, 3, ... the other domains' distinct images and
// ramdisks (paths resolved against `base_dir`), in the order the domains
// first name them, a domain's image before its ramdisk.
struct ModulePlan {
  struct File {
    std::filesystem::path path;   // as the manifest names it, resolved
    bool ramdisk = false;         // else an image (ELF or bzImage)
  };
  std::filesystem::path builder;          // module 0
  std::vector<File> files;                // files[k] is module k + 2
  std::vector<uint32_t> module;           // per domain: its Domain.module
  std::vector<uint32_t> ramdisk_module;   // per domain: its Domain.ramdisk_module (0: none)
};
[[nodiscard]] ModulePlan plan_modules(const System& system, const std::filesystem::path& base_dir);

// The module strings ("PATH [ARGS]") QEMU gets for a checked manifest,
// `manifest_file` being its binary manifest: the plan's modules, each
// bzImage replaced by the ELF unpacked from it into `cache_dir`
// (bzimage::unpack_cached). False with the reason if an image cannot be
// unpacked.
[[nodiscard]] bool boot_modules(const System& system, const std::filesystem::path& base_dir,
                                const std::filesystem::path& manifest_file, const std::filesystem::path& cache_dir,
                                std::vector<std::string>* modules, std::string* why);

// Where `moat run` and moat-systest unpack bzImages: the directory `cache`
// of the build the running binary belongs to (out/cache beside out/bin), or
// $XDG_CACHE_HOME/moat (~/.cache/moat) if that cannot be told.
std::filesystem::path default_cache_dir();

// The binary manifest of a checked one, as the builder reads it (libs/manifest):
// "MOATMAN1", the payload's length and CRC-32 (little-endian uint32 each),
// then the payload, `system` serialized with `memory` resolved into
// memory_kib and each domain's module and ramdisk_module set by
// plan_modules().
[[nodiscard]] std::string compile(const System& system, const std::filesystem::path& base_dir);

// "16M" -> 16384. Decimal digits and a unit K, M or G (powers of 1024); a
// whole number of 4 KiB pages, not 0. On failure *why says what is wrong.
[[nodiscard]] bool parse_memory(std::string_view text, uint64_t* kib, std::string* why);

// "00:03.0" -> bus << 8 | device << 3 | function (the PciDevice capability's
// object). Exactly two hex digits of bus, two of device (<= 0x1f), one of
// function (0-7).
[[nodiscard]] bool parse_pci(std::string_view text, uint32_t* bdf);

// "FILE:LINE:COL: message"
std::string format(const std::string& file, const Diagnostic& d);

}  // namespace moat::manifest
