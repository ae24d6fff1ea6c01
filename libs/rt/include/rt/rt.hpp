#pragma once
// The domain runtime's view of its own start-of-day state.

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

// The domain's own code: called after the runtime is set up. Returning from
// it powers the domain off.
void main();

}  // namespace rt
