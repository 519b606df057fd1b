#!/usr/bin/env bash
# Build, sign, notarize and staple the BYOD Agent macOS installer (installer/build macos lands here).
#
#   installer/macos/build.sh [--config DIR] [--dist DIR]
#
# Environment (secrets from the CI secret store; never committed):
#   BYOD_CODESIGN_IDENTITY   "Developer ID Application: <City> (<TEAMID>)"  (in the keychain)
#   BYOD_INSTALLER_IDENTITY  "Developer ID Installer: <City> (<TEAMID>)"
#   BYOD_NOTARY_PROFILE      a `xcrun notarytool store-credentials` keychain profile
#
# Steps: PyInstaller .app (LSUIElement: tray only) -> configuration check and DEMO scan ->
# codesign --options runtime --timestamp inside out (every Mach-O file, then the bundle; never
# --deep) -> pkgbuild/productbuild (signed) -> notarytool submit --wait -> stapler staple ->
# spctl assessment. UNTESTED on this project's Linux machines: it runs on the macOS runner
# (.github/workflows/release.yml).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
config="" dist="dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$(cd "$2" && pwd)"; shift 2 ;;
    --dist) dist="$2"; shift 2 ;;
    *) echo "usage: installer/macos/build.sh [--config DIR] [--dist DIR]" >&2; exit 2 ;;
  esac
done
: "${BYOD_CODESIGN_IDENTITY:?set BYOD_CODESIGN_IDENTITY}"
: "${BYOD_INSTALLER_IDENTITY:?set BYOD_INSTALLER_IDENTITY}"
: "${BYOD_NOTARY_PROFILE:?set BYOD_NOTARY_PROFILE}"
PY=${PYTHON:-python3}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
export PYTHONHASHSEED=0
VERSION=$("$PY" -c "import tomllib;print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])")

stem="BYOD-Agent-demo"
if [ -n "$config" ]; then
  "$PY" -c 'import sys; from pathlib import Path; from admin.buildconfig import check_config; check_config(Path(sys.argv[1]))' "$config"
  export BYOD_CONFIG_DIR="$config"
  stem="BYOD-Agent"
else
  echo "build: no --config: DEMO build ($stem); it trusts only the DEMO key. Do not give it to staff." >&2
  unset BYOD_CONFIG_DIR
fi

work="$ROOT/build/installer/macos"
"$PY" -m PyInstaller --noconfirm --clean --workpath "$work/work" --distpath "$work/dist" installer/byod-agent.spec
app="$work/dist/byod-agent.app"
if [ -n "$config" ]; then
  "$PY" -c 'import sys; from pathlib import Path; from admin.buildconfig import demo_findings
f = demo_findings(Path(sys.argv[1]))
if f: sys.exit("Refusing to build: this customized installer would ship DEMO files: " + "; ".join(f))' \
    "$app/Contents/Resources/resources"
fi

# Inside out: the deepest Mach-O files first, then the bundle with the entitlements.
sign() { codesign --force --options runtime --timestamp --sign "$BYOD_CODESIGN_IDENTITY" "$@"; }
find "$app/Contents" -type f -print0 | while IFS= read -r -d '' f; do
  if file -b "$f" | grep -q "Mach-O"; then printf '%s\t%s\n' "$(echo "$f" | tr -cd / | wc -c)" "$f"; fi
done | sort -rn | cut -f2- | while IFS= read -r f; do sign "$f"; done
sign --entitlements installer/macos/entitlements.plist "$app"
codesign --verify --strict --verbose=2 "$app"

mkdir -p "$dist"
component="$work/component.pkg"
pkgbuild --component "$app" --install-location /Applications --identifier jp.lg.byod-agent \
  --version "$VERSION" --sign "$BYOD_INSTALLER_IDENTITY" --timestamp "$component"
pkg="$dist/$stem-$VERSION.pkg"
productbuild --package "$component" --identifier jp.lg.byod-agent.installer --version "$VERSION" \
  --sign "$BYOD_INSTALLER_IDENTITY" --timestamp "$pkg"

xcrun notarytool submit "$pkg" --keychain-profile "$BYOD_NOTARY_PROFILE" --wait
xcrun stapler staple "$pkg"
xcrun stapler validate "$pkg"
spctl --assess --type install --verbose=2 "$pkg"
spctl --assess --type execute --verbose=2 "$app"

"$PY" -c 'import sys; from admin import sbom; sys.stdout.buffer.write(sbom.sbom_json(epoch=int(sys.argv[1])))' \
  "$SOURCE_DATE_EPOCH" > "$dist/$stem-$VERSION-macos.cdx.json"
echo "built $pkg"
