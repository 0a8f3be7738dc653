#!/usr/bin/env bash
# Bible de-en: the paper's grid (teacher LS alpha {0, 0.1} x student T {1, 2, 3, 64}) end to end.
#   bash recipes/bible/run_all.sh [--profile demo|cpu|paper] [--config FILE] [--only STEP]
# Profiles are config files beside this script (config.<profile>.sh); the README's `make demo` runs
# the demo profile. Steps: prepare teachers caches students report (--only runs one). Reruns skip what
# is done; a killed run resumes.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../lib/nmt_grid.sh"
run_grid "$HERE" "$@"
