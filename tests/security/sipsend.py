#!/usr/bin/env python3
"""Send SIP messages over UDP and print the answer each gets.

    sipsend.py LOCAL_IP HOST:PORT WAIT FILE...

Every FILE goes in one datagram from LOCAL_IP port 5060 (the port a Via
without one names, where a server answers a request without rport).
Answers are read on ports 5060, 5050 and 5070 of LOCAL_IP (the ports the
RFC 4475 messages' Via headers name) and matched by Call-ID; the first
final one (provisional ones are skipped) within WAIT seconds is printed
as "NAME CODE", else "NAME silence".  Python 3 standard library only.
"""
import os
import re
import select
import socket
import sys
import time

PORTS = (5060, 5050, 5070)
CALLID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(.*?)[ \t]*$",
                    re.IGNORECASE | re.MULTILINE)


def callid(data):
    head = data.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n")
    m = CALLID.search(head)
    return m.group(1) if m else b""


def answer(socks, want, wait):
    end = time.monotonic() + wait
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return "silence"
        ready, _, _ = select.select(socks, [], [], left)
        for s in ready:
            data = s.recv(65535)
            if callid(data) != want:
                continue
            line = data.split(b"\r\n", 1)[0].split(b" ")
            if len(line) < 2 or line[0] != b"SIP/2.0" or \
                    not line[1].isdigit():
                return "garbage"
            if int(line[1]) >= 200:
                return line[1].decode()


def main():
    local, target, wait = sys.argv[1], sys.argv[2], float(sys.argv[3])
    host, port = target.rsplit(":", 1)
    socks = []
    for p in PORTS:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((local, p))
        socks.append(s)
    for path in sys.argv[4:]:
        with open(path, "rb") as f:
            data = f.read()
        socks[0].sendto(data, (host, int(port)))
        name = os.path.basename(path).rsplit(".", 1)[0]
        print(name, answer(socks, callid(data), wait), flush=True)


if __name__ == "__main__":
    main()
