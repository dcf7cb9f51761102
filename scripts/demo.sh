#!/usr/bin/env bash
# Set up, then run persam on the bundled example: personalize on one photo of a motorcycle (marked by a
# box), and find it in a second photo taken from another viewpoint. Results go to demo_out/.
# Needs nothing downloaded but the MobileSAM checkpoint (and the two photos, which scikit-image ships:
# only its wheel is fetched, to take them out; nothing is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
"$PY" scripts/fetch_examples.py examples
.venv/bin/persam download vit_t
# Training-free PerSAM: on this pair it is the better method (the default, PerSAM-F, is better on the
# benchmarks but here keeps a piece of the bench behind the motorcycle; drop --method to see it).
.venv/bin/persam segment --method persam \
  --ref examples/motorcycle_left.png --ref-box 90,75,690,440 \
  examples/motorcycle_right.png examples/motorcycle_left.png \
  -o demo_out --overwrite
echo
echo "Done: masks, overlays and results.jsonl are in demo_out/ (demo_out/motorcycle_right_overlay.jpg is the one to look at)."
