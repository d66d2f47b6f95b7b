#!/usr/bin/env bash
# Adds LoRA-Whisper Studio to the desktop's application menu, for this user, from the bundle
# this script lies in (build_bundle.sh copies it there):
#
#   ./install-desktop-entry.sh            # menu entry, icon, and ~/.local/bin/lorawhisper
#   ./install-desktop-entry.sh --remove   # takes them away again
#
# Writes $XDG_DATA_HOME/applications/lorawhisper-studio.desktop (Exec: this bundle's app),
# $XDG_DATA_HOME/icons/hicolor/scalable/apps/lorawhisper-studio.svg, and the link
# ~/.local/bin/lorawhisper to the bundle's command line.
set -euo pipefail

bundle="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
entry="$data/applications/lorawhisper-studio.desktop"
icon="$data/icons/hicolor/scalable/apps/lorawhisper-studio.svg"
cli_link="$HOME/.local/bin/lorawhisper"

if [[ "${1:-}" == "--remove" ]]; then
    rm -f "$entry" "$icon"
    [[ -L "$cli_link" ]] && rm -f "$cli_link"
    echo "removed $entry, $icon and $cli_link"
    exit 0
fi
[[ -x "$bundle/lorawhisper-studio" ]] || { echo "$bundle/lorawhisper-studio is missing: run this script from the bundle" >&2; exit 1; }

mkdir -p "$(dirname "$entry")" "$(dirname "$icon")" "$(dirname "$cli_link")"
install -m 644 "$bundle/_internal/resources/icon.svg" "$icon"
# The shipped entry names the installed command; point it at this bundle, quoted per the
# Desktop Entry specification (the path may hold spaces).
app="\"$bundle/lorawhisper-studio\""
sed -e "s|^Exec=.*|Exec=$app|" -e "s|^TryExec=.*|TryExec=$bundle/lorawhisper-studio|" \
    "$bundle/_internal/resources/lorawhisper-studio.desktop" > "$entry"
chmod 644 "$entry"
ln -sfn "$bundle/lorawhisper" "$cli_link"
command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" || true
echo "installed $entry (menu: LoRA-Whisper Studio) and $cli_link"
