// The QEMU command line for a Moat system, built in one place.
//
// Both `moat boot` and the system-test runner (moat-systest) turn a BootSpec
// into an argv vector here, so the machine they run is the same: a PC
// (i440fx) or a q35 with Intel's IOMMU, one CPU, TCG only (never KVM), COM1 as
// the console and isa-debug-exit at 0xf4 through which the kernel ends QEMU.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moat::qemu {

// How the serial console (COM1) is wired to the host.
enum class Console {
  // Interactive: COM1 multiplexed with the QEMU monitor on the terminal
  // (like -serial mon:stdio; Ctrl-A X quits, Ctrl-A C switches to the monitor).
  Interactive,
  // Plain: COM1 on QEMU's stdout, no monitor. For runners reading a pipe.
  Plain,
};

struct BootSpec {
  std::string qemu;                  // empty: default_binary()
  std::string kernel;                // multiboot image (-kernel)
  std::vector<std::string> modules;  // "PATH [ARGS]" each, one boot module per entry
  std::string kernel_args;           // the kernel's command line (-append)
  std::string memory = "256M";
  int cpus = 1;
  bool icount = false;               // -icount shift=0: guest time counts instructions
  // -machine q35 and -device intel-iommu,intremap=on, the IOMMU before every
  // other device (QEMU wants it created before the PCI functions it
  // translates); false: QEMU's default PC (i440fx), no IOMMU. The machine's
  // virtio functions then need iommu_platform=on (machine.hpp) or their DMA
  // bypasses the IOMMU.
  bool iommu = false;
  bool gdb = false;                  // -s -S: gdbstub on tcp::1234, wait for it
  Console console = Console::Interactive;
  std::string serial_log;            // Interactive only: QEMU also logs the console here
  // Non-empty: COM2 (0x2f8) as a unix socket server at this path, which the
  // toolstack domain drives and `moat list` & co connect to
  // (docs/control.md). COM1 stays the console: its -serial comes first.
  std::string control_socket;
  std::vector<std::string> extra;    // appended verbatim
};

// Where the kernel's isa-debug-exit writes land: QEMU exits (value << 1) | 1.
inline constexpr int kExitClean = 33;  // kernel wrote 0x10: clean end of the system
inline constexpr int kExitPanic = 35;  // kernel wrote 0x11: after a kernel panic

// $MOAT_QEMU if set and non-empty, else "qemu-system-x86_64".
std::string default_binary();

// One module string as QEMU's -initrd wants it: commas doubled.
std::string escape_module(std::string_view module);

// All modules joined for -initrd ("a x,,y,b" for {"a x,y", "b"}).
std::string join_modules(const std::vector<std::string>& modules);

// The full argv (argv[0] is the QEMU binary).
std::vector<std::string> build_argv(const BootSpec& spec);

// Problems that would make QEMU fail or misbehave (missing files, bad memory
// size, a module without a path); empty when the spec looks runnable.
std::vector<std::string> validate(const BootSpec& spec);

// True for sizes QEMU's -m accepts in the form we allow: digits, optional K/M/G/T.
bool valid_memory(std::string_view memory);

// Human-readable argv, shell-quoted where needed (for logs and --dry-run).
std::string shell_quote(const std::vector<std::string>& argv);

}  // namespace moat::qemu
