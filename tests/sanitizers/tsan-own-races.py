#!/usr/bin/env python3
"""Judge a ThreadSanitizer log: fail on every data race in which one of the
two racing accesses is made by our own code.

Debian's gRPC, Abseil and OpenSSL are not built with TSan, so TSan cannot see
the synchronisation inside them and reports their internals racing with
themselves by the hundred. What the test can judge is our code: an access is
ours when its innermost frame outside the sanitizer runtime is in one of the
named binaries (for example a free() called from call_free, or a plain read
in call_finish). Usage: tsan-own-races.py LOG BINARY...
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


def main():
    log, ours = sys.argv[1], set(sys.argv[2:])
    text = open(log, errors="replace").read()
    reports = text.split("WARNING: ThreadSanitizer:")[1:]
    own, lib = [], 0
    for r in reports:
        r = r.split("\nSUMMARY:")[0]
        if not r.lstrip().startswith("data race"):
            own.append(r)  # lock-order inversions, signal-unsafe calls: always ours to answer
            continue
        accesses = [p for p in re.split(r"\n\s*\n", r)
                    if re.search(r"(read|write|atomic)[^\n]* by (main )?thread", p, re.I)]
        if any(performer(a) in ours for a in accesses[:2]):
            own.append(r)
        else:
            lib += 1
    print(f"ThreadSanitizer: {len(reports)} reports, {len(own)} with an access by "
          f"{', '.join(sorted(ours))}, {lib} inside uninstrumented libraries only")
    for r in own[:5]:
        print("WARNING: ThreadSanitizer:" + r[:4000])
    return 1 if own else 0


if __name__ == "__main__":
    sys.exit(main())
