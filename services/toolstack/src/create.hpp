#pragma once
// `moat create` in the toolstack (docs/control.md, "moat create"): the
// image arrives in pieces (Request.upload) into a static staging area; a
// Request.create checks it (CRC-32) and the request against the create
// quota the builder gave us on our command line, then asks the builder,
// which checks everything again itself, copies the image out of our frames
// and builds the guest.

#include <control/messages.hpp>

#include <cstdint>

namespace toolstack {

// Reads our create quota from our command line (the builder writes
// "create-quota=DOMAINS,KIB[,BACKEND...]"; none: every create refused) and
// fills the staging area's frame list. Prints the quota.
void create_init();

// Request.upload: copies the piece into the staging area (bounded again
// here, whatever the decoder checked). Sets r.status (and r.error).
void upload(const control::Request& q, control::Response& r);

// Request.create: checks, asks the builder through /moat/create/NAME, waits
// (bounded, guest time) for its outcome; OK with the new domain's line in
// r.domains[0]. `store`: whether we have XenStore.
void create(const control::Request& q, control::Response& r, bool store);

// The machine's free memory (KiB) as getinfo reports it (of any domain we
// hold); 0 if we hold none.
[[nodiscard]] uint64_t free_memory_kib();

}  // namespace toolstack
