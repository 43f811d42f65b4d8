#!/usr/bin/env bash
# Checks the Windows release zip the way a Windows machine without WinFsp would meet it:
#   1. scripts/build-windows.sh builds dist/hfcachefs-<version>-windows-x86_64.zip; its
#      contents are listed and checked (exe, README.txt, LICENSE, platform/windows/*.ps1, no
#      WinFsp DLL);
#   2. the exe's import table (x86_64-w64-mingw32-objdump -p) does not list winfsp-x64.dll
#      as an ordinary import (GNU ld does not fill the PE delay-import directory, so the
#      delay import itself is proved by step 4);
#   3. in a wine prefix that has no WinFsp DLL: --version, --help, scan/verify/dedupe -n/gc -n
#      of a store on a wine drive succeed, and mount fails with exit 1 and exactly one line
#      naming WinFsp and where to get it, leaving the mountpoint as it was;
#   4. in that prefix, WinFsp's registry InstallDir: pointing at a directory without the DLL,
#      mount says the installation is damaged; with the real DLL there (only there), mount
#      loads it through the registry and reaches WinFsp (no driver under wine: one line);
#   5. in the Windows check's prefix, which has WinFsp's real DLL in system32 but (wine) no
#      driver: mount loads the DLL through the delay import, calls WinFsp, and fails with one
#      line saying WinFsp's driver did not answer.
# Needs scripts/windows-check.sh to have run first (its wine prefix and bcryptprimitives shim).
# Scratch: $WINCHECK_WORK (default /tmp/wincheck).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${WINCHECK_WORK:-/tmp/wincheck}
export WINCHECK_WORK=$work
wine=/usr/lib/wine/wine64
fail() { echo "windows-release-check: FAIL: $*" >&2; exit 1; }
ok() { echo "windows-release-check: ok: $*"; }

zip=$("$root/scripts/build-windows.sh" | tail -1)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
name=hfcachefs-$version-windows-x86_64
[[ $zip == "$root/dist/$name.zip" ]] || fail "unexpected zip path $zip"

# ---- 1. contents -------------------------------------------------------------------------
listing=$(/usr/bin/python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$zip")
for f in hfcachefs.exe README.txt LICENSE platform/windows/check-winfsp.ps1 \
  platform/windows/install-logon-task.ps1 platform/windows/register-launcher.ps1 \
  platform/windows/set-hf-hub-cache.ps1 platform/windows/uninstall.ps1; do
  grep -qx "$name/$f" <<<"$listing" || fail "$name/$f missing from the zip"
done
! grep -qi 'winfsp.*\.dll' <<<"$listing" || fail "the zip bundles a WinFsp DLL"
ok "zip holds $(wc -l <<<"$listing") files: exe, README.txt, LICENSE, 5 scripts; no WinFsp DLL"

unz=$(mktemp -d)
trap 'rm -rf "$unz"' EXIT
/usr/bin/python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$unz"
exe=$unz/$name/hfcachefs.exe

# ---- 2. import table ----------------------------------------------------------------------
imports=$(x86_64-w64-mingw32-objdump -p "$exe" | sed -n 's/^[[:space:]]*DLL Name: //p' | sort -fu)
grep -q -i '^kernel32\.dll$' <<<"$imports" || fail "objdump found no import table (kernel32.dll missing)"
! grep -qi winfsp <<<"$imports" || fail "winfsp-x64.dll is an ordinary import: $imports"
ok "ordinary imports: $(tr '\n' ' ' <<<"$imports")(no winfsp-x64.dll)"

# ---- 3. a prefix without WinFsp ---------------------------------------------------------------
shim=$work/wineprefix/drive_c/windows/system32/bcryptprimitives.dll
[[ -f $shim ]] || fail "$shim missing: run scripts/windows-check.sh first"
export WINEDEBUG=-all WINEDLLOVERRIDES='mscoree,mshtml='
export WINEPREFIX=$work/wineprefix-nowinfsp
if [[ ! -f $WINEPREFIX/system.reg ]]; then
  echo "windows-release-check: creating wine prefix $WINEPREFIX" >&2
  "$wine" wineboot -i >/dev/null 2>&1 || true
  /usr/lib/wine/wineserver -w || true
fi
sys32=$WINEPREFIX/drive_c/windows/system32
cp -u "$shim" "$sys32/"
[[ ! -e $sys32/winfsp-x64.dll ]] || fail "$sys32 has a WinFsp DLL"
[[ ! -e $unz/$name/winfsp-x64.dll ]] || fail "a WinFsp DLL lies beside the exe"

out=$("$wine" "$exe" --version) || fail "--version exited $?"
[[ $out == "hfcachefs $version" ]] || fail "--version printed '$out'"
ok "--version: $out"
"$wine" "$exe" --help >"$unz/help" || fail "--help exited $?"
grep -q 'scan' "$unz/help" || fail "--help does not list scan"
ok "--help lists $(grep -c '^  [a-z]' "$unz/help") subcommands"

# A store on the wine drive C:, as Windows clients leave it: one blob and its snapshot copy.
store=$WINEPREFIX/drive_c/hub
rm -rf "$store"
content='{"model_type": "bert"}'
sha=$(printf '%s' "$content" | sha256sum | cut -d' ' -f1)
commit=0123456789abcdef0123456789abcdef01234567
repo=$store/models--org--model
mkdir -p "$repo/blobs" "$repo/refs" "$repo/snapshots/$commit"
printf '%s' "$content" >"$repo/blobs/$sha"
printf '%s' "$content" >"$repo/snapshots/$commit/config.json"
printf '%s' "$commit" >"$repo/refs/main"
touch -d '3 days ago' "$repo/blobs/$sha" "$repo/snapshots/$commit/config.json"

out=$("$wine" "$exe" scan --json 'C:\hub') || fail "scan exited $?"
/usr/bin/python3 - "$out" <<'PY' || fail "scan report: $out"
import json, sys
r = json.loads(sys.argv[1])
(repo,) = r["repos"]
t = repo["totals"]
assert repo["repo_id"] == "org/model", repo
assert (t["revisions"], t["files"], t["copies"], t["broken_links"]) == (1, 1, 1, 0), t
PY
ok "scan C:\\hub: exit 0; org/model with 1 revision, 1 file, the copy found"
"$wine" "$exe" verify 'C:\hub' >"$unz/verify" || fail "verify exited $? ($(cat "$unz/verify"))"
ok "verify C:\\hub: exit 0"
"$wine" "$exe" dedupe -n 'C:\hub' >"$unz/dedupe" || fail "dedupe -n exited $? ($(cat "$unz/dedupe"))"
ok "dedupe -n C:\\hub: exit 0"
"$wine" "$exe" gc -n 'C:\hub' >"$unz/gc" || fail "gc -n exited $? ($(cat "$unz/gc"))"
ok "gc -n C:\\hub: exit 0"
[[ $(cat "$repo/snapshots/$commit/config.json") == "$content" && -f $repo/blobs/$sha ]] ||
  fail "the dry runs changed the store"

mnt=$WINEPREFIX/drive_c/mnt-empty
rm -rf "$mnt"; mkdir "$mnt"
set +e
"$wine" "$exe" mount 'C:\hub' 'C:\mnt-empty' >"$unz/out" 2>"$unz/err"
rc=$?
set -e
[[ $rc == 1 ]] || fail "mount without WinFsp exited $rc"
[[ ! -s $unz/out && $(wc -l <"$unz/err") == 1 ]] || fail "mount printed: $(cat "$unz/out" "$unz/err")"
grep -q 'WinFsp is not installed' "$unz/err" && grep -q 'https://winfsp.dev' "$unz/err" ||
  fail "mount said: $(cat "$unz/err")"
[[ -d $mnt && -z $(ls -A "$mnt") ]] || fail "the mountpoint changed"
ok "mount without WinFsp: exit 1, one line: $(cat "$unz/err")"

# ---- 4. WinFsp found through the registry, as WinFsp documents ------------------------------
# InstallDir names a directory whose bin\ lacks the DLL: a damaged installation, one line.
# Then the real DLL is put there (and only there: not on the loader path): mount must load it
# through the registry and reach WinFsp, which answers that there is no driver.
mount_says() {  # prefix-relative mount; prints stderr, checks exit 1 and one line
  set +e
  "$wine" "$exe" mount 'C:\hub' 'X:' >"$unz/out" 2>"$unz/err"
  local rc=$?
  set -e
  [[ $rc == 1 && ! -s $unz/out && $(wc -l <"$unz/err") == 1 ]] ||
    fail "mount exited $rc: $(cat "$unz/out" "$unz/err")"
  grep -q "$1" "$unz/err" || fail "mount said: $(cat "$unz/err")"
}
key='HKLM\SOFTWARE\WOW6432Node\WinFsp'
fake=$WINEPREFIX/drive_c/WinFspTest
rm -rf "$fake"; mkdir -p "$fake/bin"
"$wine" reg add "$key" /v InstallDir /t REG_SZ /d 'C:\WinFspTest\' /f >/dev/null 2>&1 ||
  fail "reg add failed"
mount_says "WinFsp's DLL C:.*WinFspTest.*winfsp-x64.dll does not load"
ok "registry InstallDir without the DLL: $(cat "$unz/err")"
cp "$work/wineprefix/drive_c/windows/system32/winfsp-x64.dll" "$fake/bin/"
mount_says "WinFsp's driver did not answer"
ok "DLL only in InstallDir\\bin (from the registry): loaded; $(cat "$unz/err")"
"$wine" reg delete "$key" /f >/dev/null 2>&1 || fail "reg delete failed"
rm -rf "$fake"

# ---- 5. WinFsp's DLL, no driver ----------------------------------------------------------------
export WINEPREFIX=$work/wineprefix
[[ -f $WINEPREFIX/drive_c/windows/system32/winfsp-x64.dll ]] ||
  fail "the Windows check's prefix has no winfsp-x64.dll (run scripts/windows-check.sh)"
rm -rf "$WINEPREFIX/drive_c/hub"; cp -r "$store" "$WINEPREFIX/drive_c/hub"
set +e
"$wine" "$exe" mount 'C:\hub' 'X:' >"$unz/out" 2>"$unz/err"
rc=$?
set -e
[[ $rc == 1 && $(wc -l <"$unz/err") == 1 ]] || fail "mount without a driver exited $rc: $(cat "$unz/err")"
grep -q "WinFsp's driver did not answer" "$unz/err" || fail "mount said: $(cat "$unz/err")"
ok "mount with WinFsp's DLL but no driver (delay import resolved): $(cat "$unz/err")"
rm -rf "$WINEPREFIX/drive_c/hub"
