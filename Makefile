# Thin wrapper over Meson + Ninja; the real work is in scripts/.
#   make          build build/gpunode
#   make run      install missing packages, build, run `gpunode up` in the foreground (ARGS="..." passed on)
#   make test     install, build, unit + integration tests, then both again under ASan+UBSan; prints "N passed, N failed"
#   make bench    install, build with -Dbuildtype=release in build-release, run bench/run.sh
#   make clean    remove the build dirs
# Warnings are errors (-Dwerror=true) in every build, CI or not.

BUILD ?= build
ASAN_BUILD ?= build-asan
RELEASE_BUILD ?= build-release
ARGS ?=

.PHONY: all build deps run test bench clean

all: build

build:
	@scripts/build.sh $(BUILD)

deps:
	@scripts/deps.sh

run:
	@scripts/deps.sh
	@scripts/build.sh $(BUILD)
	exec $(BUILD)/gpunode up $(ARGS)

test:
	@scripts/deps.sh
	@scripts/build.sh $(BUILD)
	@BUILD=$(BUILD) ASAN_BUILD=$(ASAN_BUILD) scripts/test.sh

bench:
	@scripts/deps.sh
	@scripts/build.sh $(RELEASE_BUILD) -Dbuildtype=release
	@BUILD=$(RELEASE_BUILD) bench/run.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(RELEASE_BUILD)
