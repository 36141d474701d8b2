#!/usr/bin/env bash
# Installs the Debian packages the project needs. Idempotent: installs only what is missing.
set -euo pipefail

packages=(
  python3-venv       # the project's virtual environment
  fonts-ipaexfont    # Japanese fonts for seal impressions and certificates
  poppler-utils      # pdfsig/pdftotext/pdftoppm: check the sealed certificate PDFs in tests
  libnss3-tools      # certutil: an NSS database trusting the test seal root, so pdfsig checks trust
  pcscd              # PC/SC daemon: the kiosk client talks to the (virtual) card reader through it
  vsmartcard-vpcd    # pcscd reader driver whose card is the virtual My Number card (TCP 127.0.0.1:35963)
  libpcsclite-dev    # headers to build pyscard
  swig               # pyscard's build tool when no wheel fits
  openssl            # openssl x509/crl/verify/ocsp: tests check the JPKI test PKI with the reference tool
  chromium           # headless browser of the verification web page's browser test (Selenium)
  chromium-driver    # /usr/bin/chromedriver: Selenium drives Chromium through it, never a downloaded driver
  nftables           # nft: tests cut the link between the two issuing centres (infra/centre_link.py)
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
