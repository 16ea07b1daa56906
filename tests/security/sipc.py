#!/usr/bin/env python3
"""A small SIP client over UDP for tests/security/auth.sh: what a caller or
an attacker sends from an address tollgate does not trust.

  call    challenge, answer with USER/PASSWORD (MD5 or SHA-256), on 200 ACK
          and BYE; prints "first=CODE trying=N final=CODE"; --save-auth
          keeps the Proxy-Authorization it sent
  replay  a new INVITE (new Call-ID, branch and tags) with a saved
          Proxy-Authorization; prints the final code or "none"
  answer  challenge, answer, save the final response with tags, branch
          and Call-ID blanked; prints its code
  flood   COUNT INVITEs without credentials in about SECONDS, then listens
          for QUIET seconds; prints sent and received bytes, responses,
          repeated responses and 100 Trying

Every run is bounded in count and time.  Python 3, standard library only.
"""

import argparse
import hashlib
import random
import re
import socket
import sys
import time


def hexh(alg, s):
    f = hashlib.sha256 if alg == "SHA-256" else hashlib.md5
    return f(s.encode()).hexdigest()


def rnd():
    return "%016x" % random.getrandbits(64)


SDP = ("v=0\r\no=sec 1 1 IN IP4 {ip}\r\ns=sec\r\nc=IN IP4 {ip}\r\n"
       "t=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\n"
       "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
       "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
       "a=ptime:20\r\na=sendrecv\r\n")


class UA:
    def __init__(self, src, dst):
        host, port = dst.rsplit(":", 1)
        self.dst = (host, int(port))
        self.src = src
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((src, 0))
        self.port = self.sock.getsockname()[1]
        self.sent = 0
        self.rcvd = 0

    def send(self, msg):
        data = msg.encode()
        self.sent += len(data)
        self.sock.sendto(data, self.dst)

    def recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, _ = self.sock.recvfrom(65535)
        except socket.timeout:
            return None
        self.rcvd += len(data)
        return data.decode("utf-8", "replace")

    def request(self, met, ruri, cid, cseq, ftag, to, branch, hdrs="",
                body="", user="caller"):
        ctype = "Content-Type: application/sdp\r\n" if body else ""
        if met == "INVITE" and user != "scan":
            # what a phone sends beside the essentials
            hdrs = ("User-Agent: sec-phone/1.0\r\n"
                    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO\r\n"
                    "Supported: replaces, timer\r\n" + hdrs)
        return (f"{met} {ruri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {self.src}:{self.port};branch={branch}"
                f";rport\r\n"
                f"Max-Forwards: 70\r\n"
                f"From: <sip:{user}@{self.src}>;tag={ftag}\r\n"
                f"To: {to}\r\n"
                f"Call-ID: {cid}\r\n"
                f"CSeq: {cseq} {met}\r\n"
                f"Contact: <sip:{user}@{self.src}:{self.port}>\r\n"
                f"{hdrs}{ctype}Content-Length: {len(body)}\r\n\r\n{body}")


def code(resp):
    m = re.match(r"SIP/2\.0 (\d{3})", resp or "")
    return int(m.group(1)) if m else 0


def header(resp, name):
    out = []
    for line in resp.split("\r\n")[1:]:
        if not line:
            break
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            out.append(v.strip())
    return out


def param(hval, name):
    m = re.search(r'(?:^|[\s,])' + name + r'="?([^",]+)"?', hval)
    return m.group(1) if m else None


class Call:
    def __init__(self, ua, num, user):
        self.ua = ua
        self.num = num
        self.user = user
        self.ruri = f"sip:{num}@{ua.dst[0]}:{ua.dst[1]}"
        self.cid = rnd() + "@sec.invalid"
        self.ftag = rnd()
        self.to = f"<sip:{num}@{ua.dst[0]}>"
        self.cseq = 0

    def invite(self, hdrs="", wait=4.0):
        """INVITE; returns (all responses, final or None)"""
        self.cseq += 1
        self.branch = "z9hG4bK" + rnd()
        self.ua.send(self.ua.request("INVITE", self.ruri, self.cid,
                                     self.cseq, self.ftag, self.to,
                                     self.branch, hdrs,
                                     SDP.format(ip=self.ua.src),
                                     self.user))
        got = []
        end = time.time() + wait
        while time.time() < end:
            r = self.ua.recv(end - time.time())
            if r is None:
                break
            if header(r, "Call-ID") != [self.cid]:
                continue
            got.append(r)
            if code(r) >= 200:
                return got, r
        return got, None

    def ack(self, resp):
        to = header(resp, "To")[0]
        branch = self.branch if code(resp) >= 300 else "z9hG4bK" + rnd()
        self.ua.send(self.ua.request("ACK", self.ruri, self.cid, self.cseq,
                                     self.ftag, to, branch,
                                     user=self.user))
        if code(resp) < 300:
            self.to = to

    def bye(self):
        self.cseq += 1
        self.ua.send(self.ua.request("BYE", self.ruri, self.cid, self.cseq,
                                     self.ftag, self.to, "z9hG4bK" + rnd(),
                                     user=self.user))
        end = time.time() + 3
        while time.time() < end:
            r = self.ua.recv(end - time.time())
            if r is None:
                return 0
            if header(r, "Call-ID") == [self.cid] and "BYE" in \
                    header(r, "CSeq")[0]:
                return code(r)
        return 0


def authorization(chall_resp, user, pw, alg, ruri):
    chall = None
    for c in header(chall_resp, "Proxy-Authenticate"):
        a = param(c, "algorithm") or "MD5"
        if a.upper() == alg.upper():
            chall = c
            break
    if chall is None:
        return None
    realm = param(chall, "realm")
    nonce = param(chall, "nonce")
    cnonce = rnd()
    nc = "00000001"
    ha1 = hexh(alg, f"{user}:{realm}:{pw}")
    ha2 = hexh(alg, f"INVITE:{ruri}")
    resp = hexh(alg, f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    return (f'Proxy-Authorization: Digest username="{user}", '
            f'realm="{realm}", nonce="{nonce}", uri="{ruri}", '
            f'response="{resp}", algorithm={alg}, cnonce="{cnonce}", '
            f'qop=auth, nc={nc}\r\n')


def challenged(args):
    """a Call after its 407 (ACKed), the 407 and the responses before it"""
    ua = UA(args.src, args.dst)
    call = Call(ua, args.num, args.user)
    got, final = call.invite()
    if final is not None:
        call.ack(final)
    return ua, call, got, final


def cmd_call(args):
    ua, call, got, final = challenged(args)
    trying = sum(1 for r in got if code(r) == 100)
    out = f"first={code(final)} trying={trying}"
    if code(final) != 407:
        print(out + " final=0")
        return
    if args.show_challenge:
        with open(args.show_challenge, "w") as f:
            f.write(final)
    auth = authorization(final, args.user, args.password, args.alg,
                         call.ruri)
    if auth is None:
        print(out + " final=0 (no challenge for " + args.alg + ")")
        return
    if args.save_auth:
        with open(args.save_auth, "w") as f:
            f.write(auth)
    got, final = call.invite(auth)
    c = code(final)
    if final is not None:
        call.ack(final)
    if c == 200:
        call.bye()
    print(out + f" final={c}")


def cmd_replay(args):
    with open(args.auth_file) as f:
        auth = f.read()
    ua = UA(args.src, args.dst)
    call = Call(ua, args.num, args.user)
    _, final = call.invite(auth)
    if final is None:
        print("none")
        return
    call.ack(final)
    if code(final) == 200:
        call.bye()
    print(code(final))


def blank(resp):
    resp = re.sub(r"tag=[^;\r\n>]+", "tag=X", resp)
    resp = re.sub(r"branch=[^;\r\n]+", "branch=X", resp)
    resp = re.sub(r"(?im)^(Call-ID:).*$", r"\1 X", resp)
    resp = re.sub(r"(?im)^(From:\s*<sip:)[^@]+@", r"\1X@", resp)
    resp = re.sub(r"(?m);rport=\d+", ";rport=X", resp)
    # the port of the client's socket, not tollgate's choice
    resp = re.sub(r"(?im)^(Via: SIP/2\.0/UDP [0-9.]+):\d+", r"\1:X", resp)
    return resp


def cmd_answer(args):
    ua, call, got, final = challenged(args)
    if code(final) != 407:
        print(code(final))
        return
    auth = authorization(final, args.user, args.password, args.alg,
                         call.ruri)
    got, final = call.invite(auth)
    if final is None:
        print("none")
        return
    call.ack(final)
    with open(args.out, "w") as f:
        f.write(blank(final))
    print(code(final))


def cmd_flood(args):
    ua = UA(args.src, args.dst)
    small = args.small
    seen = {}
    responses = repeats = trying = 0

    def drain(t):
        nonlocal responses, repeats, trying
        while True:
            r = ua.recv(t)
            if r is None:
                return
            t = 0
            responses += 1
            key = (tuple(header(r, "Call-ID")), code(r))
            if key in seen:
                repeats += 1
            seen[key] = True
            if code(r) == 100:
                trying += 1

    start = time.time()
    for i in range(args.count):
        body = "" if i < small else SDP.format(ip=args.src)
        msg = ua.request("INVITE", f"sip:{1000 + i % 97}@{ua.dst[0]}",
                         f"fl{i}-{rnd()}@sec.invalid", 1, rnd(),
                         f"<sip:{1000 + i % 97}@{ua.dst[0]}>",
                         "z9hG4bK" + rnd(), body=body, user="scan")
        ua.send(msg)
        # pace: COUNT spread over SECONDS
        ahead = start + (i + 1) * args.seconds / args.count - time.time()
        drain(max(ahead, 0))
    drain(args.quiet)
    print(f"sent={ua.sent} received={ua.rcvd} responses={responses} "
          f"repeats={repeats} trying={trying}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["call", "replay", "answer", "flood"])
    p.add_argument("--src", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--user", default="caller")
    p.add_argument("--password", default="")
    p.add_argument("--num", default="1000")
    p.add_argument("--alg", default="MD5")
    p.add_argument("--save-auth")
    p.add_argument("--show-challenge")
    p.add_argument("--auth-file")
    p.add_argument("--out")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--small", type=int, default=0)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--quiet", type=float, default=5.0)
    args = p.parse_args()
    {"call": cmd_call, "replay": cmd_replay, "answer": cmd_answer,
     "flood": cmd_flood}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
