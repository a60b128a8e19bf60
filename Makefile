# The two commands of a fresh machine: `make serve` and `make test`. Each installs what it needs first
# (scripts/setup: npm ci, and Mesa lavapipe where no GPU driver exists).
SHELL := bash
export XDG_RUNTIME_DIR ?= /tmp

.PHONY: setup build serve test typecheck lint check bench-kernels clean

setup:
	@bash scripts/setup

build: setup
	@npm run --silent build

# Serves the bundled model (assets/default-model, NVFP4) on http://127.0.0.1:8000 (GPU if present, else lavapipe).
# Extra flags: make serve ARGS="--port 9000".
serve: build
	@node bin/dawnllm.js serve $(ARGS)

typecheck: setup
	@npx tsc -p tsconfig.json --noEmit

lint: setup
	@npx eslint . && npx prettier --check --log-level warn .

check: typecheck lint

test: check
	@npx vitest run

bench-kernels: setup
	@for f in bench/kernels/*.ts; do case "$$f" in */harness.ts) ;; *) npx tsx "$$f" --quick ;; esac; done

clean:
	rm -rf dist
