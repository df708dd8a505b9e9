#!/usr/bin/env bash
# The management API's contract, checked against a live `tollgate serve`:
#   1. its OpenAPI document validates (openapi-spec-validator);
#   2. schemathesis, with every check and every phase (examples, coverage, fuzzing, and the
#      stateful phase that follows the document's links), finds no difference between what
#      the document says and what the server does.
# Bounded to a few minutes on two cores. Exits non-zero on any failure.
#
# Environment: API_CONTRACT_MAX_EXAMPLES (default 40 per operation and phase),
# API_CONTRACT_MAX_TIME (default 120 seconds for schemathesis), API_CONTRACT_SEED (default
# random; the seed is printed, so a failure can be replayed), API_CONTRACT_VENV (default
# target/api-contract/venv), API_CONTRACT_REPORT (a directory: schemathesis writes an NDJSON
# report of every request there), API_CONTRACT_PYTHON (default: the newest CPython 3.12+ found,
# else python3). CPython 3.11 can fail inside Hypothesis with "SystemError: AST constructor
# recursion depth mismatch" when it describes a filter deep in schemathesis's recursion.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
here=$root/scripts/api-contract

max_examples=${API_CONTRACT_MAX_EXAMPLES:-40}
max_time=${API_CONTRACT_MAX_TIME:-120}
venv=${API_CONTRACT_VENV:-$root/target/api-contract/venv}
started=$SECONDS

python=${API_CONTRACT_PYTHON:-}
if [[ -z $python ]]; then
    pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
    for candidate in python3.13 python3.12 "$pyenv_root"/versions/3.13*/bin/python3 \
        "$pyenv_root"/versions/3.12*/bin/python3 python3; do
        if "$candidate" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then
            python=$candidate
            break
        fi
    done
    python=${python:-python3}
fi
stamp="$("$python" --version 2>&1) $(cat "$here/requirements.txt")"

# The tools, pinned, in a venv of their own; reinstalled only when the pins or Python change.
if [[ "$(cat "$venv/stamp" 2>/dev/null)" != "$stamp" ]]; then
    echo "api-contract: installing the pinned tools into $venv ($("$python" --version 2>&1))"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$here/requirements.txt"
    echo "$stamp" >"$venv/stamp"
fi
py=$venv/bin/python

# What `cargo test --workspace --all-features` builds, the `tollgate` binary among it: right
# after the tests, as in .ci/run, there is nothing left to build.
cargo test --quiet --workspace --all-features --no-run
tollgate=${CARGO_TARGET_DIR:-$root/target}/debug/tollgate
mkdir -p "$root/target/api-contract"
work=$(mktemp -d)
server=
stop() {
    if [[ -n $server ]] && kill -0 "$server" 2>/dev/null; then
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    # The server's log outlives the run, for whoever reads a failure.
    cp "$work/serve.log" "$root/target/api-contract/serve.log" 2>/dev/null || true
    rm -rf "$work"
}
trap stop EXIT

# Port 0: the system picks a free port, and the server says which.
"$tollgate" serve --addr 127.0.0.1:0 --db "$work/tokens.redb" \
    >"$work/serve.out" 2>"$work/serve.log" &
server=$!
base=
for _ in $(seq 1 300); do
    base=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/serve.out" || true)
    [[ -n $base ]] && break
    if ! kill -0 "$server" 2>/dev/null; then
        echo "api-contract: tollgate serve exited:" >&2
        cat "$work/serve.log" >&2
        exit 1
    fi
    sleep 0.1
done
[[ -n $base ]] || { echo "api-contract: tollgate serve did not start" >&2; exit 1; }
admin=$(grep -o 'tg_[0-9A-Za-z]*' "$work/serve.out" | head -n 1)
[[ -n $admin ]] || { echo "api-contract: no admin token was printed" >&2; exit 1; }
api=$base/api/v1

# Waits for /healthz, saves the document, and issues the fuzzer's own admin token (the
# printed one is fuzzed like any other token; hooks.py keeps the fuzzer off its own).
"$py" - "$base" "$admin" "$work" <<'PY'
import json, sys, time, urllib.request

base, admin, work = sys.argv[1:]
for _ in range(300):
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
            if json.load(response) == {"status": "ok"}:
                break
    except OSError:
        pass
    time.sleep(0.1)
else:
    sys.exit("api-contract: /healthz never answered")
with urllib.request.urlopen(f"{base}/api/v1/openapi.json", timeout=30) as response:
    document = response.read()
open(f"{work}/openapi.json", "wb").write(document)
request = urllib.request.Request(
    f"{base}/api/v1/tokens",
    data=json.dumps({"name": "schemathesis", "scopes": ["tollgate:admin"]}).encode(),
    headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json"},
    method="POST",
)
with urllib.request.urlopen(request, timeout=10) as response:
    issued = json.load(response)
open(f"{work}/fuzzer.token", "w").write(issued["token"])
open(f"{work}/fuzzer.id", "w").write(issued["id"])
PY

echo "api-contract: validating the OpenAPI document"
"$venv/bin/openapi-spec-validator" "$work/openapi.json"

seed=${API_CONTRACT_SEED:-$RANDOM$RANDOM}
report=()
if [[ -n ${API_CONTRACT_REPORT:-} ]]; then
    report=(--report ndjson --report-dir "$(realpath -m "$API_CONTRACT_REPORT")")
fi
echo "api-contract: schemathesis against $api (seed $seed, at most $max_examples examples per operation, ${max_time}s)"
status=0
# From the temporary directory, so that nothing schemathesis writes lands in the tree.
(cd "$work" && SCHEMATHESIS_HOOKS=$here/hooks.py \
    API_CONTRACT_PROTECTED_IDS=$(cat "$work/fuzzer.id") \
    "$venv/bin/schemathesis" run "$api/openapi.json" \
    --header "Authorization: Bearer $(cat "$work/fuzzer.token")" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$max_examples" \
    --max-time "$max_time" \
    --seed "$seed" \
    --generation-database none \
    --request-timeout 10 \
    --workers 2 \
    "${report[@]}" \
    --no-color) || status=$?

if grep -q 'panicked' "$work/serve.log"; then
    echo "api-contract: the server panicked:" >&2
    grep -A5 'panicked' "$work/serve.log" >&2
    status=1
fi
echo "api-contract: done in $((SECONDS - started))s"
exit "$status"
