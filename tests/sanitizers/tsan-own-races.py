#!/usr/bin/env python3
"""Judge a ThreadSanitizer log: fail on every data race in which one of the
two racing accesses is made by our own code.

Debian's gRPC, Abseil and OpenSSL are not built with TSan, so TSan cannot see
the synchronisation inside them and reports their internals racing with
themselves by the hundred. What the test can judge is our code: an access is
ours when its innermost frame outside the sanitizer runtime is in one of the
named binaries (for example a free() called from call_free, or a plain read
in call_finish). Usage: tsan-own-races.py LOG BINARY...

Two kinds are counted apart, both a free ordered only by a library's own
synchronisation, which TSan cannot see: our read of memory that a library
then frees from its own thread (gRPC frees an auth context or call buffers
when its reference count drops, and the count lives in uninstrumented
atomics), and our free of memory that a library last touched on one of its
threads (the metadata array gRPC fills on its executor, freed by our event
thread after the completion queue said the call is done). A real use after
free of either kind is what the same test under AddressSanitizer
(asan_it_concurrency) reports.
"""
import re
import sys


def performer(access):
    for line in access.splitlines():
        m = re.match(r"\s*#\d+ .*\(([^()]+?)\+0x[0-9a-f]+\)\s*$", line)
        if m and "libtsan" not in m.group(1):
            return m.group(1).rsplit("/", 1)[-1]
        if "[failed to restore the stack]" in line:
            return "unknown"
    return "unknown"


def freed_by(access):
    """The binary whose code called free()/delete for this access, or None
    when the access is not a free."""
    frames = [l for l in access.splitlines() if re.match(r"\s*#\d+ ", l)]
    if not frames or not re.match(r"\s*#0 (free|operator delete)", frames[0]):
        return None
    for line in frames[1:]:
        m = re.match(r"\s*#\d+ .*\(([^()]+?)\+0x[0-9a-f]+\)\s*$", line)
        if m and "libtsan" not in m.group(1):
            return m.group(1).rsplit("/", 1)[-1]
    return None


def library_free(access):
    """True when the access is free()/delete called from a library."""
    return (freed_by(access) or "").startswith("lib")


def ordered_by_library(pair, ours):
    """A free on one side, the other access by library code, one of them ours."""
    if len(pair) != 2:
        return False
    for a, b in (pair, pair[::-1]):
        if library_free(a) and performer(b) in ours:
            return True
        if freed_by(a) in ours and performer(b).startswith("lib"):
            return True
    return False


def main():
    log, ours = sys.argv[1], set(sys.argv[2:])
    text = open(log, errors="replace").read()
    reports = text.split("WARNING: ThreadSanitizer:")[1:]
    own, lib, freed = [], 0, 0
    for r in reports:
        r = r.split("\nSUMMARY:")[0]
        if not r.lstrip().startswith("data race"):
            own.append(r)  # lock-order inversions, signal-unsafe calls: always ours to answer
            continue
        accesses = [p for p in re.split(r"\n\s*\n", r)
                    if re.search(r"(read|write|atomic)[^\n]* by (main )?thread", p, re.I)]
        pair = accesses[:2]
        if not any(performer(a) in ours for a in pair):
            lib += 1
        elif ordered_by_library(pair, ours):
            freed += 1
        else:
            own.append(r)
    print(f"ThreadSanitizer: {len(reports)} reports, {len(own)} with an access by "
          f"{', '.join(sorted(ours))}, {lib} inside uninstrumented libraries only, "
          f"{freed} frees ordered only inside a library (left to ASan)")
    for r in own[:5]:
        print("WARNING: ThreadSanitizer:" + r[:4000])
    return 1 if own else 0


if __name__ == "__main__":
    sys.exit(main())
