#pragma once
// The domain runtime's view of its own start-of-day state.

#include <cstddef>
#include <cstdint>

#include <abi/shared_info.hpp>
#include <abi/start_info.hpp>

namespace rt {

const abi::StartInfo& start_info();

// The shared info page, mapped by the runtime at start of day.
abi::SharedInfo& shared_info();
abi::VcpuInfo& vcpu_info();

// Whether `word` stands in start_info.cmd_line as a whole word.
bool has_arg(const char* word);
// The value of "key=VALUE" in start_info.cmd_line (up to the next space):
// false if there is none.
bool cmdline_value(const char* key, const char** value, size_t* len);
// "key=N" (decimal) on the command line, or `def` if it is missing or not a number.
uint64_t cmdline_number(const char* key, uint64_t def);

// The domain's own code: called after the runtime is set up. Returning from
// it powers the domain off.
void main();

}  // namespace rt
