// Where a running system is found from the host: its run directory.
//
// `moat run` (and moat-systest) give each system ROOT/NAME, ROOT being the
// build's out/run (../run beside this binary; $MOAT_RUN_DIR if set) and NAME
// the manifest's file name without .textproto (or --name). It holds
//   control.sock  QEMU's COM2 as a unix socket server (the toolstack's channel)
//   manifest      the path of the manifest, one line
//   pid           QEMU's process id, one line: the system is alive while it is
//   console.log   COM1's output as it comes (QEMU's chardev logfile for `moat
//                 run`, a symlink to --log FILE if given; moat-systest's copy
//                 of the pipe), which `moat console` follows
// so that `moat list` and friends find the system and know whether it runs.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace moat::rundir {

// $MOAT_RUN_DIR, else ../run beside this binary when it lives in a bin/
// directory (out/bin/moat: out/run), else ./run.
[[nodiscard]] std::filesystem::path root();

// A system's name: 1 to 64 of [A-Za-z0-9_.-], not "." or "..": it is a
// directory name under root().
[[nodiscard]] bool valid_name(std::string_view name);

// The manifest's file name without .textproto ("examples/demo.textproto": demo).
[[nodiscard]] std::string name_of(const std::filesystem::path& manifest);

inline constexpr const char* kSocket = "control.sock";
inline constexpr const char* kConsoleLog = "console.log";

// Makes root/name ready for a new run: the directory, the `manifest` file; a
// stale control.sock and pid removed, and the previous run's console.log (a
// `moat console` must never show an earlier run's lines as this one's). False with *why if a system of that
// name is alive (its pid file names a live process) or a file cannot be written.
[[nodiscard]] bool prepare(const std::filesystem::path& root, const std::string& name,
                           const std::filesystem::path& manifest, std::string* why);

// Writes root/name/pid once QEMU runs.
[[nodiscard]] bool write_pid(const std::filesystem::path& root, const std::string& name, pid_t pid, std::string* why);

// When QEMU has ended: removes pid and control.sock (the manifest stays, for
// whoever looks afterwards).
void finish(const std::filesystem::path& root, const std::string& name);

// The pid in root/name/pid, or 0 if there is none (or it is not a number).
[[nodiscard]] pid_t pid_of(const std::filesystem::path& root, const std::string& name);

// True if root/name/pid names a live process.
[[nodiscard]] bool alive(const std::filesystem::path& root, const std::string& name);

// The names of the systems alive under root, sorted.
[[nodiscard]] std::vector<std::string> running(const std::filesystem::path& root);

// Which system a command talks to: `wanted` if given (and alive), else the
// only one alive. False with *why (none running, several, not running) for a person.
[[nodiscard]] bool choose(const std::filesystem::path& root, const std::string& wanted, std::string* chosen,
                          std::string* why);

}  // namespace moat::rundir
