#pragma once
// The hypercall-fuzzing guest (docs/hcfuzz.md): shared state of main.cpp
// (start of day, the loop, invariants, the report) and gen.cpp (one
// generator per hypercall).
//
// Words used throughout:
//  * live: what the fuzzer itself runs on (its image, its page tables, the
//    frames they map, its grant frames, shared info). A valid change to
//    anything live is never generated; live targets get only values that
//    must be refused, and if one is accepted that is a finding (FAIL).
//  * clean: the fuzzer's scratch frames (a scratch L3/L2/L1 hierarchy in
//    L4 slot 1, scratch data frames, spare frames it gives back and gets
//    again). Anything valid may be written into them, built only from other
//    clean frames: nothing reachable from L4 slot 1 ever links a live page
//    table, so a change made through a scratch address changes scratch
//    frames only.
//  * tainted: frames granted writable to the peer fuzzer, which writes
//    anything into them. Never linked as a table, never copied from.
//  * foreign: frames that are not the fuzzer's (other domains', the
//    hypervisor's) and frames beyond RAM.

#include <cstddef>
#include <cstdint>

#include <abi/errno.hpp>
#include <abi/event_channel.hpp>
#include <abi/grant_table.hpp>
#include <abi/hypercall.hpp>
#include <abi/memory.hpp>
#include <abi/moat.hpp>
#include <abi/x86_64.hpp>

namespace hcf {

// ---------------------------------------------------------------------------
// PRNG: xoshiro256** seeded through splitmix64 (deterministic per seed).
struct Rng {
    uint64_t s[4];
    void seed(uint64_t x) {
        for (auto& w : s) {
            x += 0x9E3779B97F4A7C15ull;
            uint64_t z = x;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            w = z ^ (z >> 31);
        }
    }
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t next() {
        uint64_t r = rotl(s[1] * 5, 7) * 9;
        uint64_t t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return r;
    }
    // Uniform enough in [0, n) (n < 2^32 in practice).
    uint64_t below(uint64_t n) { return n ? next() % n : 0; }
    bool one_in(uint64_t n) { return below(n) == 0; }
    // True with probability pct/100.
    bool pct(unsigned p) { return below(100) < p; }
    uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
    template <typename T, size_t N>
    T pick(const T (&a)[N]) { return a[below(N)]; }
};
extern Rng g_rng;

// ---------------------------------------------------------------------------
// The buffer every hypercall argument lives in. Guard pages (unmapped) end
// each region: a count running past what was built faults there.
//   args  structures the generators build (bump allocated from the start;
//         the one array a call may over-read sits at the end, zeros after it)
//   junk  where hypercalls may write what they like (outputs)
//   gain  extent arrays of increase_reservation/populate_physmap (the only
//         place frames we gain are written, so none goes unnoticed)
//   ro    mapped read-only, every byte 0xFF (invalid as any table or request)
//   text  what console_io writes print
constexpr unsigned kArgsPages = 40, kJunkPages = 4, kGainPages = 2;
struct Area {
    uint8_t args[kArgsPages * 4096];
    uint8_t guard1[4096];
    uint8_t junk[kJunkPages * 4096];
    uint8_t guard2[4096];
    uint8_t gain[kGainPages * 4096];
    uint8_t guard3[4096];
    uint8_t ro[4096];
    uint8_t text[4096];
    uint8_t guard4[4096];
};
extern Area g_area;
constexpr unsigned kGainSlices = 4;
constexpr unsigned kGainSliceEntries = kGainPages * 512 / kGainSlices;

template <typename T>
inline uint64_t va(T* p) { return reinterpret_cast<uint64_t>(p); }

// ---------------------------------------------------------------------------
// Frames and addresses.
constexpr uint64_t kPteP = 1, kPteRw = 2, kPteU = 4, kPtePwt = 8, kPtePcd = 0x10, kPteA = 0x20, kPteD = 0x40,
                   kPtePse = 0x80, kPteG = 0x100, kPteNx = 1ull << 63, kPteGrant = 1ull << 62;
constexpr uint64_t kPteAddr = 0x000FFFFFFFFFF000ull;
constexpr unsigned kScratchSlot = 1;                        // L4 slot of the scratch hierarchy
constexpr uint64_t kScratchBase = uint64_t(kScratchSlot) << 39;
constexpr unsigned kMaxFrames = 1u << 20;                   // frames the bitmaps cover (4 GiB)
constexpr unsigned kScratchTables = 7;                      // L3, L2 x2, L1 x4
constexpr unsigned kScratchData = 8;                        // the first 4 granted read-only to the peer
constexpr unsigned kTainted = 4;                            // granted writable to the peer
constexpr unsigned kMaxSpare = 64;
constexpr uint32_t kPeerRefFirst = 8;                       // refs 8..11 writable, 12..15 read-only
constexpr uint32_t kPeerRefs = 8;

enum FrameBit : uint8_t {
    kOwn = 1,        // ours (a superset: P2M, grant frames, shared info, gains)
    kLivePt = 2,     // one of our running page tables
    kLiveRw = 4,     // mapped writable by our running tables
    kClean = 8,      // scratch tables, scratch data, spares
    kTaint = 16,     // granted writable to the peer
    kFreed = 32,     // given back (and not gained again)
    kSpecial = 64,   // grant frames, shared info: never given back, never written
};

struct Frames {
    uint64_t max_ram = 0;            // memory_op maximum_ram_page
    uint64_t l4 = 0;                 // our base pointer
    uint64_t live_pt[32];
    uint8_t live_level[32];
    unsigned n_live_pt = 0;
    uint64_t live_rw[4096];
    unsigned n_live_rw = 0;
    uint64_t scratch_pt[kScratchTables];   // [0] L3, [1..2] L2, [3..6] L1
    uint64_t scratch_data[kScratchData];
    uint64_t tainted[kTainted];
    uint64_t spare[kMaxSpare];
    unsigned n_spare = 0;
    uint64_t grant[4];
    unsigned n_grant = 0;
    uint64_t shared_info = 0;
    uint64_t ro_frame = 0;           // the frame under Area::ro
    uint64_t m2p_frame = 0;          // a frame of the M2P (the hypervisor's)
    int64_t expected_pages = 0;      // what current_reservation must say
    uint64_t gained = 0, given_back = 0;
};
extern Frames g_fr;
extern uint8_t g_frame_bits[kMaxFrames];

inline uint8_t bits_of(uint64_t m) { return m < kMaxFrames ? g_frame_bits[m] : 0; }
inline bool is_own(uint64_t m) { return bits_of(m) & kOwn; }

// Who is who.
struct Ids {
    uint16_t self = 0xFFFF, peer = 0xFFFF, victim = 0xFFFF, console = 0xFFFF, store = 0xFFFF;
    uint32_t console_port = 0, store_port = 0, timer_port = 0;
};
extern Ids g_ids;
inline bool is_self_id(uint64_t d) { return (d & 0xFFFF) == abi::kDomidSelf || (d & 0xFFFF) == g_ids.self; }

// Our CSpace at start of day.
struct Caps {
    uint32_t size = 0;
    abi::MoatCap orig[64];
    bool original[64];
    bool only_grant_event = true;    // nothing that lets domctl/physdev/console read succeed
};
extern Caps g_caps;

// Ports and grant mappings made by fuzzed calls, for later close/unmap.
enum class PortKind : uint8_t { none, unbound, interdomain, virq, ipi };
struct PortTrack {
    uint32_t port[256];
    PortKind kind[256];
    unsigned n = 0;
};
extern PortTrack g_ports;
void track_port(uint32_t port, PortKind k);
void untrack_port(uint32_t port);
PortKind port_kind(uint32_t port);
bool port_protected(uint64_t port);

struct MapTrack {
    uint32_t handle[64];
    uint64_t host_addr[64];
    bool by_pte[64];
    bool host[64];         // the host part (a PTE) is still there
    uint64_t dev[64];      // the device part's dev_bus_addr, or 0
    unsigned n = 0;
};
extern MapTrack g_maps;

// ---------------------------------------------------------------------------
// One call being built: the arguments, the checks to run on its result,
// what must be put right afterwards.
enum PostKind : uint8_t {
    kMustFail,       // the result must be an error
    kMustEnosys,     // the result must be -ENOSYS
    kDoneAtMost,     // *(u64*)addr (a done counter) <= a; and result 0 only if a >= b
    kRcAtMost,       // result <= a (decrease_reservation: index of the first frame that must stay)
    kStatusFail,     // *(i16*)addr must not be 0 (if the hypervisor wrote it)
    kTrackPort,      // result 0: the u32 at addr is a new port of kind a
    kUntrackPort,    // result 0: port a is closed
    kTrackMap,       // status at addr+18 == 0: a mapping, handle at addr+20, host_addr at addr
    kUntrackMap,     // status at addr+20 == 0: handle a is gone
    kGain,           // frames [a, result) of the u64 array at addr are ours now
    kGiveBack,       // frames [a, result) of the u64 array at addr are given back
    kCapDerive,      // result 0: slot a now holds slot b's capability with rights & mask (addr: mask)
    kVirqSend,       // send on a port we hold as a VIRQ: must be refused (Xen returns -EINVAL)
    kCountCopy,      // statistics: a grant copy whose status (at addr) is 0
    kSetIopl,        // result 0: our virtual IOPL is now a
};
struct Post {
    PostKind kind;
    const char* what;     // "FAIL hcfuzz.<what>" if the check fails
    uint64_t rc_addr;     // 0: the call's own result; else a multicall entry's result field
    uint64_t addr, a, b;
    uint64_t x;           // for the report: the operation judged (4 words shown)
};

enum Dirty : uint32_t {
    kDirtyTraps = 1, kDirtyCallbacks = 2, kDirtyFpu = 4, kDirtySeg = 8, kDirtyStack = 16, kDirtyEvents = 32,
    kDirtyNmi = 64, kDirtyAll = 0xFFFF,
};

struct Call {
    uint64_t nr;
    uint64_t a[5];
};

// The top-level call under construction.
struct Builder {
    uint64_t used = 0;          // bytes of Area::args handed out from the start
    uint64_t tail = 0;          // start of the over-read array at the end (0: none yet)
    bool tail_taken = false;
    bool in_mc = false;         // generating a multicall entry
    bool mc_fpu = false;        // a multicall entry set TS: end the batch with fpu_taskswitch(0)
    bool mc_last = false;       // generating the last entry of a multicall
    uint64_t rc_addr = 0;       // result field of the entry being generated
    uint32_t dirty = 0;
    unsigned gain_slices = 0;
    Post posts[4096];
    unsigned n_posts = 0;
    uint64_t mc_entries = 0;
};
extern Builder g_b;
constexpr unsigned kMaxPosts = sizeof(Builder::posts) / sizeof(Post);
uint64_t args_left();

void* alloc_args(uint64_t bytes, uint64_t align = 8);
template <typename T>
T* alloc(uint64_t n = 1) { return static_cast<T*>(alloc_args(sizeof(T) * (n ? n : 1), alignof(T) < 8 ? 8 : alignof(T))); }
// The over-read array: once per top-level call; nullptr if taken already
// (the caller then uses an exact count).
void* alloc_tail(uint64_t bytes);
void post(PostKind k, const char* what, uint64_t addr = 0, uint64_t a = 0, uint64_t b = 0, uint64_t x = 0);

// ---------------------------------------------------------------------------
// Argument pools (gen.cpp).
uint64_t frame_foreign();          // not ours, within RAM (or beyond if none found)
uint64_t frame_beyond();           // beyond RAM
uint64_t frame_bad();              // foreign or beyond: any use must be refused
uint64_t frame_clean();            // a scratch table, scratch data or spare frame
uint64_t frame_write_target();     // clean or tainted: may be written with anything clean
uint64_t frame_live_pt(unsigned* level = nullptr);
uint64_t frame_live_rw();
uint64_t frame_own_any();          // any frame of ours (read-only uses)
uint64_t va_scratch();
uint64_t va_live();
uint64_t va_hyp();
uint64_t va_noncanonical();
uint64_t va_unmapped();
uint64_t va_code();                // an address for a handler/callback value
// Pointers the hypervisor cannot read (and so not write either).
uint64_t ptr_hostile_in();
uint64_t ptr_hostile_out();
// A pointer for an output: junk, or hostile (*hostile set).
uint64_t ptr_out(bool* hostile);
// A pointer to a structure built in args, or sometimes a hostile one.
uint64_t ptr_in(void* built, bool* hostile, unsigned hostile_pct = 10);
uint64_t rand_count(uint64_t built);
uint64_t rand_u64();                 // small, boundary, addresses, random

// The privileged instructions a PV kernel executes and the hypervisor
// emulates (emul.cpp): one, chosen and judged like a call; how many ran and
// faulted. The handlers they need (install_emulation_traps) go in with the
// runtime's others after every call.
void emulated_instruction();
void install_emulation_traps();
extern uint64_t g_emulated, g_emulated_faults;
// The virtual IOPL we set last (physdev_op set_iopl), 0 at start.
extern uint32_t g_iopl;

// Generators (gen.cpp): fill `c` for hypercall `nr`.
void generate(unsigned nr, Call& c);
unsigned pick_hypercall(bool in_mc);
extern unsigned g_only;   // only=N on the command line: every top-level call is N (65: all)

// ---------------------------------------------------------------------------
// Reporting (main.cpp).
void fail(const char* what, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
extern uint64_t g_call_index;

}  // namespace hcf
