# Local stack targets (included by the Makefile, which defines VENV, PY, setup and build).
#   make local                       one run for RUN_DATE on a throwaway stack, then stop it
#   make local RUN_DATE=2021-06-27 KEEP=1 DATABASE_URL=postgres://... PIPELINE=path/to/pipeline.toml
#   make local-up / make local-down  leave a stack running (endpoints in .local-stack/env) / stop it
#   make local PARAMS='SubmitWaitSeconds=5'   template parameter overrides (also for local-up)
#   make local DATA=dir              also seed the local S3: each top-level folder of dir is a bucket
#                                    (docs/copy-unload.md), for COPY and UNLOAD of the team's buckets
#   make local-exec RUN_DATE=...     one more execution on the running stack
#   make backfill FROM=2021-06-01 TO=2021-06-05 [ORDER=newestFirst ON_FAILURE=continue DRY_RUN=1 BACKFILL_ID=… KEEP=1]
#                                    a Backfill on the running stack, or on a throwaway one
#   make test-e2e                    end-to-end tests on their own throwaway stack
#   make soak [N=100 SEED=… ACTIVE_LIMIT=10]   N concurrent pipelines through injected faults

RUN_DATE ?= 2021-06-26
LOCAL_RUN_DIR ?= .local-stack
LOCAL_FLAGS = --run-dir $(LOCAL_RUN_DIR) $(if $(DATABASE_URL),--database-url '$(DATABASE_URL)')
PIPELINE_FLAG = $(if $(PIPELINE),--pipeline '$(PIPELINE)')
DATA_FLAG = $(if $(DATA),--data '$(DATA)')
# PARAMS='SubmitWaitSeconds=5 …': template parameter overrides for this stack (default: template.yaml's)
PARAMS_FLAG = $(foreach p,$(PARAMS),--parameter '$(p)')

N ?= 100
ACTIVE_LIMIT ?= 10
SEED ?=

.PHONY: local local-up local-exec local-watch local-down backfill test-e2e soak soak-small

local: setup build ## one pipeline run on a throwaway local stack (RUN_DATE=, KEEP=1, DATABASE_URL=, PIPELINE=your/pipeline.toml, DATA=dir)
	$(PY) local/stack.py run --run-date '$(RUN_DATE)' $(if $(filter 1 yes true,$(KEEP)),--keep) $(LOCAL_FLAGS) $(PIPELINE_FLAG) $(DATA_FLAG) $(PARAMS_FLAG)

local-up: setup build ## start a local stack and leave it running (endpoints in .local-stack/env; PIPELINE=, DATA=dir)
	$(PY) local/stack.py up $(LOCAL_FLAGS) $(PIPELINE_FLAG) $(DATA_FLAG) $(PARAMS_FLAG)

local-exec: ## one more execution on the running local stack (RUN_DATE=)
	$(PY) local/stack.py exec --run-date '$(RUN_DATE)' --run-dir $(LOCAL_RUN_DIR)

backfill: setup build ## a Backfill with live progress and its per-date table (FROM= TO= ORDER=newestFirst ON_FAILURE=continue DRY_RUN=1 BACKFILL_ID= KEEP=1); on the running stack if there is one
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make backfill FROM=2021-06-01 TO=2021-06-05 [ORDER=newestFirst] [ON_FAILURE=continue] [DRY_RUN=1]" >&2; exit 2; }
	$(PY) local/backfill.py --from '$(FROM)' --to '$(TO)' --run-dir $(LOCAL_RUN_DIR) \
	  $(if $(ORDER),--order '$(ORDER)') $(if $(ON_FAILURE),--on-failure '$(ON_FAILURE)') \
	  $(if $(filter 1 yes true,$(DRY_RUN)),--dry-run) $(if $(BACKFILL_ID),--backfill-id '$(BACKFILL_ID)') \
	  $(if $(filter 1 yes true,$(KEEP)),--keep)

local-watch: ## live progress of every execution started on the running stack (markers, CLI, ...)
	$(PY) local/stack.py watch --run-dir $(LOCAL_RUN_DIR)

local-down: ## stop the running local stack
	$(PY) local/stack.py down --run-dir $(LOCAL_RUN_DIR)

# E2E_WORKERS stacks side by side (pytest-xdist), each running whole test files (--dist loadfile):
# the tests mostly wait on executions, so two stacks on two cores take about half the time.
# tests/test_function_env.py first: each binary starts with its template environment (seconds).
E2E_WORKERS ?= 2
test-e2e: setup build ## end-to-end tests on their own throwaway local stacks (E2E_WORKERS=2)
	$(PY) -m pytest tests/test_function_env.py tests/e2e -v --durations=15 $(if $(filter-out 0 1,$(E2E_WORKERS)),-n $(E2E_WORKERS) --dist loadfile)

soak: setup build ## N concurrent pipelines through injected faults, every invariant checked (N=100 SEED= ACTIVE_LIMIT=10)
	$(PY) local/soak.py --n $(N) --active-limit $(ACTIVE_LIMIT) $(if $(SEED),--seed $(SEED))

soak-small: setup build ## the soak's small version run by `make test` (N=10)
	$(PY) local/soak.py --n 10 --active-limit 2 $(if $(SEED),--seed $(SEED))
