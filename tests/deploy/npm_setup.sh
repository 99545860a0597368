#!/usr/bin/env bash
# Installs the deploy tests' npm packages (package.json, pinned by package-lock.json) into DEST,
# a directory of the build tree; does nothing when DEST already has exactly that lock installed.
#   npm_setup.sh SOURCE_DIR DEST
set -euo pipefail
source_dir=$1 dest=$2
command -v npm >/dev/null || { echo "npm is not installed (tools/dev.sh installs nodejs)" >&2; exit 1; }
mkdir -p "$dest"
if cmp -s "$source_dir/package-lock.json" "$dest/package-lock.json" &&
   cmp -s "$source_dir/package.json" "$dest/package.json" && [ -f "$dest/node_modules/.installed" ]; then
  echo "npm packages up to date in $dest"
  exit 0
fi
cp "$source_dir/package.json" "$source_dir/package-lock.json" "$dest/"
cd "$dest"
rm -f node_modules/.installed
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
touch node_modules/.installed
echo "npm packages installed in $dest"
