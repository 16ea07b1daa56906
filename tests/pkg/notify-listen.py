#!/usr/bin/env python3
"""Listen as a service manager does for sd_notify(3) datagrams.

Usage: notify-listen.py ADDRESS OUT SECONDS

ADDRESS is a socket path or an abstract name written with a leading '@'
(as in NOTIFY_SOCKET).  Each datagram becomes one line of OUT, its
newlines written as '|'; the program ends after SECONDS at most.
"""
import os
import socket
import sys
import time


def main():
    addr, out, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
    end = time.monotonic() + seconds
    with open(out, "a", buffering=1) as f:
        f.write("listening\n")
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                data = s.recv(4096)
            except socket.timeout:
                break
            f.write(data.decode("utf-8", "replace").replace("\n", "|") + "\n")
    s.close()
    if not addr.startswith("@"):
        os.unlink(addr)


if __name__ == "__main__":
    main()
