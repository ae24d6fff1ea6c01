# Thin wrapper over CMake/CTest. Everything builds in out/.
#   make demo    boot the default system in QEMU, console on this terminal
#   make test    build and run every test (unit, fuzz, system, adversarial)
#   make linux   boot Debian's Linux kernel as a PV guest, its shell on this terminal
#   make bench   run the benchmarks, write out/bench/results.json
#   make fuzz-long SEED=N   the hypercall fuzzer, 10^7 calls (docs/hcfuzz.md)
#   make deps    install what the build needs (apt-get; a no-op when present)

.PHONY: all deps configure build demo linux test bench fuzz-long clean

all: build

deps:
	@sh build/deps.sh

configure: deps
	@cmake --preset default >/dev/null

build: configure
	@cmake --build out

demo: build
	@out/bin/moat run examples/demo.textproto

# Debian's kernel (make deps fetches it), the initramfs and out/linux-disk.img
# (the build makes them): examples/linux.textproto.
linux: build
	@out/bin/moat run examples/linux.textproto

test: build
	@cd out && ctest --output-on-failure -j2

bench: build
	@rm -f out/bench/results.json
	@cmake --build out --target bench
	@cat out/bench/results.json

# 10^7 fuzzed hypercalls before a release: SEED for the first fuzzer (the
# second gets SEED + 1); a random one, printed, if unset.
fuzz-long: build
	@seed="$(SEED)"; [ -n "$$seed" ] || seed=$$(od -An -N4 -tu4 /dev/urandom | tr -d ' '); \
	echo "fuzz-long: seed $$seed (again: make fuzz-long SEED=$$seed)"; \
	HCFUZZ_SEED=$$seed cmake --build out --target fuzz_long

clean:
	rm -rf out
