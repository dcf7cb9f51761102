#!/usr/bin/env bash
# Set up, then run persam on the bundled album (examples/album/): personalize on ONE photo of a chow-chow with
# its mask, then look for that dog in 8 other photos -- 3 more of it, and look-alikes it must not take for it
# (two poodles, a ginger cat, a brown teddy bear) and a backpack. Results go to demo_out/.
# Needs nothing downloaded but the MobileSAM checkpoint (40 MB); the photos are in the repository.
# Idempotent: a rerun refits the concept (--overwrite) and skips the photos that are already done.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PERSAM=.venv/bin/persam
ALBUM=examples/album
"$PERSAM" download vit_t
# 1. Personalize once: the concept (a small file) is all that the search needs later.
"$PERSAM" fit --ref "$ALBUM/reference/chow.jpg" --ref-mask "$ALBUM/reference/chow_mask.png" \
  -o demo_out/chow.persam --overwrite -q
# 2. Search the album: a mask where the dog is found, an empty one where it is not (results.jsonl says which,
#    with the score); a report page, cut-outs and square DreamBooth training crops of the photos it is in.
"$PERSAM" segment --concept demo_out/chow.persam "$ALBUM/photos" \
  --export report,cutouts,dreambooth -o demo_out
echo
echo "Done. Open demo_out/report.html (every photo: found or not, with its score and mask);"
echo "the cut-outs are in demo_out/cutouts/, the DreamBooth crops in demo_out/dreambooth/chow/,"
echo "masks and overlays next to them, one line per photo in demo_out/results.jsonl."
