#!/usr/bin/env python3
"""A small SIP-over-TLS peer for tests/security/tls.sh (standard library only).

  tls_peer.py caller  --server IP:PORT --bind IP --ca FILE --number N
                      [--bye caller|callee] [--hold SECONDS] [--plain-contact]
      INVITE with SDP over TLS (tollgate's certificate verified against
      FILE, by IP) -> 200 -> ACK (--plain-contact: a Contact without
      ;transport=tls, as many phones send); then sends BYE (caller) or waits for
      tollgate's BYE and answers it (callee).  Prints CALLID=..., ANSWERED,
      BYE-SENT/BYE-RECEIVED and ENDED; exit 0 only if the call went so.
  tls_peer.py gateway --listen IP:PORT --cert FILE --key FILE
                      [--bye caller|callee] [--hold SECONDS]
      Takes one TLS connection and one INVITE: 200 with SDP, ACK, then
      waits for BYE (caller) or sends BYE itself (callee).  Prints
      CALLED <number> and the same words as the caller.
  tls_peer.py garbage --server IP:PORT --bind IP
      Plain text, random bytes, a TLS handshake cut short and a TLS
      connection carrying junk, each on its own connection to the TLS port.

Every step has a deadline (--timeout, 10 s): nothing waits for ever.
"""

import argparse
import os
import random
import re
import socket
import ssl
import sys
import time

SDP = ("v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
       "m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def hostport(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


class Conn:
    """SIP messages on one stream: read whole messages, write text."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.buf = b""
        self.deadline = deadline

    def send(self, text):
        self.sock.sendall(text.encode())

    def recv(self):
        """The next message as (first line, headers dict, body)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode(errors="replace").split("\r\n")
        hdrs = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            hdrs.setdefault(name.strip().lower(), []).append(value.strip())
        length = int(hdrs.get("content-length", ["0"])[0])
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return lines[0], hdrs, body.decode(errors="replace")

    def _fill(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no message in time")
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed")
        self.buf += data


def reply(conn, hdrs, code, phrase, extra="", body="", to=None):
    """A response to a request whose headers are hdrs."""
    text = "SIP/2.0 %d %s\r\n" % (code, phrase)
    for v in hdrs["via"]:
        text += "Via: %s\r\n" % v
    text += "From: %s\r\nTo: %s\r\n" % (hdrs["from"][0], to or hdrs["to"][0])
    for name in ("call-id", "cseq"):
        text += "%s: %s\r\n" % (name.title(), hdrs[name][0])
    text += extra
    if body:
        text += "Content-Type: application/sdp\r\n"
    text += "Content-Length: %d\r\n\r\n%s" % (len(body), body)
    conn.send(text)


def uri_of(contact):
    m = re.search(r"<([^>]*)>", contact)
    return m.group(1) if m else contact.split(";")[0]


def new_branch():
    return "z9hG4bK%x" % random.getrandbits(48)


class Dialog:
    """Just enough of a dialog to send ACK and BYE within it."""

    def __init__(self, conn, me, local, remote, callid, target, cseq):
        self.conn, self.me = conn, me
        self.local, self.remote = local, remote
        self.callid, self.target, self.cseq = callid, target, cseq

    def request(self, method, cseq=None):
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        self.conn.send(
            "%s %s SIP/2.0\r\n"
            "Via: SIP/2.0/TLS %s;branch=%s;rport\r\n"
            "Max-Forwards: 70\r\n"
            "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n"
            "Content-Length: 0\r\n\r\n"
            % (method, self.target, self.me, new_branch(), self.local,
               self.remote, self.callid, cseq, method))

    def bye_and_wait(self):
        self.request("BYE")
        print("BYE-SENT", flush=True)
        while True:
            first, hdrs, _ = self.conn.recv()
            if first.startswith("SIP/2.0 ") and "BYE" in hdrs["cseq"][0]:
                return first.split()[1] == "200"

    def wait_bye(self):
        while True:
            first, hdrs, _ = self.conn.recv()
            if first.startswith("BYE "):
                via = hdrs["via"][0]
                print("BYE-RECEIVED via %s" % via.split()[0], flush=True)
                reply(self.conn, hdrs, 200, "OK")
                return via.upper().startswith("SIP/2.0/TLS")


def end(dlg, args, side):
    """Hang up if --bye names our side, else wait for the other's BYE."""
    time.sleep(args.hold)
    done = dlg.bye_and_wait() if args.bye == side else dlg.wait_bye()
    if done:
        print("ENDED", flush=True)
    return 0 if done else 1


def caller(args):
    host, port = hostport(args.server)
    ctx = ssl.create_default_context(cafile=args.ca)
    raw = socket.create_connection((host, port), timeout=args.timeout,
                                   source_address=(args.bind, 0))
    sock = ctx.wrap_socket(raw, server_hostname=host)
    conn = Conn(sock, time.monotonic() + args.timeout)
    me = "%s:%d" % sock.getsockname()[:2]
    callid = "tls-%x@%s" % (random.getrandbits(48), args.bind)
    local = "<sip:caller@%s>;tag=%x" % (args.bind, random.getrandbits(32))
    remote = "<sip:%s@%s>" % (args.number, args.server)
    sdp = SDP.format(ip=args.bind, port=40000)
    print("CALLID=%s" % callid, flush=True)
    conn.send(
        "INVITE sip:%s@%s;transport=tls SIP/2.0\r\n"
        "Via: SIP/2.0/TLS %s;branch=%s;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\n"
        "Contact: <sip:caller@%s%s>\r\n"
        "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s"
        % (args.number, args.server, me, new_branch(), local, remote,
           callid, me, "" if args.plain_contact else ";transport=tls",
           len(sdp), sdp))
    while True:
        first, hdrs, _ = conn.recv()
        code = int(first.split()[1])
        if code >= 200:
            break
    if code != 200:
        print("FINAL %d" % code, flush=True)
        return 1
    print("ANSWERED contact %s" % hdrs["contact"][0], flush=True)
    dlg = Dialog(conn, me, local, hdrs["to"][0], callid,
                 uri_of(hdrs["contact"][0]), 1)
    dlg.request("ACK", cseq=1)
    return end(dlg, args, "caller")


def gateway(args):
    host, port = hostport(args.listen)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    lsock = socket.create_server((host, port))
    lsock.settimeout(args.timeout)
    print("LISTENING", flush=True)
    try:
        raw, _ = lsock.accept()
        sock = ctx.wrap_socket(raw, server_side=True)
    except (OSError, ssl.SSLError) as e:
        print("HANDSHAKE-FAILED %s" % e, flush=True)
        return 1
    conn = Conn(sock, time.monotonic() + args.timeout)
    me = "%s:%d" % (host, port)
    first, hdrs, _ = conn.recv()
    number = re.match(r"INVITE sips?:([^@]*)@", first).group(1)
    print("CALLED %s contact %s" % (number, hdrs["contact"][0]), flush=True)
    local = hdrs["to"][0] + ";tag=%x" % random.getrandbits(32)
    reply(conn, hdrs, 200, "OK",
          "Contact: <sip:gw@%s;transport=tls>\r\n" % me,
          SDP.format(ip=host, port=42000), to=local)
    while not conn.recv()[0].startswith("ACK "):
        pass
    print("ANSWERED", flush=True)
    dlg = Dialog(conn, me, local, hdrs["from"][0], hdrs["call-id"][0],
                 uri_of(hdrs["contact"][0]), 100)
    return end(dlg, args, "callee")


def garbage(args):
    host, port = hostport(args.server)
    sent = 0
    blobs = [b"INVITE sip:x@y SIP/2.0\r\nVia: nonsense\r\n\r\n",
             os.urandom(2048),
             b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(40)]
    for blob in blobs:
        try:
            with socket.create_connection((host, port), timeout=2,
                                          source_address=(args.bind, 0)) as s:
                s.sendall(blob)
                s.settimeout(1)
                s.recv(4096)
        except OSError:
            pass
        sent += 1
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=2,
                                      source_address=(args.bind, 0)) as raw:
            with ctx.wrap_socket(raw) as s:
                s.sendall(os.urandom(1024) + b"\r\n\r\n")
                s.settimeout(1)
                s.recv(4096)
    except OSError:
        pass
    sent += 1
    print("GARBAGE-SENT %d" % sent, flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("caller", "gateway", "garbage"))
    ap.add_argument("--server")
    ap.add_argument("--bind")
    ap.add_argument("--listen")
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--number", default="4420555")
    ap.add_argument("--bye", choices=("caller", "callee"), default="caller")
    ap.add_argument("--hold", type=float, default=0.5)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--plain-contact", action="store_true")
    args = ap.parse_args()
    try:
        return {"caller": caller, "gateway": gateway,
                "garbage": garbage}[args.mode](args)
    except (OSError, ssl.SSLError, TimeoutError, ValueError) as e:
        print("ERROR %s" % e, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
