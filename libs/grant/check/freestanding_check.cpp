// Compiled with the kernel and domain flags only: the grant headers need
// nothing beyond the freestanding headers.
#include <grant/grant.hpp>

extern "C" unsigned moat_grant_freestanding_check(abi::GrantEntryV1* table, uint32_t* links) {
  grant::Table t(table, 32);
  grant::RefAllocator a(links, 24);
  grant::GrantRef ref = a.alloc();
  unsigned n = t.grant_access(ref, 1, 0x1234, true);
  n += t.is_in_use(ref);
  n += t.end_access(ref);
  n += a.free(ref);
  return n;
}
