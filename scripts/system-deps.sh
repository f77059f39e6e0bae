#!/usr/bin/env bash
# Installs the Debian packages nn-grader needs when they are missing:
#   dataset-fashion-mnist  the offline dataset (MNIST cannot be downloaded everywhere)
#   bubblewrap             the sandbox that student code runs in
#   libseccomp2            the runtime's seccomp filter (read through pyseccomp)
#   postgresql             a real server for the gradebook's PostgreSQL tests
#   chromium               a real browser for the report tests
#   fonts-noto-cjk         Chinese glyphs, so screenshots of reports show Chinese names
#   nginx-light            the reverse proxy of docs/deploy/nginx.conf, run in front of grader serve in a test
# As root it installs them with apt-get; otherwise it says what to install.
set -euo pipefail

missing=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing+=(dataset-fashion-mnist)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
/sbin/ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || missing+=(libseccomp2)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || missing+=(fonts-noto-cjk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "system-deps: missing Debian packages: ${missing[*]}" >&2
  echo "system-deps: install them with: sudo apt-get install ${missing[*]}" >&2
  # The dataset is optional when MNIST is cached; the data check that follows decides.
fi
