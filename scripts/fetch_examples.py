"""Put the demo photos (two views of one motorcycle) into a folder.

scikit-image ships them in its wheel; we download that wheel with pip into a temporary folder and take
only the two PNGs out of it. Nothing is installed.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "scikit-image==0.26.0"
FILES = ("motorcycle_left.png", "motorcycle_right.png")


def main(dest: str = "examples") -> int:
    out = Path(dest)
    if all((out / name).is_file() for name in FILES):
        print(f"[examples] already in {out}/")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", WHEEL, "-d", tmp]
        print(f"[examples] fetching the photos from the {WHEEL} wheel")
        if subprocess.run(cmd).returncode != 0:
            print(f"[examples] error: pip could not download {WHEEL}", file=sys.stderr)
            return 1
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for name in FILES:
                data = zf.read(f"skimage/data/{name}")
                part = out / f".{name}.part"
                part.write_bytes(data)
                part.replace(out / name)
    print(f"[examples] {', '.join(FILES)} -> {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
