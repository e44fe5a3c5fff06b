#!/bin/bash
# Re-record mailtap's sample captures from real clients talking to real servers.
#
#   sudo samples/record.sh            # record every scenario
#   sudo samples/record.sh NAME...    # record only these (e.g. smtp-auth-plain)
#   samples/record.sh --list          # list scenario names
#
# Two network namespaces joined by a veth pair:
#   mtsrv  veth mt-srv  10.99.0.1/24  fd99::1/64   servers (aiosmtpd, dovecot)
#   mtcli  veth mt-cli  10.99.0.2/24  fd99::2/64   clients (swaks, curl, python)
# tcpdump runs in mtsrv on mt-srv and writes samples/NAME.pcap.
# Servers run from a temp dir; nothing under /etc is touched.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${MAILTAP_SAMPLES_OUT:-$HERE}
PY=/usr/bin/python3
SRV=mtsrv CLI=mtcli
SRV_IF=mt-srv CLI_IF=mt-cli
SRV4=10.99.0.1 CLI4=10.99.0.2 SRV6=fd99::1 CLI6=fd99::2
HELO=client.example.test

# ---------------------------------------------------------------- scenarios
SCENARIOS=(
  smtp-auth-plain smtp-auth-login smtp-auth-cram-md5
  smtp-auth-xoauth2 smtp-auth-oauthbearer smtp-auth-ntlm smtp-auth-fail
  smtp-pipelining smtp-multi smtp-mime smtp-large smtp-starttls
  smtp-port-2525 smtp-ipv6
  pop3-user-pass pop3-apop pop3-auth-plain pop3-auth-login pop3-auth-cram-md5
  pop3-top pop3-fail pop3-stls pop3-port pop3-ipv6
  imap-login-quoted imap-login-literal imap-authenticate-plain
  imap-authenticate-plain-sasl-ir imap-authenticate-login
  imap-authenticate-cram-md5 imap-fetch imap-append imap-idle imap-compress
  imap-starttls imap-fail imap-port imap-ipv6
)

if [[ ${1:-} == --list ]]; then printf '%s\n' "${SCENARIOS[@]}"; exit 0; fi
if [[ $(id -u) != 0 ]]; then echo "record.sh: must run as root" >&2; exit 1; fi

# ---------------------------------------------------------------- packages
NEED_PKGS=(dovecot-imapd dovecot-pop3d python3-aiosmtpd swaks curl tcpdump
           openssl iproute2 ethtool libauthen-ntlm-perl libnet-ssleay-perl
           libio-socket-inet6-perl)
missing=()
for p in "${NEED_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  # Debian's postinst starts the system dovecot; we do not need it.
fi

# ---------------------------------------------------------------- cleanup
WORK=$(mktemp -d /tmp/mailtap-record.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  if [[ -f $WORK/run/dovecot/master.pid ]]; then
    kill "$(cat "$WORK/run/dovecot/master.pid")" 2>/dev/null
  fi
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  ip netns del $SRV 2>/dev/null
  ip netns del $CLI 2>/dev/null
  if [[ -n ${KEEP_WORK:-} ]]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_srv() { ip netns exec $SRV "$@"; }
in_cli() { ip netns exec $CLI "$@"; }

# ---------------------------------------------------------------- network
setup_net() {
  ip netns del $SRV 2>/dev/null || true
  ip netns del $CLI 2>/dev/null || true
  ip netns add $SRV
  ip netns add $CLI
  ip link add $SRV_IF netns $SRV type veth peer name $CLI_IF netns $CLI
  local ns ifc a4 a6
  for ns in $SRV $CLI; do
    if [[ $ns == "$SRV" ]]; then ifc=$SRV_IF a4=$SRV4 a6=$SRV6; else ifc=$CLI_IF a4=$CLI4 a6=$CLI6; fi
    # no link-local address, RAs or RSs on the veth: the captures then hold
    # no IPv6 autoconfiguration chatter (ND is avoided by static neighbours)
    ip netns exec $ns sysctl -qw net.ipv6.conf.all.accept_ra=0 \
      net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.default.router_solicitations=0 \
      net.ipv6.conf.all.router_solicitations=0 \
      net.ipv6.conf.$ifc.accept_ra=0 net.ipv6.conf.$ifc.router_solicitations=0 \
      net.ipv6.conf.$ifc.addr_gen_mode=1
    ip netns exec $ns ip link set lo up
    ip netns exec $ns ip addr add $a4/24 dev $ifc
    ip netns exec $ns ip -6 addr add $a6/64 dev $ifc nodad
    ip netns exec $ns ip link set $ifc address 02:00:0a:63:00:0${a4##*.} up
  done
  # no offloads: tcpdump then sees wire-sized segments (<= MSS), not the
  # 64 KB GSO/GRO super-segments the kernel would otherwise hand it
  for ns in $SRV $CLI; do
    [[ $ns == "$SRV" ]] && ifc=$SRV_IF || ifc=$CLI_IF
    ip netns exec $ns ethtool -K $ifc tso off gso off gro off tx-checksumming off >/dev/null 2>&1 \
      || ip netns exec $ns ethtool -K $ifc tso off gso off gro off >/dev/null
  done
  # static neighbour entries: captures hold no ARP / neighbour discovery
  local smac cmac
  smac=$(in_srv cat /sys/class/net/$SRV_IF/address)
  cmac=$(in_cli cat /sys/class/net/$CLI_IF/address)
  in_srv ip neigh replace $CLI4 lladdr "$cmac" dev $SRV_IF nud permanent
  in_srv ip -6 neigh replace $CLI6 lladdr "$cmac" dev $SRV_IF nud permanent
  in_cli ip neigh replace $SRV4 lladdr "$smac" dev $CLI_IF nud permanent
  in_cli ip -6 neigh replace $SRV6 lladdr "$smac" dev $CLI_IF nud permanent
  sleep 3  # let the link-up multicast (MLD) reports pass before any capture
}

# ---------------------------------------------------------------- content
gen_content() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj "/CN=mail.example.test" \
    -addext "subjectAltName=DNS:mail.example.test,IP:$SRV4,IP:$SRV6" 2>/dev/null
  chmod 644 "$WORK/key.pem"
  $PY "$HERE/gen_messages.py" "$WORK/msg"
}

# ---------------------------------------------------------------- servers
wait_port() {  # wait until something listens on TCP port $1 in $SRV
  local i
  for i in $(seq 100); do
    in_srv ss -Hltn "sport = :$1" | grep -q . && return 0
    sleep 0.1
  done
  echo "port $1 never came up" >&2; return 1
}

start_smtpd() {
  mkdir -p "$WORK/spool"
  # not through in_srv: $! must be python itself (ip netns exec execs it),
  # not a subshell, or cleanup would leave the server running
  ip netns exec $SRV $PY "$HERE/servers/smtpd.py" --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
    --spool "$WORK/spool" 25 2525 10025 >"$WORK/smtpd.log" 2>&1 &
  PIDS+=($!)
  wait_port 25; wait_port 2525; wait_port 10025
}

MAIL_UID=nobody MAIL_GID=nogroup
reset_mailbox() {  # fresh, deterministic maildir for user alice
  local md="$WORK/mail/alice/Maildir" f
  rm -rf "$WORK/mail"
  mkdir -p "$md"/{cur,new,tmp}
  cp "$WORK/msg/mbox1.eml" "$md/cur/1715000001.M1P100.mail.example.test,S=$(stat -c%s "$WORK/msg/mbox1.eml"):2,S"
  cp "$WORK/msg/mbox2.eml" "$md/cur/1715000002.M2P100.mail.example.test,S=$(stat -c%s "$WORK/msg/mbox2.eml"):2,S"
  cp "$WORK/msg/mbox3.eml" "$md/cur/1715000003.M3P100.mail.example.test,S=$(stat -c%s "$WORK/msg/mbox3.eml"):2,"
  # fixed UIDVALIDITY / UIDs so IMAP UIDs and POP3 UIDLs are the same every run
  {
    echo "3 V1715000000 N4 G0f0e0d0c0b0a09080706050403020100"
    echo "1 :1715000001.M1P100.mail.example.test,S=$(stat -c%s "$WORK/msg/mbox1.eml")"
    echo "2 :1715000002.M2P100.mail.example.test,S=$(stat -c%s "$WORK/msg/mbox2.eml")"
    echo "3 :1715000003.M3P100.mail.example.test,S=$(stat -c%s "$WORK/msg/mbox3.eml")"
  } >"$md/dovecot-uidlist"
  for u in bob carol; do mkdir -p "$WORK/mail/$u/Maildir"/{cur,new,tmp}; done
  for f in "$WORK/msg/mbox1.eml"; do
    cp "$f" "$WORK/mail/bob/Maildir/cur/1715000001.M1P100.mail.example.test:2,S"
    cp "$f" "$WORK/mail/carol/Maildir/cur/1715000001.M1P100.mail.example.test:2,S"
  done
  chown -R $MAIL_UID:$MAIL_GID "$WORK/mail"
}

start_dovecot() {
  mkdir -p "$WORK/run" "$WORK/state"
  # passwd-file: user:{PLAIN}password  (plaintext, so APOP and CRAM-MD5 work)
  cat >"$WORK/users" <<'USERS'
alice:{PLAIN}Wonderland-2024
bob:{PLAIN}pa ss"wo\rd
carol:{PLAIN}Pässwörd-2024
USERS
  sed -e "s|@WORK@|$WORK|g" -e "s|@UID@|$MAIL_UID|g" -e "s|@GID@|$MAIL_GID|g" \
    "$HERE/servers/dovecot.conf.in" >"$WORK/dovecot.conf"
  reset_mailbox
  in_srv dovecot -c "$WORK/dovecot.conf"   # daemonizes; master.pid in base_dir
  wait_port 110; wait_port 143; wait_port 10110; wait_port 10143
}

# ---------------------------------------------------------------- capture
capture() {  # capture NAME cmd... : record one scenario
  local name=$1; shift
  local pcap="$OUT/$name.pcap" tdlog="$WORK/tcpdump-$name.log"
  echo "=== $name"
  rm -f "$pcap"
  # not through in_srv: $! must be tcpdump itself (ip netns exec execs it),
  # not a subshell, or the kill below would leave tcpdump running
  ip netns exec $SRV tcpdump -i $SRV_IF -s 0 -U -n -Z root -w "$pcap" >"$tdlog" 2>&1 &
  local tdpid=$!
  PIDS+=($tdpid)
  local i
  for i in $(seq 100); do grep -q "listening on" "$tdlog" && break; sleep 0.1; done
  sleep 0.3
  local rc=0
  "$@" >"$WORK/client-$name.log" 2>&1 || rc=$?
  sleep 1
  kill -TERM $tdpid  # SIGINT is ignored by background jobs of a non-interactive shell
  wait $tdpid || true
  if ((rc != 0)); then
    echo "--- client failed (rc=$rc):" >&2; tail -30 "$WORK/client-$name.log" >&2
    return $rc
  fi
  tcpdump -r "$pcap" -n 2>/dev/null | wc -l | xargs echo "    packets:"
}

SW=(swaks --helo $HELO --from alice@example.test --to bob@example.test
    --data "@WORKMSG/simple.eml")
sw() {  # swaks with common options; message file path fixed up at run time
  local a=() x
  for x in "${SW[@]}"; do a+=("${x//WORKMSG/$WORK/msg}"); done
  in_cli "${a[@]}" "$@"
}
CLIENT() { in_cli $PY "$HERE/clients/mailclient.py" "$@"; }
APW='Wonderland-2024'            # alice (SMTP: alice@example.test)
TOKEN='ya29.mailtap-sample-access-token-0001'

sc_smtp-auth-plain()   { sw --server $SRV4 --auth PLAIN --auth-user alice@example.test --auth-password "$APW"; }
sc_smtp-auth-login()   { sw --server $SRV4 --auth LOGIN --auth-user alice@example.test --auth-password "$APW"; }
sc_smtp-auth-cram-md5() { sw --server $SRV4 --auth CRAM-MD5 --auth-user alice@example.test --auth-password "$APW"; }
sc_smtp-auth-ntlm()    { sw --server $SRV4 --auth NTLM --auth-user alice --auth-password "$APW" --auth-extra domain=EXAMPLE; }
sc_smtp-auth-fail()    {
  # swaks exits non-zero on 535; that is the expected outcome here
  if sw --server $SRV4 --auth LOGIN --auth-user alice@example.test --auth-password 'wrong-password'; then
    return 1
  fi
}
sc_smtp-pipelining()   { sw --server $SRV4 --pipeline --auth PLAIN --auth-user alice@example.test --auth-password "$APW" --to bob@example.test,carol@example.test; }
sc_smtp-starttls()     { sw --server $SRV4 --tls --auth PLAIN --auth-user alice@example.test --auth-password "$APW"; }
sc_smtp-port-2525()    { sw --server $SRV4 --port 2525 --auth LOGIN --auth-user bob@example.test --auth-password 'Builder-2024' --from bob@example.test --to alice@example.test; }
sc_smtp-ipv6()         { sw -6 --server "[$SRV6]:25" --auth PLAIN --auth-user alice@example.test --auth-password "$APW"; }
curl_smtp() {  # curl_smtp MECH
  in_cli curl -sS -v --url "smtp://$SRV4:25" --mail-from alice@example.test \
    --mail-rcpt bob@example.test --upload-file "$WORK/msg/simple.eml" \
    --user 'alice@example.test:' --oauth2-bearer "$TOKEN" --login-options "AUTH=$1"
}
sc_smtp-auth-xoauth2()     { CLIENT smtp-auth-xoauth2 $SRV4 "$WORK/msg"; }
sc_smtp-auth-oauthbearer() { curl_smtp OAUTHBEARER; }
sc_smtp-multi() { CLIENT smtp-multi $SRV4 "$WORK/msg"; }
sc_smtp-mime()  { CLIENT smtp-mime $SRV4 "$WORK/msg"; }
sc_smtp-large() { CLIENT smtp-large $SRV4 "$WORK/msg"; }

# POP3 / IMAP: every scenario starts from the same mailbox
mb() { reset_mailbox; "$@"; }
sc_pop3-user-pass()   { mb CLIENT pop3-user-pass $SRV4 "$WORK/msg"; }
sc_pop3-apop()        { mb CLIENT pop3-apop $SRV4 "$WORK/msg"; }
curl_pop3() {  # curl_pop3 MECH [extra curl args]
  local m=$1; shift
  in_cli curl -sS -v --url "pop3://$SRV4/1" --user "alice:$APW" --login-options "AUTH=$m" "$@"
}
sc_pop3-auth-plain()    { mb curl_pop3 PLAIN; }
sc_pop3-auth-login()    { mb curl_pop3 LOGIN; }
sc_pop3-auth-cram-md5() { mb curl_pop3 CRAM-MD5; }
sc_pop3-top()   { mb CLIENT pop3-top $SRV4 "$WORK/msg"; }
sc_pop3-fail()  { mb CLIENT pop3-fail $SRV4 "$WORK/msg"; }
sc_pop3-stls()  { mb CLIENT pop3-stls $SRV4 "$WORK/msg"; }
sc_pop3-port()  { mb CLIENT pop3-port $SRV4 "$WORK/msg"; }
sc_pop3-ipv6()  { mb CLIENT pop3-ipv6 $SRV6 "$WORK/msg"; }
sc_imap-login-quoted()  { mb CLIENT imap-login-quoted $SRV4 "$WORK/msg"; }
sc_imap-login-literal() { mb CLIENT imap-login-literal $SRV4 "$WORK/msg"; }
sc_imap-authenticate-plain() { mb CLIENT imap-authenticate-plain $SRV4 "$WORK/msg"; }
sc_imap-authenticate-plain-sasl-ir() {
  mb in_cli curl -sS -v --sasl-ir --url "imap://$SRV4/INBOX/;UID=1" --user "alice:$APW" --login-options AUTH=PLAIN
}
sc_imap-authenticate-login()    { mb CLIENT imap-authenticate-login $SRV4 "$WORK/msg"; }
sc_imap-authenticate-cram-md5() { mb CLIENT imap-authenticate-cram-md5 $SRV4 "$WORK/msg"; }
sc_imap-fetch()    { mb CLIENT imap-fetch $SRV4 "$WORK/msg"; }
sc_imap-append()   { mb CLIENT imap-append $SRV4 "$WORK/msg"; }
sc_imap-idle()     { mb CLIENT imap-idle $SRV4 "$WORK/msg"; }
sc_imap-compress() { mb CLIENT imap-compress $SRV4 "$WORK/msg"; }
sc_imap-starttls() { mb CLIENT imap-starttls $SRV4 "$WORK/msg"; }
sc_imap-fail()     { mb CLIENT imap-fail $SRV4 "$WORK/msg"; }
sc_imap-port()     { mb CLIENT imap-port $SRV4 "$WORK/msg"; }
sc_imap-ipv6()     { mb CLIENT imap-ipv6 $SRV6 "$WORK/msg"; }

# ---------------------------------------------------------------- main
want=("$@")
((${#want[@]})) || want=("${SCENARIOS[@]}")
for n in "${want[@]}"; do
  declare -F "sc_$n" >/dev/null || { echo "unknown scenario: $n (see --list)" >&2; exit 2; }
done

setup_net
gen_content
start_smtpd
start_dovecot

failed=()
for n in "${want[@]}"; do
  capture "$n" "sc_$n" || failed+=("$n")
done
if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]}" >&2
  KEEP_WORK=1  # keep logs for a look
  exit 1
fi
echo "all done: ${#want[@]} capture(s) in $OUT"
