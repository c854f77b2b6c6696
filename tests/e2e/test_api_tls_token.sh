#!/usr/bin/env bash
# The TCP listener's token and TLS (docs/api.md, docs/reliability.md "Token
# and TLS"): a token file readable by group or others, or a token over 511
# bytes, stops the agent with a clear error; a new token in the file is
# taken without a restart (and a bad new file keeps the old token);
# --tls-cert/--tls-key serve HTTPS only, and a renewed certificate is
# served without a restart.
set -u
source "$(dirname "$0")/lib.sh"

PORT=9466
lab_standard 20
lab_agent_stop

# start_fails DESC PATTERN [canaryd flags...]: the agent must exit 1 with PATTERN in its log.
start_fails() {
	local desc=$1 pattern=$2 rc
	shift 2
	timeout 20 nsenter --net=/run/netns/"$(ns node)" "$LAB_BUILD/canaryd" --bpffs "$LAB_BPFFS" \
		--host-cgroup off --interfaces 'to-*' --config "$LAB_CONFIG_DIR" --state-dir "$LAB_STATE_DIR" \
		--api-socket "$LAB_SOCKET" "$@" >"$LAB_DIR/fail.log" 2>&1
	rc=$?
	check "$desc: exit 1 (got $rc), log says \"$pattern\"" \
		expect "$rc == 1 and $(grep -c -- "$pattern" "$LAB_DIR/fail.log") >= 1"
	grep -q -- "$pattern" "$LAB_DIR/fail.log" || sed 's/^/# /' "$LAB_DIR/fail.log" | tail -3
}
new_token() { head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
# code URL [curl args]: the HTTP status of a POST pause.
code() {
	local url=$1
	shift
	in_ns node curl -sS -m 5 -o /dev/null -w '%{http_code}' -X POST -d '' "$@" \
		"$url/api/v1/rollouts/web/pause" 2>/dev/null
}

# ---- the token file ----
TOKEN=$(new_token)
TOKEN_FILE=$LAB_DIR/token
(umask 022 && echo "$TOKEN" >"$TOKEN_FILE")
start_fails "token file mode 0644" "readable by group or others" \
	--listen 127.0.0.1:$PORT --token-file "$TOKEN_FILE"
chmod 600 "$TOKEN_FILE"
head -c 600 /dev/zero | tr '\0' 'a' >"$TOKEN_FILE"
start_fails "a 600-byte token" "longer than 511 bytes" \
	--listen 127.0.0.1:$PORT --token-file "$TOKEN_FILE"

echo "$TOKEN" >"$TOKEN_FILE"
lab_agent --listen 127.0.0.1:$PORT --token-file "$TOKEN_FILE" || exit 1
TCP=http://127.0.0.1:$PORT
c=$(code "$TCP" -H "Authorization: Bearer $TOKEN")
check "the token unlocks POST (got $c)" [ "$c" = 200 ]
canaryctl resume web >/dev/null 2>&1

# Rotation: a new file renamed into place, as a Kubernetes Secret update does.
TOKEN2=$(new_token)
(umask 077 && echo "$TOKEN2" >"$TOKEN_FILE.new")
mv "$TOKEN_FILE.new" "$TOKEN_FILE"
ok=0
for i in $(seq 1 40); do
	[ "$(code "$TCP" -H "Authorization: Bearer $TOKEN2")" = 200 ] && { ok=1; break; }
	sleep 0.1
done
check "rotated token accepted without a restart (after ~$((i * 100)) ms)" [ $ok = 1 ]
canaryctl resume web >/dev/null 2>&1
c=$(code "$TCP" -H "Authorization: Bearer $TOKEN")
check "the old token is refused after the rotation (got $c)" [ "$c" = 403 ]
# A bad new file (world-readable) keeps the token in use.
(umask 022 && echo "$(new_token)" >"$TOKEN_FILE.new")
mv "$TOKEN_FILE.new" "$TOKEN_FILE"
sleep 2
c=$(code "$TCP" -H "Authorization: Bearer $TOKEN2")
check "a 0644 token file is not taken: the previous token still works (got $c)" [ "$c" = 200 ]
check "the refused token file is logged" grep -q "token file not reloaded" "$LAB_DIR/canaryd.log"
canaryctl resume web >/dev/null 2>&1
check "no token appears in the log" bash -c "! grep -qF -e '$TOKEN' -e '$TOKEN2' '$LAB_DIR/canaryd.log'"
lab_agent_stop

# ---- TLS ----
(umask 077 && echo "$TOKEN2" >"$TOKEN_FILE.new")
mv "$TOKEN_FILE.new" "$TOKEN_FILE"
cert() { # cert NAME: a self-signed certificate for 127.0.0.1, key mode 0600
	(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-days 2 -subj "/CN=$1" -addext "subjectAltName=IP:127.0.0.1" \
		-keyout "$LAB_DIR/$1.key" -out "$LAB_DIR/$1.crt" 2>/dev/null)
	chmod 644 "$LAB_DIR/$1.crt"
}
cert one
cert two
lab_agent --listen 127.0.0.1:$PORT --token-file "$TOKEN_FILE" \
	--tls-cert "$LAB_DIR/tls.crt" --tls-key "$LAB_DIR/tls.key" 2>/dev/null
check "the agent does not start with missing certificate files" \
	bash -c "! kill -0 $(cat "$LAB_DIR/canaryd.pid") 2>/dev/null"
cp "$LAB_DIR/one.crt" "$LAB_DIR/tls.crt"
cp -p "$LAB_DIR/one.key" "$LAB_DIR/tls.key"
lab_agent --listen 127.0.0.1:$PORT --token-file "$TOKEN_FILE" \
	--tls-cert "$LAB_DIR/tls.crt" --tls-key "$LAB_DIR/tls.key" || exit 1
TLS=https://127.0.0.1:$PORT
c=$(code "$TLS" --cacert "$LAB_DIR/one.crt" -H "Authorization: Bearer $TOKEN2")
check "HTTPS with the certificate: POST with the token (got $c)" [ "$c" = 200 ]
canaryctl resume web >/dev/null 2>&1
c=$(code "$TCP" -H "Authorization: Bearer $TOKEN2")
check "plain HTTP is not served on the TLS listener (got $c)" [ "$c" != 200 ]
# Renewal: key first, then the certificate, each renamed into place.
cp -p "$LAB_DIR/two.key" "$LAB_DIR/tls.key.new" && mv "$LAB_DIR/tls.key.new" "$LAB_DIR/tls.key"
cp "$LAB_DIR/two.crt" "$LAB_DIR/tls.crt.new" && mv "$LAB_DIR/tls.crt.new" "$LAB_DIR/tls.crt"
ok=0
for i in $(seq 1 50); do
	in_ns node curl -sSf -m 2 -o /dev/null --cacert "$LAB_DIR/two.crt" "$TLS/healthz" 2>/dev/null &&
		{ ok=1; break; }
	sleep 0.1
done
check "the renewed certificate is served without a restart (after ~$((i * 100)) ms)" [ $ok = 1 ]
c=$(in_ns node curl -sS -m 2 -o /dev/null -w '%{http_code}' --cacert "$LAB_DIR/one.crt" \
	"$TLS/healthz" 2>/dev/null)
check "the old certificate is no longer served (got ${c:-none})" [ "$c" != 200 ]
lab_finish
