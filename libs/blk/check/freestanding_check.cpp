// Compiled with the domain flags only: blk needs nothing beyond the
// freestanding headers.
#include <blk/blk.hpp>

extern "C" int moat_blk_freestanding_check(const abi::BlkifRequest* r) {
    blk::Disk d;
    blk::Checked c;
    return blk::place_disk(100, 0, 0, false, &d) ? blk::check_request(*r, d, blk::Features{}, &c) : -1;
}
