#!/usr/bin/env bash
# Packaging checks for mps-edge: builds the .deb with cargo-deb and checks its contents,
# control fields and maintainer scripts; verifies the systemd unit with systemd-analyze;
# runs the packaged binary against the packaged example config (doctor, a short serve
# with /health and /ready, clean SIGTERM shutdown) and in the container's
# environment-only setup; checks that packaging/config.toml documents every key of
# src/config/. Ends with "N passed, M failed".
#
#   bash scripts/package-test.sh             # cargo-deb metadata lives in Cargo.toml
#   PACKAGE_TEST_INSTALL=1 bash scripts/package-test.sh
#       also installs the .deb on THIS machine (root, Debian/Ubuntu), checks the user,
#       directories, permissions and secret, upgrades in place, removes and purges it.
#       Skipped when mps-edge is already installed or the mps-edge user exists.
#
# A release build is part of it (several minutes on 2 cores the first time).
# CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

for arg in "$@"; do
    case "$arg" in
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
    esac
done

PASS=0
FAIL=0
pass() { echo "ok    $*"; PASS=$((PASS + 1)); }
fail() { echo "FAIL  $*"; FAIL=$((FAIL + 1)); }
skip() { echo "skip  $*"; }
# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
    local desc=$1
    shift
    if "$@"; then pass "$desc"; else fail "$desc"; fi
}
finish() {
    echo
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
}

WORK=$(mktemp -d /tmp/mps-edge-package-test.XXXXXX)
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---- the project to package ----------------------------------------------------------
PROJ=$ROOT
if ! grep -q '^\[package\.metadata\.deb\]' "$PROJ/Cargo.toml"; then
    fail "Cargo.toml has no [package.metadata.deb] section"
    finish || exit 1
fi
pass "Cargo.toml has [package.metadata.deb]"

# ---- static checks ---------------------------------------------------------------------
for s in postinst prerm postrm; do
    f=$ROOT/packaging/debian/$s
    check "maintainer script $s exists, is executable and parses" \
        bash -c '[ -x "$1" ] && sh -n "$1"' _ "$f"
    if grep -q '#DEBHELPER#' "$f"; then fail "$s contains #DEBHELPER#"; fi
done
if command -v shellcheck >/dev/null 2>&1; then
    check "shellcheck: maintainer scripts and this script" \
        shellcheck -S warning "$ROOT"/packaging/debian/postinst "$ROOT"/packaging/debian/prerm \
        "$ROOT"/packaging/debian/postrm "$ROOT/scripts/package-test.sh"
else
    skip "shellcheck not installed"
fi

UNIT_SRC=$ROOT/packaging/mps-edge.service
for want in \
    'ExecStart=/usr/bin/mps-edge --config /etc/mps-edge/config.toml serve' \
    'User=mps-edge' 'Group=mps-edge' 'Restart=on-failure' 'KillSignal=SIGTERM' \
    'TimeoutStopSec=30' 'StateDirectory=mps-edge' 'ConfigurationDirectory=mps-edge' \
    'ProtectSystem=strict' 'ReadWritePaths=/var/lib/mps-edge' 'NoNewPrivileges=yes' \
    'CapabilityBoundingSet=' 'UMask=0077' \
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX'; do
    check "unit has '$want'" grep -Fxq -- "$want" "$UNIT_SRC"
done

CF=$ROOT/packaging/Containerfile
check "Containerfile: builder runs cargo build --release --locked" \
    grep -q 'cargo build --release --locked' "$CF"
check "Containerfile: ENV data dir /data and listen 0.0.0.0:8080" \
    bash -c 'grep -q "MPS_EDGE_DATA_DIR=/data" "$1" && grep -q "MPS_EDGE_SERVER__LISTEN=0.0.0.0:8080" "$1"' _ "$CF"
check "Containerfile: HEALTHCHECK curls /health on the listen port" \
    bash -c 'grep -q "^HEALTHCHECK " "$1" && grep -q "curl.*http://127.0.0.1:8080/health" "$1"' _ "$CF"
check "Containerfile: exec-form ENTRYPOINT and CMD serve" \
    bash -c 'grep -Fxq "ENTRYPOINT [\"/usr/local/bin/mps-edge\"]" "$1" && grep -Fxq "CMD [\"serve\"]" "$1"' _ "$CF"
for p in $(sed -n 's/^COPY \([^-][^ ]*\( [^ ]*\)*\) [^ ]*$/\1/p' "$CF"); do
    check "Containerfile copies '$p', which is tracked in git" \
        bash -c 'cd "$1" && [ -n "$(git ls-files -- "$2" | head -n1)" ]' _ "$ROOT" "$p"
done

# Every key of the config structs (src/config/) appears (set or commented) in its section
# of config.toml. The sections are the fields of `Config` whose type is a struct of
# src/config/ named *Config or *Settings (`server: ServerConfig`, `limits: LimitSettings`).
CONF_SRC=$ROOT/packaging/config.toml
# mod.rs is read twice: first for `Config`'s sections, then with the other files.
keys=$(awk '
    FNR == NR && /^pub struct Config \{/ { top = 1; next }
    FNR == NR && top && /^\}/ { top = 0; next }
    FNR == NR && top && /^    pub [a-z_]+: [A-Z][A-Za-z]*(Config|Settings),$/ {
        field = $2; sub(/:$/, "", field); type = $3; sub(/,$/, "", type); sect_of[type] = field; next
    }
    FNR == NR { next }
    /^pub struct [A-Za-z]+ \{/ {
        inside = 0
        if ($3 == "Config") { sect = ""; inside = 1 }
        else if ($3 in sect_of) { sect = sect_of[$3]; inside = 1 }
        next
    }
    inside && /^\}/ { inside = 0; next }
    inside && /^    pub [a-z_]+: / {
        key = $2; sub(/:$/, "", key); type = $3; sub(/,$/, "", type)
        if (sect == "" && (type in sect_of)) next
        print (sect == "" ? "" : sect ".") key
    }' "$PROJ/src/config/mod.rs" "$PROJ"/src/config/*.rs)
if [ -z "$keys" ]; then
    fail "could not read the configuration keys from src/config/"
fi
documented=$(awk '
    /^\[[a-z_]+\]/ { sect = substr($1, 2, length($1) - 2); next }
    /^#? ?[a-z_]+ = / { line = $0; sub(/^# ?/, "", line); split(line, a, " ");
        print (sect == "" ? "" : sect ".") a[1] }' "$CONF_SRC")
missing=""
for k in $keys; do
    printf '%s\n' "$documented" | grep -Fxq -- "$k" || missing="$missing $k"
done
extra=""
for k in $documented; do
    printf '%s\n' "$keys" | grep -Fxq -- "$k" || extra="$extra $k"
done
if [ -n "$keys" ] && [ -z "$missing" ]; then
    pass "config.toml documents all $(echo "$keys" | wc -l) keys of src/config/"
else
    fail "config.toml does not document:$missing"
fi
if [ -z "$extra" ]; then
    pass "config.toml documents no key that src/config/ lacks"
else
    fail "config.toml documents unknown keys:$extra"
fi

# ---- build the .deb --------------------------------------------------------------------
if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "installing cargo-deb (cargo install cargo-deb --locked)"
    cargo install cargo-deb --locked
fi
echo "building the .deb (cargo deb -- --locked) ..."
if ! (cd "$PROJ" && cargo deb -- --locked) >"$WORK/cargo-deb.out" 2>"$WORK/cargo-deb.err"; then
    cat "$WORK/cargo-deb.err" >&2
    fail "cargo deb failed"
    finish || exit 1
fi
DEB=$(tail -n 1 "$WORK/cargo-deb.out")
if [ ! -f "$DEB" ]; then
    cat "$WORK/cargo-deb.out" "$WORK/cargo-deb.err" >&2
    fail "cargo deb printed no package path"
    finish || exit 1
fi
pass "cargo deb built $DEB"
if grep -qi 'warning' "$WORK/cargo-deb.err"; then
    echo "cargo-deb warnings:"
    grep -i 'warning' "$WORK/cargo-deb.err" | sed 's/^/    /'
fi

# ---- contents and control --------------------------------------------------------------
dpkg-deb -c "$DEB" >"$WORK/contents"
echo "      dpkg-deb -c $(basename "$DEB"):"
awk '$1 !~ /^d/ { print "        " $1, $2, $NF }' "$WORK/contents"
has_entry() { # mode path
    awk -v m="$1" -v p="$2" '$1 == m && ($2 == "root/root" || $2 == "0/0") && $NF == p { f = 1 }
        END { exit !f }' \
        "$WORK/contents"
}
check "deb has usr/bin/mps-edge (0755)" has_entry -rwxr-xr-x ./usr/bin/mps-edge
check "deb has lib/systemd/system/mps-edge.service (0644)" \
    has_entry -rw-r--r-- ./lib/systemd/system/mps-edge.service
check "deb has etc/mps-edge/config.toml (0640)" has_entry -rw-r----- ./etc/mps-edge/config.toml
check "deb has the README" has_entry -rw-r--r-- ./usr/share/doc/mps-edge/README.md
check "deb has README.Debian" has_entry -rw-r--r-- ./usr/share/doc/mps-edge/README.Debian
check "deb has no jwt.secret (generated on install)" \
    bash -c '! grep -q "jwt.secret" "$1"' _ "$WORK/contents"

depends=$(dpkg-deb -f "$DEB" Depends)
echo "      Depends: $depends"
check "Depends names libc6 (from \$auto)" grep -q 'libc6' <<<"$depends"
check "Depends names adduser | passwd" grep -Fq 'adduser | passwd' <<<"$depends"
for field in Package Version Architecture Maintainer Section Priority Description; do
    check "control field $field is set" test -n "$(dpkg-deb -f "$DEB" "$field")"
done
check "Package is mps-edge" test "$(dpkg-deb -f "$DEB" Package)" = mps-edge

mkdir -p "$WORK/control" "$WORK/root"
dpkg-deb -e "$DEB" "$WORK/control"
dpkg-deb -x "$DEB" "$WORK/root"
check "conffiles lists /etc/mps-edge/config.toml exactly once" \
    test "$(grep -cFx /etc/mps-edge/config.toml "$WORK/control/conffiles" 2>/dev/null)" = 1
for s in postinst prerm postrm; do
    check "packaged $s is packaging/debian/$s, executable" \
        bash -c '[ -x "$1" ] && cmp -s "$1" "$2"' _ "$WORK/control/$s" "$PROJ/packaging/debian/$s"
done
check "packaged unit is packaging/mps-edge.service" \
    cmp -s "$WORK/root/lib/systemd/system/mps-edge.service" "$PROJ/packaging/mps-edge.service"
check "packaged config is packaging/config.toml" \
    cmp -s "$WORK/root/etc/mps-edge/config.toml" "$PROJ/packaging/config.toml"

BIN=$WORK/root/usr/bin/mps-edge
version=$(dpkg-deb -f "$DEB" Version)
check "packaged binary runs and reports version ${version%-*}" \
    bash -c '"$1" --version | grep -Fq -- "$2"' _ "$BIN" "${version%-*}"

# ---- systemd unit ----------------------------------------------------------------------
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify needs ExecStart's binary to exist: check a copy pointing at the built one.
    mkdir -p "$WORK/unit"
    sed "s#^ExecStart=/usr/bin/mps-edge #ExecStart=$BIN #" \
        "$WORK/root/lib/systemd/system/mps-edge.service" >"$WORK/unit/mps-edge.service"
    grep -q "^ExecStart=$BIN " "$WORK/unit/mps-edge.service" || fail "could not rewrite ExecStart"
    # verify exits 0 on unknown keys and bad values, printing them: any output fails.
    if out=$(systemd-analyze verify --man=no "$WORK/unit/mps-edge.service" 2>&1) && [ -z "$out" ]; then
        pass "systemd-analyze verify: unit is clean"
    else
        fail "systemd-analyze verify: $out"
    fi
    if sec=$(systemd-analyze security --offline=true "$WORK/unit/mps-edge.service" 2>/dev/null); then
        level=$(sed -n 's/.*Overall exposure level for mps-edge.service: \([0-9.]*\).*/\1/p' <<<"$sec")
        check "systemd-analyze security: exposure ${level:-?} <= 2.0" \
            awk -v l="${level:-99}" 'BEGIN { exit !(l <= 2.0) }'
    else
        skip "systemd-analyze security --offline not supported by this systemd"
    fi
else
    skip "systemd-analyze not installed: unit not verified (apt-get install systemd)"
fi

# ---- the packaged binary with the packaged config ----------------------------------------
new_secret() {
    if command -v openssl >/dev/null 2>&1; then
        openssl rand -hex 32
    else
        od -An -vtx1 -N32 /dev/urandom | tr -d ' \n'
        echo
    fi
}

# http_get URL -> prints "STATUS BODY"
http_get() {
    curl -s -o "$WORK/body" -w '%{http_code}' "$1" 2>/dev/null || true
    printf ' %s' "$(cat "$WORK/body" 2>/dev/null)"
}

# start_server LOG ARGS...: runs the binary in the background, sets SERVER_PID and
# BASE_URL from its banner.
start_server() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    SERVER_PID=$!
    BASE_URL=""
    for _ in $(seq 1 150); do
        BASE_URL=$(sed -n 's/^mps-edge .* listening on \(http:[^ ]*\)$/\1/p' "$log" 2>/dev/null | head -n1)
        [ -n "$BASE_URL" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.2
    done
    echo "server did not come up:" >&2
    sed 's/^/    /' "$log" >&2
    return 1
}

# stop_server: SIGTERM, wait up to 30 s (the unit's TimeoutStopSec), sets STOP_RC.
stop_server() {
    kill -TERM "$SERVER_PID"
    for _ in $(seq 1 300); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        STOP_RC=timeout
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    else
        STOP_RC=0
        wait "$SERVER_PID" || STOP_RC=$?
    fi
    SERVER_PID=""
}

if ! command -v curl >/dev/null 2>&1; then
    skip "curl not installed: HTTP checks skipped"
fi

# A copy of the shipped config with its paths moved into the temp dir.
mkdir -p "$WORK/etc" "$WORK/data"
chmod 0750 "$WORK/etc" "$WORK/data"
(umask 027 && new_secret >"$WORK/etc/jwt.secret")
CFG=$WORK/etc/config.toml
sed -e "s#^data_dir = \"/var/lib/mps-edge\"#data_dir = \"$WORK/data\"#" \
    -e "s#\"/etc/mps-edge/#\"$WORK/etc/#" -e "s#\"/var/lib/mps-edge/#\"$WORK/data/#" \
    "$WORK/root/etc/mps-edge/config.toml" >"$CFG"
check "config copy points at the temp data dir and secret" \
    bash -c 'grep -Fxq "data_dir = \"$2/data\"" "$1" && grep -Fxq "jwt_secret_file = \"$2/etc/jwt.secret\"" "$1"' \
    _ "$CFG" "$WORK"

# doctor before the first start (the README runs it first): the config must be valid, the
# missing database is information, not a problem, and it exits 0.
rc=0
"$BIN" --config "$CFG" doctor >"$WORK/doctor1.out" 2>&1 || rc=$?
check "doctor: packaged config is valid (production, secret file)" \
    grep -Fxq 'ok: configuration is valid' "$WORK/doctor1.out"
check "doctor: no database yet is reported as information" \
    grep -q '^info: no database yet' "$WORK/doctor1.out"
unexpected=$(grep -v -e '^ok: ' -e '^info: ' "$WORK/doctor1.out" || true)
if [ -z "$unexpected" ] && [ "$rc" = 0 ]; then
    pass "doctor: exits 0 before the first start, nothing but ok/info lines"
else
    fail "doctor (rc $rc) before the first start reported: $unexpected"
fi

# The check is not vacuous: a typo in the file is refused with the key named.
sed '/^listen = /a listen_adress = "0.0.0.0:8080"' "$CFG" >"$WORK/etc/typo.toml"
rc=0
"$BIN" --config "$WORK/etc/typo.toml" doctor >"$WORK/doctor-typo.out" 2>&1 || rc=$?
check "doctor: a misspelt key is refused, naming it" \
    bash -c '[ "$1" != 0 ] && grep -q "listen_adress" "$2"' _ "$rc" "$WORK/doctor-typo.out"

# The same config with every commented option uncommented: the documented defaults are
# all accepted (unknown keys or wrong types would fail to load).
ALL=$WORK/etc/all.toml
sed -E 's/^# ([a-z_]+ = )/\1/' "$CFG" >"$ALL"
# Every secret file an uncommented *_file option names (service, anon and site keys, the
# daemon secret, ...) gets a fresh secret.
grep -Eo "^[a-z_]+_file = \"$WORK/etc/[^\"]+\"" "$ALL" | sed -E 's/^[^"]*"//; s/"$//' | while read -r f; do
    [ -e "$f" ] || (umask 027 && new_secret >"$f")
done
# Files that uncommented *_file / path options name must exist (e.g. a TLS pair).
grep -Eo "\"$WORK/data/[^\"]+\"" "$ALL" | tr -d '"' | while read -r f; do
    mkdir -p "$(dirname "$f")"
    : >"$f"
done
if grep -q '^tls_cert = ' "$ALL" && command -v openssl >/dev/null 2>&1; then
    cert=$(sed -n 's/^tls_cert = "\(.*\)"$/\1/p' "$ALL")
    key=$(sed -n 's/^tls_key = "\(.*\)"$/\1/p' "$ALL")
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj /CN=localhost -days 1 -keyout "$key" -out "$cert" >/dev/null 2>&1 || true
fi
rc=0
"$BIN" --config "$ALL" doctor >"$WORK/doctor-all.out" 2>&1 || rc=$?
if grep -Fxq 'ok: configuration is valid' "$WORK/doctor-all.out"; then
    pass "doctor: every documented default, uncommented, is accepted"
else
    fail "doctor with every option uncommented: $(cat "$WORK/doctor-all.out")"
fi

if command -v curl >/dev/null 2>&1; then
    if start_server "$WORK/serve1.log" "$BIN" --config "$CFG" serve --listen 127.0.0.1:0; then
        pass "serve starts with the packaged config ($BASE_URL)"
        r=$(http_get "$BASE_URL/health")
        check "GET /health -> 200 ok" bash -c '[[ "$1" == 200\ *\"status\":\"ok\"* ]]' _ "$r"
        r=$(http_get "$BASE_URL/ready")
        check "GET /ready -> 503 (production standalone has no merchant)" \
            bash -c '[[ "$1" == 503\ * ]]' _ "$r"
        stop_server
        check "SIGTERM: exits 0 within 30 s (got $STOP_RC)" test "$STOP_RC" = 0
        check "SIGTERM: logs 'stopped cleanly'" grep -q 'stopped cleanly' "$WORK/serve1.log"
        check "no demo data in production" bash -c '! grep -q "STANDALONE DEMO" "$1"' _ "$WORK/serve1.log"
        rc=0
        "$BIN" --config "$CFG" doctor >"$WORK/doctor2.out" 2>&1 || rc=$?
        check "doctor after the first start: all ok (exit 0)" test "$rc" = 0
        [ "$rc" = 0 ] || sed 's/^/    /' "$WORK/doctor2.out"
    else
        fail "serve with the packaged config did not start"
        stop_server 2>/dev/null || true
    fi

    # The container's setup: no config file, everything from the environment.
    mkdir -p "$WORK/cdata"
    if start_server "$WORK/serve2.log" env MPS_EDGE_DATA_DIR="$WORK/cdata" \
        MPS_EDGE_SERVER__LISTEN=127.0.0.1:0 "$BIN" serve; then
        pass "container-style serve (env only) starts ($BASE_URL)"
        check "env layering: MPS_EDGE_DATA_DIR is used" \
            grep -Fq "data: $WORK/cdata/mps-edge.db" "$WORK/serve2.log"
        check "env layering: no 'unknown environment variable' warning" \
            bash -c '! grep -q "unknown environment variable" "$1"' _ "$WORK/serve2.log"
        check "container HEALTHCHECK command (curl -fsS /health) succeeds" \
            curl -fsS -o /dev/null "$BASE_URL/health"
        r=$(http_get "$BASE_URL/ready")
        check "GET /ready -> 200 in standalone demo mode" bash -c '[[ "$1" == 200\ * ]]' _ "$r"
        stop_server
        check "container-style serve stops cleanly on SIGTERM (got $STOP_RC)" test "$STOP_RC" = 0
    else
        fail "container-style serve did not start"
        stop_server 2>/dev/null || true
    fi
fi

# ---- optional: install, upgrade, remove, purge on this machine -------------------------
if [ "${PACKAGE_TEST_INSTALL:-0}" != 1 ]; then
    skip "install test (set PACKAGE_TEST_INSTALL=1 to install, upgrade and purge the .deb here)"
elif [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    skip "install test needs root and apt-get"
elif dpkg -s mps-edge >/dev/null 2>&1 || getent passwd mps-edge >/dev/null; then
    skip "install test: mps-edge is already installed here (or its user exists); not touching it"
else
    perms() { stat -c '%U:%G %a' "$1" 2>/dev/null; }
    if DEBIAN_FRONTEND=noninteractive apt-get install -y "$DEB" >"$WORK/install.log" 2>&1; then
        pass "apt-get install the .deb"
    else
        fail "apt-get install: $(tail -n 20 "$WORK/install.log")"
    fi
    check "postinst printed the next steps" grep -q 'systemctl start mps-edge' "$WORK/install.log"
    check "system user mps-edge, home /var/lib/mps-edge, no login" \
        bash -c 'IFS=: read -r _ _ uid _ _ home shell < <(getent passwd mps-edge) &&
                 [ "$uid" -lt 1000 ] && [ "$home" = /var/lib/mps-edge ] && [[ "$shell" == */nologin ]]'
    check "group mps-edge exists" bash -c 'getent group mps-edge >/dev/null'
    check "/var/lib/mps-edge is mps-edge:mps-edge 750" test "$(perms /var/lib/mps-edge)" = "mps-edge:mps-edge 750"
    check "/etc/mps-edge is root:mps-edge 750" test "$(perms /etc/mps-edge)" = "root:mps-edge 750"
    check "config.toml is root:mps-edge 640" test "$(perms /etc/mps-edge/config.toml)" = "root:mps-edge 640"
    check "jwt.secret is root:mps-edge 640" test "$(perms /etc/mps-edge/jwt.secret)" = "root:mps-edge 640"
    check "jwt.secret holds 64 hex characters" grep -Eqx '[0-9a-f]{64}' /etc/mps-edge/jwt.secret
    check "unit enabled (multi-user.target.wants link)" \
        test -L /etc/systemd/system/multi-user.target.wants/mps-edge.service
    secret_before=$(sha256sum /etc/mps-edge/jwt.secret)

    rc=0
    runuser -u mps-edge -- /usr/bin/mps-edge --config /etc/mps-edge/config.toml doctor \
        >"$WORK/doctor3.out" 2>&1 || rc=$?
    check "as user mps-edge: installed config and secret readable, config valid" \
        grep -Fxq 'ok: configuration is valid' "$WORK/doctor3.out"
    # setpriv execs in place, so SIGTERM reaches the server itself (runuser would fork).
    if start_server "$WORK/serve3.log" setpriv --reuid=mps-edge --regid=mps-edge --init-groups \
        --inh-caps=-all /usr/bin/mps-edge --config /etc/mps-edge/config.toml serve \
        --listen 127.0.0.1:0; then
        pass "as user mps-edge: serve starts and creates /var/lib/mps-edge/mps-edge.db"
        check "database owned by mps-edge" test "$(stat -c %U /var/lib/mps-edge/mps-edge.db)" = mps-edge
        stop_server
        check "installed serve stops cleanly (got $STOP_RC)" test "$STOP_RC" = 0
    else
        fail "as user mps-edge: serve did not start"
        stop_server 2>/dev/null || true
    fi

    # An administrator's "disable" must survive an upgrade.
    wants=/etc/systemd/system/multi-user.target.wants/mps-edge.service
    disabled=0
    if command -v systemctl >/dev/null 2>&1 && systemctl disable mps-edge.service >/dev/null 2>&1 &&
        [ ! -e "$wants" ]; then
        disabled=1
    fi
    if DEBIAN_FRONTEND=noninteractive dpkg -i "$DEB" >"$WORK/upgrade.log" 2>&1; then
        pass "reinstall over itself (upgrade path)"
    else
        fail "reinstall: $(tail -n 20 "$WORK/upgrade.log")"
    fi
    check "upgrade keeps the JWT secret" test "$(sha256sum /etc/mps-edge/jwt.secret)" = "$secret_before"
    check "upgrade prints no first-install note" bash -c '! grep -q "NOT started" "$1"' _ "$WORK/upgrade.log"
    if [ "$disabled" = 1 ]; then
        check "upgrade keeps the unit disabled when the administrator disabled it" test ! -e "$wants"
        systemctl enable mps-edge.service >/dev/null 2>&1 || true
    else
        skip "systemctl disable unavailable: disabled-across-upgrade not checked"
    fi

    DEBIAN_FRONTEND=noninteractive apt-get remove -y mps-edge >"$WORK/remove.log" 2>&1 ||
        fail "apt-get remove: $(tail -n 20 "$WORK/remove.log")"
    check "remove: binary gone" test ! -e /usr/bin/mps-edge
    check "remove: config, secret and database kept" \
        test -f /etc/mps-edge/config.toml -a -f /etc/mps-edge/jwt.secret -a -f /var/lib/mps-edge/mps-edge.db
    check "remove: user kept" bash -c 'getent passwd mps-edge >/dev/null'

    DEBIAN_FRONTEND=noninteractive apt-get purge -y mps-edge >"$WORK/purge.log" 2>&1 ||
        fail "apt-get purge: $(tail -n 20 "$WORK/purge.log")"
    check "purge: /var/lib/mps-edge gone" test ! -e /var/lib/mps-edge
    check "purge: /etc/mps-edge gone" test ! -e /etc/mps-edge
    check "purge: user and group gone" \
        bash -c '! getent passwd mps-edge >/dev/null && ! getent group mps-edge >/dev/null'
    check "purge: no leftover-files message (nothing was added to /etc/mps-edge)" \
        bash -c '! grep -q "remove them yourself" "$1"' _ "$WORK/purge.log"
    check "purge: enablement link gone" \
        test ! -e /etc/systemd/system/multi-user.target.wants/mps-edge.service -a \
        ! -L /etc/systemd/system/multi-user.target.wants/mps-edge.service
    check "purge: package fully gone from dpkg" bash -c '! dpkg -s mps-edge >/dev/null 2>&1'
fi

finish
