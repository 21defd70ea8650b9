#!/usr/bin/env bash
# What a device call would carry, and keeping the built-in package out of it.
#
#   bash bench/device_tree.sh size      # bytes of the working tree that travels, and of .device and .whl
#   bash bench/device_tree.sh hide      # before the run call: the package stops travelling
#   bash bench/device_tree.sh restore   # right after it: the package is tracked again
#
# A call carries at most 64 MiB: the tracked and untracked-not-ignored files plus the carried
# paths. The built-in package (asr/pretrained/default, 75 MB since 2026-12-04) is tracked, so
# with it nothing else fits; the training script does not need it. `hide` takes it out of git's
# index (the files stay on disk) and ignores it in .git/info/exclude, so it is neither tracked nor
# travels; `restore` puts both back. Between the two, commit nothing: a commit would delete it.
set -eu -o pipefail
cd "$(git rev-parse --show-toplevel)"
PKG=asr/pretrained/default
EXCLUDE=$(git rev-parse --git-path info/exclude)
LIMIT=$((64 * 1024 * 1024))

total_bytes() { { du -cb "$@" 2>/dev/null || true; } | tail -n 1 | cut -f1; }  # missing paths count 0
tree_bytes() { git ls-files -co --exclude-standard -z | total_bytes --files0-from=-; }

case "${1:-size}" in
  size)
    tree=$(tree_bytes)
    carried=$(total_bytes -s .device .whl)
    total=$((tree + carried))
    echo "tree $tree B, .device + .whl $carried B: $total B of $LIMIT"
    [ "$total" -le "$LIMIT" ] || { echo "over the limit: bash bench/device_tree.sh hide"; exit 1; } ;;
  hide)
    if [ -n "$(git diff --cached --name-only)" ]; then
      echo "the index holds staged changes: commit or unstage them first" >&2; exit 1
    fi
    git rm -r -q --cached "$PKG"
    grep -qxF "/$PKG/" "$EXCLUDE" 2>/dev/null || echo "/$PKG/" >> "$EXCLUDE"
    echo "$PKG untracked and ignored; after the run: bash bench/device_tree.sh restore"
    "$0" size ;;
  restore)
    git reset -q -- "$PKG"
    if [ -f "$EXCLUDE" ]; then
      grep -vxF "/$PKG/" "$EXCLUDE" > "$EXCLUDE.tmp" || true
      mv "$EXCLUDE.tmp" "$EXCLUDE"
    fi
    git status --short -- "$PKG" | head -n 3
    echo "$PKG tracked again" ;;
  *) echo "usage: $0 size|hide|restore" >&2; exit 2 ;;
esac
