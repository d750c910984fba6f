#!/usr/bin/env bash
# Debian packages the tests and benchmarks need: a real Orthanc PACS with its DICOMweb and WSI plugins,
# dcmtk, libvips, OpenJPEG and OpenJPH tools (independent reference codecs), Chromium (browser tests, driven by
# playwright-core, which downloads nothing), wrk (load generator for bench/), NumPy (reads the .npy files we write),
# strace (the reliability suite proves the folder source opens no file outside its folder).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# Root installs directly; anyone else goes through sudo.
as_root=(); [ "$(id -u)" = 0 ] || as_root=(sudo -E)
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq \
  orthanc orthanc-dicomweb orthanc-wsi dcmtk libvips-tools chromium wrk libopenjp2-tools openjph-tools python3-numpy strace >/dev/null
# The orthanc package registers a system service on port 8042; the tests start their own on free ports.
echo "test dependencies installed: $(Orthanc --version 2>/dev/null | head -1), $(vips --version), $(chromium --version 2>/dev/null)"
