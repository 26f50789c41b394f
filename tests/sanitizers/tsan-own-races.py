#!/usr/bin/env python3
"""Judge a ThreadSanitizer log: fail on every data race sftca's own code
takes part in.

Debian's gRPC, Abseil and OpenSSL are not built with TSan, so TSan cannot see
the synchronisation inside them and reports their internals racing with
themselves by the hundred. A race counts as ours (fails the test) when
- either access is made by our code itself (its innermost frame outside the
  sanitizer runtime is in one of the named binaries), or
- both stacks pass through our code: two sftca threads reached the same
  library object, which is how a missing lock around a non-thread-safe
  library object (an SQLite handle, an EVP context, a token session) looks,
  wherever inside the library the accesses land; except inside libraries
  whose synchronisation TSan cannot see (gRPC, Abseil: OPAQUE below), and
  on memory a library allocated on its own (an SSL buffer gRPC drives), or
- one stack is lost ("failed to restore the stack") and the other passes
  through our code: what cannot be shown to be a library's is ours.
A race whose stacks never pass through our code, or in which only one side
passes through our code and the access on both sides is library code (our
thread calling into gRPC while gRPC's own thread touches the same object),
is the library's. Usage: tsan-own-races.py LOG BINARY...

One kind is counted apart: a free ordered only by a library's own
synchronisation, which TSan cannot see, where the other side is a library
thread that never passes through our code: our read of memory that gRPC then
frees from its own thread (it frees an auth context or call buffers when its
reference count drops, and the count lives in uninstrumented atomics), and
our free of memory that gRPC last touched on its executor thread (the
metadata array filled there, freed by our event thread after the completion
queue said the call is done). A real use after free of either kind is what
the same test under AddressSanitizer (asan_it_concurrency) reports.
"""
import re
import sys


FRAME = re.compile(r"\s*#\d+ .*\(([^()]+?)\+0x[0-9a-f]+\)\s*$")


def binaries(access):
    """Every binary on the access's stack, innermost first (sanitizer runtime left out)."""
    out = []
    for line in access.splitlines():
        m = FRAME.match(line)
        if m and "libtsan" not in m.group(1):
            out.append(m.group(1).rsplit("/", 1)[-1])
    return out


def lost(access):
    return "[failed to restore the stack]" in access


def passes_ours(access, ours):
    return any(b in ours for b in binaries(access))


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
    """A free on one side, the other side a library thread that never passes
    through our code; our code made one of the two accesses."""
    if len(pair) != 2:
        return False
    for a, b in (pair, pair[::-1]):
        if lost(a) or lost(b):
            continue
        if library_free(a) and not passes_ours(a, ours) and performer(b) in ours:
            return True
        if freed_by(a) in ours and not passes_ours(b, ours) and performer(b).startswith("lib"):
            return True
    return False


# Libraries whose locks and atomics TSan cannot see (their own futex-based
# mutexes and uninstrumented C++ atomics): two of our threads calling into
# them is their documented use, so the races between those calls are theirs.
OPAQUE = re.compile(r"^lib(grpc|gpr|absl|address_sorting|upb|re2)")


def library_object(location):
    """The racing memory was allocated, or is a global, by library code alone:
    that library synchronises it (e.g. an SSL record buffer gRPC drives)."""
    if location is None:
        return False
    first = location.splitlines()[0]
    m = re.search(r"\(([^()]+?)\+0x[0-9a-f]+\)", first)
    if "global" in first and m:
        return m.group(1).rsplit("/", 1)[-1].startswith("lib")
    bins = binaries(location)
    # gRPC's own allocator (a slice it makes for a call we drive) counts as
    # gRPC's even when our frame is below it: gRPC synchronises its slices.
    return bool(bins) and (all(b.startswith("lib") for b in bins) or bool(OPAQUE.match(bins[0])))


def is_ours(pair, ours, location=None):
    if any(performer(a) in ours for a in pair):
        return True
    if len(pair) == 2:
        a, b = pair
        if any(OPAQUE.match(x) for x in binaries(a) + binaries(b)) or library_object(location):
            return False
        if passes_ours(a, ours) and passes_ours(b, ours):
            return True
        if (lost(a) and passes_ours(b, ours)) or (lost(b) and passes_ours(a, ours)):
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
        location = next((p for p in re.split(r"\n\s*\n", r) if p.lstrip().startswith("Location is")), None)
        if not is_ours(pair, ours, location):
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
