"""cfssl load client for tests/perf/run.sh: THREADS keep-alive connections
POST /api/v1/cfssl/sign with one of the CSRs in CSR_DIR until COUNT
certificates are signed; prints certificates/s. Every reply must succeed.

usage: cfssl_client.py HOST PORT CSR_DIR COUNT THREADS"""
import http.client
import json
import os
import sys
import threading
import time

host, port, csr_dir, count, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
bodies = [json.dumps({"certificate_request": open(os.path.join(csr_dir, f)).read()}).encode()
          for f in sorted(os.listdir(csr_dir)) if f.endswith(".csr")]
lock = threading.Lock()
state = {"left": count, "failed": 0}


def worker(n):
    conn = http.client.HTTPConnection(host, port)
    i = n
    while True:
        with lock:
            if state["left"] <= 0:
                break
            state["left"] -= 1
        conn.request("POST", "/api/v1/cfssl/sign", body=bodies[i % len(bodies)],
                     headers={"Content-Type": "application/json"})
        reply = json.loads(conn.getresponse().read())
        if not reply.get("success"):
            with lock:
                state["failed"] += 1
        i += 1
    conn.close()


t0 = time.monotonic()
ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
dt = time.monotonic() - t0
if state["failed"]:
    sys.exit("cfssl_client: %d signing requests failed" % state["failed"])
print("%.1f" % (count / dt))
