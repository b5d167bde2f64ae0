#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A single-node Apache Kafka broker (KRaft: broker and controller in one
# process) on loopback, for the real-broker tests.
#
#   broker.sh start [TOPIC:PARTITIONS ...]  fresh data dir, free ports, format
#                                           storage, start, wait for metadata,
#                                           create the topics given
#   broker.sh stop                          stop it (SIGTERM, then SIGKILL)
#   broker.sh resume                        start it again on the same data dir
#                                           and the same ports
#   broker.sh restart                       stop + resume
#   broker.sh status                        exit 0 when it runs and answers
#   broker.sh topics TOPIC:PARTITIONS ...   create topics
#   broker.sh env                           print the state file (KEY=VALUE)
#
# Everything lives in the state directory ${HOOKD_KAFKA_STATE} (default
# /tmp/acme-hookd-kafka-$UID): server.properties, data/, certs/, broker.log
# (the broker's Log4j output), broker.out (its stdout/stderr), broker.pid,
# and broker.env, the state file the tests read:
#   KAFKA_BOOTSTRAP          PLAINTEXT listener, 127.0.0.1:PORT
#   KAFKA_SECURE_BOOTSTRAP   SASL_SSL listener (TLS with client certificates, then
#                            SASL SCRAM-SHA-512 or PLAIN)
#   KAFKA_MTLS_BOOTSTRAP     SSL listener authenticating clients by their
#                            certificate alone (Strimzi's `tls` authentication)
#   KAFKA_OIDC_BOOTSTRAP     SASL_SSL listener for SASL/OAUTHBEARER: JWTs checked
#                            by Kafka's own OAuthBearerValidatorCallbackHandler
#                            against the JWKS in KAFKA_OIDC_DIR (no client
#                            certificate); the token endpoint that signs them
#                            is the test's (KAFKA_OIDC_DIR/signing.key,
#                            KAFKA_OIDC_ISSUER, KAFKA_OIDC_AUDIENCE)
#   KAFKA_CERTS              directory of gen-certs.sh's files
#   KAFKA_SCRAM_USER / KAFKA_SCRAM_PASSWORD
#   KAFKA_LOG, KAFKA_PID, KAFKA_STATE
#
# Environment: HOOKD_KAFKA_HOME / HOOKD_KAFKA_VERSION (see fetch-kafka.sh),
# HOOKD_VENV (Python venv with confluent-kafka), HOOKD_KAFKA_HEAP (default
# -Xmx512m), HOOKD_KAFKA_START_TIMEOUT (seconds, default 120).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=${HOOKD_KAFKA_STATE:-${TMPDIR:-/tmp}/acme-hookd-kafka-$(id -u)}
venv=${HOOKD_VENV:-$HOME/.cache/acme-hookd/venv}
py=$venv/bin/python
heap=${HOOKD_KAFKA_HEAP:--Xmx512m}
start_timeout=${HOOKD_KAFKA_START_TIMEOUT:-120}
scram_user=hookd

say() { echo "broker.sh: $*" >&2; }

# Fail loudly: the reason, where the logs are and their last lines, and no
# broker left behind.
die() {
  say "ERROR: $*"
  if [ -s "$state/broker.log" ]; then
    # The errors, if the broker logged any; otherwise its last lines.
    if grep -q -E '^\[[^]]*\] (ERROR|FATAL) ' "$state/broker.log"; then
      say "---- errors in $state/broker.log ----"
      grep -E -A3 '^\[[^]]*\] (ERROR|FATAL) ' "$state/broker.log" | tail -n 30 >&2
    else
      say "---- last lines of $state/broker.log ----"
      tail -n 15 "$state/broker.log" >&2
    fi
  fi
  if [ -s "$state/broker.out" ]; then
    say "---- last lines of $state/broker.out ----"
    tail -n 20 "$state/broker.out" >&2
  fi
  say "broker log: $state/broker.log (stdout/stderr: $state/broker.out)"
  stop_broker || true
  exit 1
}

need_python() {
  [ -x "$py" ] && "$py" -c 'import confluent_kafka' 2>/dev/null \
    || { say "ERROR: no Python venv with confluent-kafka at $venv; run scripts/setup-deps.sh --tests"; exit 1; }
}

broker_pid() {
  [ -f "$state/broker.pid" ] || return 1
  local pid
  pid=$(cat "$state/broker.pid")
  # The pid must still be our JVM, not a recycled pid of something else.
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] \
    && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "kafka.Kafka $state/server.properties" \
    && echo "$pid"
}

stop_broker() {
  local pid i
  pid=$(broker_pid) || { rm -f "$state/broker.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  # A single node shuts down in a few seconds; a stuck one is killed.
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "broker $pid did not stop within 30 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$state/broker.pid"
  say "stopped broker $pid"
}

free_port() {
  "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

kafka_lib() {
  "$here/fetch-kafka.sh" || die "Apache Kafka could not be obtained (tests/kafka/fetch-kafka.sh failed)"
}

launch() {
  local lib=$1
  [ -f "$state/server.properties" ] || die "no $state/server.properties: run 'broker.sh start' first"
  echo "---- launch $(date -u +%FT%TZ) ----" >> "$state/broker.out"
  # setsid: the broker outlives the ctest fixture step that starts it, with
  # its output in files so no pipe keeps the step waiting.
  # Kafka 4 reads OAuth/OIDC URLs and files only from allow-lists (CVE-2025-27817).
  setsid java $heap -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dorg.apache.kafka.sasl.oauthbearer.allowed.urls="file://$state/oidc/jwks.json" \
    -Dorg.apache.kafka.sasl.oauthbearer.allowed.files="$state/oidc/jwks.json" \
    -Dlog4j2.configurationFile="$state/log4j2.properties" \
    -cp "$lib/*" kafka.Kafka "$state/server.properties" \
    >> "$state/broker.out" 2>&1 < /dev/null &
  echo $! > "$state/broker.pid"
}

wait_ready() {
  local bootstrap=$1 deadline=$((SECONDS + start_timeout))
  while :; do
    broker_pid >/dev/null || die "the broker exited during startup"
    if "$py" "$here/kadmin.py" ping "$bootstrap" 2; then
      return 0
    fi
    [ $SECONDS -lt $deadline ] || die "the broker did not answer metadata on $bootstrap within ${start_timeout}s"
    sleep 0.2
  done
}

oidc_issuer=acme-hookd-test-idp
oidc_audience=acme-hookd-test

# The signing key of the test's token endpoint and its JWKS (the broker's
# view of it): RSA, RS256, one key with kid "hookd-test".
make_oidc_keys() {
  local mod
  mkdir -p "$state/oidc"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$state/oidc/signing.key" 2>/dev/null \
    || die "generating the OIDC signing key failed"
  mod=$(openssl rsa -in "$state/oidc/signing.key" -noout -modulus | cut -d= -f2)
  "$py" -c 'import base64, json, sys
n = base64.urlsafe_b64encode(bytes.fromhex(sys.argv[1])).rstrip(b"=").decode()
print(json.dumps({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "hookd-test", "n": n, "e": "AQAB"}]}))' \
    "$mod" > "$state/oidc/jwks.json" || die "writing the JWKS failed"
}

prop() { sed -n "s/^$1=//p" "$state/server.properties"; }
envval() { sed -n "s/^$1=//p" "$state/broker.env"; }

cmd_start() {
  need_python
  local lib port cport sport mport oport cluster password
  stop_broker
  # A fresh state directory; refuse to wipe one that is not ours.
  if [ -e "$state" ] && [ -n "$(ls -A "$state" 2>/dev/null)" ] && [ ! -f "$state/.broker-state" ]; then
    say "ERROR: $state exists and is not a broker state directory; refusing to wipe it"
    exit 1
  fi
  rm -rf "$state"
  mkdir -p "$state/data"
  echo "state directory of tests/kafka/broker.sh" > "$state/.broker-state"
  lib=$(kafka_lib)
  "$here/gen-certs.sh" "$state/certs" >/dev/null || die "generating certificates failed"
  password=$(openssl rand -hex 12)
  port=$(free_port); cport=$(free_port); sport=$(free_port); mport=$(free_port); oport=$(free_port)
  while [ "$(printf '%s\n' "$port" "$cport" "$sport" "$mport" "$oport" | sort -u | wc -l)" != 5 ]; do
    cport=$(free_port); sport=$(free_port); mport=$(free_port); oport=$(free_port)
  done
  make_oidc_keys
  cat > "$state/server.properties" <<PROPS
# Generated by tests/kafka/broker.sh: single-node KRaft broker for the tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,SECURE://127.0.0.1:$sport,MTLS://127.0.0.1:$mport,OIDC://127.0.0.1:$oport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SECURE://127.0.0.1:$sport,MTLS://127.0.0.1:$mport,OIDC://127.0.0.1:$oport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SECURE:SASL_SSL,MTLS:SSL,OIDC:SASL_SSL
inter.broker.listener.name=PLAINTEXT
log.dirs=$state/data
# One node: every internal topic has one replica; few partitions start faster.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
# A worker killed with a transaction open holds back read_committed readers
# until the coordinator aborts it: look for expired ones every second.
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
num.partitions=1
auto.create.topics.enable=false
# Tests join groups often: no initial delay, short sessions allowed.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
# Two cores shared by everyone: few threads.
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
# The secure listener: TLS with client certificates, then SASL/SCRAM-SHA-512
# (the user is written at format time). PLAIN (same user and password) is
# offered too: librdkafka before 2.6.1 (Debian 12 has 2.0.2) sends a SCRAM
# final message that Kafka 4.x rejects (strict nonce check since
# CVE-2024-56128), so those clients can only use PLAIN over TLS here.
listener.name.secure.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.secure.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.secure.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$scram_user="$password";
listener.name.secure.ssl.keystore.type=PKCS12
listener.name.secure.ssl.keystore.location=$state/certs/broker.p12
listener.name.secure.ssl.keystore.password=$(cat "$state/certs/password")
listener.name.secure.ssl.truststore.type=PEM
listener.name.secure.ssl.truststore.location=$state/certs/ca.pem
listener.name.secure.ssl.client.auth=required
# The mTLS listener: TLS only, the client certificate is the credential (the
# principal is its subject), as Strimzi's tls authentication.
listener.name.mtls.ssl.keystore.type=PKCS12
listener.name.mtls.ssl.keystore.location=$state/certs/broker.p12
listener.name.mtls.ssl.keystore.password=$(cat "$state/certs/password")
listener.name.mtls.ssl.truststore.type=PEM
listener.name.mtls.ssl.truststore.location=$state/certs/ca.pem
listener.name.mtls.ssl.client.auth=required
# The OAUTHBEARER listener: TLS without client certificates, then a JWT
# that Kafka's own validator checks (signature against the JWKS file,
# expiry, audience, issuer). The JWKS is a file: no identity provider
# needs to run for the broker to start.
listener.name.oidc.sasl.enabled.mechanisms=OAUTHBEARER
listener.name.oidc.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;
listener.name.oidc.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler
# Kafka 4.1 picks the validator from these top-level keys (the listener-
# and mechanism-prefixed forms are not read by it): without
# jwt.validator.class it falls back to ClientJwtValidator, which checks no
# signature, audience or issuer. tests/e2e/test_auth_oidc.py checks that a
# foreign signature is refused.
sasl.oauthbearer.jwt.validator.class=org.apache.kafka.common.security.oauthbearer.BrokerJwtValidator
sasl.oauthbearer.jwks.endpoint.url=file://$state/oidc/jwks.json
sasl.oauthbearer.expected.audience=$oidc_audience
sasl.oauthbearer.expected.issuer=$oidc_issuer
listener.name.oidc.ssl.keystore.type=PKCS12
listener.name.oidc.ssl.keystore.location=$state/certs/broker.p12
listener.name.oidc.ssl.keystore.password=$(cat "$state/certs/password")
listener.name.oidc.ssl.client.auth=none
PROPS
  cat > "$state/log4j2.properties" <<LOG
status = error
name = acme-hookd-test-broker
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $state/broker.log
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
LOG
  cluster=$(java -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>>"$state/broker.out") \
    || die "kafka.tools.StorageTool random-uuid failed"
  # The SCRAM user exists from the first start: written into the metadata
  # log at format time.
  java -Dlog4j2.configurationFile="$state/log4j2.properties" -cp "$lib/*" kafka.tools.StorageTool format \
    -t "$cluster" -c "$state/server.properties" \
    --add-scram "SCRAM-SHA-512=[name=\"$scram_user\",password=\"$password\"]" \
    >> "$state/broker.out" 2>&1 || die "formatting storage failed"
  launch "$lib"
  cat > "$state/broker.env" <<ENV
KAFKA_STATE=$state
KAFKA_BOOTSTRAP=127.0.0.1:$port
KAFKA_SECURE_BOOTSTRAP=127.0.0.1:$sport
KAFKA_MTLS_BOOTSTRAP=127.0.0.1:$mport
KAFKA_OIDC_BOOTSTRAP=127.0.0.1:$oport
KAFKA_OIDC_DIR=$state/oidc
KAFKA_OIDC_ISSUER=$oidc_issuer
KAFKA_OIDC_AUDIENCE=$oidc_audience
KAFKA_CERTS=$state/certs
KAFKA_SCRAM_USER=$scram_user
KAFKA_SCRAM_PASSWORD=$password
KAFKA_LOG=$state/broker.log
KAFKA_PID=$(cat "$state/broker.pid")
ENV
  wait_ready "127.0.0.1:$port"
  if [ $# -gt 0 ]; then
    "$py" "$here/kadmin.py" create "127.0.0.1:$port" "$@" || die "creating topics $* failed"
  fi
  say "broker $(cat "$state/broker.pid") ready: PLAINTEXT 127.0.0.1:$port, SASL_SSL 127.0.0.1:$sport, SSL 127.0.0.1:$mport, OAUTHBEARER 127.0.0.1:$oport, log $state/broker.log"
}

cmd_resume() {
  need_python
  local lib bootstrap
  lib=$(kafka_lib)
  [ -f "$state/broker.env" ] || die "no broker state in $state: run 'broker.sh start' first"
  if broker_pid >/dev/null; then say "already running"; return 0; fi
  bootstrap=$(envval KAFKA_BOOTSTRAP)
  launch "$lib"
  sed -i "s/^KAFKA_PID=.*/KAFKA_PID=$(cat "$state/broker.pid")/" "$state/broker.env"
  wait_ready "$bootstrap"
  say "broker $(cat "$state/broker.pid") ready again on $bootstrap (same data dir)"
}

cmd_status() {
  need_python
  local pid
  [ -f "$state/broker.env" ] || { say "no broker state in $state"; return 3; }
  pid=$(broker_pid) || { say "not running (state $state)"; return 3; }
  if "$py" "$here/kadmin.py" ping "$(envval KAFKA_BOOTSTRAP)" 5; then
    say "running: pid $pid, $(envval KAFKA_BOOTSTRAP), log $state/broker.log"
    return 0
  fi
  say "pid $pid runs but does not answer metadata; log $state/broker.log"
  return 1
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  start) cmd_start "$@" ;;
  stop) stop_broker ;;
  resume) cmd_resume ;;
  restart) stop_broker; cmd_resume ;;
  status) cmd_status ;;
  topics)
    need_python
    [ $# -gt 0 ] || { say "usage: broker.sh topics NAME:PARTITIONS ..."; exit 2; }
    "$py" "$here/kadmin.py" create "$(envval KAFKA_BOOTSTRAP)" "$@" ;;
  env) cat "$state/broker.env" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
