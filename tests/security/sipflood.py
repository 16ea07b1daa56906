#!/usr/bin/env python3
"""A bounded burst of SIP requests over UDP from one loopback address.

Sends COUNT requests (INVITE or OPTIONS, each its own Call-ID) to the
target at RATE a second at most (0: as fast as it can), then listens WAIT
seconds more.  Final answers to an INVITE are ACKed (so that no server
transaction retransmits); a 503 is never ACKed by us, so that a
retransmitted one would be seen.  Prints one line of counts:

  sent=N answered=CALLS final=X c100=.. c503=.. c404=.. other=.. dup503=D
  bytes_out=.. bytes_in=..

answered is the number of requests that got any answer, dup503 the
number of 503 answers beyond the first of their request (a stateless
answer is sent once: this must be 0).
"""

import argparse
import random
import socket
import time


def build(method, src, port, dst, user, callee, cid, branch, tag):
    body = ""
    if method == "INVITE":
        body = ("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\n"
                "t=0 0\r\nm=audio 40000 RTP/AVP 0\r\n" % (src, src))
    ruri = "sip:%s@%s" % (callee, dst)
    hdrs = [
        "%s %s SIP/2.0" % (method, ruri),
        "Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (src, port, branch),
        "Max-Forwards: 70",
        "From: <sip:%s@%s>;tag=%s" % (user, src, tag),
        "To: <%s>" % ruri,
        "Call-ID: %s" % cid,
        "CSeq: 1 %s" % method,
        "Contact: <sip:%s@%s:%d>" % (user, src, port),
    ]
    if body:
        hdrs.append("Content-Type: application/sdp")
    hdrs.append("Content-Length: %d" % len(body))
    return ("\r\n".join(hdrs) + "\r\n\r\n" + body).encode()


def header(msg, name):
    for line in msg.split("\r\n")[1:]:
        if not line:
            break
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None


def ack_for(resp, req):
    """ACK of a non-2xx final answer: the INVITE's Via, the answer's To"""
    lines = req.split("\r\n")
    ruri = lines[0].split(" ")[1]
    out = ["ACK %s SIP/2.0" % ruri]
    for name in ("Via", "Max-Forwards", "From", "Call-ID"):
        out.append("%s: %s" % (name, header(req, name)))
    out.append("To: %s" % header(resp, "To"))
    out.append("CSeq: 1 ACK")
    out.append("Content-Length: 0")
    return ("\r\n".join(out) + "\r\n\r\n").encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--dst", required=True, help="IP:PORT")
    ap.add_argument("--method", default="INVITE")
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--wait", type=float, default=3)
    ap.add_argument("--user", default="attacker")
    ap.add_argument("--callee", default="4420555")
    ap.add_argument("--ack-503", action="store_true",
                    help="ACK 503 answers too (those of a transaction)")
    ap.add_argument("--max-time", type=float, default=20,
                    help="never send for longer than this")
    a = ap.parse_args()

    count = min(a.count, 100000)
    host, _, dport = a.dst.rpartition(":")
    dst = (host, int(dport))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((a.src, a.port))
    port = s.getsockname()[1]
    s.setblocking(False)

    run = "%08x" % random.getrandbits(32)
    reqs = {}
    codes = {}          # call-id -> list of codes
    bytes_out = bytes_in = 0
    retry_after = [0]   # 503 answers with a Retry-After

    def receive():
        nonlocal bytes_in, bytes_out
        while True:
            try:
                data, _ = s.recvfrom(65535)
            except BlockingIOError:
                return
            bytes_in += len(data)
            msg = data.decode("utf-8", "replace")
            if not msg.startswith("SIP/2.0 "):
                continue
            try:
                code = int(msg.split(" ", 2)[1])
            except ValueError:
                continue
            cid = header(msg, "Call-ID")
            codes.setdefault(cid, []).append(code)
            if code == 503 and header(msg, "Retry-After"):
                retry_after[0] += 1
            if (a.method == "INVITE" and code >= 300 and cid in reqs
                    and (code != 503 or a.ack_503)):
                ack = ack_for(msg, reqs[cid])
                s.sendto(ack, dst)
                bytes_out += len(ack)

    start = time.monotonic()
    for i in range(count):
        if a.rate > 0:
            due = start + i / a.rate
            while time.monotonic() < due:
                receive()
                time.sleep(min(0.001, max(0, due - time.monotonic())))
        if time.monotonic() - start > a.max_time:
            break
        cid = "%s-%d@%s" % (run, i, a.src)
        req = build(a.method, a.src, port, host, a.user, a.callee, cid,
                    "z9hG4bK%s%d" % (run, i), "t%s%d" % (run, i))
        reqs[cid] = req.decode()
        try:
            s.sendto(req, dst)
            bytes_out += len(req)
        except BlockingIOError:
            pass
        if i % 64 == 0:
            receive()
    sent = len(reqs)

    end = time.monotonic() + a.wait
    while time.monotonic() < end:
        receive()
        time.sleep(0.01)

    answered = sum(1 for c in reqs if c in codes)
    tally = {}
    final = dup503 = 0
    for cid, cl in codes.items():
        if cid not in reqs:
            continue
        finals = [c for c in cl if c >= 200]
        if finals:
            final += 1
            tally[finals[0]] = tally.get(finals[0], 0) + 1
        dup503 += max(0, cl.count(503) - 1)
        if 100 in cl:
            tally[100] = tally.get(100, 0) + 1
    other = sum(v for k, v in tally.items()
                if k not in (100, 200, 503, 404))
    print("sent=%d answered=%d final=%d c100=%d c200=%d c503=%d c404=%d "
          "other=%d "
          "dup503=%d ra503=%d bytes_out=%d bytes_in=%d elapsed=%.3f"
          % (sent, answered, final, tally.get(100, 0), tally.get(200, 0),
             tally.get(503, 0),
             tally.get(404, 0), other, dup503, retry_after[0], bytes_out,
             bytes_in,
             time.monotonic() - start - a.wait))


if __name__ == "__main__":
    main()
