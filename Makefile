# Two commands do everything on a fresh machine (see README.md):
#   make site   - build the Vietnamese and English sites into _build/html
#   make test   - unit tests, notebook checks, nbval over every lesson, the strict site build, site checks
# Each first creates .venv and installs the pinned requirements if needed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: site test notebooks sync-repository clean

$(INSTALLED): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

site: $(INSTALLED)
	$(PY) book/tools/build_site.py

test: site
	$(PY) -m pytest

# After changing a lesson's .md or course_lib: re-execute the lessons and commit the .ipynb files.
notebooks: $(INSTALLED)
	$(PY) book/tools/execute_notebooks.py

sync-repository: $(INSTALLED)
	$(PY) book/tools/sync_repository.py

clean:
	rm -rf _build
