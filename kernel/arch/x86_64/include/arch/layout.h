/* The hypervisor's virtual layout, shared by assembly and C++.
 *
 * Moat lives only in the L4 slots Xen reserves for itself on x86-64
 * (256..271, 0xffff8000'00000000 - 0xffff87ff'ffffffff), so every other slot
 * belongs to the guest, exactly as under Xen:
 *   slot 256  read-only machine-to-phys table, guest readable (RO_MPT)
 *   slot 261  kernel image at KERNEL_VIRT (physical 0 upwards)
 *   slot 262+ direct map of all RAM at DIRECTMAP_VIRT (not guest accessible)
 */
#pragma once

#define KERNEL_VIRT           0xFFFF82D080000000
#define KERNEL_VIRT_L4_INDEX  261
#define KERNEL_VIRT_L3_INDEX  322
#define DIRECTMAP_VIRT        0xFFFF830000000000
#define DIRECTMAP_L4_INDEX    262
#define HYPERVISOR_L4_FIRST   256
#define HYPERVISOR_L4_LAST    271
#define BOOT_STACK_SIZE       16384
