# The two commands of a fresh machine: `make serve` and `make test`. Each installs what it needs first
# (scripts/setup: npm ci, and Mesa lavapipe where no GPU driver exists).
SHELL := bash
export XDG_RUNTIME_DIR ?= /tmp

.PHONY: setup build serve test typecheck lint check bench-kernels clean

setup:
	@bash scripts/setup

build: setup
	@npm run --silent build

# Until the HTTP server lands, `make serve` runs the end-to-end GPU self-test (see README "Status").
serve: build
	@node bin/dawnllm.js info

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
