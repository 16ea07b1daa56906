#!/usr/bin/env python3
"""A small SIP peer over UDP for the identity suite.

  sippeer.py gw IP PORT LOG [CODE] [SECONDS]
      a gateway: every INVITE is appended to LOG (one JSON object a line:
      the Request-URI and the headers as received) and answered with CODE
      (default 486); ACK and BYE are handled.  Ends after SECONDS (30).

  sippeer.py call IP PORT TG_IP:PORT NUMBER [options]
      one INVITE from IP:PORT to tollgate; answers a 407 with digest (MD5)
      when --user and --password are given; ACKs the final answer (and
      hangs up a 2xx with BYE).  Prints "CODE" and, if the answer had one,
      " | Reason-value" on one line.
      --user U --password P   digest credentials (U with Python escapes)
      --from-user BYTES       From user (Python escapes: \\xff, \\r\\n)
      --from-name BYTES       From display name
      --callid BYTES          Call-ID
      --header 'Name: value'  an extra header (repeatable)
"""

import codecs
import hashlib
import json
import os
import random
import socket
import sys
import time


def esc(s):
    return codecs.escape_decode(s.encode())[0]


def parse(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    first = lines[0].decode("latin-1")
    hdrs = []
    for ln in lines[1:]:
        if ln[:1] in (b" ", b"\t") and hdrs:
            hdrs[-1] = (hdrs[-1][0], hdrs[-1][1] + b" " + ln.strip())
            continue
        name, _, val = ln.partition(b":")
        hdrs.append((name.strip().decode("latin-1"), val.strip()))
    return first, hdrs, body


def hget(hdrs, name, compact=None):
    for n, v in hdrs:
        if n.lower() == name.lower() or (compact and n.lower() == compact):
            return v
    return None


def hall(hdrs, name):
    return [v for n, v in hdrs if n.lower() == name.lower()]


def reply(sock, addr, hdrs, code, phrase, totag=None, extra=b""):
    out = [("SIP/2.0 %d %s" % (code, phrase)).encode()]
    for n, v in hdrs:
        if n.lower() in ("via", "v", "from", "f", "call-id", "i", "cseq"):
            out.append(n.encode() + b": " + v)
        elif n.lower() in ("to", "t"):
            if totag and b"tag=" not in v:
                v = v + b";tag=" + totag
            out.append(n.encode() + b": " + v)
    out.append(b"Content-Length: 0")
    sock.sendto(b"\r\n".join(out) + b"\r\n" + extra + b"\r\n", addr)


def gateway(ip, port, log, code=486, seconds=30):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    s.settimeout(0.2)
    end = time.time() + seconds
    phrase = {486: "Busy Here", 200: "OK", 404: "Not Found"}.get(code, "X")
    while time.time() < end:
        try:
            data, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        first, hdrs, _ = parse(data)
        meth = first.split(" ")[0]
        if meth == "INVITE":
            with open(log, "a") as f:
                f.write(json.dumps({
                    "uri": first.split(" ")[1],
                    "headers": [[n, v.decode("latin-1")] for n, v in hdrs],
                }) + "\n")
            extra = b""
            if code == 200:
                extra = ("Contact: <sip:gw@%s:%d>\r\n" % (ip, port)).encode()
            reply(s, addr, hdrs, code, phrase, b"gw1", extra)
        elif meth in ("BYE", "CANCEL", "OPTIONS"):
            reply(s, addr, hdrs, 200, "OK", b"gw1")


def digest(chal, user, password, uri):
    params = {}
    for part in chal.split(","):
        k, _, v = part.strip().partition("=")
        k = k.replace("Digest ", "").strip()
        params[k] = v.strip('"')
    realm, nonce = params["realm"], params["nonce"]
    ha1 = hashlib.md5(("%s:%s:%s" % (user, realm, password)).encode("latin-1")).hexdigest()
    ha2 = hashlib.md5(("INVITE:%s" % uri).encode()).hexdigest()
    cnonce = "%016x" % random.getrandbits(64)
    resp = hashlib.md5(("%s:%s:00000001:%s:auth:%s" % (ha1, nonce, cnonce, ha2)).encode()).hexdigest()
    return ('Digest username="%s", realm="%s", nonce="%s", uri="%s", '
            'response="%s", algorithm=MD5, cnonce="%s", qop=auth, nc=00000001'
            % (user, realm, nonce, uri, resp, cnonce))


def call(ip, port, tg, number, opts):
    tgip, tgport = tg.rsplit(":", 1)
    tgport = int(tgport)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    s.settimeout(0.5)
    fuser = esc(opts.get("from-user", "caller"))
    fname = esc(opts["from-name"]) if "from-name" in opts else None
    callid = esc(opts.get("callid", "%x@%s" % (random.getrandbits(64), ip)))
    ftag = b"%x" % random.getrandbits(32)
    uri = ("sip:%s@%s:%d" % (number, tgip, tgport)).encode()
    extra = [esc(h) for h in opts.get("header", [])]
    cseq = 1
    auth = None
    deadline = time.time() + 15

    def invite(cseq, branch):
        frm = b"<sip:" + fuser + b"@" + ip.encode() + b">;tag=" + ftag
        if fname is not None:
            frm = b'"' + fname + b'" ' + frm
        h = [b"INVITE " + uri + b" SIP/2.0",
             ("Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (ip, port, branch)).encode(),
             b"Max-Forwards: 70",
             b"From: " + frm,
             b"To: <" + uri + b">",
             b"Call-ID: " + callid,
             ("CSeq: %d INVITE" % cseq).encode(),
             ("Contact: <sip:caller@%s:%d>" % (ip, port)).encode(),
             # what a phone sends beside the essentials: an answer to a
             # caller not yet authenticated is never larger than its
             # request, so a bare INVITE would not even be challenged
             b"User-Agent: sec-phone/1.0",
             b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY",
             b"Supported: replaces, timer, norefersub",
             b"Accept: application/sdp, application/dtmf-relay",
             b"Allow-Events: talk, hold, conference, refer",
             b"Session-Expires: 1800"]
        if auth:
            h.append(b"Proxy-Authorization: " + auth.encode("latin-1"))
        h += extra
        h.append(b"Content-Length: 0")
        return b"\r\n".join(h) + b"\r\n\r\n", frm

    def ack(cseq, branch, frm, to, ruri=uri):
        h = [b"ACK " + ruri + b" SIP/2.0",
             ("Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (ip, port, branch)).encode(),
             b"Max-Forwards: 70", b"From: " + frm, b"To: " + to,
             b"Call-ID: " + callid, ("CSeq: %d ACK" % cseq).encode(),
             b"Content-Length: 0"]
        s.sendto(b"\r\n".join(h) + b"\r\n\r\n", (tgip, tgport))

    while time.time() < deadline:
        branch = "z9hG4bK%x" % random.getrandbits(48)
        msg, frm = invite(cseq, branch)
        s.sendto(msg, (tgip, tgport))
        sent = time.time()
        final = None
        while time.time() < deadline:
            try:
                data, _ = s.recvfrom(65535)
            except socket.timeout:
                if time.time() - sent > 2 and final is None:
                    s.sendto(msg, (tgip, tgport))
                    sent = time.time()
                continue
            first, hdrs, _ = parse(data)
            if not first.startswith("SIP/2.0"):
                continue
            code = int(first.split(" ")[1])
            if code < 200:
                continue
            final = (code, hdrs)
            break
        if final is None:
            print("timeout")
            return 1
        code, hdrs = final
        to = hget(hdrs, "To", "t")
        if code < 300:
            contact = hget(hdrs, "Contact", "m") or uri
            ruri = contact.strip(b"<>").split(b">")[0]
            ack(cseq, "z9hG4bK%x" % random.getrandbits(48), frm, to, ruri)
            h = [b"BYE " + ruri + b" SIP/2.0",
                 ("Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%x;rport" % (ip, port, random.getrandbits(48))).encode(),
                 b"Max-Forwards: 70", b"From: " + frm, b"To: " + to,
                 b"Call-ID: " + callid, ("CSeq: %d BYE" % (cseq + 1)).encode(),
                 b"Content-Length: 0"]
            s.sendto(b"\r\n".join(h) + b"\r\n\r\n", (tgip, tgport))
            time.sleep(0.3)
        else:
            ack(cseq, branch, frm, to)
        chal = hget(hdrs, "Proxy-Authenticate")
        if code == 407 and auth is None and "user" in opts and chal:
            for c in hall(hdrs, "Proxy-Authenticate"):
                if b"MD5" in c:
                    chal = c
            auth = digest(chal.decode(), esc(opts["user"]).decode("latin-1"),
                          opts["password"],
                          uri.decode())
            cseq += 1
            continue
        reason = hget(hdrs, "Reason")
        print("%d%s" % (code, (" | " + reason.decode("latin-1")) if reason else ""))
        return 0
    print("timeout")
    return 1


def main(argv):
    if len(argv) >= 4 and argv[1] == "gw":
        gateway(argv[2], int(argv[3]), argv[4],
                int(argv[5]) if len(argv) > 5 else 486,
                float(argv[6]) if len(argv) > 6 else 30)
        return 0
    if len(argv) >= 6 and argv[1] == "call":
        opts = {"header": []}
        rest = argv[6:]
        while rest:
            k = rest.pop(0)[2:]
            v = rest.pop(0)
            if k == "header":
                opts["header"].append(v)
            else:
                opts[k] = v
        return call(argv[2], int(argv[3]), argv[4], argv[5], opts)
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
