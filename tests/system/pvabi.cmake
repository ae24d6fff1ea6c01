# Issue 11 in QEMU: debug registers, single-step, the LDT and 32-bit user code
# entering the kernel (guests/pvabi). Two domains of the same image: the
# tester, and a bystander that writes the very address the tester watches
# while the tester's breakpoint is armed (it must never see a #DB).
# (The image is built by guests/CMakeLists.txt.)

set(PVABI_CHECKS
  debugreg.set_get_dr0 debugreg.hypervisor_address_eperm debugreg.noncanonical_eperm
  debugreg.general_detect_eperm debugreg.io_breakpoint_eperm debugreg.dr7_high_bits_einval
  debugreg.bad_register_enodev debugreg.dr7_unchanged debugreg.mov_dr_emulated
  debugreg.instruction_breakpoint debugreg.data_breakpoint_write debugreg.dr6_mov_and_clear
  debugreg.data_breakpoint_read debugreg.hypervisor_read_tolerated debugreg.hypervisor_write_tolerated
  debugreg.survives_context_switches debugreg.bystander_saw_no_breakpoint
  singlestep.each_instruction singlestep.off_again singlestep.across_hypercall
  singlestep.steps_on_after_hypercall
  callbacks.hypervisor_address_einval callbacks.nmi_stored callbacks.unknown_type_enosys
  user.setup user.syscall_round_trip
  ldt.writable_page_refused ldt.bad_address_or_size_refused ldt.call_gate_to_hypervisor_refused ldt.set
  ldt.dpl0_code_made_dpl3 ldt.writable_mapping_refused_in_use ldt.segment_load_kernel ldt.update_descriptor
  ldt.segment_load_user ldt.iret_code_and_stack ldt.iret_past_limit_failsafe ldt.replaced_releases_old
  ldt.cleared
  compat.syscall32_bounce compat.syscall32_from_ldt_code compat.no_callback_ud compat.sysenter_handled)

moat_system_test(NAME system_pvabi
  MODULES "pvabi mem=8M" "pvabi mem=8M bystander"
  EXPECT_PASS ${PVABI_CHECKS}
  EXPECT_LINE "pvabi: done, 0 failed" "pvabi bystander: done, 0 failed" "#DB in the hypervisor"
  FORBID_LINE "crashed"
  ICOUNT
  LABELS system adversarial)
