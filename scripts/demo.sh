#!/usr/bin/env bash
# The demo: serve sample_data/ with the emulator on a free loopback port, export the small
# job as Parquet, CSV and JSONL into out/, print the summary, and stop the emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
JOB=9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019
export GEONODE_SCRAPER_API_KEY=demo-key
ready=$(mktemp -u)
"$BIN/batch-export" emulator --data sample_data --port 0 --ready-file "$ready" >/dev/null &
emulator_pid=$!
trap 'kill "$emulator_pid" 2>/dev/null || true; wait "$emulator_pid" 2>/dev/null || true; rm -f "$ready"' EXIT
for _ in $(seq 100); do [ -s "$ready" ] && break; sleep 0.1; done
[ -s "$ready" ] || { echo "demo: the emulator did not start" >&2; exit 1; }
export SCRAPER_API_BASE_URL=$(cat "$ready")
mkdir -p out
echo "Emulator at $SCRAPER_API_BASE_URL; exporting job $JOB"
"$BIN/batch-export" export "$JOB" -o out/small-job.csv --quiet
"$BIN/batch-export" export "$JOB" -o out/small-job.jsonl --quiet
"$BIN/batch-export" export "$JOB" -o out/small-job.parquet --summary out/small-job.summary.json \
    --failed-urls out/small-job.failed-urls.txt
echo
ls -l out/
