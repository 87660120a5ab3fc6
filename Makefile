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

.PHONY: fuzz dev test lint typecheck unit integration infra e2e synth deploy diff gpu-image bench clean venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e ".[dev,cdk,modal,gpu]"
	# TOPLOC (inference proofs) compiled against the torch just installed: its wheel breaks on torch 2.13.
	$(PY) -m pip install --quiet --no-binary toploc --no-build-isolation "toploc==0.1.6"
	@touch $(STAMP)

venv: $(STAMP)

## make dev: create the venv, install, start the local stack on 127.0.0.1:3000
dev: $(STAMP)
	$(PY) -m devstack

## make test: lint, types, unit, integration, infra, e2e
test: $(STAMP) lint typecheck
	$(PY) -m pytest -n 2 --dist loadgroup tests $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy layers/core/lotabots functions devstack gpu_jobs infra/cdk bench

unit: $(STAMP)
	$(PY) -m pytest tests/unit
integration: $(STAMP)
	$(PY) -m pytest tests/integration
infra: $(STAMP)
	$(PY) -m pytest tests/infra
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

deploy: $(STAMP)
	cd infra/cdk && $(CDK) deploy --app "../../$(PY) app.py" --output ../../cdk.out --require-approval broadening --all

diff: $(STAMP)
	cd infra/cdk && $(CDK) diff --app "../../$(PY) app.py" --output ../../cdk.out --all

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

## make bench: benchmarks, results in docs/benchmarks.md
bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf cdk.out build .local .pytest_cache .mypy_cache .ruff_cache
