# GraftLab — the two commands of the README:
#   make run    install what is missing, build (Release), open the GUI on the default recipe
#               (or train it headless with graftlab-cli when there is no display)
#   make test   install what is missing, build, run every test with ctest
BUILD ?= build
# The LibTorch to build against (packaging/find-torch.sh): empty = a CUDA PyTorch of python3 when there is one
# (pip / conda), else Debian's; TORCH=system = Debian's; TORCH=DIR = the torch package at DIR (or TORCH=PYTHON).
TORCH ?= $(GRAFTLAB_TORCH_DIR)
JOBS ?= $(shell nproc)
RECIPE ?= resources/recipes/mae.json
GUI ?= ON
RUN_ARGS ?=

.PHONY: all deps configure build run test clean package bench bench-import fuzz sanitize

all: build

deps:
	@bash packaging/install-deps.sh

configure: deps
	@torch=$$(bash packaging/find-torch.sh "$(TORCH)") || exit 1; \
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRAFTLAB_GUI=$(GUI) $$torch > $(BUILD).configure.log 2>&1 \
	  || { cat $(BUILD).configure.log; exit 1; }

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ] && [ -x $(BUILD)/app/graftlab ]; then \
	  exec $(BUILD)/app/graftlab --recipe $(RECIPE); \
	else \
	  out=$${RUN_DIR:-$$HOME/GraftLab/runs/$$(basename $(RECIPE) .json)-$$(date +%Y%m%d-%H%M%S)}; \
	  echo "No display: training $(RECIPE) headless into $$out."; \
	  echo "Watch it live from a session with a display: $(BUILD)/app/graftlab --open-run $$out (or File > Open run...)."; \
	  echo "Stopped with Ctrl+C? Continue with: $(BUILD)/app/graftlab-cli resume $$out"; \
	  exec $(BUILD)/app/graftlab-cli train --recipe $(RECIPE) --out $$out $(RUN_ARGS); \
	fi

test: build
	@cd $(BUILD) && ctest --output-on-failure --timeout 1200 -j $(JOBS)

# GraftLab's training step against eager PyTorch (python3-torch), side by side, one line per configuration.
bench: build
	@bash benchmarks/run_bench.sh $(BUILD)/app/graftlab-cli $(BUILD)/bench

# Opening a released ViT-B/16 checkpoint: import and the attention of one image, time and peak memory, beside torch.load.
bench-import: build
	@bash benchmarks/import_bench.sh $(BUILD)/app/graftlab-cli $(BUILD)/bench-import

# libFuzzer (clang): recipe parser, snapshot reader, IDX and CIFAR readers, checkpoint loader, torch.save reader (import); FUZZ_SECONDS each; a crash fails and is kept.
FUZZ_SECONDS ?= 60
fuzz: deps
	@cmake -S . -B $(BUILD)-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_CXX_COMPILER=clang++ -DGRAFTLAB_FUZZ=ON -DGRAFTLAB_GUI=OFF -DGRAFTLAB_OPENCV=OFF > $(BUILD)-fuzz.configure.log 2>&1 \
	  || { cat $(BUILD)-fuzz.configure.log; exit 1; }
	@cmake --build $(BUILD)-fuzz --target fuzz_recipe fuzz_snapshot fuzz_idx fuzz_cifar fuzz_checkpoint fuzz_torchfile
	@bash tests/fuzz/run_fuzz.sh $(BUILD)-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(BUILD).configure.log $(BUILD)-fuzz $(BUILD)-fuzz.configure.log $(BUILD)-asan $(BUILD)-asan.configure.log

.PHONY: package
package: build
	@cd $(BUILD) && cpack -G DEB
	@ls -1 $(BUILD)/graftlab_*.deb

# Sanitizer build (ASan + UBSan, GCC) of the core and the CLI, then the core test suite under it.
SANITIZE ?= address,undefined
sanitize: deps
	@cmake -S . -B $(BUILD)-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRAFTLAB_SANITIZE=$(SANITIZE) \
	  -DGRAFTLAB_GUI=OFF > $(BUILD)-asan.configure.log 2>&1 || { cat $(BUILD)-asan.configure.log; exit 1; }
	@cmake --build $(BUILD)-asan -j $(JOBS) --target graftlab_core_tests graftlab-cli
	@cd $(BUILD)-asan && ctest --output-on-failure -R '^core\.'
