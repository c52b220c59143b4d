#!/usr/bin/env bash
# Regenerate every figure and table of the paper package.
#
#   ./run_all.sh [--profile smoke|quick|paper] [--data SNAPSHOT] [--only REGEX]
#                [--figures-dir DIR] [--build-dir DIR] [--setup-only]
#
# 1. creates .venv (Python 3.11) when missing and installs the pinned dependencies
#    (requirements.lock) and the package into it (again only when the lock or pyproject change);
# 2. registers the Jupyter kernel "specfusion" inside .venv;
# 3. executes notebooks/NN_*.ipynb in order with papermill, passing profile, data and
#    figures_dir; executed copies go to build/notebooks/, figures to figures/;
# 4. stops at the first failing notebook and names it; prints the wall time of each
#    notebook and of the whole run; rewrites figures/README.md.
#
# Logging: the library's log records (FEFF/cache counts, skipped items, files written) appear
# in each executed notebook at level $SPECFUSION_LOG_LEVEL (default INFO; e.g.
# SPECFUSION_LOG_LEVEL=WARNING ./run_all.sh for quieter notebooks).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
PROFILE=quick
DATA=data/demo
FIGURES=figures
BUILD=build/notebooks
ONLY=""
SETUP_ONLY=0
KERNEL=specfusion

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) PROFILE="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    --figures-dir) FIGURES="$2"; shift 2 ;;
    --build-dir) BUILD="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    --setup-only) SETUP_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_all.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$PROFILE" in smoke|quick|paper) ;; *)
  echo "run_all.sh: unknown profile '$PROFILE' (smoke, quick or paper)" >&2; exit 2 ;; esac

# Exported, so the notebook kernels inherit it: specfusion_lib configures its logging on import
# when the variable is set (see specfusion_lib/__init__.py); no notebook needs a set-up cell.
export SPECFUSION_LOG_LEVEL="${SPECFUSION_LOG_LEVEL:-INFO}"

fmt_time() { printf '%dm%02ds' $(( $1 / 60 )) $(( $1 % 60 )); }
T0=$(date +%s)

# ---- 1. virtual environment -------------------------------------------------------------
PY=.venv/bin/python
if [ ! -x "$PY" ]; then
  BASE_PY=""
  for cand in python3.11 python3 python; do
    if command -v "$cand" >/dev/null 2>&1 && \
       "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      BASE_PY="$cand"; break
    fi
  done
  if [ -z "$BASE_PY" ]; then
    echo "run_all.sh: Python 3.11 is required (python3.11 not found)" >&2; exit 1
  fi
  echo "==> creating .venv with $BASE_PY"
  "$BASE_PY" -m venv .venv
fi
STAMP=.venv/.specfusion-install-stamp
WANT=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "==> installing pinned dependencies (requirements.lock) and specfusion into .venv"
  "$PY" -m pip install --quiet --upgrade pip
  "$PY" -m pip install --quiet -r requirements.lock
  "$PY" -m pip install --quiet --no-deps -e .
  echo "$WANT" > "$STAMP"
fi

# ---- 2. Jupyter kernel --------------------------------------------------------------------
if [ ! -f ".venv/share/jupyter/kernels/$KERNEL/kernel.json" ]; then
  "$PY" -m ipykernel install --sys-prefix --name "$KERNEL" \
    --display-name "Python (specfusion)" >/dev/null
fi
echo "==> environment ready ($(fmt_time $(( $(date +%s) - T0 ))))"
[ "$SETUP_ONLY" = 1 ] && exit 0

# ---- 3. notebooks -------------------------------------------------------------------------
if [ ! -f "$DATA/manifest.json" ] && [ "$DATA" = "data/demo" ]; then
  echo "==> NOTE: the embedded demo snapshot data/demo is not built yet;"
  echo "    using the test fixture snapshot tests/fixtures/snapshot instead."
  DATA=tests/fixtures/snapshot
fi
mkdir -p "$BUILD" "$FIGURES"
echo "==> profile=$PROFILE data=$DATA figures=$FIGURES"
TIMES=()
rm -f "$BUILD/run_times_$PROFILE.csv.part"
for nb in notebooks/[0-9][0-9]_*.ipynb; do
  name=$(basename "$nb")
  if [ -n "$ONLY" ] && ! [[ "$name" =~ $ONLY ]]; then continue; fi
  t=$(date +%s)
  echo "==> $name"
  if ! "$PY" -m papermill "$nb" "$BUILD/$name" -k "$KERNEL" --cwd . \
       -p profile "$PROFILE" -p data "$DATA" -p figures_dir "$FIGURES" \
       --log-level WARNING --no-progress-bar; then
    echo "run_all.sh: FAILED in $nb (executed copy with the error: $BUILD/$name)" >&2
    exit 1
  fi
  dt=$(( $(date +%s) - t ))
  budget=$("$PY" -c "from specfusion_lib.core.profiles import get_profile; b = get_profile('$PROFILE').budget_s('$name'); print('' if b is None else b)")
  note=""
  if [ -n "$budget" ]; then
    note=" (budget $(fmt_time $budget))"
    if [ "$dt" -gt "$budget" ]; then note=" (budget $(fmt_time $budget): OVER by $(fmt_time $(( dt - budget ))))"; fi
  fi
  TIMES+=("$(printf '%-40s %s%s' "$name" "$(fmt_time $dt)" "$note")")
  echo "$name,$dt,$budget" >> "$BUILD/run_times_$PROFILE.csv.part"
  echo "    done in $(fmt_time $dt)$note"
done
if [ -f "$BUILD/run_times_$PROFILE.csv.part" ]; then
  { echo "notebook,seconds,budget_seconds"; cat "$BUILD/run_times_$PROFILE.csv.part"; } > "$BUILD/run_times_$PROFILE.csv"
  rm -f "$BUILD/run_times_$PROFILE.csv.part"
fi
"$PY" -m specfusion_lib figures-index --figures-dir "$FIGURES" >/dev/null

echo "==> wall time per notebook"
for line in "${TIMES[@]}"; do echo "    $line"; done
echo "==> total $(fmt_time $(( $(date +%s) - T0 )))"
