#!/usr/bin/env bash
# Re-vendor Apache ECharts (Apache-2.0) into orderlake/report/vendor/ from the npm registry.
# The vendored files are committed, so the package and its reports work offline; run this only
# to move to another version: change VERSION and TARBALL_SHA256, run it, commit the result.
set -euo pipefail
VERSION=6.1.0
TARBALL_SHA256=681aff88cc1038c3fa941a3a53d1b177a52250b05335efc607d6105ae13be481
cd "$(dirname "$0")/.."
dest=orderlake/report/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "echarts@$VERSION" --silent >/dev/null)
echo "$TARBALL_SHA256  $work/echarts-$VERSION.tgz" | sha256sum --check --quiet
tar -xzf "$work/echarts-$VERSION.tgz" -C "$work"
mkdir -p "$dest"
cp "$work/package/dist/echarts.min.js" "$dest/echarts.min.js"
cp "$work/package/LICENSE" "$dest/LICENSE-echarts"
cp "$work/package/NOTICE" "$dest/NOTICE-echarts"
cp "$work/package/licenses/LICENSE-d3" "$dest/LICENSE-d3"
(cd "$dest" && sha256sum echarts.min.js > echarts.min.js.sha256)
echo "$VERSION" > "$dest/echarts.version"
echo "vendored echarts $VERSION into $dest"
