# The two commands a newcomer needs: `make run` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test venv chromium

$(STAMP): requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

# Serves on 127.0.0.1 only. Options pass through: make run ARGS="--viewer --server.address 0.0.0.0"
run: $(STAMP)
	$(PY) scripts/serve.py $(ARGS)

# The real-browser tests drive Debian's Chromium (Playwright's own browser download is not used).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser tests need Chromium: run 'sudo apt-get install -y chromium', then make test."; exit 1; \
	  fi; }

# Lint and type-check first (settings in pyproject.toml): they take seconds, the tests minutes.
test: $(STAMP) chromium
	$(PY) -m ruff check .
	$(PY) -m mypy eipviz
	$(PY) -m pytest -q
