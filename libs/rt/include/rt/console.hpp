#pragma once
// printf to the hypervisor console (console_io), one line per hypercall.

namespace rt {

void printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace rt
