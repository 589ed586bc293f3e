# OfferSeal. `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml package.json package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

# The pages' scripts (web/src/) bundled by esbuild into services/web/static/dist/.
WEB_DIST := services/web/static/dist/verify.js
WEB_SRC  := $(shell find web/src -name '*.js') web/build.mjs services/web/static/site.css $(wildcard services/shared/catalogue/*.json)

$(WEB_DIST): $(STAMP) $(WEB_SRC)
	npm run build

setup: $(STAMP) $(WEB_DIST) ## create .venv, install Python and npm dependencies (pinned), build the pages' scripts

# What the browser and PDF tests need from Debian: Chromium and its driver (Selenium), a CJK
# font for the zh-CN pages and PDFs, poppler's pdftoppm. Installed when missing and allowed.
SYSTEM_PACKAGES := chromium chromium-driver fonts-wqy-microhei poppler-utils
SYSTEM_FILES    := /usr/bin/chromium /usr/bin/chromedriver /usr/bin/pdftoppm /usr/share/fonts/truetype/wqy/wqy-microhei.ttc

system: ## install the Debian packages the browser and PDF tests need, if missing (needs root and apt-get)
	@missing=0; for f in $(SYSTEM_FILES); do [ -e $$f ] || missing=1; done; \
	if [ $$missing = 0 ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "setup: installing $(SYSTEM_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES); \
	else echo "setup: the browser and PDF tests need $(SYSTEM_PACKAGES) (Debian); they skip without them, and fail under CI=true"; fi

demo: setup ## run the end-to-end scenario on embedded defaults (SQLite, in-process broker, Anvil)
	$(BIN)/offerseal demo

up: setup ## run the stack on embedded defaults until Ctrl-C
	$(BIN)/offerseal up

# The suite mostly waits (servers, chains, timers): it runs on more pytest-xdist workers than
# cores. tests/conftest.py schedules such runs with `--dist loadgroup`: the tests that share a
# module's one stack or browser (or RabbitMQ, where no virtual host of their own can be made)
# run on one worker. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 6

test: setup system ## ruff, mypy, import boundaries, then the whole test suite (PostgreSQL and RabbitMQ for the integration part)
	$(BIN)/ruff check services tests bench verifier
	$(BIN)/mypy services verifier/offerseal_verify
	$(BIN)/lint-imports
	$(BIN)/pytest -q -n $(TEST_WORKERS)

# The integration tests for daily work: one stack per module or none, no process killed, no
# browser (tests/README.md). The rest runs in `make test`.
FAST_INTEGRATION := $(addprefix tests/integration/,$(addsuffix .py,\
	test_access_matrix test_broker test_console test_console_board_store \
	test_dossier_verified test_intent_agreements test_migrations test_nul_in_path \
	test_openzeppelin_compat test_passkey_signatures test_provenance test_short_links))

test-fast: setup ## unit tests and the quick integration tests, for daily work
	$(BIN)/pytest -q -n $(TEST_WORKERS) -m "not slow" tests/unit $(FAST_INTEGRATION)

fuzz: setup ## schemathesis against all three services, with and without keys; hostile multipart bodies; the console's forms signed in (long run)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} $(BIN)/pytest -q tests/integration/test_fuzz.py tests/integration/test_console_fuzz.py tests/integration/test_hostile_multipart.py

chaos: setup ## faults under load (SIGKILL, RabbitMQ, PostgreSQL, Anvil restarts), then the invariant checker; writes bench/CHAOS.md
	$(BIN)/python -m bench.chaos

soak: setup ## mixed load without faults for SOAK_SECONDS (default 1800): RSS, fds, connections, channels, p95; writes bench/SOAK.md
	$(BIN)/python -m bench.soak --seconds $${SOAK_SECONDS:-1800} --interval $${SOAK_INTERVAL:-300}

lint: setup ## ruff, mypy and the import boundaries (import-linter; contracts in pyproject.toml)
	$(BIN)/ruff check services tests bench verifier
	$(BIN)/mypy services verifier/offerseal_verify
	$(BIN)/lint-imports

catalogue: ## sort the texts' catalogue (services/shared/catalogue/); fold in a merged branch's services/web/messages*.json
	python3 scripts/catalogue.py

docs: setup ## regenerate docs/configuration.md from the settings table (services/shared/variables/)
	$(BIN)/offerseal config docs docs/configuration.md

compile: setup ## recompile contracts/ into contracts/build/ (commit the result)
	node contracts/compile.mjs

bench: setup ## run the benchmarks (PostgreSQL, RabbitMQ, Anvil) and print the results
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.chain_bench

clean: ## remove the virtualenv, node_modules and local data
	rm -rf $(VENV) node_modules .offerseal

.PHONY: help setup system demo up test test-fast fuzz chaos soak lint catalogue docs compile bench clean
