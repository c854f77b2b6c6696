#!/usr/bin/env bash
# A Prometheus source over https: Debian's Prometheus serving TLS and
# requiring a client certificate (web-config.yml), queried with a test CA
# and client certificate; the wrong CA and a missing client certificate are
# errors that say so; a bearer token (checked by a small https server, as
# Prometheus itself does not check tokens) is sent, re-read after a
# rotation, and refused once group or others may read its file.
set -u
source "$(dirname "$0")/lib.sh"
lab_require_root
command -v prometheus >/dev/null || { echo "not ok - prometheus is not installed"; exit 1; }
command -v openssl >/dev/null || { echo "not ok - openssl is not installed"; exit 1; }
trap lab_down EXIT
lab_up
for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
lab_wait_backends

PROM_PORT=19191
BEARER_PORT=19192
PKI=$LAB_DIR/pki
mkdir -p "$PKI"
# ca NAME: a self-signed CA; leaf NAME CA EXT: a key and a certificate it signs.
ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj "/CN=$1" -keyout "$PKI/$1.key" -out "$PKI/$1.crt" 2>/dev/null
}
leaf() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj "/CN=$1" -keyout "$PKI/$1.key" -out "$PKI/$1.csr" 2>/dev/null &&
		openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/$2.crt" -CAkey "$PKI/$2.key" \
			-CAcreateserial -days 2 -extfile <(echo "$3") -out "$PKI/$1.crt" 2>/dev/null
}
(umask 077 && ca test-ca && ca other-ca &&
	leaf server test-ca "subjectAltName=IP:127.0.0.1" &&
	leaf client test-ca "extendedKeyUsage=clientAuth")
check "test CA, server and client certificates made" [ -s "$PKI/client.crt" ] && [ -s "$PKI/server.crt" ]

cat >"$LAB_DIR/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
YAML
cat >"$LAB_DIR/web-config.yml" <<YAML
tls_server_config:
  cert_file: $PKI/server.crt
  key_file: $PKI/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: $PKI/test-ca.crt
YAML
in_ns node prometheus --config.file="$LAB_DIR/prometheus.yml" \
	--web.config.file="$LAB_DIR/web-config.yml" --storage.tsdb.path="$LAB_DIR/prom" \
	--web.listen-address="127.0.0.1:$PROM_PORT" >"$LAB_DIR/prometheus.log" 2>&1 &
echo $! >"$LAB_DIR/prometheus.pid"

# The bearer server answers vector(1) when the token matches the one in
# expected-token (read per request), 401 otherwise; it logs each token seen.
(umask 077 && echo "token-one" >"$LAB_DIR/expected-token" && echo "token-one" >"$LAB_DIR/token")
in_ns node python3 -c '
import http.server, ssl, sys
port, crt, key, expected, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        got = self.headers.get("Authorization", "")
        with open(log, "a") as f:
            f.write(got + "\n")
        want = "Bearer " + open(expected).read().strip()
        if got != want:
            self.send_response(401); self.end_headers(); return
        body = b"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[0,\"1\"]}]}}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(crt, key)
s = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
' $BEARER_PORT "$PKI/server.crt" "$PKI/server.key" "$LAB_DIR/expected-token" \
	"$LAB_DIR/bearer.log" >"$LAB_DIR/bearer.out" 2>&1 &
echo $! >"$LAB_DIR/bearer.pid"

CLIENT="certFile: $PKI/client.crt, keyFile: $PKI/client.key"
prom_up() {
	in_ns node curl -sf --cacert "$PKI/test-ca.crt" --cert "$PKI/client.crt" \
		--key "$PKI/client.key" "https://127.0.0.1:$PROM_PORT/api/v1/query?query=vector(1)" |
		grep -q '"value"'
}
for i in $(seq 1 100); do prom_up && break; sleep 0.2; done
check "Prometheus answers over TLS with the client certificate (curl)" prom_up
check "Prometheus refuses a client without a certificate (curl)" \
	eval '! in_ns node curl -sf -m 3 --cacert "$PKI/test-ca.crt" "https://127.0.0.1:$PROM_PORT/api/v1/query?query=vector(1)" >/dev/null'

rollout() { # rollout NAME VIP ADDRESS EXTRA
	lab_rollout "$1" "$2" "[{setWeight: 10}, {pause: {}}]" \
		"{interval: 1s, minRequests: 1000000, failureLimit: 1000, metrics: [{name: kpi, prometheus: {address: \"$3\", query: 'vector(1)', $4}, successCondition: \"result == 1\", consecutiveErrorLimit: 1000}]}"
}
PROM="https://127.0.0.1:$PROM_PORT"
rollout good 198.19.0.11 "$PROM" "tls: {caFile: $PKI/test-ca.crt, $CLIENT}"
rollout wrongca 198.19.0.12 "$PROM" "tls: {caFile: $PKI/other-ca.crt, $CLIENT}"
rollout nocert 198.19.0.13 "$PROM" "tls: {caFile: $PKI/test-ca.crt}"
rollout bearer 198.19.0.14 "https://127.0.0.1:$BEARER_PORT" \
	"tls: {caFile: $PKI/test-ca.crt}, bearerTokenFile: $LAB_DIR/token"
lab_agent || exit 1

v() { lab_status "$1" "[v for v in d['analysis']['verdicts'] if v['metric'] == 'kpi'][0]$2"; }
queried() { lab_wait "$1" "[v for v in d['analysis']['verdicts'] if v['metric'] == 'kpi'][0]['detail'] != 'waiting for the first query result'" 10; }
for r in good wrongca nocert bearer; do queried $r; done
for r in good wrongca nocert bearer; do
	echo "# $r: $(v $r '') message: $(lab_status $r "d['message']")"
done
check "CA and client certificate: the query passes ($(v good "['detail']"))" \
	expect "'$(v good "['result']")' == 'pass'"
check "wrong CA: inconclusive, the error names the certificate problem" \
	expect "'$(v wrongca "['result']")' == 'inconclusive' and 'certificate' in '''$(v wrongca "['detail']")'''"
check "no client certificate: Prometheus refuses, an error, never a pass" \
	expect "'$(v nocert "['result']")' == 'inconclusive'"
check "bearer token: sent over https and accepted" \
	expect "'$(v bearer "['result']")' == 'pass' and 'Bearer token-one' in open('$LAB_DIR/bearer.log').read()"

# Rotation: a new token renamed into place is used from the next query on.
(umask 077 && echo "token-two" >"$LAB_DIR/expected-token" && echo "token-two" >"$LAB_DIR/token.new")
mv "$LAB_DIR/token.new" "$LAB_DIR/token"
rotated() { grep -q 'Bearer token-two' "$LAB_DIR/bearer.log"; }
for i in $(seq 1 50); do rotated && break; sleep 0.1; done
check "the rotated token is sent without a reload" rotated
sleep 1.5
check "and passes ($(v bearer "['detail']"))" expect "'$(v bearer "['result']")' == 'pass'"

# A token file group or others may read is refused, not sent.
chmod 0644 "$LAB_DIR/token"
lab_wait bearer "'readable by group or others' in [v for v in d['analysis']['verdicts'] if v['metric'] == 'kpi'][0]['detail']" 5
check "a 0644 token file is refused ($(v bearer "['detail']"))" \
	expect "'readable by group or others' in '''$(v bearer "['detail']")'''"
: >"$LAB_DIR/bearer.log"
sleep 2
check "and its token is no longer sent ($(wc -l <"$LAB_DIR/bearer.log") requests in 2 s)" \
	[ ! -s "$LAB_DIR/bearer.log" ]
lab_finish
