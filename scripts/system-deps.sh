#!/usr/bin/env bash
# Debian packages the tests and the demo need on the host: nginx (the real serving stack runs on the
# host too) and wrk (benchmarks). Installs only what is missing; needs root (or sudo) the first time.
set -euo pipefail
need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
# report (docs/report): Graphviz for the architecture diagram, poppler for the PDF tests, pango + fonts
# for WeasyPrint
command -v dot >/dev/null || need+=(graphviz)
command -v pdftoppm >/dev/null || need+=(poppler-utils)
ldconfig -p | grep libpangoft2-1.0.so.0 >/dev/null || need+=(libpango-1.0-0 libpangoft2-1.0-0)
ldconfig -p | grep libharfbuzz-subset.so.0 >/dev/null || need+=(libharfbuzz-subset0)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf ] || need+=(fonts-dejavu-core)
command -v curl >/dev/null || need+=(curl)  # the report's recorded terminal sessions
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing Debian packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
