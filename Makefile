# LotaBots Serverless — developer entry points. `make dev` and `make test` do all set-up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
CDK_VERSION := 2.1148.1
CDK := npx --yes aws-cdk@$(CDK_VERSION)

## Release and operations tooling (docs/operations.md). SAM CLI, checkov and pip-audit pin their own
## boto3/botocore/packaging, so each lives in its own venv under .tools/, never in .venv.
TOOLS := .tools
SAM_CLI_VERSION := 1.170.0
CHECKOV_VERSION := 3.3.30
PIP_AUDIT_VERSION := 2.10.1
SAM_STAMP := $(TOOLS)/sam/.installed-$(SAM_CLI_VERSION)
CHECKOV_STAMP := $(TOOLS)/checkov/.installed-$(CHECKOV_VERSION)
PIP_AUDIT_STAMP := $(TOOLS)/pip-audit/.installed-$(PIP_AUDIT_VERSION)
SAM_DIR := build/sam
SAM_TEMPLATE := $(SAM_DIR)/LotaBots-dev.template.json

.PHONY: fuzz dev test lint typecheck unit integration infra e2e synth deploy diff gpu-image bench bench-aiops load clean venv \
	tools test-tools sam-template sam-invoke dev-for-sam smoke checkov lock audit traffic aiops-now

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e ".[dev,cdk,modal,gpu,aiops]"
	# TOPLOC (inference proofs) compiled against the torch just installed: its wheel breaks on torch 2.13.
	$(PY) -m pip install --quiet --no-binary toploc --no-build-isolation "toploc==0.1.6"
	@touch $(STAMP)

venv: $(STAMP)

## make dev: create the venv, install, start the local stack on 127.0.0.1:3000
dev: $(STAMP)
	$(PY) -m devstack

## make test: lint, types, unit, integration, infra (with SAM CLI and checkov), e2e
test: $(STAMP) $(SAM_STAMP) $(CHECKOV_STAMP) lint typecheck
	LOTABOTS_REQUIRE_TOOLS=1 $(PY) -m pytest -n 2 --dist loadgroup tests $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy layers/core/lotabots functions devstack gpu_jobs infra/cdk infra/smoke.py bench

unit: $(STAMP)
	$(PY) -m pytest tests/unit
integration: $(STAMP)
	$(PY) -m pytest tests/integration
infra: $(STAMP) $(SAM_STAMP) $(CHECKOV_STAMP)
	LOTABOTS_REQUIRE_TOOLS=1 $(PY) -m pytest tests/infra
e2e: $(STAMP)
	$(PY) -m pytest tests/e2e

## make fuzz: the API fuzz run of `make test` with a larger budget (per caller kind)
FUZZ_EXAMPLES ?= 100
FUZZ_SECONDS ?= 300
fuzz: $(STAMP)
	LOTABOTS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) LOTABOTS_FUZZ_SECONDS=$(FUZZ_SECONDS) \
	  $(PY) -m pytest -p no:xdist tests/e2e/test_api_fuzz.py

## make synth: build the layer and function assets (no Docker) and write cdk.out/
synth: $(STAMP)
	cd infra/cdk && ../../$(PY) app.py

## make deploy [CDK_ARGS="-c stage=prod"] [CDK_APPROVAL=never]: stack outputs land in cdk-outputs.json
CDK_ARGS ?=
CDK_APPROVAL ?= broadening
deploy: $(STAMP)
	cd infra/cdk && $(CDK) deploy --app "../../$(PY) app.py" --output ../../cdk.out --all \
	  --require-approval $(CDK_APPROVAL) --outputs-file ../../cdk-outputs.json $(CDK_ARGS)

diff: $(STAMP)
	cd infra/cdk && $(CDK) diff --app "../../$(PY) app.py" --output ../../cdk.out --all $(CDK_ARGS)

## make gpu-image: build gpu_jobs/Dockerfile and push it to the stack's ECR repository (needs Docker,
## the AWS CLI and a deployed stack; the tag must match the deploy's -c gpuImageTag, default the version)
STAGE ?= dev
GPU_IMAGE_TAG ?= $(shell $(PY) -c "import lotabots; print(lotabots.__version__)" 2>/dev/null)
gpu-image: $(STAMP)
	repo=$$(aws cloudformation describe-stacks --stack-name LotaBots-$(STAGE) \
	  --query "Stacks[0].Outputs[?OutputKey=='GpuImageRepository'].OutputValue" --output text) && \
	aws ecr get-login-password | docker login --username AWS --password-stdin $${repo%%/*} && \
	docker build -f gpu_jobs/Dockerfile -t $$repo:$(GPU_IMAGE_TAG) . && \
	docker push $$repo:$(GPU_IMAGE_TAG)

## make bench: benchmarks, results in docs/benchmarks.md (every section but Load)
bench: $(STAMP)
	$(PY) -m bench

## make bench-aiops: AIOps benchmarks only (Loghub, NAB, M4; data in ../shared/bench-data or
## $$LOTABOTS_BENCH_DATA), its section of docs/benchmarks.md replaced in place
bench-aiops: $(STAMP)
	$(PY) -m bench aiops

## make load [LOAD_USERS=12 LOAD_SECONDS=60 LOAD_CONTRAST=0]: a local stack of its own under locust
## (mixed read/write traffic, several roles, a large PDF ingesting); the Load section of docs/benchmarks.md
load: $(STAMP)
	$(PY) -m bench load

$(SAM_STAMP):
	rm -rf $(TOOLS)/sam && $(PYTHON) -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_CLI_VERSION)
	@touch $@
$(CHECKOV_STAMP):
	rm -rf $(TOOLS)/checkov && $(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	@touch $@
$(PIP_AUDIT_STAMP):
	rm -rf $(TOOLS)/pip-audit && $(PYTHON) -m venv $(TOOLS)/pip-audit
	$(TOOLS)/pip-audit/bin/pip install --quiet --disable-pip-version-check pip-audit==$(PIP_AUDIT_VERSION)
	@touch $@

## make tools: SAM CLI, checkov and pip-audit, each in its own venv (make test uses the first two)
tools: $(SAM_STAMP) $(CHECKOV_STAMP) $(PIP_AUDIT_STAMP)

## the tools `make test` needs (SAM CLI, checkov)
test-tools: $(SAM_STAMP) $(CHECKOV_STAMP)

## make sam-template: the SAM-ready variant of the stack (no SAR app, no remote layer, local endpoints)
sam-template: $(STAMP)
	cd infra/cdk && CDK_OUTDIR=../../$(SAM_DIR) ../../$(PY) app.py --sam-local
	@echo "SAM template: $(SAM_TEMPLATE) (logical ids and events: samconfig.toml)"

## make traffic [URL=http://127.0.0.1:3000]: mixed traffic (and errors) for the local stack's AIOps
traffic: $(STAMP)
	$(PY) -m devstack.traffic --url $(or $(URL),http://127.0.0.1:3000)

## make aiops-now: run the AIOps schedules of the running local stack now (logs, anomaly, forecast, report)
aiops-now: $(STAMP)
	$(PY) -m devstack.invoke aiops-health aiops-logs aiops-anomaly aiops-forecast aiops-report

## make dev-for-sam: the local stack reachable from containers on the ports events/env.json names
## (moto 5000, Parameters extension 2773, PostgreSQL: containers cannot share the SQLite file)
SAM_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/lotabots
dev-for-sam: $(STAMP)
	LOTABOTS_HOST=0.0.0.0 LOTABOTS_MOTO_PORT=5000 LOTABOTS_EXTENSION_PORT=2773 \
	  DATABASE_URL=$(SAM_DATABASE_URL) $(PY) -m devstack

## make sam-invoke FN=AuthFunction EVENT=events/auth_login.json: sam build + sam local invoke (Docker)
sam-invoke: $(SAM_STAMP) sam-template
	$(TOOLS)/sam/bin/sam build
	AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_SESSION_TOKEN=local-session-token \
	  $(TOOLS)/sam/bin/sam local invoke $(FN) -e $(EVENT)

## make smoke URL=https://<api>/<stage> [SMOKE_EMAIL=... SMOKE_PASSWORD=...]: check a deployed stage
smoke: $(STAMP)
	$(PY) infra/smoke.py $(URL)

## make checkov: checkov on cdk.out (after make synth) with the reasoned skips of infra/checkov-skips.yaml
checkov: $(CHECKOV_STAMP) $(STAMP)
	$(TOOLS)/checkov/bin/checkov --directory cdk.out --framework cloudformation --quiet --compact \
	  --skip-download --skip-check "$$($(PY) -c 'import yaml; print(",".join(yaml.safe_load(open("infra/checkov-skips.yaml"))))')"

## make lock: re-resolve layers/core/requirements*.lock (Lambda's platform, with sha256 hashes)
lock: $(STAMP)
	cd infra/cdk && ../../$(PY) -m lotabots_infra.lock

## make audit: pip-audit the locked layer dependencies (needs the vulnerability service: not in make test)
audit: $(PIP_AUDIT_STAMP)
	for lock in layers/core/requirements*.lock; do \
	  $(TOOLS)/pip-audit/bin/pip-audit --strict --disable-pip --require-hashes -r $$lock || exit 1; done

clean:
	rm -rf cdk.out build .local .pytest_cache .mypy_cache .ruff_cache .aws-sam
