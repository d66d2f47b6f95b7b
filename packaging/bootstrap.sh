#!/usr/bin/env bash
# Installs what LoRA-Whisper Studio needs, and only what is missing.
# Called by start.sh (app) and run-tests.sh (app + test tools); safe to run again:
# a second run checks, installs nothing, and needs no root.
#
#   bash packaging/bootstrap.sh [--app | --test]
#
#   --app   Debian libraries the app needs (Qt, PortAudio); the default.
#   --test  those, plus what the tests use: Xvfb and xauth (a real X server
#           for screenshots) and a PulseAudio daemon (a virtual microphone).
#
# Steps:
#   1. Debian packages that `dpkg-query` does not show as installed are installed
#      with apt-get (as root, or through sudo when it exists). Skipped where there
#      is no dpkg (not Debian/Ubuntu) or when LW_SKIP_APT=1.
#   2. .venv in the repository root is created when missing (with $LW_PYTHON,
#      default python3, which must be 3.11 or newer).
#   3. `pip install -e '.[test]'` (app and test tools in one install) runs when
#      pyproject.toml changed since the last successful install; a stamp file in
#      .venv holds pyproject.toml's hash. LW_FORCE_INSTALL=1 reinstalls anyway.
set -euo pipefail

LW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LW_VENV="$LW_ROOT/.venv"
LW_PYTHON="${LW_PYTHON:-python3}"
LW_STAMP="$LW_VENV/.lorawhisper-install-stamp"

# What PySide6-Essentials 6.11 needs to start a QApplication (offscreen and xcb),
# and what sounddevice needs; found with ldd on the Qt plugins in a bare
# `debootstrap --variant=minbase bookworm` root.
LW_APT_APP=(
    # Linked by libQt6Gui, so needed even with QT_QPA_PLATFORM=offscreen.
    libgl1 libegl1 libxkbcommon0 libfontconfig1 libglib2.0-0 libdbus-1-3
    # A font, so text renders at all.
    fonts-dejavu-core
    # The xcb platform plugin (a real X11 window).
    libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0
    libxcb-render-util0 libxcb-image0 libxcb-randr0 libxcb-xkb1
    # sounddevice loads PortAudio at import time.
    libportaudio2
)
LW_APT_TEST=(
    # A real X server for window screenshots: xvfb-run.
    xvfb xauth
    # A virtual microphone for live-mode tests: a user PulseAudio daemon with a
    # null sink, recorded through ALSA's pulse plugin.
    pulseaudio pulseaudio-utils libasound2-plugins
)

lw_log() { printf '[bootstrap] %s\n' "$*" >&2; }
lw_die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

lw_missing_debian_packages() {
    # Prints the packages in "$@" that are not fully installed.
    local pkg status
    for pkg in "$@"; do
        status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
        [[ "$status" == "install ok installed" ]] || printf '%s\n' "$pkg"
    done
}

lw_install_debian_packages() {
    if [[ "${LW_SKIP_APT:-0}" == 1 ]]; then
        lw_log "LW_SKIP_APT=1: not checking Debian packages"
        return 0
    fi
    if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
        lw_log "no dpkg/apt-get here: install the equivalents of these Debian packages yourself if the app fails to start:"
        lw_log "  $*"
        return 0
    fi
    local -a missing
    mapfile -t missing < <(lw_missing_debian_packages "$@")
    ((${#missing[@]} == 0)) && return 0

    local -a as_root=()
    if ((EUID != 0)); then
        if command -v sudo >/dev/null 2>&1; then
            as_root=(sudo)
        else
            lw_die "these Debian packages are missing and this user is not root and has no sudo:
  ${missing[*]}
Install them as root (apt-get install ${missing[*]}), then run this again; or set LW_SKIP_APT=1 to go on without them."
        fi
    fi
    lw_log "installing Debian packages: ${missing[*]}"
    # One `apt-get update` first: a fresh machine's package lists may be empty or old.
    "${as_root[@]}" apt-get update -q || lw_log "apt-get update failed; trying the install with the lists there are"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}

lw_python_ok() {
    # True when "$1" runs and is Python 3.11 or newer.
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

lw_ensure_venv() {
    if [[ -x "$LW_VENV/bin/python" ]] && lw_python_ok "$LW_VENV/bin/python"; then
        return 0
    fi
    if [[ -e "$LW_VENV" ]]; then
        lw_log "$LW_VENV does not run a Python 3.11+; making it again"
        rm -rf "$LW_VENV"
    fi
    command -v "$LW_PYTHON" >/dev/null 2>&1 || lw_die "$LW_PYTHON not found: install Python 3.11 or newer (Debian 12: apt-get install python3), or set LW_PYTHON"
    lw_python_ok "$LW_PYTHON" || lw_die "$LW_PYTHON is $("$LW_PYTHON" -V 2>&1); Python 3.11 or newer is needed (set LW_PYTHON=/path/to/python3.11)"
    lw_log "creating $LW_VENV with $("$LW_PYTHON" -V 2>&1)"
    if ! "$LW_PYTHON" -m venv "$LW_VENV"; then
        rm -rf "$LW_VENV" # a half-made venv (no pip) would pass the check above next time
        lw_die "could not create $LW_VENV with $LW_PYTHON (Debian: apt-get install python3-venv)"
    fi
}

lw_project_hash() {
    sha256sum "$LW_ROOT/pyproject.toml" | cut -d' ' -f1
}

lw_install_project() {
    local want have=""
    want="$(lw_project_hash)"
    [[ -f "$LW_STAMP" ]] && have="$(cat "$LW_STAMP")"
    if [[ "$want" == "$have" && "${LW_FORCE_INSTALL:-0}" != 1 ]]; then
        return 0
    fi
    lw_log "installing the project and its test tools into .venv (pip install -e '.[test]'); the first time takes a few minutes"
    rm -f "$LW_STAMP"
    local -a pip_opts=(--disable-pip-version-check)
    [[ -t 1 ]] || pip_opts+=(--progress-bar off)
    "$LW_VENV/bin/python" -m pip install "${pip_opts[@]}" -e "$LW_ROOT[test]"
    printf '%s\n' "$want" >"$LW_STAMP"
    lw_log "installed; the stamp in .venv says so, so the next run skips this"
}

lw_needs_python3_venv() {
    # Debian's own python3 ships venv/ensurepip in a separate package (python3-venv),
    # needed only to create .venv.
    [[ -x "$LW_VENV/bin/python" ]] && lw_python_ok "$LW_VENV/bin/python" && return 1
    command -v "$LW_PYTHON" >/dev/null 2>&1 && lw_python_ok "$LW_PYTHON" &&
        ! "$LW_PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1
}

lw_bootstrap() {
    local mode="${1:---app}"
    local -a packages
    case "$mode" in
        --app) packages=("${LW_APT_APP[@]}") ;;
        --test) packages=("${LW_APT_APP[@]}" "${LW_APT_TEST[@]}") ;;
        *) lw_die "unknown option $mode (use --app or --test)" ;;
    esac
    if lw_needs_python3_venv; then
        packages+=(python3-venv)
    fi
    lw_install_debian_packages "${packages[@]}"
    lw_ensure_venv
    lw_install_project
}

lw_bootstrap "$@"
