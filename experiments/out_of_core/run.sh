#!/usr/bin/env bash
# Streamed (data.stream=true) against in-memory training on a 200,000-patient Layer-2 file: throughput,
# peak RSS, and streamed latent extraction. Writes the file (1.1 GiB) under /tmp on first use; ~4 min.
set -euo pipefail
cd "$(dirname "$0")/../.."
nice -n 5 python experiments/out_of_core/bench.py "$@"
