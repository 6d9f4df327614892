#!/bin/sh
# Builds and runs consumer/app.c against an installed zgossip found with
# pkg-config, shared then static.  Usage: pkgconfig.sh PKG_CONFIG_DIR WORKDIR
set -eu
export PKG_CONFIG_PATH="$1"
work="$2"
src="$(cd "$(dirname "$0")" && pwd)/app.c"
CC="${CC:-cc}"
mkdir -p "$work"
libdir="$(pkg-config --variable=libdir zgossip)"

# shared: the soname is what the program needs
$CC -o "$work/app_pc" "$src" $(pkg-config --cflags --libs zgossip) -Wl,-rpath,"$libdir"
readelf -d "$work/app_pc" | grep -q 'NEEDED.*\[libzgossip\.so\.0\]'
"$work/app_pc"

# static: the archive plus Libs.private
static_libs="$(pkg-config --static --libs zgossip | sed 's/-lzgossip\b/-l:libzgossip.a/')"
$CC -o "$work/app_pc_static" "$src" $(pkg-config --cflags zgossip) $static_libs
if readelf -d "$work/app_pc_static" | grep -q libzgossip; then
    echo "app_pc_static needs libzgossip.so" >&2
    exit 1
fi
"$work/app_pc_static"
