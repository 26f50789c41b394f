#!/usr/bin/env python3
"""Write the seed corpora under tests/fuzz/corpus/<target>/ (run once; the
output is committed). Needs python3 and the openssl command; CSRs and keys
are made fresh, so a rerun changes the csr/ and handlers/ seeds' bytes but
not what they exercise. crash-* files (regression inputs) are left alone.

usage: tests/fuzz/make-seeds.py [CORPUS_DIR]
"""
import gzip
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")

CA = "cdb123c8-4347-11ef-aca1-f3aa241412a1"     # FMC UUID of the seed article
PEER1 = "c8d5d5c6-87c9-11ef-a993-b9831565bc4e"  # BSNS-1120-1
PEER2 = "6bf1143a-8a2e-11ef-92d8-fd927e807d77"  # EMEA-FPR3110-08
NEW_CA = "5f0c7d2e-1b3a-11f0-9c4e-0242ac120002"


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- signer.conf -------------------------------------------------------------

def c_string(path, var):
    """The value of `static const char VAR[] = "..." "...";` in a C file."""
    with open(path) as f:
        text = f.read()
    body = text[text.index("static const char %s[] =" % var):]
    body = body[:body.index(";\n")]
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', body)
    return "".join(parts).encode().decode("unicode_escape")


UNIX_ONLY = ("[signer]\nlisten = unix:/tmp/s.sock\nstate_dir = /tmp/x\n"
             "[pkcs11]\nmodule = m\ntoken_label = t\npin_file = p\n")


def config_seeds():
    with open(os.path.join(SRC, "hsm-config", "signer.conf")) as f:
        put("config", "hsm-config-signer.conf", f.read())
    put("config", "unit-full.conf",
        c_string(os.path.join(SRC, "tests", "unit", "test_config.c"), "full"))
    put("config", "unix-only.conf", UNIX_ONLY)
    put("config", "crlf.conf", UNIX_ONLY.replace("\n", "\r\n"))
    put("config", "no-final-newline.conf", UNIX_ONLY.rstrip("\n"))
    put("config", "limits-all.conf", UNIX_ONLY +
        "[limits]\nmax_batch = 100000\nmax_message_bytes = 4096\nmax_csr_bytes = 1048576\n"
        "max_calls = 1\nworkers = 1024\nissue_rate = 1e6\nissue_burst = 1\nleaf_days = 36500\n")
    put("config", "authz-many.conf", "[authz]\n" + "".join(
        "client-%d = issuer:%s,%s\n" % (i, CA, PEER2) for i in range(10)) +
        "a = admin\nb = auditor\nc = issuer\n")
    put("config", "tcp-no-tls.conf",
        "[signer]\nlisten = 127.0.0.1:1\nstate_dir = /x\n[pkcs11]\nmodule = m\n"
        "token_label = t\npin_file = p\n")
    put("config", "long-line.conf", "[signer]\nstate_dir = /" + "0" * 250 + "\n")
    put("config", "errors.conf", "[signer]\nsessions = 2x\nunix_role = root\n")
    put("config", "authz-bad.conf", "[authz]\na = admin:%s\na = auditor\nb = issuer:not-a-uuid\n" % CA)
    put("config", "hash-comments.conf", "# comment\n[signer]\n  ; indented\nuser = sftca\n"
        "[signer]\nlisten=unix:/a\nlisten=unix:/b\nlisten=unix:/c\nlisten=unix:/d\n"
        "listen=unix:/e\nlisten=unix:/f\nlisten=unix:/g\nlisten=unix:/h\nlisten=unix:/i\n")


# ---- devices.csv -------------------------------------------------------------

def devices_seeds():
    put("devices", "vendor-positional.csv",
        "FMCpri,10.0.0.1,admin,Admin123\nFTDv,10.0.0.2,admin,pw2\n"
        "BSNS-1120-1,10.48.67.54,admin,Cisco123\n")
    put("devices", "header.csv",
        "device_name,ip,admin_username,admin_password\n"
        "FMCpri,10.0.0.1,admin,Admin123\nEMEA-FPR3110-08,10.48.189.37,admin,pw\n")
    put("devices", "header-all-columns-reordered.csv",
        "ip,device_name,admin_password,admin_username,uuid,port,shell,tunnel_port\n"
        "10.48.67.54,BSNS-1120-1,pw,admin,%s,22,ftd,8305\n"
        "10.48.189.37,EMEA-FPR3110-08,pw,admin,%s,2222,direct,\n" % (PEER1, PEER2))
    put("devices", "positional-8-columns.csv",
        "BSNS-1120-1,10.48.67.54,admin,pw,%s,22,FTD,8305\n"
        "jump,192.0.2.1,root,pw,,2022,direct,18305\n" % PEER1)
    put("devices", "quoted.csv",
        'device_name,ip,admin_username,admin_password\n'
        'FTDv,10.0.0.2,admin,"pa,ss""word"\n'
        '"name with space",10.0.0.3,"admin","multi\nline"\n'
        'empty-pw,10.0.0.4,admin,""\n')
    put("devices", "bom-crlf.csv",
        "\ufeffdevice_name,ip,admin_username,admin_password\r\n"
        "FMCpri,10.0.0.1,admin,Admin123\r\n\r\nFTDv,10.0.0.2,admin,pw2\r\n")
    put("devices", "blank-lines-no-final-newline.csv",
        "\n\n  \nFMCpri,10.0.0.1,admin,Admin123\n\n\nFTDv,fmc.example.net,admin,pw2")
    put("devices", "bad-rows.csv",
        "device_name,ip,admin_username,admin_password,uuid,port\n"
        "a,10.0.0.1,admin,pw,NOT-A-UUID,80a\n")
    put("devices", "cr-only.csv", "FMCpri,10.0.0.1,admin,Admin123\rFTDv,10.0.0.2,admin,pw2\r")


# ---- FAILED_PUSH ---------------------------------------------------------------

def failedpush_seeds():
    lines = []
    for uuid, name, ip in ((PEER1, "BSNS-1120-1", "10.48.67.54"),
                           (PEER2, "EMEA-FPR3110-08", "10.48.189.37")):
        lines.append("%s %s %s /etc/sf/ca_root/cacert.pem /var/sf/peers/%s/cacert.pem"
                     % (uuid, name, ip, CA))
        for f in ("sftunnel-key.pem", "sftunnel-cert.pem"):
            lines.append("%s %s %s /var/sf/peers/%s/certs_pushed//%s /var/sf/peers/%s/%s"
                         % (uuid, name, ip, uuid, f, CA, f))
    seed = "\n".join(lines) + "\n"
    put("failedpush", "seed-article.txt", seed)
    put("failedpush", "crlf-tabs-comments.txt",
        "# FAILED_PUSH written by sftca\r\n\r\n" + seed.replace(" ", "\t").replace("\n", "\r\n"))
    put("failedpush", "one-line-no-newline.txt", lines[0])
    put("failedpush", "conflict.txt", lines[0] + "\n" +
        lines[1].replace("BSNS-1120-1", "BSNS-1120-2") + "\n")
    put("failedpush", "same-name-two-uuids.txt", lines[0] + "\n" +
        lines[3].replace("EMEA-FPR3110-08", "BSNS-1120-1") + "\n")
    put("failedpush", "bad-fields.txt", "%s only-four fields here\nNOT-A-UUID a b c d\n" % PEER1)


# ---- CSRs ----------------------------------------------------------------------

def openssl(*args, inp=None):
    subprocess.run(["openssl"] + list(args), check=True, input=inp,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_csr(tmp, name, keyargs, subj="/CN=" + PEER1, ext=()):
    key = os.path.join(tmp, name + ".key")
    der = os.path.join(tmp, name + ".der")
    openssl("genpkey", "-out", key, *keyargs)
    args = ["req", "-new", "-key", key, "-subj", subj, "-outform", "DER", "-out", der]
    for e in ext:
        args += ["-addext", e]
    openssl(*args)
    with open(der, "rb") as f:
        return f.read()


def csr_seeds(tmp):
    csrs = {}
    ext = ("subjectAltName=DNS:localhost,IP:10.48.67.54", "keyUsage=digitalSignature,keyEncipherment",
           "extendedKeyUsage=serverAuth,clientAuth", "basicConstraints=CA:FALSE")
    csrs["rsa2048"] = make_csr(tmp, "rsa2048", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
    csrs["ec-p256"] = make_csr(tmp, "ecp256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
    csrs["ec-p384"] = make_csr(tmp, "ecp384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"])
    csrs["ec-p256-ext"] = make_csr(
        tmp, "ecp256ext", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        subj="/title=InternalCA/OU=Intrusion Management System/CN=%s/O=Cisco Systems, Inc." % PEER2,
        ext=ext)
    csrs["rsa2048-ext"] = make_csr(tmp, "rsa2048ext", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                                   ext=ext)
    csrs["ec-p256-explicit-params"] = make_csr(
        tmp, "ecexpl", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-pkeyopt", "ec_param_enc:explicit"])
    # Refused: too small, wrong curve, other algorithms.
    csrs["rsa1024-refused"] = make_csr(tmp, "rsa1024", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"])
    csrs["ec-secp256k1-refused"] = make_csr(tmp, "k1", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"])
    csrs["ed25519-refused"] = make_csr(tmp, "ed", ["-algorithm", "ED25519"])
    csrs["rsa-pss-refused"] = make_csr(tmp, "pss", ["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"])
    for name, der in csrs.items():
        put("csr", name + ".der", der)
    # A bad signature: flip a bit in the last byte (inside the signature).
    bad = bytearray(csrs["ec-p256"])
    bad[-1] ^= 1
    put("csr", "ec-p256-bad-signature.der", bytes(bad))
    return csrs


# ---- logs ----------------------------------------------------------------------

FTD = "Sep 20 04:10:47 FTD-hostname SF-IMS[50792]: [51982] sftunnel:sf_ssl "
FMC = "Sep 20 03:14:23 FMC-hostname SF-IMS[1504]: [4171] sftunnel:sf_ssl "
FTD_SEED = "".join(FTD + l + "\n" for l in (
    "[INFO] Initiating IPv4 connection", "[INFO] Wait to connect to 8305 (IP",
    "[INFO] Connected to 10.10.200.31 f", "[ERROR] -Error with certificate at",
    "[ERROR] issuer = /title=Intern", "[ERROR] subject = /title=Intern",
    "[ERROR] err 10:certificate has e", "[ERROR] SSL_renegotiate error: 1:",
    "[ERROR] Connect:SSL handshake fail", "[WARN] SSL Verification status: ce"))
FMC_SEED = "".join(FMC + l + "\n" for l in (
    "[INFO] VERIFY ssl_verify_callback_in", "[ERROR] SSL_renegotiate error: 1: er",
    "[WARN] establishConnectionUtil: SSL", "[WARN] establishConnectionUtil: SSL",
    "[WARN] establishConnectionUtil: SSL", "[INFO] establishConnectionUtil: Fail",
    "[ERROR] establishSSLConnection: Unab", "[ERROR] establishSSLConnection: ret_",
    "[ERROR] establishSSLConnection: ired", "[ERROR] establishSSLConnection: Fail"))
FTD2 = "Oct  2 10:00:01 ftd2 SF-IMS[77]: [78] sftunnel:sf_ssl "
FULL = "".join(FTD2 + l + "\n" for l in (
    "[INFO] Wait to connect to 8305 (IP address: 192.0.2.10)",
    "[ERROR] -Error with certificate at depth: 1",
    "[ERROR] issuer = /title=InternalCA/OU=Intrusion Management System/CN=%s/O=Cisco Systems, Inc." % CA,
    "[ERROR] subject = /OU=Intrusion Management System/CN=%s/O=Cisco Systems, Inc." % PEER2,
    "[ERROR] err 20:unable to get local issuer certificate",
    "[ERROR] verify error:num=23:certificate revoked",
    "[ERROR] err 12:CRL has expired",
    "[WARN] SSL Verification status: certificate has expired")) + (
    "2024-10-14T14:23:28.123456+00:00 fmc SF-IMS[1504]: [4171] sftunnel:sf_ssl [ERROR] "
    "establishSSLConnection: Unable to connect to 198.51.100.7:8305\n"
    "Sep 20 04:10:47 ftd sshd[1]: err 10:certificate has expired\n")


def logscan_seeds():
    # Byte 0 picks where the rest is split between two feeds.
    put("logscan", "ftd-seed", b"\x80" + FTD_SEED.encode())
    put("logscan", "fmc-seed", b"\x40" + FMC_SEED.encode())
    put("logscan", "both-crlf", b"\xc0" + (FTD_SEED + FMC_SEED).replace("\n", "\r\n").encode())
    put("logscan", "full-lines", b"\x33" + FULL.encode())
    put("logscan", "nul-and-garbage", b"\x10" + FTD_SEED.encode()[:200] + b"\x00\xff\xfe\x1b[31m" +
        "é中\x7f".encode() + b"\n" + FTD.encode() + b"[ERROR] err 7:\xc0\xaf\x00x\n")
    long_line = FTD + "[ERROR] issuer = /title=InternalCA/CN=" + "A" * 9000 + "\n"
    put("logscan", "long-line", b"\x90" + (long_line + FTD + "[ERROR] err 10:certificate has expired\n").encode())
    put("logscan", "gzip", b"\x80" + gzip.compress(FTD_SEED.encode(), mtime=0))
    put("logscan", "gzip-two-members", b"\x80" + gzip.compress(FTD_SEED.encode(), mtime=0) +
        gzip.compress(FMC_SEED.encode(), mtime=0))
    put("logscan", "gzip-truncated", b"\x80" + gzip.compress(FULL.encode(), mtime=0)[:-20])
    put("logscan", "gzip-trailing-garbage", b"\x80" + gzip.compress(FMC_SEED.encode(), mtime=0) +
        b"trailing\n")


# ---- RPC requests --------------------------------------------------------------
# protobuf wire format by hand (the messages are flat and small).

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def fv(num, n):        # varint field
    return varint(num << 3) + varint(n)


def fb(num, data):     # length-delimited field
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


# Method numbers: the order of signer_methods[] in signer/handlers_ca.c.
GET_STATUS, CREATE, RENEW, ROTATE, FINALIZE, GET_CA, ISSUE, REVOKE, GET_CRL, LIST, SET_CUSTODY, HEALTH = range(12)
NMETHODS = 12
ISSUER, AUDITOR = NMETHODS, 2 * NMETHODS  # added to the method byte: the caller's role


def handlers_seeds(csrs):
    s = lambda name, method, body=b"": put("handlers", name, bytes([method]) + body)
    s("get-status", GET_STATUS)
    s("get-status-auditor", GET_STATUS + AUDITOR)
    s("create-ca-ec-p256", CREATE, fb(1, NEW_CA) + fb(2, "ec:p256") + fv(3, 365))
    s("create-ca-default-key", CREATE, fb(1, "11111111-2222-4333-8444-555555555555"))
    s("create-ca-bad-id", CREATE, fb(1, "CDB123C8-4347-11EF-ACA1-F3AA241412A1") + fb(2, "dsa:1024"))
    s("renew-ca", RENEW, fb(1, CA) + fv(2, 3650))
    s("rotate-ca-p384", ROTATE, fb(1, CA) + fb(2, "ec:p384") + fv(3, 730))
    s("rotate-ca-force", ROTATE, fb(1, CA) + fv(4, 1))
    s("finalize-ca", FINALIZE, fb(1, CA))
    s("finalize-ca-force", FINALIZE, fb(1, CA) + fv(2, 1))
    s("get-ca", GET_CA, fb(1, CA))
    s("get-ca-generation-1", GET_CA + AUDITOR, fb(1, CA) + fv(2, 1))
    item = lambda peer, csr: fb(2, fb(1, peer) + fb(2, csr))
    s("issue-batch", ISSUE, fb(1, CA) + item(PEER1, csrs["ec-p256"]) + item(PEER2, csrs["rsa2048"]) +
      fv(3, 365))
    s("issue-batch-issuer", ISSUE + ISSUER, fb(1, CA) + item(PEER2, csrs["ec-p256-ext"]))
    s("issue-batch-mixed", ISSUE, fb(1, CA) + item(PEER1, csrs["ec-p384"]) +
      item("not-a-uuid", csrs["ec-p256"]) + item(PEER2, csrs["rsa1024-refused"]) +
      item(PEER2, b"\x30\x03\x02\x01\x00"))
    s("issue-batch-unknown-ca", ISSUE + ISSUER, fb(1, NEW_CA) + item(PEER1, csrs["ec-p256"]))
    # "#N": the harness substitutes the N-th serial it saw issued (fuzz_handlers.c).
    s("revoke-issued", REVOKE, fb(1, CA) + fb(2, "#0") + fb(3, "keyCompromise"))
    s("revoke-unknown-serial", REVOKE, fb(1, CA) + fb(2, "0x01:23:AB") + fb(3, "superseded"))
    s("revoke-bad-reason", REVOKE, fb(1, CA) + fb(2, "zz") + fb(3, "because"))
    s("get-crl", GET_CRL, fb(1, CA) + fv(2, 7))
    s("get-crl-auditor", GET_CRL + AUDITOR, fb(1, CA))
    s("list-issued", LIST, fb(1, CA) + fv(4, 10) + fv(6, 1))
    s("list-issued-filter", LIST + AUDITOR, fb(2, PEER1) + fb(3, "issued") + fb(5, "1"))
    s("list-issued-bad", LIST, fb(3, "lost") + fb(5, "-1"))
    s("set-custody-shared", SET_CUSTODY, fb(1, CA) + fv(2, 1))
    s("set-custody-exclusive-auditor", SET_CUSTODY + AUDITOR, fb(1, CA) + fv(2, 2))
    s("set-custody-bad", SET_CUSTODY, fb(1, "not-a-uuid") + fv(2, 7))
    s("health", HEALTH, fb(1, "sftca.v1.Signer"))
    s("health-unknown", HEALTH + AUDITOR, fb(1, "other.Service"))


# ---- certificate files for sftca check ---------------------------------------------

def certscan_seeds(tmp):
    key = os.path.join(tmp, "cs.key")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    pems = []
    for name, days, subj in (("ca", "3650", "/title=InternalCA/OU=Intrusion Management System/CN=%s/O=Cisco Systems, Inc" % CA),
                             ("peer", "1", "/OU=Intrusion Management System/CN=%s/O=Cisco Systems, Inc" % PEER1)):
        pem = os.path.join(tmp, name + ".pem")
        openssl("req", "-new", "-x509", "-key", key, "-days", days, "-subj", subj, "-out", pem)
        pems.append(open(pem, "rb").read())
    der = os.path.join(tmp, "peer.der")
    openssl("x509", "-in", os.path.join(tmp, "peer.pem"), "-outform", "DER", "-out", der)
    put("certscan", "one-pem.pem", pems[1])
    put("certscan", "chain.pem", pems[1] + pems[0])
    put("certscan", "der.der", open(der, "rb").read())
    put("certscan", "key-only.pem", open(key, "rb").read())
    put("certscan", "text-around.pem", b"Bag Attributes\n    friendlyName: x\n" + pems[0] + b"trailing text\n")
    put("certscan", "truncated.pem", pems[0][:len(pems[0]) // 2])
    put("certscan", "empty-block.pem", b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")


# ---- device shell output (devparse) and audit logs ----------------------------

def devparse_seeds():
    """Byte 0 picks the read size (< 192: 1-64 bytes, else all at once)."""
    h1 = "3f" * 32
    h2 = "a0" * 32
    sums = h1 + "  ca_bundle.pem\n" + h2 + "  peer.crt\n" + "SFTCA-RESTART-PENDING\n"
    mk = "__SFTCA_0123456789abcdef_1_"
    echo = ("echo __SFTCA_0123456789abcdef_1_''B__; ( cd '/ngfw/var/sf/peers/x' || exit 3\n"
            ") 2>&1; echo __SFTCA_0123456789abcdef_1_''E_$?__\r\n")
    run = echo + mk + "B__\r\n" + sums.replace("\n", "\r\n") + mk + "E_0__\r\nroot@ftd:~# "
    put("devparse", "run-sums", b"\x00" + run.encode())
    put("devparse", "run-sums-whole", b"\xff" + run.encode())
    put("devparse", "run-status-3", b"\x07" + (mk + "B__\n" + mk + "E_3__\n").encode())
    put("devparse", "escapes", b"\x03" + b"\x1b[1;32mroot@ftd\x1b[0m:~# \x1b]0;title\x07"
        b"\x1bP q\x1b\\\x1b(B> " + (mk + "B__\n").encode() + b"\x1b[K" + h1.encode() +
        b"  peer.key\r\n" + (mk + "E_").encode() + b"\x1b[m0__\n")
    put("devparse", "prompts", b"\x10" + b"Copyright\r\n> expert\r\nadmin@ftd:~$ sudo su\r\n"
        b"Password: \r\nroot@ftd:/home/admin# ")
    put("devparse", "sums-only", b"\xff" + (h1 + "  peer.key\n" + h2.upper() + "  peer.crt\n" +
        h1 + " peer.crt\n" + h1 + "  peer.crt.bak\n").encode())
    put("devparse", "stats", b"\x09" + (h1 + "  peer.key\nSFTCA-STAT 644 0 0 peer.key\n"
        "SFTCA-STAT 4755 4294967295 1 peer.crt\nSFTCA-STAT 648 0 0 ca_bundle.pem\n"
        "SFTCA-STAT 644 0 0 peer.crt.bak\n").encode())


def audit_seeds():
    """Byte 0 (< 255): length of the head file at the end; 255: no head file."""
    import hashlib
    import json
    lines, prev = [], "0" * 64
    for seq, (event, result) in enumerate([("ca.create", "ok"), ("issue", "ok"),
                                           ("refused", "refused"), ("revoke", "ok")], 1):
        rec = {"seq": seq, "time": "2026-12-05T08:00:0%dZ" % seq, "event": event,
               "identity": "fmc-admin", "ca": CA, "result": result, "prev": prev}
        line = json.dumps(rec, separators=(",", ":"))
        lines.append(line + "\n")
        prev = hashlib.sha256(line.encode()).hexdigest()  # the line without its newline
    log = "".join(lines)
    head = "%d %s\n" % (len(lines), prev)
    put("audit", "chain-no-head", b"\xff" + log.encode())
    put("audit", "chain-head", bytes([len(head)]) + (log + head).encode())
    put("audit", "chain-head-behind", bytes([len(head)]) + (log + "3" + head[1:]).encode())
    put("audit", "chain-edited", b"\xff" + log.replace("issue", "issuX").encode())
    put("audit", "chain-reordered", b"\xff" + (lines[1] + lines[0] + lines[2]).encode())
    put("audit", "empty", b"\xff")


def anchor_seeds():
    """Byte 0: bit 0 = the harness signs the checkpoint's first line, bit 1 =
    it writes audit.head for the log; byte 1: length of the checkpoint text;
    the rest: the log."""
    import hashlib
    import json
    lines, hashes, prev = [], [], "0" * 64
    for seq, event in enumerate(["signer.start", "ca.create", "issue", "revoke", "signer.stop"], 1):
        line = json.dumps({"seq": seq, "ts": "2026-12-05T08:00:0%d.000Z" % seq, "event": event,
                           "identity": "cn=ops-admin", "result": "ok", "prev": prev},
                          separators=(",", ":"))
        lines.append(line + "\n")
        prev = hashlib.sha256(line.encode()).hexdigest()
        hashes.append(prev)
    log = "".join(lines).encode()

    def seed(name, flags, text, body=log):
        text = text.encode()
        put("anchor", name, bytes([flags, len(text)]) + text + body)
    seed("signed-last", 3, "5 %s 1764921605" % hashes[4])
    seed("signed-middle", 3, "2 %s 1764921602" % hashes[1])
    seed("signed-wrong-hash", 3, "2 %s 1764921602" % hashes[2])
    seed("signed-ahead", 3, "7 %s 1764921607" % hashes[4])
    seed("signed-tail", 3, "5 %s 1764921605\nsig AAAA\n" % hashes[4])
    seed("signed-no-head", 1, "5 %s 1764921605" % hashes[4])
    seed("signed-log-cut", 3, "5 %s 1764921605" % hashes[4], "".join(lines[:3]).encode())
    seed("unsigned", 2, "5 %s 1764921605\nsig MEUCIQDx\n" % hashes[4])
    seed("signed-not-a-checkpoint", 3, "five %s" % hashes[4])
    seed("empty", 3, "")


def clientid_seeds(tmp):
    """Byte 0: bit 0 = the rest is DER (else PEM), bits 1-7 = a method of
    signer_methods[]; byte 1: length of a path given instead."""
    ca_key, ca = os.path.join(tmp, "cid-ca.key"), os.path.join(tmp, "cid-ca.pem")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ca_key)
    openssl("req", "-new", "-x509", "-key", ca_key, "-days", "30", "-subj", "/CN=sftca fuzz client CA",
            "-out", ca)

    def leaf(name, subj, serial):
        key, csr = os.path.join(tmp, name + ".key"), os.path.join(tmp, name + ".csr")
        pem, der = os.path.join(tmp, name + ".pem"), os.path.join(tmp, name + ".der")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        openssl("req", "-new", "-utf8", "-key", key, "-subj", subj, "-out", csr)
        openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", str(serial),
                "-days", "30", "-out", pem)
        openssl("x509", "-in", pem, "-outform", "DER", "-out", der)
        return open(pem, "rb").read(), open(der, "rb").read()

    admin_pem, admin_der = leaf("cid-admin", "/CN=ops-admin/O=Example", 3)
    _, auditor_der = leaf("cid-auditor", "/CN=auditor-1", 40)
    _, issuer_der = leaf("cid-issuer", "/O=Example/CN=fmc-east", 9)
    _, two_der = leaf("cid-two", "/CN=ops-admin/CN=auditor-1", 41)
    _, none_der = leaf("cid-none", "/O=Example/OU=no common name", 42)
    utf8_pem, _ = leaf("cid-utf8", "/CN=f\u00fchrung", 43)
    _, nul_der = leaf("cid-nul", "/CN=ops-adminX", 44)
    nul_der = nul_der.replace(b"ops-adminX", b"ops-admin\x00", 1)
    put("clientid", "pem-admin-revoked-getstatus", b"\x00\x00" + admin_pem)
    put("clientid", "der-auditor-createca", b"\x03\x00" + auditor_der)
    put("clientid", "der-issuer-issuebatch", bytes([6 << 1 | 1, 0]) + issuer_der)
    put("clientid", "der-two-cns", b"\x01\x00" + two_der)
    put("clientid", "der-no-cn-health", bytes([10 << 1 | 1, 0]) + none_der)
    put("clientid", "pem-utf8-cn", b"\x14\x00" + utf8_pem)
    put("clientid", "der-nul-in-cn", b"\x01\x00" + nul_der)
    put("clientid", "der-unknown-method", bytes([100 << 1 | 1, 0]) + auditor_der)
    for name, path in (("path-revoke", "/sftca.v1.Signer/Revoke"),
                       ("path-health", "/grpc.health.v1.Health/Check"),
                       ("path-nul", "/sftca.v1.Signer/GetStatus\x00/sftca.v1.Signer/Revoke"),
                       ("path-prefix", "/sftca.v1.Signer/Get")):
        put("clientid", name, bytes([1, len(path)]) + path.encode() + issuer_der)
    put("clientid", "pem-truncated", b"\x00\x00" + admin_pem[:len(admin_pem) // 2])


def devout_seeds():
    """Byte 0 picks the read size (< 192: 1-64 bytes, else all at once)."""
    h1, h2, h3 = "3f" * 32, "a0" * 32, "5c" * 32
    sums = (h1 + "  cacert.pem\n" + h2 + "  sftunnel-cert.pem\n" + h3 + "  sftunnel-key.pem\n" +
            "SFTCA-RESTART-PENDING\n")
    put("devout", "sums", b"\x00" + sums.encode())
    put("devout", "sums-whole", b"\xff" + sums.encode())
    put("devout", "sums-nul", b"\x05" + sums.encode().replace(b"\n", b"\x00\n", 1))
    put("devout", "temps", b"\x0f" + (h1 + "  .cacert.pem.sftca-tmp\n" + h2 + "  .sftunnel-cert.pem.sftca-tmp\n").encode())
    put("devout", "escapes", b"\x02" + b"\x1b]0;owned\x07\x1b[2J" + h1.encode() + b"  cacert.pem\r\n\xc2\x9b31m\xff")
    put("devout", "long", b"\x3f" + (sums * 40).encode())
    put("devout", "stats", b"\x00" + (h1 + "  cacert.pem\nSFTCA-STAT 644 0 0 cacert.pem\n" + h3 +
        "  sftunnel-key.pem\nSFTCA-STAT 640 1 2 sftunnel-key.pem\n"
        "SFTCA-STAT 17777 0 0 sftunnel-cert.pem\n").encode())


def main():
    config_seeds()
    devices_seeds()
    failedpush_seeds()
    logscan_seeds()
    with tempfile.TemporaryDirectory() as tmp:
        csrs = csr_seeds(tmp)
        certscan_seeds(tmp)
        clientid_seeds(tmp)
    handlers_seeds(csrs)
    devparse_seeds()
    audit_seeds()
    anchor_seeds()
    devout_seeds()


if __name__ == "__main__":
    main()
