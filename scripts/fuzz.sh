#!/usr/bin/env bash
# Fuzzes tekton-spire-verify's parsers and verifier with cargo-fuzz (libFuzzer).
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  how long each target runs (default 60, or $FUZZ_SECONDS)
#   TARGET   any of the targets in fuzz/Cargo.toml (default: all of them)
# Environment: FUZZ_TOOLCHAIN=nightly|stable, FUZZ_SANITIZER=address|none,
#   FUZZ_TARGET_DIR (cargo's target directory; default fuzz/target).
#
# Installs cargo-fuzz from crates.io if it is missing. Uses the nightly toolchain when
# rustup has one; otherwise stable with RUSTC_BOOTSTRAP=1, since cargo-fuzz passes
# unstable flags. AddressSanitizer is used when the toolchain ships its runtime, else
# -s none: the verifier forbids unsafe code, but its dependencies have some (libyaml's
# port, ring's C and assembly), and without ASan a memory error there shows only if it
# crashes.
#
# Caps make a slow or greedy input a crash: each input must be judged within
# FUZZ_TIMEOUT seconds (default 1, ten times the 100 ms goal), no single allocation may
# exceed 64 MiB (-malloc_limit_mb, the memory goal) and the fuzzing process may not
# exceed FUZZ_RSS_MB (default 1024: libFuzzer, its corpus and AddressSanitizer's shadow
# live there too). Inputs are up to FUZZ_MAX_LEN bytes (default 65536).
#
# The `differential` target judges every input with our verifier and with the
# independent Python one (tests/python/differential_server.py, needs python3 with
# cryptography and PyYAML) and crashes when their verdicts differ; its time cap is
# FUZZ_DIFFERENTIAL_TIMEOUT (default 5 s), the Python verifier being slower.
#
# Seeds fuzz/corpus/<target> from the committed fixtures and seal vectors (the corpus is
# not committed), prints per target the number of executions and whether it crashed, and
# exits 1 if any target crashed, timed out or ran out of memory. Findings land in
# fuzz/artifacts/<target>/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/fuzz"
FIXTURES="$ROOT/tests/fixtures/legacy"
VECTORS="$ROOT/tests/vectors/seal"
ALL_TARGETS=(taskrun_parse seal_parse spiffe_id_parse bundle_load verify_taskrun differential
    taskrun_list_parse pipelinerun_parse verify_pipelinerun)
PIPELINE="$ROOT/tests/vectors/pipeline"

seconds="${1:-${FUZZ_SECONDS:-60}}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS] [TARGET...]  (SECONDS must be a positive integer)" >&2
    exit 2
fi
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${ALL_TARGETS[@]}")
fi
for t in "${targets[@]}"; do
    if [ ! -f "$FUZZ/fuzz_targets/$t.rs" ]; then
        echo "unknown fuzz target '$t'; known: ${ALL_TARGETS[*]}" >&2
        exit 2
    fi
done

# --- toolchain -----------------------------------------------------------------------
# FUZZ_TOOLCHAIN=nightly|stable picks one; by default nightly if rustup has it.
want="${FUZZ_TOOLCHAIN:-}"
if [ -z "$want" ]; then
    if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then want=nightly; else want=stable; fi
fi
case "$want" in
nightly)
    cargo_fuzz=(cargo +nightly)
    toolchain=nightly
    ;;
stable)
    cargo_fuzz=(cargo)
    export RUSTC_BOOTSTRAP=1
    toolchain="stable with RUSTC_BOOTSTRAP=1"
    ;;
*)
    echo "FUZZ_TOOLCHAIN must be nightly or stable, not '$want'" >&2
    exit 2
    ;;
esac
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
if [ "$want" = nightly ]; then
    sysroot="$(rustc +nightly --print sysroot)"
else
    sysroot="$(rustc --print sysroot)"
fi
host="$(rustc -vV | sed -n 's/^host: //p')"
# FUZZ_SANITIZER=address|none overrides the choice.
if [ -n "${FUZZ_SANITIZER:-}" ]; then
    sanitizer="$FUZZ_SANITIZER"
elif compgen -G "$sysroot/lib/rustlib/$host/lib/librustc-*_rt.asan.a" >/dev/null; then
    sanitizer=address
else
    sanitizer=none
fi
target_dir=()
if [ -n "${FUZZ_TARGET_DIR:-}" ]; then
    target_dir=(--target-dir "$FUZZ_TARGET_DIR")
fi
echo "== toolchain: $toolchain; sanitizer: $sanitizer; $seconds s per target"

# --- corpora -------------------------------------------------------------------------
seed() { # seed TARGET FILE...
    local dir="$FUZZ/corpus/$1"
    shift
    mkdir -p "$dir"
    local f
    for f in "$@"; do
        cp -n "$f" "$dir/" 2>/dev/null || true
    done
}
seed_text() { # seed_text TARGET NAME TEXT
    mkdir -p "$FUZZ/corpus/$1"
    printf '%s' "$3" >"$FUZZ/corpus/$1/$2"
}
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

seed taskrun_parse "$FIXTURES"/*.json "$FIXTURES"/*.yaml
seed verify_taskrun "$FIXTURES"/*.json "$FIXTURES"/*.yaml
seed differential "$FIXTURES"/*.json "$FIXTURES"/*.yaml
seed bundle_load "$FIXTURES"/pki/*
# The seal's test vectors, when present: sealed TaskRuns under the same root, so that
# verify_taskrun reaches the seal checks too, and their seal values.
if [ -d "$VECTORS" ]; then
    seed taskrun_parse "$VECTORS"/*.json "$VECTORS"/*.yaml
    seed verify_taskrun "$VECTORS"/*.json "$VECTORS"/*.yaml
    seed differential "$VECTORS"/*.json "$VECTORS"/*.yaml
    seed bundle_load "$VECTORS"/pki/*
    mkdir -p "$FUZZ/corpus/seal_parse"
    for f in "$VECTORS"/*.json; do
        grep -o '"sealv[12]\.[^"]*"' "$f" | head -1 | tr -d '"' | tr -d '\n' \
            >"$FUZZ/corpus/seal_parse/vector-$(basename "$f" .json)" || true
    done
    find "$FUZZ/corpus/seal_parse" -name 'vector-*' -empty -delete
    # Edges of the time range, which mutation alone rarely reaches: a completion in the
    # last minute of year 9999 once made the clock-skew bound overflow and panic.
    for f in "$VECTORS"/pristine*.json; do
        for edge in 9999-12-31T23:59:30Z 0000-01-01T00:00:30Z; do
            sed "s/\"completionTime\": \"[^\"]*\"/\"completionTime\": \"$edge\"/" "$f" \
                >"$FUZZ/corpus/verify_taskrun/edge-$edge-$(basename "$f")"
        done
    done
fi
# Lists and PipelineRuns: the pipeline vectors, single TaskRuns, and for
# verify_pipelinerun each case's PipelineRun with its own List after the separator.
if [ -d "$PIPELINE" ]; then
    seed taskrun_list_parse "$PIPELINE"/*.taskruns*.json "$PIPELINE"/*.taskruns*.yaml
    seed taskrun_list_parse "$FIXTURES"/pristine-v1-json.json "$VECTORS"/pristine-v1-yaml.yaml
    seed pipelinerun_parse "$PIPELINE"/*.pipelinerun.json "$PIPELINE"/*.pipelinerun.yaml
    seed verify_pipelinerun "$PIPELINE"/*.pipelinerun.json
    mkdir -p "$FUZZ/corpus/verify_pipelinerun"
    for f in "$PIPELINE"/*.pipelinerun.json; do
        { cat "$f"; printf '\n---8<---\n'; cat "$PIPELINE/pristine.taskruns.json"; } \
            >"$FUZZ/corpus/verify_pipelinerun/with-list-$(basename "$f")"
    done
fi
# A realistic seal: the root certificate stands in for a leaf, with a DER-shaped signature.
root_der_b64="$(sed '/-----/d' "$FIXTURES/pki/root.pem" | base64 -d | b64url)"
sig_b64="$(printf '\x30\x44\x02\x20%032d\x02\x20%032d' 1 2 | b64url)"
seed_text seal_parse realistic "sealv2.0.2025-06-01T12:03:04Z.$sig_b64.$root_der_b64"
seed_text seal_parse two-certs "sealv2.1.2025-06-01T12:03:04Z.$sig_b64.$root_der_b64.$root_der_b64"
seed_text seal_parse small "sealv2.0.2025-06-01T12:03:04Z.AQID.BAU.Bg"
seed_text seal_parse version-1 "sealv1.2025-06-01T12:03:04Z.AQID.BAU.Bg"
seed_text spiffe_id_parse taskrun "spiffe://example.org/ns/default/taskrun/build-abc"
seed_text spiffe_id_parse trust-domain "spiffe://example.org"
seed_text spiffe_id_parse odd-chars "spiffe://a_b-c.d/A.b-C_d/x"

# --- build and run -------------------------------------------------------------------
cd "$FUZZ"
echo "== building fuzz targets: ${targets[*]}"
# Only the targets asked for: each one built is about as costly as the verifier itself.
for t in "${targets[@]}"; do
    "${cargo_fuzz[@]}" fuzz build -s "$sanitizer" "${target_dir[@]}" "$t"
done

logs="$FUZZ/target/fuzz-logs"
mkdir -p "$logs"
failed=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "$FUZZ/artifacts/$t"
    before="$(find "$FUZZ/artifacts/$t" -type f | sort)"
    echo "== $t: $seconds s"
    dict=()
    case "$t" in
    taskrun_parse | verify_taskrun | differential) dict=(-dict="$FUZZ/dict/taskrun.dict") ;;
    seal_parse) dict=(-dict="$FUZZ/dict/seal.dict") ;;
    spiffe_id_parse) dict=(-dict="$FUZZ/dict/spiffe_id.dict") ;;
    taskrun_list_parse | pipelinerun_parse | verify_pipelinerun) dict=(-dict="$FUZZ/dict/pipelinerun.dict") ;;
    esac
    # The differential target also waits for the Python verifier, which is slower.
    timeout="${FUZZ_TIMEOUT:-1}"
    if [ "$t" = differential ]; then timeout="${FUZZ_DIFFERENTIAL_TIMEOUT:-5}"; fi
    status=0
    "${cargo_fuzz[@]}" fuzz run -s "$sanitizer" "${target_dir[@]}" "$t" "$FUZZ/corpus/$t" -- \
        -max_total_time="$seconds" -timeout="$timeout" \
        -rss_limit_mb="${FUZZ_RSS_MB:-1024}" -malloc_limit_mb=64 \
        -max_len="${FUZZ_MAX_LEN:-65536}" -print_final_stats=1 "${dict[@]}" \
        >"$logs/$t.log" 2>&1 || status=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -1)"
    after="$(find "$FUZZ/artifacts/$t" -type f | sort)"
    new="$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | sed '/^$/d')"
    if [ "$status" -eq 0 ] && [ -z "$new" ]; then
        verdict="no crash"
    else
        verdict="CRASH (exit $status)"
        failed=1
        echo "-- $t found a failure; input: ${new:-see log}; log: $logs/$t.log"
        grep -m1 -A6 -E "panicked at|ERROR: (AddressSanitizer|libFuzzer)" "$logs/$t.log" || tail -20 "$logs/$t.log"
    fi
    line="$(printf '%-16s %12s executions  %s' "$t" "${execs:-?}" "$verdict")"
    echo "$line"
    summary+=("$line")
done

echo "== summary ($seconds s per target, $toolchain, sanitizer $sanitizer)"
printf '%s\n' "${summary[@]}"
exit "$failed"
