# Sourced by the instbench sandbox shims: shared helpers (never executed on its own).

sandbox_say() {
    printf 'instbench sandbox: %s\n' "$*" >&2
}

sandbox_require_dir() {
    if [ -z "${INSTBENCH_SANDBOX_DIR:-}" ] || [ ! -d "$INSTBENCH_SANDBOX_DIR" ]; then
        sandbox_say "$1: INSTBENCH_SANDBOX_DIR is not set; this shim only works inside the instbench sandbox"
        exit 1
    fi
}

# Atomically replace $INSTBENCH_SANDBOX_DIR/$1 with the text $2 (the cloud-init never
# sees a half-written file; the file's mtime is when the request was made).
sandbox_write() {
    local tmp
    tmp="$INSTBENCH_SANDBOX_DIR/.$1.$$"
    printf '%s\n' "$2" >"$tmp" && mv -f "$tmp" "$INSTBENCH_SANDBOX_DIR/$1"
}

# Run a host command, bypassing the shims (PATH as the sandbox process had it).
sandbox_host() {
    env PATH="${INSTBENCH_SANDBOX_HOST_PATH:-/usr/local/bin:/usr/bin:/bin}" "$@"
}
