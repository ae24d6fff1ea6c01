#pragma once
// `moat create` in the builder (docs/control.md, "moat create"): the
// toolstack's request, as it wrote it in kCreateDir/<name>, parsed and
// checked field by field. Nothing in it is trusted: every number is
// bounded here, and main.cpp checks it against the toolstack's quota.

#include <cstddef>
#include <cstdint>

namespace builder {

// The staging area the image is copied from: at most this many bytes
// (control::kStageBytes), in this many frames, listed in kCreateListPages
// frames of the toolstack.
inline constexpr uint64_t kCreateStageBytes = 4u << 20;
inline constexpr uint64_t kCreateStagePages = kCreateStageBytes / 4096;
inline constexpr unsigned kCreateListPages = unsigned(kCreateStagePages * 8 / 4096);
inline constexpr unsigned kCreateCmdlineLen = 255;

struct CreateRequest {
    char name[33];
    uint64_t memory_kib;        // 1 MiB to 1 GiB (the builder's most), whole pages
    char console[33];           // a back-end's name, "" for none
    char xenstore[33];
    char net[33];               // its VIF's back-end (a NETBACK domain), "" for none
    char blk[33];               // its VBD's back-end (a BLKBACK domain), "" for none
    uint64_t disk_first, disk_sectors;   // with a blk: its sectors there (non-zero, no overflow)
    bool disk_read_only;
    uint32_t image_size;        // 1 to kCreateStageBytes
    uint32_t image_crc32;
    uint64_t list[kCreateListPages];   // frames holding the staging area's frame list
    uint64_t asked_ns;          // when the toolstack got the request (a figure only)
    char cmdline[kCreateCmdlineLen + 1];   // printable ASCII
};

// Whether `s` is a domain name: 1 to 32 of [A-Za-z0-9_.-].
[[nodiscard]] bool create_valid_name(const char* s);

// Parses "create memory=K console=C xenstore=X net=V blk=B [disk=F,S,r|w]
// size=N crc=N list=M,M asked=T cmdline=..." (C, X, V, B "-" for none; disk
// with a B only; the fields before cmdline=, which is the rest) for domain
// `name`. False with the reason (one line) in why.
[[nodiscard]] bool parse_create(const char* name, const char* value, CreateRequest& out, char* why, size_t why_len);

}  // namespace builder
