# The two set-up commands of the README. Both install libtorch (torch==2.11.0 from PyPI) into a
# cached venv on first use; see scripts/setup-libtorch.sh.
SHELL := /bin/bash
TORCH_ENV = VENV="$$(bash scripts/setup-libtorch.sh | tail -n 1)" && export PATH="$$VENV/bin:$$PATH" LIBTORCH_USE_PYTORCH=1

.PHONY: demo test lint bench bench-micro bench-scan bench-serve distributed-demo cli

## Train Wide + TabMlp on Adult, evaluate on a held-out 20%, explain.
demo:
	@$(TORCH_ENV) && cargo run --release --example adult

## The `widedeep` command (crate cli/): target/release/widedeep.
cli:
	@$(TORCH_ENV) && cargo build --release -p widedeep-cli

## Data-parallel Adult on 2 processes (c10d/Gloo over 127.0.0.1), launched by PyTorch's torchrun
## from the libtorch venv: test accuracy, steps/s, communication, and the weight difference
## against one process with twice the batch.
distributed-demo:
	@$(TORCH_ENV) && cargo build --release --example adult_distributed && \
	  OMP_NUM_THREADS=1 torchrun --no-python --standalone --nproc-per-node=2 \
	  "$${CARGO_TARGET_DIR:-target}/release/examples/adult_distributed"

## The whole test suite (unit, integration, doc tests) of the workspace, in the release profile
## so that it shares the dependencies' build with `make demo` (one cold build, not two).
test:
	@$(TORCH_ENV) && bash scripts/setup-chromium.sh && cargo test --release --workspace

## rustfmt + clippy (warnings are errors), release profile like the rest.
lint:
	@$(TORCH_ENV) && cargo fmt --all -- --check && cargo clippy --release --workspace --all-targets -- -D warnings

## The side-by-side suite against pytorch-widedeep 1.7.0 (all configurations, one markdown table).
bench:
	@$(TORCH_ENV) && bash scripts/setup-bench-env.sh >/dev/null && cargo bench --bench suite && cargo bench --bench recsys

## Criterion micro-benchmarks (preprocessors, one training step); reports changes between runs.
bench-micro:
	@$(TORCH_ENV) && cargo bench --bench micro

## Training from Parquet larger than memory: generates Adult ×20 and ×200 as Parquet folders in
## the temp dir, then streamed vs in-memory epochs (peak RSS, rows/s), the reference's chunked
## fit beside ours, and bad data at row 7,000,000; one set of tables.
bench-scan:
	@$(TORCH_ENV) && bash scripts/setup-bench-env.sh >/dev/null && cargo bench --bench scan

## The `widedeep` command: `widedeep train` on the Adult config against the `adult` example, then
## `widedeep serve` load-tested on 127.0.0.1 beside pytorch-widedeep behind FastAPI + uvicorn.
bench-serve:
	@$(TORCH_ENV) && bash scripts/setup-bench-env.sh >/dev/null && \
	  cargo build --release -p widedeep-cli --bin widedeep && cargo build --release --example adult && \
	  bash benches/serve.sh
