#!/usr/bin/env bash
# Install the Debian packages narrate needs, only those missing. Idempotent and quiet.
set -euo pipefail
PACKAGES=(
  tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim
  tesseract-ocr-osd tesseract-ocr-chi-sim-vert
  fonts-wqy-zenhei
  espeak-ng libespeak-ng1
  tesseract-ocr-osd tesseract-ocr-chi-sim-vert  # orientation, vertical Chinese (narrate doctor)
  redis-server
  prometheus prometheus-pushgateway
  sox ffmpeg
  chromium chromium-driver
)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
