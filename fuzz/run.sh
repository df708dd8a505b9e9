#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS_PER_TARGET seconds (default 60), one
# after another, each in one process (no -jobs, no -fork: the machine is shared). Exits
# non-zero if any target crashed (a panic, or one input taking over 10 s); the crashing input
# is left in fuzz/artifacts/<target>/ and the log in fuzz/artifacts/<target>.log.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
set -uo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(token_format cursor credentials validation fuzzy_query)
fi

cargo +nightly fuzz build -O || exit 1

failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    seeds=()
    [ -d "regressions/$target" ] && seeds=("regressions/$target")
    dict=()
    [ -f "dicts/$target.dict" ] && dict=("-dict=dicts/$target.dict")
    echo "== $target: ${seconds}s"
    # The committed regressions seed the corpus; new inputs go to corpus/<target> only.
    if cargo +nightly fuzz run -O "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -rss_limit_mb=4096 "${dict[@]}" 2>"artifacts/$target.log"; then
        grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|Done )' \
            "artifacts/$target.log" || tail -n 3 "artifacts/$target.log"
    else
        echo "!! $target crashed; see fuzz/artifacts/$target.log and fuzz/artifacts/$target/"
        grep -E 'panicked|SUMMARY|Test unit written' "artifacts/$target.log" || true
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "crashed: ${failed[*]}"
    exit 1
fi
echo "no crashes"
