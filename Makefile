# The targets are the README's two commands: `make local` runs the whole pipeline on this machine,
# `make test` runs every check CI runs. `make help` lists them; docs/development.md explains them.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
BIN := $(CURDIR)/$(VENV)/bin
# The venv's tools (sam, cfn-lint, cargo-lambda and its zig) come first on PATH.
export PATH := $(BIN):$(PATH)
export AWS_REGION ?= us-east-1
export AWS_DEFAULT_REGION ?= $(AWS_REGION)
export SAM_CLI_TELEMETRY := 0
STACK_NAME ?= redshift-etl-callback
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# checkov, offline: no platform download, no mapping, no update check (local/requirements-checkov.txt)
CHECKOV := env BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(VENV)/checkov/bin/checkov --skip-download

.PHONY: help setup build asl upload-scripts fmt fmt-check clippy lint lint-cached unit sam-build sam-build-debug test fuzz-build fuzz fuzz-test bench compat deploy clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  %-12s %s\n", $$1, $$2 }'

# ---- set-up: everything a fresh Debian/Ubuntu machine needs, installed once --------------------

setup: $(VENV)/.installed $(VENV)/checkov/.installed $(VENV)/awscli/.installed node_modules/.installed .make/postgresql .make/rust-targets ## install the tools (venv, AWS CLI, npm, PostgreSQL, arm64 Rust target)

$(VENV)/.installed: local/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r local/requirements.txt
	touch $@

$(VENV)/checkov/.installed: local/requirements-checkov.txt | $(VENV)/.installed
	python3 -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet -r local/requirements-checkov.txt
	touch $@

# The AWS CLI the docs' commands use, v1 from PyPI in its own venv, linked into .venv/bin (docs/deploy.md, "The AWS CLI")
$(VENV)/awscli/.installed: local/requirements-awscli.txt | $(VENV)/.installed
	python3 -m venv $(VENV)/awscli
	$(VENV)/awscli/bin/pip install --quiet -r local/requirements-awscli.txt
	ln -sfn ../awscli/bin/aws $(VENV)/bin/aws
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

.make/postgresql:
	@mkdir -p .make
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then echo "PostgreSQL server found"; \
	else echo "installing PostgreSQL (Debian package postgresql)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; fi
	touch $@

.make/rust-targets:
	@mkdir -p .make
	rustup target add aarch64-unknown-linux-gnu
	touch $@

# ---- build and checks --------------------------------------------------------------------------

# --all-targets: the dependencies' features as `cargo test` resolves them (dev-dependencies such as the
# SDK's test-util included), so after `make unit` this builds nothing again; a plain `cargo build`
# would rebuild half the SDK with fewer features and relink every binary.
build: ## build every crate (the Lambdas and the emulator, debug)
	cargo build --workspace --all-targets --locked

asl: ## regenerate the state machines and the README's pipeline diagram, step table and lineage from scripts/pipeline.toml (refuses a failed data check)
	cargo run --quiet --locked -p pipeline -- asl --out statemachine/etl.asl.json
	cargo run --quiet --locked -p pipeline -- readme --readme README.md
	cargo run --quiet --locked -p polling-baseline --bin polling-asl -- --out bench/polling.asl.json
	cargo run --quiet --locked -p longpoll-baseline --bin longpoll-asl -- --out bench/longpoll.asl.json

fmt: ## format the Rust code
	cargo fmt --all

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets --locked -- -D warnings

lint: setup ## sam validate --lint, cfn-lint, checkov (IaC security, offline) and asl-validator
	sam validate --lint --template template.yaml
	cfn-lint template.yaml
	$(CHECKOV) --framework cloudformation secrets --compact --quiet -f template.yaml -f bench/template.yaml -f bench/longpoll.yaml
	$(PY) -m pytest tests/test_template_security.py -q  # every checkov skip is needed and explained; a new finding fails
	$(PY) -m pytest tests/test_template_rules.py tests/test_template_iam.py tests/test_moto_adapter.py tests/test_openlineage_receiver.py tests/test_openlineage_events.py tests/test_template_notifications.py -q  # deploy-time rules, least privilege, the moto adapter's guard, the OpenLineage receiver and the events against the pinned schema, failed-run notifications
	$(PY) -m pytest tests/test_check_links.py -q && $(PY) tests/check_links.py  # every relative link and #anchor in README.md and docs/ resolves
	npx --no-install asl-validator --json-path statemachine/etl.asl.json
	npx --no-install asl-validator --json-path statemachine/trigger.asl.json
	npx --no-install asl-validator --json-path statemachine/backfill.asl.json
	npx --no-install asl-validator --json-path statemachine/failure-notifier.asl.json
	sam validate --lint --template bench/template.yaml
	cfn-lint bench/template.yaml
	npx --no-install asl-validator --json-path bench/polling.asl.json
	sam validate --lint --template bench/longpoll.yaml
	cfn-lint bench/longpoll.yaml
	npx --no-install asl-validator --json-path bench/longpoll.asl.json

unit: setup ## Rust unit and integration tests (handlers, tokenizer, generator and its committed output, emulator on real PostgreSQL)
	cargo test --workspace --locked

# The template's functions' binaries (Metadata.BuildProperties.Binary): one source of truth.
FUNCTION_BINARIES = $(shell $(PY) local/deploy.py binaries template.yaml)
SAM_FUNCTIONS := SubmitterFunction CompleterFunction ReconcilerFunction BackfillPlanFunction

# One `cargo lambda build` for every function first: the shared dependencies compile once and the
# fat-LTO links run two at a time. sam build then runs cargo lambda per function (the same flags and
# features: `--release --arm64`), finds each binary fresh and only packages it.
sam-build: setup ## sam build (release), and check that every bootstrap is an arm64 Linux executable of at most 8 MB
	cargo lambda build --release --arm64 --locked $(addprefix -p ,$(FUNCTION_BINARIES))
	sam build
	$(PY) tests/check_bootstraps.py .aws-sam/build $(SAM_FUNCTIONS)

# make test's packaging check: the same `cargo lambda build --arm64` and `sam build` path with the dev
# profile (SAM_BUILD_MODE=debug: SAM's rust-cargolambda then builds without --release), into a build
# dir of its own so a later `sam deploy` can never pick up a debug bootstrap. The release profile's
# fat-LTO build (about 400 s of CPU-bound linking) and the 8 MB size target stay in `make sam-build`,
# which `make bench` runs; `make deploy`'s own `sam build` is the release build (docs/development.md).
sam-build-debug: setup ## sam build with the dev profile into .aws-sam/build-debug, and check that every bootstrap is an arm64 Linux executable
	cargo lambda build --arm64 --locked $(addprefix -p ,$(FUNCTION_BINARIES))
	SAM_BUILD_MODE=debug sam build --build-dir .aws-sam/build-debug
	$(PY) tests/check_bootstraps.py --any-size .aws-sam/build-debug $(SAM_FUNCTIONS)

# make test: the stages in groups; the stages of one group run at the same time (a CPU-bound cargo
# stage beside one that mostly waits on downloads or the local stack), the groups in order.
# local/stages.py prints each stage's log as it ends and then the time of every stage.
TEST_GROUPS := "setup fmt-check clippy" "lint-cached unit" "fuzz-test sam-build-debug" "build" "test-e2e soak-small"
# make test's lint: skipped when it passed on exactly these files before (a hash of every file git
# tracks or would track, the tools' pinned requirements included); `make lint` always runs it.
lint-cached: setup
	@h=$$(git ls-files -co --exclude-standard -z | xargs -0 sha256sum 2>/dev/null | sha256sum | cut -c1-64); \
	if [ "$$(cat .make/lint.ok 2>/dev/null)" = "$$h" ]; then \
		echo "lint: passed on these exact files before (.make/lint.ok); skipped (make lint runs it)"; \
	else rm -f .make/lint.ok && $(MAKE) --no-print-directory lint && echo "$$h" > .make/lint.ok; fi

test: ## everything CI runs, in timed stages (local/stages.py)
	@python3 local/stages.py $(TEST_GROUPS)

# QUICK=1: shorter criterion runs, 7 starts and 200 events per function instead of 21 and 1,000.
CRITERION_ARGS := $(if $(QUICK),--warm-up-time 0.5 --measurement-time 1 --sample-size 20,)

compat: ## Redshift compatibility corpus: rerun it, rewrite its results file and the pass table in docs/redshift-compatibility.md
	CORPUS_WRITE=1 cargo test -p redshift-data-emulator --test corpus --locked -- --nocapture

bench: setup build sam-build ## speed and memory targets: bootstrap size, start, RSS, criterion medians, local-stack latency
	cargo bench -p etl-callback --bench prepare --bench completer --locked -- $(CRITERION_ARGS)
	cargo bench -p redshift-sql --bench translate --locked -- $(CRITERION_ARGS)
	$(PY) bench/check_criterion.py
	# release binaries: the functions' start and memory, and the comparison's stack (as deployed)
	cargo build --release --locked --bins -p submitter -p completer -p reconciler -p backfill \
		-p redshift-data-emulator -p polling-baseline -p longpoll-baseline
	$(PY) bench/lambda_runtime.py $(if $(QUICK),--quick,)
	$(PY) local/bench.py
	$(PY) bench/compare.py $(if $(QUICK),--quick,)  # callback, callback + wait, polling, long polling (bench/results)
	$(PY) bench/copy_load.py --binary target/release/redshift-data-emulator $(if $(QUICK),--mb 50 --runs 3,)  # the median of 3 (a 20 MB single run varies 41-53 MB/s). Emulator COPY: CSV >= 50 MB/s, and Parquet (docs/copy-unload.md)

# ---- fuzzing (docs/fuzzing-and-security-scan.md) ------------------------------------------------
# The targets (fuzz/, its own workspace) build with plain cargo and the flags `cargo fuzz build`
# (cargo-fuzz 0.13) passes, so nothing is installed: libFuzzer's SanitizerCoverage, AddressSanitizer,
# `--cfg fuzzing`, debug assertions. RUSTC_BOOTSTRAP: the -Z flags on the stable toolchain. `--target`
# keeps the flags off build scripts and proc macros, as cargo fuzz does. Output: fuzz/target.

FUZZ_SECONDS ?= 180
FUZZ_TEST_SECONDS ?= 5
FUZZ_RUSTFLAGS := -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing \
  -Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Zsanitizer=address \
  -Cllvm-args=-sanitizer-coverage-stack-depth -Cdebug-assertions
FUZZ_CARGO = RUSTC_BOOTSTRAP=1 cargo build --locked --manifest-path fuzz/Cargo.toml \
  --target x86_64-unknown-linux-gnu --bins

fuzz-build: ## build the fuzz targets (libFuzzer, AddressSanitizer, debug assertions; optimised)
	RUSTFLAGS="$(FUZZ_RUSTFLAGS) -Ccodegen-units=1" $(FUZZ_CARGO) --release \
	  --config 'profile.release.debug="line-tables-only"'

fuzz: fuzz-build ## run each fuzz target FUZZ_SECONDS (180) and report executions, coverage, findings
	python3 fuzz/run.py --seconds $(FUZZ_SECONDS)

# make test: each target FUZZ_TEST_SECONDS over its committed corpus (new inputs to a temporary
# dir), from the unoptimised build (still AddressSanitizer and debug assertions), which builds in
# half the time; FUZZ_TEST_JOBS targets at a time (one per core), each still for its seconds.
FUZZ_TEST_JOBS ?= 2
fuzz-test:
	RUSTFLAGS="$(FUZZ_RUSTFLAGS)" $(FUZZ_CARGO)
	work=$$(mktemp -d) && trap 'rm -rf "$$work"' EXIT && python3 fuzz/run.py --build debug --seconds $(FUZZ_TEST_SECONDS) --jobs $(FUZZ_TEST_JOBS) --work "$$work"

# ---- AWS ---------------------------------------------------------------------------------------

deploy: setup ## sam build + sam deploy (guided the first time); scripts/*.sql go to scripts/<scriptsVersion>/
	cargo run --quiet --locked -p pipeline -- check   # the committed state machine is what scripts/ generate (make asl)
	sam build
	if [ -f .make/deployed ]; then $(MAKE) --no-print-directory upload-scripts; fi   # before the new definition
	if [ -f .make/deployed ]; then sam deploy --stack-name $(STACK_NAME); else sam deploy --guided --stack-name $(STACK_NAME); fi
	@mkdir -p .make && touch .make/deployed
	$(MAKE) --no-print-directory upload-scripts   # a first deploy: the bucket exists only now

# The scripts' content version the committed state machine sends (make asl bakes it into every SQL Task).
# Nothing is deleted: a run started before a deploy (or redriven up to 14 days later) reads its own version.
upload-scripts: ## upload scripts/*.sql under scripts/<scriptsVersion>/ of the deployed stack's bucket
	version=$$($(PY) local/deploy.py scripts-version statemachine/etl.asl.json) && test -n "$$version" && \
	bucket=$$(aws cloudformation describe-stacks --stack-name $(STACK_NAME) \
	  --query "Stacks[0].Outputs[?OutputKey=='ScriptsBucketName'].OutputValue" --output text) && \
	aws s3 cp --recursive scripts/ "s3://$$bucket/scripts/$$version/" --exclude '*' --include '*.sql'

clean: ## stop a local stack, remove build output, the venv and node_modules
	-[ -x $(PY) ] && $(PY) local/stack.py down --run-dir $(LOCAL_RUN_DIR)
	cargo clean
	rm -rf $(VENV) node_modules .aws-sam .make .local-stack

include local/local.mk
