#!/usr/bin/env bash
# The deployment checks that need no Docker engine: the compose file validates, and the Dockerfile's build step
# (dotnet publish of the CLI) works outside Docker.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker-compose >/dev/null 2>&1; then
  echo "Installing docker-compose (to validate docker-compose.yml offline)…"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
fi

# Validate as a user would run it: with an .env made from the committed example.
env_file=$(mktemp)
trap 'rm -f "$env_file"; rm -rf "$publish"' EXIT
cp .env.example "$env_file"
docker-compose --env-file "$env_file" -f docker-compose.yml config -q
docker-compose --env-file "$env_file" -f docker-compose.yml --profile simulator config --services | sort | tr '\n' ' '
echo "— docker-compose.yml is valid"

# The Dockerfile's build stage, outside Docker.
publish=$(mktemp -d)
grep -q 'dotnet publish src/QwenBatch.Cli/QwenBatch.Cli.csproj -c Release' deploy/Dockerfile
dotnet publish src/QwenBatch.Cli/QwenBatch.Cli.csproj -c Release -o "$publish" --nologo -v quiet
test -f "$publish/qwenbatch.dll" && test -f "$publish/appsettings.json"
dotnet "$publish/qwenbatch.dll" --help >/dev/null
echo "— the Dockerfile's publish step works"
