#!/usr/bin/env python3
"""A seeded mutation fuzzer of SIP over UDP.

    sipfuzz.py SEED SECONDS COUNT TARGET LOCAL_IP [LOCAL_IP...]

Sends at most COUNT datagrams within SECONDS to TARGET (host:port),
cycling through the LOCAL_IPs (each bound to port 5060, where answers to
a Via without a port arrive; answers are read and dropped).  Every
datagram is one of a few base messages (an INVITE with SDP, an INVITE
with a digest answer, in-dialog BYE, ACK, CANCEL, INFO and re-INVITE,
OPTIONS, REGISTER) with one to four mutations: bytes flipped, inserted
or cut, headers duplicated, huge or removed, folded values, NUL, CR, LF
and other control bytes or invalid UTF-8 in Call-ID, From and To, wrong
Content-Length values, SDP with odd lines, truncation.  The same SEED
sends the same datagrams.  Prints "sent N" at the end.  Python 3
standard library only.
"""
import random
import select
import socket
import sys
import time

SDP = ("v=0\r\no=fz 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
       "m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
       "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")

CTL = [b"\x00", b"\r", b"\n", b"\r\n", b"\x1b[31m", b"\x07", b"\x7f",
       b"\r\n  folded continuation] INVITE from 6.6.6.6",
       b"\n2026-01-01T00:00:00.000Z info    forged line"]
BADUTF8 = [b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80",
           b"\xf8\x88\x80\x80\x80"]
HDRS = [b"Via", b"From", b"To", b"Call-ID", b"CSeq", b"Contact",
        b"Max-Forwards", b"Content-Type", b"Content-Length",
        b"Proxy-Authorization", b"Require", b"Route", b"Record-Route",
        b"P-Asserted-Identity", b"Diversion", b"Privacy", b"Supported"]


def base(rnd, ip, n):
    cid = "fz%d.%d@%s" % (n, rnd.randrange(1 << 30), ip)
    br = "z9hG4bKfz%d%d" % (n, rnd.randrange(1 << 30))
    num = rnd.choice(["100", "1555", "2666", "+15551234", "999", "0",
                      "user", "1" * 40])
    kind = rnd.choice(["invite", "invite", "invite-auth", "bye", "ack",
                       "cancel", "info", "reinvite", "options",
                       "register"])
    tag = ";tag=fzt%d" % rnd.randrange(1 << 20) if kind in (
        "bye", "ack", "info", "reinvite") else ""
    met = {"invite": "INVITE", "invite-auth": "INVITE", "bye": "BYE",
           "ack": "ACK", "cancel": "CANCEL", "info": "INFO",
           "reinvite": "INVITE", "options": "OPTIONS",
           "register": "REGISTER"}[kind]
    body = ""
    if met == "INVITE":
        body = SDP.format(ip=ip, port=2 * rnd.randrange(5000, 30000))
    elif met == "INFO":
        body = "Signal=1\r\nDuration=160\r\n"
    hdrs = [
        "Via: SIP/2.0/UDP %s:5060;branch=%s;rport" % (ip, br),
        "Max-Forwards: 70",
        "From: \"Fuzz\" <sip:fuzz@%s>;tag=fzf%d" % (ip, n),
        "To: <sip:%s@127.0.1.60>%s" % (num, tag),
        "Call-ID: %s" % cid,
        "CSeq: %d %s" % (rnd.randrange(1, 100), met),
        "Contact: <sip:fuzz@%s:5060>" % ip,
    ]
    if kind == "invite-auth":
        hdrs.append('Proxy-Authorization: Digest username="fuzz", '
                    'realm="tollgate", nonce="%032x", uri="sip:%s@127.0.1.60"'
                    ', response="%032x", algorithm=MD5, qop=auth, nc=00000001'
                    ', cnonce="fz"' % (rnd.randrange(1 << 128), num,
                                       rnd.randrange(1 << 128)))
    if body:
        hdrs.append("Content-Type: %s" % ("application/sdp" if
                    met == "INVITE" else "application/dtmf-relay"))
    hdrs.append("Content-Length: %d" % len(body))
    msg = "%s sip:%s@127.0.1.60 SIP/2.0\r\n" % (met, num)
    return (msg + "\r\n".join(hdrs) + "\r\n\r\n" + body).encode()


def split(msg):
    head, _, body = msg.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body


def join(lines, body):
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def pick_line(rnd, lines, names):
    idx = [i for i, l in enumerate(lines[1:], 1)
           if l.split(b":", 1)[0].strip().lower() in names]
    return rnd.choice(idx) if idx else rnd.randrange(1, len(lines))


def mutate(rnd, msg):
    lines, body = split(msg)
    op = rnd.randrange(16)
    if len(lines) < 2 and op > 3:
        op = rnd.randrange(4)
    if len(msg) < 4:
        return msg + b"INVITE sip:x SIP/2.0\r\n\r\n"
    if op == 0:                       # flip bytes
        b = bytearray(msg)
        for _ in range(rnd.randrange(1, 12)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        return bytes(b)
    if op == 1:                       # insert random bytes
        i = rnd.randrange(len(msg))
        return msg[:i] + bytes(rnd.randrange(256) for _ in
                               range(rnd.randrange(1, 40))) + msg[i:]
    if op == 2:                       # cut a range
        i = rnd.randrange(len(msg))
        return msg[:i] + msg[i + rnd.randrange(1, 60):]
    if op == 3:                       # truncate
        return msg[:rnd.randrange(1, len(msg))]
    if op == 4:                       # duplicate a header
        i = rnd.randrange(1, len(lines))
        lines[i + 1:i + 1] = [lines[i]] * rnd.randrange(1, 60)
        return join(lines, body)
    if op == 5:                       # huge header value
        i = rnd.randrange(1, len(lines))
        lines[i] += rnd.choice([b"a", b";p=v", b",", b" ", b"%41"]) * \
            rnd.randrange(100, 5000)
        return join(lines, body)
    if op == 6:                       # remove a header
        del lines[rnd.randrange(1, len(lines))]
        return join(lines, body)
    if op == 7:                       # control bytes in Call-ID/From/To
        i = pick_line(rnd, lines, (b"call-id", b"from", b"to"))
        j = rnd.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:j] + rnd.choice(CTL) + lines[i][j:]
        return join(lines, body)
    if op == 8:                       # invalid UTF-8 in a user part
        i = pick_line(rnd, lines, (b"from", b"to", b"call-id",
                                   b"proxy-authorization"))
        j = lines[i].find(b"sip:")
        j = j + 4 if j >= 0 else len(lines[i])
        lines[i] = lines[i][:j] + rnd.choice(BADUTF8) + lines[i][j:]
        return join(lines, body)
    if op == 9:                       # fold a header
        i = rnd.randrange(1, len(lines))
        j = rnd.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:j] + rnd.choice([b"\r\n ", b"\r\n\t",
                                              b"\r\n   \r\n "]) + lines[i][j:]
        return join(lines, body)
    if op == 10:                      # Content-Length games
        i = pick_line(rnd, lines, (b"content-length", b"l"))
        lines[i] = b"Content-Length: " + rnd.choice(
            [b"-1", b"99999999999999999999", b"4294967296", b"0", b"5",
             b"1 2", b"0x10", b"", b"65535", str(len(body) + 1).encode()])
        if rnd.random() < 0.3:
            lines.append(b"Content-Length: %d" % len(body))
        return join(lines, body)
    if op == 11:                      # odd SDP
        sdp = body.split(b"\r\n")
        k = rnd.randrange(len(sdp))
        sdp.insert(k, rnd.choice([
            b"m=audio 99999 RTP/AVP 0", b"c=IN IP4 999.1.1.1",
            b"c=IN IP6 ::::", b"a=rtpmap:" + b"9" * 300,
            b"m=video 0 RTP/AVP", b"a=" + b"x" * 2000, b"o=", b"=",
            b"m=audio 4000 RTP/AVP " + b"0 " * 400, b"c=IN IP4 " +
            b"1" * 100, b"a=rtcp:abc IN IP4 x", b"b=AS:-1"]))
        body = b"\r\n".join(sdp)
        return join(lines, body)
    if op == 12:                      # method games
        lines[0] = rnd.choice([b"INVITE", b"invite", b"INVITE ", b"IN\x00VITE",
                               b"X" * 300, b"BYE", b"PRACK", b"UPDATE",
                               b"SUBSCRIBE", b""]) + b" " + \
            lines[0].split(b" ", 1)[-1]
        return join(lines, body)
    if op == 13:                      # Request-URI games
        lines[0] = lines[0].split(b" ")[0] + b" " + rnd.choice(
            [b"sip:", b"tel:+1555", b"sips:a@b", b"<sip:a@b>", b"sip:a@b c",
             b"http://x", b"sip:" + b"9" * 3000 + b"@x", b"sip:%00@x",
             b"sip:a@[::1", b"sip:a@b:99999"]) + b" SIP/2.0"
        return join(lines, body)
    if op == 14:                      # compact and odd header names
        i = rnd.randrange(1, len(lines))
        name, _, val = lines[i].partition(b":")
        lines[i] = rnd.choice([name.lower(), name.upper(), name + b"  ",
                               b" " + name, name[:1]]) + b":" + val
        return join(lines, body)
    # a header of the interesting kind with a random value
    lines.insert(rnd.randrange(1, len(lines) + 1), rnd.choice(HDRS) + b": " +
                 bytes(rnd.randrange(32, 127) for _ in
                       range(rnd.randrange(0, 200))))
    return join(lines, body)


def main():
    seed, seconds, count = int(sys.argv[1]), float(sys.argv[2]), \
        int(sys.argv[3])
    host, port = sys.argv[4].rsplit(":", 1)
    rnd = random.Random(seed)
    socks = []
    for ip in sys.argv[5:]:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ip, 5060))
        s.setblocking(False)
        socks.append((ip, s))
    end = time.monotonic() + seconds
    sent = 0
    while sent < count and time.monotonic() < end:
        ip, s = socks[sent % len(socks)]
        msg = base(rnd, ip, sent)
        for _ in range(rnd.randrange(1, 5)):
            msg = mutate(rnd, msg)
        try:
            s.sendto(msg[:65000], (host, int(port)))
        except OSError:
            pass
        sent += 1
        # drain the answers; pace the sender (about 500 datagrams a second)
        ready, _, _ = select.select([x for _, x in socks], [], [], 0.002)
        for r in ready:
            try:
                while r.recv(65535):
                    pass
            except OSError:
                pass
    print("sent", sent)


if __name__ == "__main__":
    main()
