#!/usr/bin/env python3
"""The TSan judge on hand-made reports in ThreadSanitizer's format: each
case says which verdict tsan-own-races.py must reach, so a judge that
waves races through (or fails on library noise) fails this test."""
import os
import subprocess
import sys
import tempfile

JUDGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tsan-own-races.py")
BIN = "/opt/sftca/bin/sftca-signer"


def frames(*fns):
    """fns: (function, binary) innermost first."""
    return "\n".join("    #%d %s <null> (%s+0x%x)" % (i, f, b, 0x1000 + i) for i, (f, b) in enumerate(fns))


def report(kind1, stack1, kind2, stack2, tid1=3, tid2=5, alloc=None):
    loc = ("  Location is heap block of size 21 at 0x7b0400000010 allocated by thread T%d:\n%s\n\n"
           % (tid2, alloc)) if alloc else ""
    return ("WARNING: ThreadSanitizer: data race (pid=1)\n"
            "  %s of size 8 at 0x7b0400000010 by thread T%d:\n%s\n\n"
            "  Previous %s of size 8 at 0x7b0400000010 by thread T%d:\n%s\n\n%s"
            "SUMMARY: ThreadSanitizer: data race\n") % (kind1, tid1, stack1, kind2.lower(), tid2, stack2, loc)


SQLITE = "/lib/x86_64-linux-gnu/libsqlite3.so.0"
GRPC = "/lib/x86_64-linux-gnu/libgrpc.so.29"
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
CRYPTO = "/lib/x86_64-linux-gnu/libcrypto.so.3"
SSL = "/lib/x86_64-linux-gnu/libssl.so.3"
TSAN = "/lib/x86_64-linux-gnu/libtsan.so.2"
LOST = "    [failed to restore the stack]"

CASES = [
    # (name, report, judge fails?)
    ("our own read against our own write", report(
        "Read", frames(("call_finish", BIN), ("worker", BIN)),
        "Write", frames(("call_start", BIN), ("worker", BIN))), True),
    ("two sftca threads inside SQLite on one handle (a missing lock)", report(
        "Write", frames(("sqlite3VdbeExec", SQLITE), ("sqlite3_step", SQLITE), ("ledger_record", BIN)),
        "Read", frames(("sqlite3VdbeExec", SQLITE), ("sqlite3_step", SQLITE), ("ledger_list", BIN))), True),
    ("a lost stack against a stack through our code", report(
        "Write", frames(("sqlite3VdbeExec", SQLITE), ("ledger_record", BIN)),
        "Write", LOST), True),
    ("two handler threads in libcrypto on an object our code made (OpenSSL's lazy extension cache)", report(
        "Read", frames(("memcpy", TSAN), ("ASN1_STRING_set", CRYPTO), ("prepare_item", BIN), ("worker_main", BIN)),
        "Write", frames(("memcpy", TSAN), ("ASN1_STRING_set", CRYPTO), ("prepare_item", BIN), ("worker_main", BIN)),
        alloc=frames(("malloc", TSAN), ("ASN1_STRING_set", CRYPTO), ("prepare_item", BIN))), True),
    ("two of our threads in libcrypto on an SSL buffer libssl allocated (gRPC drives it)", report(
        "Write", frames(("memcpy", TSAN), ("OSSL_PARAM_set_octet_string", CRYPTO), ("call_handle", BIN)),
        "Read", frames(("memcpy", TSAN), ("EVP_Cipher", CRYPTO), ("call_handle", BIN)),
        alloc=frames(("malloc", TSAN), ("ssl3_setup_buffers", SSL))), False),
    ("a lost stack against our thread in libcrypto on a slice gRPC allocated", report(
        "Write", frames(("memcpy", TSAN), ("EVP_EncryptUpdate", CRYPTO), ("call_handle", BIN)),
        "Write", LOST,
        alloc=frames(("malloc", TSAN), ("MakeSlice", GRPC), ("call_handle", BIN))), False),
    ("two of our threads inside gRPC (its locks are invisible to TSan)", report(
        "Write", frames(("free", TSAN), ("gpr_free", GRPC), ("event_main", BIN)),
        "Read", frames(("sendmsg", TSAN), ("tcp_send", GRPC), ("call_handle", BIN), ("worker_main", BIN))), False),
    ("gRPC racing with itself", report(
        "Write", frames(("grpc_core::Foo", GRPC), ("start_thread", LIBC)),
        "Read", frames(("grpc_core::Bar", GRPC), ("start_thread", LIBC))), False),
    ("our thread inside gRPC against gRPC's own thread", report(
        "Write", frames(("grpc_call_start_batch_inner", GRPC), ("grpc_call_start_batch", GRPC), ("call_reply", BIN)),
        "Read", frames(("grpc_core::Executor", GRPC), ("start_thread", LIBC))), False),
    ("a lost stack against gRPC's own thread", report(
        "Write", frames(("grpc_core::Foo", GRPC), ("start_thread", LIBC)),
        "Read", LOST), False),
    ("our read of memory gRPC frees on its own thread", report(
        "Write", frames(("free", TSAN), ("gpr_free", GRPC), ("grpc_core::Unref", GRPC), ("start_thread", LIBC)),
        "Read", frames(("call_peer_identity", BIN), ("worker", BIN))), None),
    ("our free of memory our other thread reads inside a library", report(
        "Write", frames(("free", TSAN), ("call_free", BIN)),
        "Read", frames(("strlen", LIBC), ("log_call", BIN))), True),
]


def judge(text):
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
        f.write(text)
    try:
        r = subprocess.run([sys.executable, JUDGE, f.name, "sftca-signer"], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    return r.returncode, r.stdout


def main():
    bad = 0
    for name, text, fails in CASES:
        rc, out = judge(text)
        want = 1 if fails else 0
        counted_apart = "1 frees ordered only inside a library" in out
        ok = rc == want and (fails is not None or counted_apart)
        print("%s: %s (exit %d)" % ("ok" if ok else "FAIL", name, rc))
        if not ok:
            print(out)
            bad += 1
    # one log with all library-only cases: still passes
    rc, _ = judge("".join(t for _, t, f in CASES if f is False))
    if rc != 0:
        print("FAIL: library-only reports together")
        bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
