#!/usr/bin/env bash
# Fill .gpu_carry/ (git-ignored) with what the GPU profiles need on a machine with no network: run it HERE,
# on a machine that reaches the package registries, before a device call (docs/GPU.md).
#   bash recipes/gpu/prepare.sh [--carry DIR] [--only wheels|bible|fashion_mnist] [--bible-config FILE]
#                               [--bible-work DIR] [--fashion-mnist DIR]
#   .gpu_carry/wheels/         fairseq (the ve_fairseq fork, cp312 manylinux) and what it imports that the GPU
#                              image lacks, for Python 3.12 on x86-64, at the versions of requirements*.txt
#   .gpu_carry/bible/data/     the prepared Bible data of the gpu profile (PREPARE_CMD of its config): bin/,
#                              raw/test.*, spm/*.model, manifest.json (a few MB; not the 218 MB database)
#   .gpu_carry/fashion_mnist/  the four Fashion-MNIST idx files (31 MB)
# Idempotent: wheels already there are kept, data_prep skips its finished steps. Ends with the device calls.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
source "$REPO/recipes/lib/common.sh"
PYTHON=${PYTHON:-python3}
CARRY="$REPO/.gpu_carry" ONLY="" BIBLE_CONFIG="$REPO/recipes/bible/config.gpu.sh" BIBLE_WORK="$REPO/runs/gpu/prepare_bible"
FASHION_MNIST_DIR=/usr/share/datasets/fashion-mnist
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (or unknown argument: expected --carry, --only, --bible-config, --bible-work, --fashion-mnist)"
  case "$1" in
    --carry) CARRY=$2;; --bible-config) BIBLE_CONFIG=$2;; --bible-work) BIBLE_WORK=$2;; --fashion-mnist) FASHION_MNIST_DIR=$2;;
    --only) case "$2" in wheels|bible|fashion_mnist) ONLY=$2;; *) die "--only $2: expected wheels, bible or fashion_mnist";; esac;;
    *) die "unknown argument $1 (expected --carry, --only, --bible-config, --bible-work, --fashion-mnist)";;
  esac
  shift 2
done
mkdir -p "$CARRY"
CARRY="$(cd "$CARRY" && pwd)"
wanted() { [[ -z $ONLY || $ONLY == "$1" ]]; }

pin() {  # pin NAME: NAME==VERSION as requirements*.txt pin it
  local line
  line=$(grep -i -h -E "^$1==" "$REPO/requirements.txt" "$REPO/requirements-fairseq.txt" | head -n 1)
  [[ -n $line ]] || die "requirements*.txt pins no version of $1"
  echo "$line"
}

fetch_wheels() {  # the packages fairseq's translation path imports that the GPU image lacks (docs/GPU.md)
  local dir="$CARRY/wheels" spec name version norm
  # antlr4-python3-runtime: hydra-core and omegaconf require 4.9.*, which PyPI has as a source archive only
  local specs=("$(pin ve_fairseq)" "$(pin hydra-core)" "$(pin omegaconf)" "$(pin bitarray)" "$(pin sacremoses)" antlr4-python3-runtime==4.9.3)
  mkdir -p "$dir"
  for spec in "${specs[@]}"; do
    name=${spec%%==*} version=${spec##*==}
    norm=$(echo "$name" | tr 'A-Z-' 'a-z_')
    for old in "$dir"/*.whl; do  # one version of each package: two would stop the whole install
      [[ -f $old ]] || continue
      local base; base=$(basename "$old" | tr 'A-Z' 'a-z')
      if [[ $base == "$norm"-* && $base != "$norm-$version-"* ]]; then echo "[prepare] removing $old (not $version)"; rm -f "$old"; fi
    done
    if compgen -G "$dir/$norm-$version-*.whl" > /dev/null; then
      echo "[prepare] have $spec"; continue
    fi
    echo "[prepare] fetching $spec"
    if [[ $name == antlr4-python3-runtime ]]; then
      "$PYTHON" -m pip wheel -q --no-deps -w "$dir" "$spec" || die "pip could not build a wheel of $spec"
    else
      "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$dir" "$spec" || die "pip could not download $spec for Python 3.12 x86-64"
    fi
  done
}

prepare_bible() {  # the profile's PREPARE_CMD into BIBLE_WORK, then the part the grid reads into CARRY/bible/data
  local cmd src tgt dest="$CARRY/bible/data"
  [[ -f $BIBLE_CONFIG ]] || die "--bible-config $BIBLE_CONFIG: no such file"
  # shellcheck disable=SC1090
  cmd=$(source "$BIBLE_CONFIG" > /dev/null; echo "$PREPARE_CMD") src=$(source "$BIBLE_CONFIG" > /dev/null; echo "$SRC") \
    tgt=$(source "$BIBLE_CONFIG" > /dev/null; echo "$TGT")
  echo "[prepare] $cmd --out $BIBLE_WORK"
  # shellcheck disable=SC2086
  (cd "$REPO" && $cmd --out "$BIBLE_WORK") || die "data preparation failed: $cmd --out $BIBLE_WORK"
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/raw" "$dest.tmp/spm"
  cp -a "$BIBLE_WORK/bin" "$dest.tmp/bin"
  cp -a "$BIBLE_WORK/raw/test.$src" "$BIBLE_WORK/raw/test.$tgt" "$dest.tmp/raw/"
  cp -a "$BIBLE_WORK"/spm/*.model "$dest.tmp/spm/"
  cp -a "$BIBLE_WORK/manifest.json" "$dest.tmp/"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  echo "[prepare] $dest: $(du -sh "$dest" | cut -f1)"
}

copy_fashion_mnist() {
  local dest="$CARRY/fashion_mnist" name found
  mkdir -p "$dest"
  for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    found=""
    for f in "$FASHION_MNIST_DIR/$name.gz" "$FASHION_MNIST_DIR/$name"; do [[ -f $f ]] && found=$f && break; done
    [[ -n $found ]] || die "--fashion-mnist $FASHION_MNIST_DIR: no $name[.gz] (apt-get install dataset-fashion-mnist)"
    cp -p "$found" "$dest/"
  done
  echo "[prepare] $dest: $(du -sh "$dest" | cut -f1)"
}

wanted wheels && fetch_wheels
wanted bible && prepare_bible
wanted fashion_mnist && copy_fashion_mnist

size_mib() { du -sm "$@" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
tree=$(cd "$REPO" && git ls-files -z 2>/dev/null | xargs -0 du -cb 2>/dev/null | tail -n 1 | awk '{ printf "%d", $1 / 1048576 + 1 }')
rel=${CARRY#"$REPO"/}
cat <<EOF
[prepare] done: $CARRY ($(size_mib "$CARRY") MiB). With the tracked files (about ${tree:-?} MiB) each device call
carries (limit 64 MiB): bible $(( ${tree:-0} + $(size_mib "$CARRY/wheels" "$CARRY/bible") )) MiB, fashion_mnist $(( ${tree:-0} + $(size_mib "$CARRY/fashion_mnist") )) MiB.
Device tool, one call per profile (docs/GPU.md):
  run  command: bash recipes/gpu/bible.sh --results "\$OUT"           carry: ["$rel/wheels", "$rel/bible"]   timeout_s: 600
  run  command: bash recipes/gpu/fashion_mnist.sh --results "\$OUT"   carry: ["$rel/fashion_mnist"]          timeout_s: 600
A plain GPU machine: copy this repository with $rel/ and run the same two commands (results: --results DIR).
EOF
