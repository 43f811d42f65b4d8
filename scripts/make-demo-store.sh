#!/usr/bin/env bash
# Create a small hub cache (the layout huggingface_hub writes on Linux: blobs, relative
# snapshot links, refs, and a shared-blob-store chain) at DIR. Refuses to touch an existing
# non-empty directory.
set -euo pipefail
dir=${1:?usage: make-demo-store.sh DIR}
if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
    echo "make-demo-store: $dir exists and is not empty; leaving it alone" >&2
    exit 0
fi
repo="$dir/models--demo--tiny-model"
c1=1111111111111111111111111111111111111111
c2=2222222222222222222222222222222222222222
mkdir -p "$repo/blobs" "$repo/refs" "$repo/snapshots/$c1/tokenizer" "$repo/snapshots/$c2/tokenizer"
blob() { # CONTENT-FILE -> etag (git blob sha1, as the Hub names small files)
    local f=$1 size
    size=$(stat -c %s "$f")
    { printf 'blob %s\0' "$size"; cat "$f"; } | sha1sum | cut -d' ' -f1
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '{"model_type": "demo", "hidden_size": 64}\n' >"$tmp/config1"
printf '{"model_type": "demo", "hidden_size": 128}\n' >"$tmp/config2"
printf 'hello\nworld\n' >"$tmp/vocab"
head -c 3000000 /dev/urandom >"$tmp/weights"
for f in config1 config2 vocab; do
    e=$(blob "$tmp/$f"); cp "$tmp/$f" "$repo/blobs/$e"; eval "E_$f=$e"
done
w=$(sha256sum "$tmp/weights" | cut -d' ' -f1)
# Shared blob store (huggingface_hub >= 1.33 with Xet): payload + a link from the repo blob.
hh=${w:0:2}
mkdir -p "$dir/blobs/$hh"
echo 1 >"$dir/blobs/.huggingface-shared-blobs"
cp "$tmp/weights" "$dir/blobs/$hh/$w"
printf 'models--demo--tiny-model/blobs/%s\n' "$w" >"$dir/blobs/$hh/$w.refs"
ln -s "../../blobs/$hh/$w" "$repo/blobs/$w"
for c in $c1 $c2; do
    ln -s "../../blobs/$w" "$repo/snapshots/$c/model.safetensors"
    ln -s "../../../blobs/$E_vocab" "$repo/snapshots/$c/tokenizer/vocab.txt"
done
ln -s "../../blobs/$E_config1" "$repo/snapshots/$c1/config.json"
ln -s "../../blobs/$E_config2" "$repo/snapshots/$c2/config.json"
printf %s "$c2" >"$repo/refs/main"
printf 'Signature: 8a477f597d28d172789f06886806bc55\n' >"$dir/CACHEDIR.TAG"
echo "demo store created at $dir"
