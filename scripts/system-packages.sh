#!/usr/bin/env bash
# Debian packages tempipe uses: Tesseract reads scale-bar labels, Chromium runs the browser
# tests. Installed when missing and we are root (CI, these machines); otherwise a note.
set -euo pipefail
missing=()
command -v tesseract >/dev/null || missing+=(tesseract-ocr)
command -v chromium >/dev/null || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null
else
  echo "note: not root, so not installing ${missing[*]} (sudo apt-get install ${missing[*]});" \
       "scale-bar labels are then typed by hand and browser tests are skipped." >&2
fi
