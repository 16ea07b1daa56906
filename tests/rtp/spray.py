#!/usr/bin/env python3
"""tests/rtp/spray.py - a third party spraying the relay's port range

Sends one RTP packet (PCMU, an SSRC of its own) from one socket to every
even port of PORTS on each address of --to, a round every --gap-ms for
--rounds rounds, and counts what comes back to that socket: the relay
sends a side's media to where it latched, so anything received means the
relay took this source for one of the call's ends.  Prints sent= and
recv= lines.  Bounded: rounds x addresses x ports packets, then --linger
seconds of listening.
"""

import argparse
import select
import socket
import struct
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="src", required=True)
    ap.add_argument("--to", required=True, help="IP[,IP...]")
    ap.add_argument("--ports", required=True, help="MIN-MAX")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--gap-ms", type=int, default=200)
    ap.add_argument("--linger", type=float, default=1.0)
    a = ap.parse_args()

    lo, hi = (int(x) for x in a.ports.split("-"))
    lo += lo & 1
    dsts = a.to.split(",")
    rounds = max(1, min(a.rounds, 100))

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.src, 0))
    s.setblocking(False)

    sent = recv = 0
    seq = 0
    payload = b"\xff" * 160
    deadline = time.monotonic()

    def drain(until):
        nonlocal recv
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([s], [], [], left)
            if not r:
                return
            try:
                while True:
                    s.recvfrom(4096)
                    recv += 1
            except BlockingIOError:
                pass

    for _ in range(rounds):
        for ip in dsts:
            for port in range(lo, hi + 1, 2):
                seq = (seq + 1) & 0xffff
                hdr = struct.pack("!BBHII", 0x80, 0, seq, seq * 160,
                                  0x5ba1ed00)
                try:
                    s.sendto(hdr + payload, (ip, port))
                    sent += 1
                except OSError:
                    pass
        deadline += a.gap_ms / 1000.0
        drain(deadline)

    drain(time.monotonic() + min(a.linger, 10.0))
    print("sent=%d\nrecv=%d" % (sent, recv))


if __name__ == "__main__":
    main()
