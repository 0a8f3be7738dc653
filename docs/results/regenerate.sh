#!/usr/bin/env bash
# Regenerates every committed table's verdicts from the committed files they come from (issue 21): `lskd report`
# on each table's CSV (the per-run score.json files of these grids no longer exist; a cell CSV's means, stds and n
# are what Welch's intervals need) and `lskd diffusion --compare` on each pair of committed diffusion JSONs (their
# per-model values give the intervals over seeds). Nothing is retrained. Run from the repository root:
#   PATH=$PWD/.venv/bin:$PATH bash docs/results/regenerate.sh
set -euo pipefail
report() {  # report CSV METRIC TITLE [SIGNATURE]: rewrites the table beside CSV (md, csv, json, png; the CSV round-trips)
  local csv=$1 prefix=${1%.csv} sig=()
  prefix=${prefix%_runs}
  [[ $# -ge 4 ]] && sig=(--signature "$4")
  lskd report --runs "$csv" --metric "$2" --title "$3" "${sig[@]}" --out "$prefix" > /dev/null 2>&1 \
    || lskd report --runs "$csv" --metric "$2" --title "$3" "${sig[@]}" --out "$prefix" > /dev/null  # again, to show why
}
# the signatures the tables listed when their runs were scored (sacrebleu 2.6.0)
BLEU_SIG="nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
CHRF_SIG="nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"
title() { echo "$1: de-en, test $2 (teacher LS alpha x student KD temperature)"; }
for m in bleu chrf; do
  sig=$BLEU_SIG; [[ $m == chrf ]] && sig=$CHRF_SIG
  report "docs/results/bible_demo/results_$m.csv" "$m" "$(title bible_demo "$m")" "$sig"
  report "docs/results/bible_demo_t1_seeds/results_$m.csv" "$m" "$(title bible_demo_t1_seeds "$m")" "$sig"
  report "docs/results/bible_cpu/results_$m.csv" "$m" "$(title bible_cpu "$m")" "$sig"
  # before issue 13 the chrF tables listed the BLEU signature (a report bug since fixed): none is known for them
  if [[ $m == bleu ]]; then old=("$sig"); else old=(); fi
  report "docs/results/bible_cpu_before_issue13/results_$m.csv" "$m" "$(title bible_cpu "$m")" "${old[@]}"
  report "docs/results/bible_demo/before_issue13/results_$m.csv" "$m" "$(title bible_demo "$m")" "${old[@]}"
done
report docs/results/bible_cpu_teacher_s2/results_bleu.csv bleu "bible_cpu, teacher seed 2: de-en, test bleu" "$BLEU_SIG"
resnet="Fashion-MNIST: ResNet-50 teachers -> ResNet-18 students at width 1/4 (pure KD, CPU)"
report docs/results/fashion_mnist_resnet_cpu/table.csv top1 "$resnet, test top-1"
report docs/results/fashion_mnist_resnet_cpu/table_best.csv best_top1 "$resnet (best epoch, selected on the test set)"
# the MLP grid's per-run values, from the "values" column its tables had (in the order listed there; the
# runs' seeds were not recorded, hence seeds v1, v2), converted once into per-run CSVs
mlp=recipes/fashion_mnist/results
report $mlp/table_runs.csv final_top1 "Fashion-MNIST: SmallCNN teachers -> MLP students (pure KD, clip 1)"
report $mlp/table_best_runs.csv best_top1 "Fashion-MNIST (best epoch, selected on the test set)"
report $mlp/noclip_table_runs.csv final_top1 "Fashion-MNIST: first run, students without gradient clipping"
report $mlp/noclip_table_best_runs.csv best_top1 "Fashion-MNIST, no clipping, best epoch (selected on the test set)"
d=docs/results/diffusion
for grid in fashion_mnist fashion_mnist_resnet_cpu; do
  lskd diffusion --compare "LS=$d/${grid}_a0.1.json" "non-LS=$d/${grid}_a0.0.json" --out "$d/${grid}_compare" > /dev/null
done
lskd diffusion --compare "LS=$d/bible_cpu_a0.1.json" "non-LS=$d/bible_cpu_a0.json" --out "$d/bible_cpu_compare" > /dev/null
echo "regenerated: $(git status --short docs recipes | wc -l) files changed (git status)"
