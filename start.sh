#!/usr/bin/env bash
# Installs whatever is missing (Debian libraries, .venv, the project), then starts
# LoRA-Whisper Studio. Arguments go to the app. See packaging/bootstrap.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$root/packaging/bootstrap.sh" --app
exec "$root/.venv/bin/lorawhisper-app" "$@"
