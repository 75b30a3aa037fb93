#!/usr/bin/env bash
# Vendor the UI's third-party CSS from the npm registry at a pinned version into
# atlas/ui/static/vendor/, and record what was taken in VENDOR.json (version, the
# registry's tarball integrity, the sha256 of every file). The UI then works offline and
# loads nothing from a CDN; tests/ui/test_vendor.py checks the files against VENDOR.json.
#
#   ./scripts/vendor_assets.sh        # needs npm and network access; commit the result
#
# To upgrade, change the version below, run the script, and look at the UI.
set -euo pipefail
cd "$(dirname "$0")/.."

PICO_PACKAGE="@picocss/pico"
PICO_VERSION="2.1.1"
VENDOR_DIR="atlas/ui/static/vendor"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

expected="$(npm view "${PICO_PACKAGE}@${PICO_VERSION}" dist.integrity)"
(cd "$work" && npm pack --silent --json "${PICO_PACKAGE}@${PICO_VERSION}" >pack.json)
got="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["integrity"])' "$work/pack.json")"
if [ "$got" != "$expected" ]; then
    echo "vendor_assets.sh: the tarball's integrity ($got) is not the registry's ($expected)" >&2
    exit 1
fi
tar -xzf "$work"/*.tgz -C "$work"

rm -rf "$VENDOR_DIR/pico"
mkdir -p "$VENDOR_DIR/pico"
cp "$work/package/css/pico.min.css" "$VENDOR_DIR/pico/pico.min.css"
cp "$work/package/LICENSE.md" "$VENDOR_DIR/pico/LICENSE.md"
license="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["license"])' \
    "$work/package/package.json")"

python3 - "$VENDOR_DIR" "$PICO_PACKAGE" "$PICO_VERSION" "$license" "$expected" <<'PY'
import hashlib
import json
import sys
from pathlib import Path

vendor, package, version, license_, integrity = sys.argv[1:]
root = Path(vendor)
files = {
    path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
    for path in sorted((root / "pico").iterdir())
}
entry = {
    "package": package,
    "version": version,
    "license": license_,
    "integrity": integrity,
    "files": files,
}
manifest = {"packages": [entry]}
(root / "VENDOR.json").write_text(json.dumps(manifest, indent=2) + "\n")
PY
echo "vendored ${PICO_PACKAGE}@${PICO_VERSION} into ${VENDOR_DIR}/pico" >&2
