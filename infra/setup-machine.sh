#!/usr/bin/env bash
# Installs the Debian packages the project needs. Idempotent: installs only what is missing.
set -euo pipefail

packages=(
  python3-venv       # the project's virtual environment
  fonts-ipaexfont    # Japanese fonts for seal impressions and certificates
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-machine: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
