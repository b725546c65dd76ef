# cascade-bms — every target creates and uses its own virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export BLINKA_OS_AGNOSTIC := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup test pytest compat sim lint bench deploy clean

setup: $(STAMP)

$(STAMP): requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory compat

pytest: setup
	$(BIN)/python -m pytest -q

compat: setup
	$(BIN)/python tools/compat.py

sim: setup
	$(BIN)/python -m hil.sim $(ARGS)

lint: setup
	$(BIN)/ruff check .

bench: setup
	@set -e; for f in bench/bench_*.py; do [ -e "$$f" ] || continue; echo "== $$f"; $(BIN)/python "$$f"; done

# make deploy BOARD=module|host DRIVE=/media/you/CIRCUITPY [FORCE=1] [CIRCUP=0] [SETTINGS=1]
deploy: setup
	$(BIN)/python tools/deploy.py --board "$(BOARD)" --drive "$(DRIVE)" $(if $(FORCE),--force,) \
		$(if $(filter 0,$(CIRCUP)),--no-circup,) $(if $(SETTINGS),--overwrite-settings,)

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis .ruff_cache
