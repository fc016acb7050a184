#!/usr/bin/env bash
# Build pjsua2 (Python SWIG binding) with B2BUA-sized limits and install it into a virtualenv.
#
# Why: every pjsua2 wheel on PyPI is compiled with PJSUA_MAX_CALLS=4 (two bridged calls per process).
# The pjproject tree is taken from Debian's `asterisk` source package (component tarball
# *.orig-Xpjproject.tar.xz), fetched through the package registry with a private apt configuration so the
# machine's own sources stay untouched, and checked against the .dsc checksums.
#
# The result is a wheel cached under $PJSUA2_CACHE keyed by source version + config hash + Python version,
# so a second run only reinstalls the wheel. If the source route fails, it says so and falls back to the
# PyPI `pjsua2-python` wheel (4-call cap) unless PJSUA2_NO_FALLBACK=1.
#
# Usage: scripts/build-pjsua2.sh <venv-python>
set -euo pipefail

PY=$(command -v "${1:?usage: build-pjsua2.sh <venv python>}")
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${PJSUA2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/b2bua-pjsua2}
SUITES=${PJSUA2_SUITES:-"sid forky"}
JOBS=${PJSUA2_JOBS:-$(nproc)}
# The recipe: changing it (or config_site.h) changes the cache key.
RECIPE_REV=2
CONFIGURE_FLAGS="--enable-epoll --disable-video --disable-sound --disable-ilbc-codec --disable-g7221-codec \
 --disable-resample --disable-bcg729 --disable-libyuv --disable-libwebrtc --disable-sdl --disable-ffmpeg \
 --disable-openh264 --disable-opencore-amr --disable-silk --disable-v4l2 \
 --with-external-srtp --with-external-speex --with-external-gsm"
log() { printf '[build-pjsua2] %s\n' "$*" >&2; }

mkdir -p "$CACHE"
pyver=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')


# ---- 1. find the mirror the machine already uses, and a private apt configuration for deb-src ------------
mirror_uri() {
    local uri=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^(http|https|file):/) {print $i; exit}}' /etc/apt/sources.list)
    fi
    printf '%s' "$uri"
}

fetch_source() {  # prints "<version> <path to pjproject tarball>" on success
    local apt_dir="$1" uri suite
    uri=$(mirror_uri)
    [ -n "$uri" ] || { log "no Debian mirror found in the machine's apt sources"; return 1; }
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/dl"
    for suite in $SUITES; do
        printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' "$uri" "$suite" \
            > "$apt_dir/sources.list"
        local A=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-"
                 -o "Dir::State::Lists=$apt_dir/lists" -o "APT::Get::List-Cleanup=0" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
        if ! apt-get "${A[@]}" -qq update >&2; then
            log "apt-get update for suite $suite failed"; continue
        fi
        local ver
        ver=$(apt-cache "${A[@]}" showsrc asterisk 2>/dev/null | awk '/^Version:/{print $2}' | sort -V | tail -1)
        [ -n "$ver" ] || { log "no asterisk source in $suite"; continue; }
        (cd "$apt_dir/dl" && apt-get "${A[@]}" -qq source --download-only "asterisk=$ver" >&2) || {
            log "download of asterisk $ver from $suite failed"; continue; }
        local dsc tarball
        dsc=$(ls "$apt_dir"/dl/asterisk_*.dsc | head -1)
        tarball=$(ls "$apt_dir"/dl/*.orig-Xpjproject.tar.* 2>/dev/null | head -1)
        [ -n "$tarball" ] || { log "asterisk $ver in $suite carries no pjproject component"; continue; }
        # verify every file against the Checksums-Sha256 of the .dsc (apt already checked the .dsc itself
        # against the signed Sources index)
        local line sum size name ok=1
        while read -r sum size name; do
            [ -n "$name" ] || continue
            [ -f "$apt_dir/dl/$name" ] || { log "missing $name"; ok=0; continue; }
            if [ "$(sha256sum "$apt_dir/dl/$name" | cut -d' ' -f1)" != "$sum" ]; then
                log "CHECKSUM MISMATCH for $name"; ok=0
            fi
        done < <(awk '/^Checksums-Sha256:/{f=1;next} /^[^ ]/{f=0} f{print $1, $2, $3}' "$dsc")
        [ "$ok" = 1 ] || { log "verification failed for asterisk $ver"; return 1; }
        log "verified $(basename "$tarball") against $(basename "$dsc") (asterisk $ver, suite $suite)"
        printf '%s %s\n' "$ver" "$tarball"
        return 0
    done
    return 1
}

install_fallback() {
    log "FALLING BACK to the PyPI pjsua2-python wheel: it is compiled with PJSUA_MAX_CALLS=4 (2 bridged calls)."
    "$PY" -m pip install -q 'pjsua2-python'
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cfg_hash=$( { cat "$HERE/pjsua2/config_site.h" "$HERE"/pjsua2/patches/*.patch; echo "$CONFIGURE_FLAGS $RECIPE_REV"; } \
           | sha256sum | cut -c1-12)

if ! src=$(fetch_source "$work/apt"); then
    log "could not obtain the pjproject source through Debian's package registry"
    # an earlier build of this very recipe is as good as a new one
    cached=$(ls -t "$CACHE"/*-"$cfg_hash-$pyver"/*.whl 2>/dev/null | head -1 || true)
    if [ -n "$cached" ]; then
        log "using the cached build $cached"
        "$PY" -m pip install -q --force-reinstall --no-deps "$cached"
        exit 0
    fi
    [ "${PJSUA2_NO_FALLBACK:-0}" = 1 ] && exit 1
    install_fallback; exit 0
fi
ver=${src%% *}; tarball=${src#* }
key="$(printf '%s' "$ver" | tr ':~+' '___')-$cfg_hash-$pyver"
wheel_dir="$CACHE/$key"

if ! ls "$wheel_dir"/*.whl >/dev/null 2>&1; then
    log "building pjproject from asterisk $ver (cache key $key); this takes ~6 minutes on 2 cores"
    start=$(date +%s)
    mkdir -p "$work/src"
    tar -xf "$tarball" -C "$work/src"
    top=$(find "$work/src" -maxdepth 2 -name configure -path '*pj*' -printf '%h\n' | head -1)
    [ -n "$top" ] || { log "no configure script in the pjproject tarball"; exit 1; }
    cp "$HERE/pjsua2/config_site.h" "$top/pjlib/include/pj/config_site.h"
    # our own changes to pjsip behaviour, each explained in its patch
    for p in "$HERE"/pjsua2/patches/*.patch; do
        patch -d "$top" -p1 --forward --quiet < "$p" || { log "patch $(basename "$p") does not apply"; exit 1; }
    done
    # Debian strips this upstream file but the Makefile still lists it.
    [ -f "$top/pjmedia/src/pjmedia-audiodev/bdimad_dev.c" ] || : > "$top/pjmedia/src/pjmedia-audiodev/bdimad_dev.c"
    (
        cd "$top"
        export CFLAGS="-O2 -fPIC -DNDEBUG" CXXFLAGS="-O2 -fPIC -DNDEBUG"
        # shellcheck disable=SC2086
        ./configure $CONFIGURE_FLAGS >"$work/configure.log" 2>&1 \
            || { tail -30 "$work/configure.log" >&2; exit 1; }
        make dep >"$work/make.log" 2>&1 && make -j"$JOBS" >>"$work/make.log" 2>&1 \
            || { tail -40 "$work/make.log" >&2; exit 1; }
        cd pjsip-apps/src/swig/python
        # SWIG generates pjsua2_wrap.cpp and pjsua2.py; then one compile of the wrapper into a wheel
        make PYTHON_EXE="$PY" pjsua2_wrap.cpp >"$work/swig.log" 2>&1 || { tail -40 "$work/swig.log" >&2; exit 1; }
        # mark the module so the B2BUA can tell its own build from the PyPI wheel
        printf '\n__b2bua_build__ = %s\n' "'asterisk $ver config $cfg_hash'" >> pjsua2.py
        # the effective compile-time limits, as the preprocessor sees them after pjproject's own defaults
        incs=""
        for d in pjlib pjlib-util pjmedia pjsip pjnath; do incs="$incs -I$top/$d/include"; done
        # shellcheck disable=SC2086
        limits=$(printf '%s\n' '#include <pjsua-lib/pjsua.h>' \
            '__B2BUA_LIMITS__ {"PJSUA_MAX_CALLS": PJSUA_MAX_CALLS, "PJSUA_MAX_ACC": PJSUA_MAX_ACC, "PJ_IOQUEUE_MAX_HANDLES": PJ_IOQUEUE_MAX_HANDLES, "PJSUA_MAX_CONF_PORTS": PJSUA_MAX_CONF_PORTS, "PJMEDIA_CONF_THREADS": PJMEDIA_CONF_THREADS, "PJ_HAS_IPV6": PJ_HAS_IPV6}' \
            | gcc -E -P -DPJ_AUTOCONF=1 $incs - | sed -n 's/^__B2BUA_LIMITS__ //p')
        [ -n "$limits" ] || { log "could not read the compiled limits"; exit 1; }
        printf '__b2bua_limits__ = %s\n' "$limits" >> pjsua2.py
        "$PY" -m pip install -q setuptools wheel >&2
        "$PY" setup.py -q bdist_wheel -d "$work/wheel" >"$work/wheel.log" 2>&1 \
            || { tail -20 "$work/wheel.log" >&2; exit 1; }
    ) || { log "pjproject build failed"; [ "${PJSUA2_NO_FALLBACK:-0}" = 1 ] && exit 1; install_fallback; exit 0; }
    mkdir -p "$wheel_dir"
    cp "$work"/wheel/*.whl "$wheel_dir/"
    log "built in $(( $(date +%s) - start )) s"
else
    log "cached build found ($key)"
fi

"$PY" -m pip install -q --force-reinstall --no-deps "$wheel_dir"/*.whl
"$PY" -c 'import pjsua2; print("[build-pjsua2] installed pjsua2", getattr(pjsua2, "__b2bua_build__", "?"))' >&2
