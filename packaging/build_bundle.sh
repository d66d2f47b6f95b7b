#!/usr/bin/env bash
# Builds the one-folder desktop bundle of LoRA-Whisper Studio for Linux x86_64 (CPU):
#
#   bash packaging/build_bundle.sh [--tar]
#
# Result: dist/lorawhisper-studio/ with `lorawhisper-studio` (the app), `lorawhisper` (the
# command line: a link to the same executable) and `install-desktop-entry.sh`; with --tar
# also dist/lorawhisper-studio-VERSION-linux-x86_64.tar.gz. Runs with no Python and no network
# on the target machine; the built-in backbone's weights and the shipped adapters are inside.
#
# Needs .venv (./start.sh or packaging/bootstrap.sh makes it); installs PyInstaller into it
# (the `bundle` extra) when missing. LW_BUNDLE_TRIM=0 builds without the size exclusions of
# packaging/lorawhisper-studio.spec, to measure them.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$root/.venv/bin/python"
bundle="$root/dist/lorawhisper-studio"
make_tar=0
for arg in "$@"; do
    case "$arg" in
        --tar) make_tar=1 ;;
        *) echo "usage: $0 [--tar]" >&2; exit 2 ;;
    esac
done

log() { printf '[build_bundle] %s\n' "$*" >&2; }

[[ -x "$python" ]] || { log "no $python: run packaging/bootstrap.sh first"; exit 1; }
if ! "$python" -c "import PyInstaller" 2>/dev/null; then
    log "installing PyInstaller into .venv (the 'bundle' extra)"
    "$python" -m pip install --quiet -e "$root[bundle]"
fi

started=$(date +%s)
cd "$root"
# The stamp is taken before building: an input changed during the build makes it stale.
stamp="$("$python" packaging/bundle_stamp.py "$root")"
"$python" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$root/dist" --workpath "$root/build/pyinstaller" \
    packaging/lorawhisper-studio.spec
ln -sfn lorawhisper-studio "$bundle/lorawhisper"
install -m 755 packaging/install-desktop-entry.sh "$bundle/install-desktop-entry.sh"
printf '%s\n' "$stamp" > "$bundle/_internal/lorawhisper-bundle-stamp.txt"
log "built $bundle in $(( $(date +%s) - started )) s, $(du -sm "$bundle" | cut -f1) MiB"

if ((make_tar)); then
    version="$("$python" -c 'import lorawhisper_app; print(lorawhisper_app.__version__)')"
    tarball="$root/dist/lorawhisper-studio-$version-linux-x86_64.tar.gz"
    tar -C "$root/dist" -czf "$tarball" lorawhisper-studio
    log "packed $tarball, $(du -sm "$tarball" | cut -f1) MiB"
fi
