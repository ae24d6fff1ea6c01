#pragma once
// The builder's side of XenStore: its own connection (a page of ours granted
// to the store domain as our ref 1, and a port), the nodes it writes for each
// domain, and introduce/release.

#include <cstddef>
#include <cstdint>

namespace builder {

// Grants our ring page to `store_dom` and allocates our port for it; the
// store domain's command line must then carry master=<us> master-port=<port>.
// Returns the port, or a negative errno.
long store_prepare(uint16_t self, uint16_t store_dom);
// Connects once the store domain runs. False if it does not answer.
bool store_connect();
bool store_ready();

// What the builder writes for domain `dom` before introducing it.
struct StoreDomain {
    uint16_t id;
    const char* name;
    uint64_t console_mfn;
    uint32_t console_port;   // 0: no console
    uint16_t console_backend;
    uint64_t store_mfn;
    uint32_t store_port;
    uint64_t boot_tsc = 0;   // restarts: the TSC when the builder began, in moat/boot-tsc (figures)
};
// Writes its nodes and introduces it; a failure is printed, false returned.
// With introduce false only the nodes are written (the store domain itself,
// whose console the console domain finds there). A domain with a console
// ring is then named to its console back-end B as
// /local/domain/B/backend/console/<id> (the builder's, readable by B): B
// watches that directory, so each event names the one domain that came or
// went and B never rescans every domain.
bool store_introduce(const StoreDomain& d, bool introduce = true);
// Names domain `id` (introduced already) to its console back-end again: a
// restarted console domain finds the domains it serves this way.
bool store_console_node(uint16_t console_backend, uint16_t id);
// moat/start-tsc in its home: the TSC now, as the builder lets it run, for
// figures measured from its first instruction (linux_boot_insns: under
// -icount the TSC counts instructions). A failure is printed, false returned.
bool store_stamp_start(uint16_t id);
// The nodes of a RING connection (as Xen's toolstack writes a device's):
// /local/domain/<fe>/device/ring/<devid> (backend, backend-id, state) and
// /local/domain/<be>/backend/ring/<fe>/<devid> (frontend, frontend-id,
// state), each side owning its own and readable by the other.
bool store_ring(uint16_t fe, uint16_t be, unsigned devid);
// A node below a device's directory: leaf name and value.
struct StoreNode {
    const char* leaf;
    const char* value;
};
// The xenbus nodes of a split device of `type` ("ring", "vif", "vbd"):
//   /local/domain/<fe>/device/<type>/<devid>/{backend, backend-id, fe_extra..., state=1}
//   /local/domain/<be>/backend/<type>/<fe>/<devid>/{frontend, frontend-id, be_extra..., state=1}
// each side's directory its own and readable by the other.
bool store_device(uint16_t fe, uint16_t be, const char* type, unsigned devid, const StoreNode* fe_extra, size_t n_fe,
                  const StoreNode* be_extra, size_t n_be);
// Its node in its console back-end's directory and its home go, then
// XS_RELEASE (@releaseDomain fires). console_backend 0xFFFF: none.
bool store_release(uint16_t dom, uint16_t console_backend);
// /local/domain/<dom>/control/shutdown, empty, the domain's own (it reads
// and watches it, as a Xen guest does) and writable by `toolstack`, which
// asks it to stop there ("poweroff"). Written before the domain runs, and
// again when the toolstack restarts under a new id. A failure is printed,
// false returned.
bool store_control_node(uint16_t dom, uint16_t toolstack);
// `moat destroy` (docs/control.md): kDestroyDir, the builder's, writable
// (not readable) by the toolstack, which asks there for a domain to be
// destroyed: it writes "destroy" in kDestroyDir/<name> (the node is then its own),
// the builder destroys the domain and writes the outcome into that node
// ("done", "refused: why", "failed: why"), the toolstack reads it and
// removes the node. Made again, empty, when the toolstack restarts under a
// new id. A failure is printed, false returned.
inline constexpr const char* kDestroyDir = "/moat/destroy";
bool store_destroy_dir(uint16_t toolstack);
// `moat create` (docs/control.md): kCreateDir, made as kDestroyDir is (the
// builder's, writable, not readable, by the toolstack); the toolstack writes
// a request "create ..." in kCreateDir/<name>, the builder the outcome
// ("done <domid>", "refused: why", "failed: why").
inline constexpr const char* kCreateDir = "/moat/create";
bool store_create_dir(uint16_t toolstack);
// `moat console NAME`'s typed keys (docs/control.md): kConsoleInputDir, the
// builder's, writable by the toolstack, readable and writable by the console
// service. The toolstack writes one node a request,
// kConsoleInputDir/<seq> = "<domid> <bytes>"; a node takes its parent's
// permissions with its creator as owner (XenStore's rule), so each is the
// toolstack's and the console may read and remove it (removing needs write).
// Made again, empty, when the toolstack or the console restarts under a new
// id. A failure is printed, false returned.
inline constexpr const char* kConsoleInputDir = "/moat/console-input";
bool store_console_input_dir(uint16_t toolstack, uint16_t console);
// Ctrl-] q on the system's console (docs/control.md, "The live demo"):
// kConsoleRequestNode, the builder's, empty, writable (not readable) by the
// console service, which writes "shutdown" there, and readable and writable
// by the toolstack, which watches it, takes the request and empties it
// again. Nobody else may read or write it (entry 0, the builder's 'n', is
// what unlisted domains get); a write changes no node's owner, and the
// console may make no node of its own beside it (/moat is the builder's).
// Written again, empty and with these permissions, when the toolstack or
// the console restarts under a new id: a request nobody took goes. A
// failure is printed, false returned.
inline constexpr const char* kConsoleRequestNode = "/moat/console-request";
bool store_console_request(uint16_t toolstack, uint16_t console);
// Whether a node exists (the builder may read every node).
bool store_exists(const char* path);
// Writes a node (the builder may write every node).
bool store_write(const char* path, const char* value);
// Lets `console_dom` (0xFFFF: none) watch @introduceDomain and
// @releaseDomain and list /local/domain, and the back-ends watch
// @releaseDomain.
bool store_allow_special_watches(uint16_t console_dom, const uint16_t* backends, size_t n_backends);

}  // namespace builder
