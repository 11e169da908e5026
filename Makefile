# lockstep: `make demo` (the main job) and `make test` (every test and the lint) both start with `make setup`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# openjdk-17-jre-headless: ansible-rulebook (the guard, make guard) runs its rules engine on a Java 17 runtime.
DEB_PACKAGES := openssh-server haproxy util-linux procps iproute2 python3 openjdk-17-jre-headless sudo chromium chromium-driver
PYTEST_ARGS ?=

.PHONY: setup apt venv artifacts lint lint-only unit integration test mutate mutate-ci demo bench bench-profiles bench-waves guard fleet-down clean collection

setup: apt venv artifacts

# Debian packages the fleet needs, installed only when missing (safe to run twice).
apt:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q "$$(grep -m1 '^pip==' requirements.txt)"
	$(PY) -m pip install -q -r requirements.txt
	touch $@

artifacts: venv
	$(PY) sample/build.py --out artifacts

lint: setup
	$(MAKE) --no-print-directory lint-only

# The lint alone (make setup done): tests/run_all.py runs it beside the fleet tests, where rebuilding the artifacts
# a release is reading would not do.
lint-only:
	$(BIN)/ruff check .
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint -q
	# Every module, callback, filter (docs: plugins/filter/NAME.yml) and role (its argument spec) for ansible-doc.
	$(PY) tests/check_docs.py
	$(BIN)/ansible-playbook --syntax-check -i inventory/local playbooks/*.yml > /dev/null

unit: setup
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

integration: setup
	$(BIN)/pytest -q tests/integration $(PYTEST_ARGS)

# The fleet tests one at a time, and beside them the lint, the tests without the fleet and the safeguard mutations
# (tests/run_all.py says why and how).
test: setup
	$(PY) tests/run_all.py $(PYTEST_ARGS)

# Each safeguard removed once, in a scratch copy, its test must then fail (tests/mutate_safeguards.py). mutate-ci
# (in make test) runs each safeguard's test that needs no fleet; mutate runs every safeguard's test on the real fleet.
mutate-ci: setup
	$(PY) tests/mutate_safeguards.py --ci

mutate: setup
	$(PY) tests/mutate_safeguards.py

# The main job: a local fleet of 8 hosts on 1.0.0, the Knight release (2.0.0 with one host left behind) halted
# and rolled back, then a clean release of 2.1.0.
demo: setup
	bin/demo

bench: setup
	$(PY) bench/release_bench.py

# The options users reach for, side by side at 32 hosts (mitogen is installed on demand, outside the repository),
# and 100 hosts in waves [1, 10%, 50%, 100%] (docs/performance.md).
bench-profiles: setup
	$(PY) bench/release_bench.py --hosts 32 --runs 1 --profile default mitogen forks16

bench-waves: setup
	$(PY) bench/release_bench.py --hosts 100 --runs-large 1 --waves

# The guard after the release (docs/guard.md): ansible-rulebook with lockstep's event source against the local fleet
# (bin/fleet up first), until Ctrl-C. LOCKSTEP_GUARD_INTERVAL=1 polls every second (default 2).
guard: setup
	LOCKSTEP_LEDGER_DIR=$${LOCKSTEP_LEDGER_DIR:-$(CURDIR)/.lockstep/ledger} \
	  $(BIN)/ansible-rulebook -r lockstep.release.lockstep_guard -i inventory/local

fleet-down:
	bin/fleet down

# The collection as Galaxy and execution environments take it: dist/lockstep-release-<version>.tar.gz.
collection: venv
	$(BIN)/ansible-galaxy collection build --force --output-path dist .

clean: fleet-down
	rm -rf artifacts .lockstep
