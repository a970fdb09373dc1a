#!/usr/bin/env bash
# The one test command (README and .ci/run both call it): installs what a fresh machine lacks, builds the whole
# solution warning-free, and runs every test. The tests start their own PostgreSQL cluster (as user postgres) unless
# QWENBATCH_TEST_POSTGRES names a server.
set -euo pipefail
cd "$(dirname "$0")/.."

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${QWENBATCH_TEST_POSTGRES:-}" ]; then
  echo "Installing PostgreSQL server binaries (the tests start their own cluster)…"
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi

# The WaveSpeed fidelity tests run the official JS SDK (npm package "wavespeed", pinned by tests/sdk/package-lock.json).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "Installing Node.js and npm (the SDK fidelity tests run the official WaveSpeed JS SDK)…"
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
(cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error)

# Browser tests (the dashboard, report.html) drive Debian's Chromium through Playwright (never `playwright install`).
if [ ! -x /usr/bin/chromium ]; then
  echo "Installing Chromium (the browser tests drive it headless)…"
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

# The terminal tests run `run` in a real pseudo-terminal (a tmux pane) and read its screen as a person would.
if ! command -v tmux >/dev/null 2>&1; then
  echo "Installing tmux (the terminal tests read run's screen from a tmux pane)…"
  apt-get update -qq && apt-get install -y -qq tmux >/dev/null
fi

dotnet build QwenBatch.sln -c Release -warnaserror -nologo -v quiet
bash scripts/check-deploy.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
dotnet test QwenBatch.sln -c Release --no-build --nologo 2>&1 | tee "$log" || status=$?

# Benchmarks are not part of the test run, but a tiny engine run keeps them compiling and working (it checks that
# every bare Hangfire job and every edit succeeded, and idles a bare Hangfire server and a real worker process for 3 s
# each). Its figures mean nothing at this size.
if [ "$status" -eq 0 ]; then
  dotnet run -c Release --no-build --project bench/QwenBatch.Bench -- engine 200 8 3 >/dev/null || status=$?
  [ "$status" -eq 0 ] && echo "— the engine benchmark runs (smoke)"
fi
# The same for the manifest import (2,500 rows: staged, then expanded), the race against the WaveSpeed JS SDK (4 edits),
# webhooks against polling (4 edits through serve each way),
# worker memory (10 then 20 jobs of 0.1 MB outputs) and the BenchmarkDotNet micro-benchmarks (each run once): they fail
# when an import comes up short, a job fails or a benchmark throws.
if [ "$status" -eq 0 ]; then
  for smoke in "QwenBatch.Bench 2500 1" "QwenBatch.Bench sdk-race 4 2 0.2-0.3 50" "QwenBatch.Bench webhook-race 4 2 0.2-0.3 50" "QwenBatch.Bench memory 20 10 0.1" "QwenBatch.Micro --smoke"; do
    read -r project args <<<"$smoke"
    # shellcheck disable=SC2086 # the arguments are meant to split
    dotnet run -c Release --no-build --project "bench/$project" -- $args >/dev/null || { status=$?; echo "— benchmark smoke failed: $smoke"; break; }
  done
  [ "$status" -eq 0 ] && echo "— the import, sdk-race, webhook-race, memory and micro benchmarks run (smoke)"
fi

# One closing line for the whole run, summed over the test assemblies.
awk '/^(Passed!|Failed!)/ {
       for (i = 1; i <= NF; i++) {
         if ($i == "Failed:") f += $(i + 1); if ($i == "Passed:") p += $(i + 1); if ($i == "Skipped:") s += $(i + 1)
       }
     }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
