# Thin wrapper over CMake/CTest. Everything builds in out/.
#   make demo    boot the default system in QEMU, console on this terminal
#   make test    build and run every test (unit, fuzz, system, adversarial)
#   make bench   run the benchmarks, write out/bench/results.json
#   make deps    install what the build needs (apt-get; a no-op when present)

.PHONY: all deps configure build demo test bench clean

all: build

deps:
	@sh build/deps.sh

configure: deps
	@cmake --preset default >/dev/null

build: configure
	@cmake --build out

demo: build
	@out/bin/moat run examples/demo.textproto

test: build
	@cd out && ctest --output-on-failure -j2

bench: build
	@rm -f out/bench/results.json
	@cmake --build out --target bench
	@cat out/bench/results.json

clean:
	rm -rf out
